//! Rule-engine scaling: the engine's cost per message on the message mix of
//! `secsip::fixtures` with generated rule sets of 0 to 10,000 rules (`secsip::rules::gen`),
//! and with the shipped protections (`rules/`).
//!
//! The generated rules never match the mix, so every message is forwarded and the time
//! measured is the cost of looking. One engine per rule set is reused across iterations;
//! each iteration sends the next of [`VARIANTS`] copies of the mix
//! (`secsip::engine::replay::MixReplay`, the workload `secsip-perf engine` measures too).
//! One iteration is one mix (44 messages); throughput is in messages.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use secsip::config::EngineConfig;
use secsip::engine::replay::MixReplay;
use secsip::engine::Engine;
use secsip::fixtures;
use secsip::hash::Keyer;
use secsip::hosttable::{HostLimits, HostTable};
use secsip::rules::{compile_dir, gen, CompileOptions, RuleSet};
use std::path::Path;
use std::sync::Arc;

/// Distinct copies of the mix cycled through.
const VARIANTS: u32 = 64;
/// Seed of the generated rule sets.
const SEED: u64 = 1;

/// A replay of `variants` through an engine with `rules` and its own host table, warmed up.
fn replay(rules: RuleSet, variants: Arc<Vec<Vec<Vec<u8>>>>) -> MixReplay {
    let hosts = Arc::new(HostTable::new(HostLimits::default()));
    let engine = Engine::with_rules(EngineConfig::default(), Keyer::with_keys(1, 2), Arc::new(rules), hosts);
    let mut r = MixReplay::new(engine, variants);
    assert_eq!(r.warm_up(), 0, "a rule dropped a message of the mix");
    r
}

fn bench_rules(c: &mut Criterion) {
    let variants = Arc::new((0..VARIANTS).map(fixtures::mix_variant).collect::<Vec<_>>());
    let per_iter = variants[0].len() as u64;
    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(per_iter));
    for n in [0usize, 10, 100, 1000, 10000] {
        let rules = gen::rule_set(n, SEED).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rules.rules.len(), n);
        let mut r = replay(rules, variants.clone());
        g.bench_function(format!("generated/{n}"), |bn| bn.iter(|| r.run()));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let shipped = compile_dir(&dir, &CompileOptions::standard()).unwrap_or_else(|e| panic!("{e}"));
    let mut r = replay(shipped, variants.clone());
    g.bench_function("shipped", |bn| bn.iter(|| r.run()));
    g.finish();
}

criterion_group!(benches, bench_rules);
criterion_main!(benches);
