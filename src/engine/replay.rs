//! The workload of the rule-engine benchmarks (`benches/rules.rs`, `secsip-perf engine`): an
//! engine fed copies of the message mix ([`crate::fixtures::mix_variant`]) in virtual time.
//!
//! Each [`MixReplay::run`] sends the next variant, so messages are new transactions and
//! dialogs rather than retransmissions. An engine's clock advances [`STEP_NS`] per message of
//! its own, so with enough variants (64 × 44 messages is 56 s) a variant's transactions and
//! dialogs have expired by the time it comes round again and the tables stay at their steady
//! size.
//!
//! Engines that share a host table must share the clock too ([`VirtualClock`]), as the
//! appliance's engines share the machine's: the host table's leaky counters never leak for a
//! thread whose clock is behind, so an engine with a clock of its own that fell minutes behind
//! another would see the other's counts pile up and trip the flood rules.

use super::{Engine, Outcome};
use crate::verdict::Action;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Virtual time between two messages of one engine: 50 messages/s, far below every flood
/// threshold of the shipped rules, so rate limits never fire on the mix.
pub const STEP_NS: u64 = 20_000_000;

/// Virtual time of the first message.
const START_NS: u64 = 1_000_000_000;

/// A virtual clock shared by the replays of several engines: every message, whichever
/// engine judges it, takes the next slot of time.
#[derive(Debug)]
pub struct VirtualClock {
    messages: AtomicU64,
    step_ns: u64,
}

impl VirtualClock {
    /// A clock for `engines` replays judging at the same pace: a slot is
    /// [`STEP_NS`]` / engines`, so each engine still sees [`STEP_NS`] per message of its own.
    pub fn new(engines: usize) -> VirtualClock {
        VirtualClock { messages: AtomicU64::new(0), step_ns: STEP_NS / engines.max(1) as u64 }
    }

    /// Takes `n` consecutive slots; returns the time of the first and the step between them.
    fn take(&self, n: usize) -> (u64, u64) {
        // One atomic per variant, not per message, so engines on other cores do not fight
        // over the clock's cache line. Relaxed: the slots only need to be distinct and
        // increasing per engine; engines a variant apart are as far apart as the appliance's
        // engines reading the clock once per batch.
        let first = self.messages.fetch_add(n as u64, Ordering::Relaxed);
        (START_NS + first * self.step_ns, self.step_ns)
    }
}

/// An engine and the variants it is fed in turn, with the virtual clock.
pub struct MixReplay {
    engine: Engine,
    variants: Arc<Vec<Vec<Vec<u8>>>>,
    next: usize,
    clock: Arc<VirtualClock>,
    id: u64,
}

impl MixReplay {
    /// `engine` fed `variants` (frames) in turn from the first, on a clock of its own.
    ///
    /// Panics if `variants` is empty.
    pub fn new(engine: Engine, variants: Arc<Vec<Vec<Vec<u8>>>>) -> MixReplay {
        MixReplay::with_clock(engine, variants, Arc::new(VirtualClock::new(1)))
    }

    /// `engine` fed `variants` (frames) in turn from the first, on `clock`, which it shares
    /// with the other engines of its host table.
    ///
    /// Panics if `variants` is empty.
    pub fn with_clock(engine: Engine, variants: Arc<Vec<Vec<Vec<u8>>>>, clock: Arc<VirtualClock>) -> MixReplay {
        assert!(!variants.is_empty(), "a replay needs at least one variant");
        MixReplay { engine, variants, next: 0, clock, id: 0 }
    }

    /// Sends every variant once, so the tables reach their steady state before anything is
    /// measured; returns how many messages were not forwarded.
    pub fn warm_up(&mut self) -> usize {
        (0..self.variants.len()).map(|_| self.run()).sum()
    }

    /// Sends the next variant; returns how many of its messages were not forwarded.
    pub fn run(&mut self) -> usize {
        let frames = &self.variants[self.next];
        self.next = (self.next + 1) % self.variants.len();
        let (mut now, step) = self.clock.take(frames.len());
        let mut blocked = 0;
        for f in frames {
            self.id += 1;
            // black_box: the optimiser must neither see the constant frames nor drop the
            // verdict, or the benchmark measures less than the data path does.
            match self.engine.handle(now, black_box(f), self.id) {
                Outcome::Judged(j) => {
                    blocked += (j.verdict.action != Action::Forward) as usize;
                    black_box(j.verdict);
                }
                // The mix has no fragments; a held frame would be one not forwarded.
                Outcome::Held | Outcome::Consult(_) => blocked += 1,
            }
            now += step;
        }
        blocked
    }

    /// The engine, for its counters.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EngineConfig;
    use crate::fixtures;
    use crate::hash::Keyer;
    use crate::hosttable::{HostLimits, HostTable};
    use crate::rules::{compile_dir, CompileOptions, RuleSet};

    fn variants(from: u32, to: u32) -> Arc<Vec<Vec<Vec<u8>>>> {
        Arc::new((from..to).map(fixtures::mix_variant).collect())
    }

    #[test]
    fn forwards_every_message_of_every_variant() {
        let mut r = MixReplay::new(Engine::new(EngineConfig::default(), Keyer::with_keys(1, 2)), variants(0, 4));
        let mix = fixtures::message_mix().len();
        assert_eq!(r.warm_up(), 0);
        assert_eq!(r.run(), 0);
        let s = r.engine().stats();
        assert_eq!(s.frames, 5 * mix as u64);
        assert_eq!(s.forwarded, s.frames);
        assert_eq!(s.sip_messages, s.frames);
    }

    #[test]
    fn cycles_through_the_variants_one_step_a_message() {
        let mut r = MixReplay::new(Engine::new(EngineConfig::default(), Keyer::with_keys(1, 2)), variants(0, 3));
        let mut sent = Vec::new();
        for _ in 0..4 {
            sent.push(r.next);
            r.run();
        }
        assert_eq!(sent, [0, 1, 2, 0]);
        let mix = fixtures::message_mix().len();
        assert_eq!(r.clock.take(1), (START_NS + 4 * mix as u64 * STEP_NS, STEP_NS));
    }

    #[test]
    fn a_shared_clock_hands_out_increasing_slots() {
        let c = VirtualClock::new(2);
        assert_eq!(c.take(44), (START_NS, STEP_NS / 2));
        assert_eq!(c.take(1), (START_NS + 44 * STEP_NS / 2, STEP_NS / 2));
    }

    /// Two engines on one host table with the shipped rules, one far ahead of the other (as
    /// threads drift apart): on a shared clock, no flood rule mistakes them for a flood.
    #[test]
    fn engines_sharing_hosts_and_clock_forward_the_shipped_rules_mix() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let rules: Arc<RuleSet> = Arc::new(compile_dir(&dir, &CompileOptions::standard()).unwrap_or_else(|e| panic!("{e}")));
        let hosts = Arc::new(HostTable::new(HostLimits::default()));
        let clock = Arc::new(VirtualClock::new(2));
        let mut replays: Vec<MixReplay> = [variants(0, 64), variants(64, 128)]
            .into_iter()
            .map(|v| {
                let e = Engine::with_rules(EngineConfig::default(), Keyer::with_keys(1, 2), rules.clone(), hosts.clone());
                MixReplay::with_clock(e, v, clock.clone())
            })
            .collect();
        for _ in 0..3 {
            assert_eq!(replays[0].warm_up(), 0);
        }
        for _ in 0..3 {
            assert_eq!(replays[1].warm_up(), 0);
        }
        for _ in 0..64 {
            for r in &mut replays {
                assert_eq!(r.run(), 0);
            }
        }
    }
}
