//! Rule-engine scaling: the engine's cost per message on the message mix of
//! `secsip::fixtures` with generated rule sets of 0 to 10,000 rules (`secsip::rules::gen`),
//! and with the shipped protections (`rules/`).
//!
//! The generated rules never match the mix, so every message is forwarded and the time
//! measured is the cost of looking. One engine per rule set is reused across iterations;
//! each iteration sends the next of [`VARIANTS`] copies of the mix that differ in Call-IDs,
//! tags and branches (the first is `fixtures::message_mix()` byte for byte), so messages
//! are new transactions and dialogs rather than retransmissions. The clock advances 20 ms
//! per message, so by the time a variant comes round again its transactions and dialogs
//! have expired. Requests go from the call's client to its server, responses back.
//! One iteration is one mix (44 messages); throughput is in messages.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use secsip::config::EngineConfig;
use secsip::engine::{Engine, Outcome};
use secsip::fixtures::{self, CallParams};
use secsip::hash::Keyer;
use secsip::hosttable::{HostLimits, HostTable};
use secsip::rules::compile::Source;
use secsip::rules::{compile, compile_dir, gen, CompileOptions, RuleSet};
use secsip::verdict::Action;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

/// Distinct copies of the mix cycled through.
const VARIANTS: u32 = 64;
/// Clock step per message.
const STEP_NS: u64 = 20_000_000;
/// Seed of the generated rule sets.
const SEED: u64 = 1;

/// Variant `v` of `fixtures::message_mix()`: the same messages for calls numbered
/// `v * MIX_CALLS ..`, keeping the users of the original calls (so per-user and
/// per-Request-URI state does not grow with the variants). Returns frames.
fn mix_variant(v: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for n in 0..fixtures::MIX_CALLS {
        let base = if n == fixtures::MIX_CALLS - 1 { CallParams::ipv6() } else { CallParams::default() };
        let p = base.renumbered(v * fixtures::MIX_CALLS + n).with_users(format!("alice{n}"), format!("bob{n}"));
        let (c, s) = (p.client_addr(), p.server_addr());
        let reg = fixtures::register_with_digest(&p, 1, &p.nonce);
        let reg_ok = fixtures::ok_register(&p, &reg);
        let inv = fixtures::invite_with_sdp_cseq(&p, 2);
        let r100 = fixtures::trying(&inv);
        let r180 = fixtures::ringing(&p, &inv, &p.to_tag);
        let r200 = fixtures::ok_invite(&p, &inv, &p.to_tag);
        let ack = fixtures::ack(&p, 2, &p.to_tag);
        let bye = fixtures::bye(&p, 3, &p.to_tag);
        let bye_ok = fixtures::ok(&bye, &p.to_tag);
        let probe = p.clone().with_call_id(format!("opt-{}", p.call_id));
        let opt = fixtures::options(&probe, 1);
        let opt_ok = fixtures::ok_options(&opt, &format!("o{}", p.to_tag));
        for m in [reg, reg_ok, inv, r100, r180, r200, ack, bye, bye_ok, opt, opt_ok] {
            let frame = if m.starts_with(b"SIP/2.0 ") { fixtures::udp_frame(s, c, &m) } else { fixtures::udp_frame(c, s, &m) };
            out.push((m, frame));
        }
    }
    if v == 0 {
        let msgs: Vec<&Vec<u8>> = out.iter().map(|(m, _)| m).collect();
        assert!(msgs.iter().copied().eq(fixtures::message_mix().iter()), "variant 0 must be fixtures::message_mix()");
    }
    out.into_iter().map(|(_, f)| f).collect()
}

/// An engine with `rules` and its own host table, and the state of the clock and variants.
struct Bench {
    engine: Engine,
    variants: Arc<Vec<Vec<Vec<u8>>>>,
    next: usize,
    now: u64,
    id: u64,
}

impl Bench {
    fn new(rules: RuleSet, variants: Arc<Vec<Vec<Vec<u8>>>>) -> Bench {
        let hosts = Arc::new(HostTable::new(HostLimits::default()));
        let engine = Engine::with_rules(EngineConfig::default(), Keyer::with_keys(1, 2), Arc::new(rules), hosts);
        let mut b = Bench { engine, variants, next: 0, now: 1_000_000_000, id: 0 };
        // One full cycle, checked: every message is forwarded (nothing decided by a rule
        // that should not, nothing banned) and the tables reach their steady state.
        for _ in 0..VARIANTS {
            assert_eq!(b.run(), 0, "a rule dropped a message of the mix");
        }
        b
    }

    /// Sends the next variant of the mix; returns how many messages were not forwarded.
    fn run(&mut self) -> usize {
        let frames = &self.variants[self.next];
        self.next = (self.next + 1) % self.variants.len();
        let mut blocked = 0;
        for f in frames {
            self.now += STEP_NS;
            self.id += 1;
            match self.engine.handle(self.now, black_box(f), self.id) {
                Outcome::Judged(j) => {
                    blocked += (j.verdict.action != Action::Forward) as usize;
                    black_box(j.verdict);
                }
                Outcome::Held => unreachable!("the mix has no fragments"),
            }
        }
        blocked
    }
}

fn generated(n: usize) -> RuleSet {
    let src = [Source { path: format!("gen-{n}.toml").into(), text: gen::generate(n, SEED) }];
    let rs = compile(&src, Path::new("."), &CompileOptions::standard()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rs.rules.len(), n);
    rs
}

fn bench_rules(c: &mut Criterion) {
    let variants = Arc::new((0..VARIANTS).map(mix_variant).collect::<Vec<_>>());
    let per_iter = variants[0].len() as u64;
    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(per_iter));
    for n in [0usize, 10, 100, 1000, 10000] {
        let mut b = Bench::new(generated(n), variants.clone());
        g.bench_function(format!("generated/{n}"), |bn| bn.iter(|| b.run()));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let shipped = compile_dir(&dir, &CompileOptions::standard()).unwrap_or_else(|e| panic!("{e}"));
    let mut b = Bench::new(shipped, variants.clone());
    g.bench_function("shipped", |bn| bn.iter(|| b.run()));
    g.finish();
}

criterion_group!(benches, bench_rules);
criterion_main!(benches);
