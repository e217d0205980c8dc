//! `secsip-perf engine`: the rule engine's speed apart from the network.
//!
//! Each engine thread replays its own copies of the message mix
//! ([`secsip::engine::replay::MixReplay`], the workload of `benches/rules.rs`) through its own
//! engine. Threads get disjoint call numbers, as sharding by Call-ID would give them, and
//! share the compiled rule set, the host table and the (virtual) clock, as the appliance's
//! engines do. Each configuration (rule set × threads) is warmed up, then timed over a fixed
//! number of messages per thread, `repeats` times; `engine.json` keeps every repeat and
//! `engine.md` the medians. Thread CPU time is measured too, so that a run disturbed by other
//! work on the machine shows as such rather than as a slow engine.

mod report;

use anyhow::{bail, Context};
use clap::Args;
use report::{duration_ns, rate, threads_word, Config, EngineReport, Machine, Run};
use secsip::config::EngineConfig;
use secsip::engine::replay::{MixReplay, VirtualClock, STEP_NS};
use secsip::engine::Engine;
use secsip::fixtures;
use secsip::hash::Keyer;
use secsip::hosttable::{HostLimits, HostTable};
use secsip::rules::{compile_dir, gen, CompileOptions, RuleSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Options of `secsip-perf engine`.
#[derive(Args, Debug)]
pub struct EngineArgs {
    /// Fewer rule counts and shorter measurements (well under 30 s in a release build).
    #[arg(long)]
    pub quick: bool,
    /// Where engine.json and engine.md go (default perf/out/<timestamp>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Engine thread counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Messages each thread judges per repeat [default: 500000, 200000 with --quick].
    #[arg(long)]
    pub messages: Option<u64>,
    /// Measurements of each configuration [default: 3, 1 with --quick].
    #[arg(long)]
    pub repeats: Option<usize>,
    /// The shipped rules directory [default: rules/ of the source tree].
    #[arg(long)]
    pub rules: Option<PathBuf>,
}

/// Generated rule counts measured besides the shipped rules.
const GENERATED: [usize; 4] = [10, 100, 1000, 10000];
/// Generated rule counts of `--quick`.
const GENERATED_QUICK: [usize; 2] = [10, 1000];
/// Seed of the generated rule sets (the one `benches/rules.rs` uses).
const SEED: u64 = 1;
/// Copies of the mix per thread: 64 × 44 messages span 56 s of virtual time, longer than
/// any transaction or dialog of the mix lives, so the tables are at their steady size.
const VARIANTS: u32 = 64;

/// Which rules a configuration loads.
enum RuleSource {
    /// Every file of the rules directory.
    Shipped(PathBuf),
    /// `gen::rule_set(n, SEED)`.
    Generated(usize),
}

impl RuleSource {
    fn label(&self) -> String {
        match self {
            RuleSource::Shipped(_) => "shipped".into(),
            RuleSource::Generated(n) => format!("generated-{n}"),
        }
    }

    fn compile(&self) -> anyhow::Result<RuleSet> {
        match self {
            RuleSource::Shipped(dir) => compile_dir(dir, &CompileOptions::standard())
                .with_context(|| format!("compiling the rules in {}", dir.display())),
            RuleSource::Generated(n) => gen::rule_set(*n, SEED).with_context(|| format!("compiling {n} generated rules")),
        }
    }
}

/// What one thread did in one measurement.
struct ThreadRun {
    start: Instant,
    end: Instant,
    /// CPU time the thread got between `start` and `end`, s.
    cpu_s: f64,
    messages: u64,
    blocked: u64,
    pinned: bool,
}

/// Runs the benchmark.
pub fn run(args: &EngineArgs) -> anyhow::Result<()> {
    let started = utc_stamp();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let messages = args.messages.unwrap_or(if args.quick { 200_000 } else { 500_000 });
    let repeats = args.repeats.unwrap_or(if args.quick { 1 } else { 3 });
    let mut threads = args.threads.clone();
    threads.sort_unstable();
    threads.dedup();
    if messages == 0 || repeats == 0 || threads.is_empty() || threads[0] == 0 {
        bail!("--messages, --repeats and every --threads count must be at least 1");
    }
    let rules_dir = args.rules.clone().unwrap_or_else(|| root.join("rules"));
    let generated: &[usize] = if args.quick { &GENERATED_QUICK } else { &GENERATED };
    let sources: Vec<RuleSource> = std::iter::once(RuleSource::Shipped(rules_dir.clone()))
        .chain(generated.iter().map(|&n| RuleSource::Generated(n)))
        .collect();
    let out = args.out.clone().unwrap_or_else(|| root.join("perf/out").join(&started));
    if cfg!(debug_assertions) {
        eprintln!("engine: warning: built without optimizations; build with --release for numbers that mean anything");
    }

    let machine = machine();
    let workloads = workloads(threads[threads.len() - 1], VARIANTS);
    let mut configs = Vec::new();
    for src in &sources {
        let t0 = Instant::now();
        let rules = Arc::new(src.compile()?);
        let compile_s = t0.elapsed().as_secs_f64();
        eprintln!("engine: {} compiled ({} rules) in {compile_s:.2} s", src.label(), rules.rules.len());
        for &t in &threads {
            let c = configuration(src.label(), &rules, compile_s, &workloads[..t], messages, repeats);
            let m = &c.median;
            eprintln!(
                "engine: {} x{}: {} msg/s ({} per core, {}/msg, {:.0}% CPU){}",
                c.rule_set,
                threads_word(t),
                rate(m.msgs_per_s),
                rate(m.msgs_per_s_per_core),
                duration_ns(m.ns_per_msg),
                100.0 * m.cpu_share,
                if c.pinned { "" } else { ", unpinned" }
            );
            if c.blocked() > 0 {
                eprintln!("engine: warning: {} message(s) of the mix were not forwarded", c.blocked());
            }
            configs.push(c);
        }
    }

    let report = EngineReport {
        tool: format!("secsip-perf {}", env!("CARGO_PKG_VERSION")),
        secsip: env!("CARGO_PKG_VERSION").into(),
        started,
        optimized: !cfg!(debug_assertions),
        quick: args.quick,
        machine,
        mix_messages: fixtures::message_mix().len(),
        variants_per_thread: VARIANTS,
        step_ns: STEP_NS,
        messages_per_thread: messages,
        repeats,
        rules_dir: rules_dir.display().to_string(),
        configs,
    };
    let md = write_reports(&out, &report)?;
    print!("{md}");
    Ok(())
}

/// Writes `engine.json` and `engine.md` into `out` (created if needed); returns the Markdown.
fn write_reports(out: &Path, report: &EngineReport) -> anyhow::Result<String> {
    let md = report::markdown(report);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json = out.join("engine.json");
    std::fs::write(&json, serde_json::to_string_pretty(report)? + "\n").with_context(|| format!("writing {}", json.display()))?;
    let md_path = out.join("engine.md");
    std::fs::write(&md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;
    eprintln!("engine: wrote {} and {}", json.display(), md_path.display());
    Ok(md)
}

/// The frames of each thread: thread `t` gets variants `t * per_thread ..`, so no two threads
/// share a call.
fn workloads(threads: usize, per_thread: u32) -> Vec<Arc<Vec<Vec<Vec<u8>>>>> {
    (0..threads as u32)
        .map(|t| Arc::new((t * per_thread..(t + 1) * per_thread).map(fixtures::mix_variant).collect()))
        .collect()
}

/// Measures `rules` on one thread per workload, `repeats` times.
fn configuration(
    rule_set: String,
    rules: &Arc<RuleSet>,
    compile_s: f64,
    workloads: &[Arc<Vec<Vec<Vec<u8>>>>],
    messages: u64,
    repeats: usize,
) -> Config {
    let threads = workloads.len();
    let mut pinned = true;
    let runs = (0..repeats)
        .map(|_| {
            let per_thread = measure(rules, workloads, messages);
            pinned &= per_thread.iter().all(|t| t.pinned);
            let start = per_thread.iter().map(|t| t.start).min().expect("at least one thread");
            let end = per_thread.iter().map(|t| t.end).max().expect("at least one thread");
            // Every thread sends the same number of whole mixes.
            let messages = per_thread[0].messages;
            let blocked = per_thread.iter().map(|t| t.blocked).sum();
            let cpu_s = per_thread.iter().map(|t| t.cpu_s).sum();
            Run::new((end - start).as_secs_f64(), cpu_s, messages, threads, blocked)
        })
        .collect();
    Config::new(rule_set, rules.rules.len(), threads, pinned, compile_s, runs)
}

/// One measurement: a fresh host table, clock and engines, one thread per workload, each
/// warmed up with one cycle of its variants, then started together and timed over at least
/// `messages` messages (whole mixes).
fn measure(rules: &Arc<RuleSet>, workloads: &[Arc<Vec<Vec<Vec<u8>>>>], messages: u64) -> Vec<ThreadRun> {
    let hosts = Arc::new(HostTable::new(HostLimits::default()));
    let clock = Arc::new(VirtualClock::new(workloads.len()));
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    // Pinning fewer cores than threads would stack threads on one core; leave that to the OS.
    let pin = cores.len() >= workloads.len();
    let start_line = Barrier::new(workloads.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = workloads
            .iter()
            .enumerate()
            .map(|(t, frames)| {
                let core = pin.then(|| cores[t]);
                let (hosts, clock, start_line) = (&hosts, &clock, &start_line);
                s.spawn(move || {
                    let pinned = core.is_some_and(core_affinity::set_for_current);
                    // One keyer for every engine, as the shard function and the engines of the
                    // appliance share one.
                    let engine = Engine::with_rules(EngineConfig::default(), Keyer::with_keys(1, 2), rules.clone(), hosts.clone());
                    let mut replay = MixReplay::with_clock(engine, frames.clone(), clock.clone());
                    let mut blocked = replay.warm_up() as u64;
                    let before = replay.engine().stats().frames;
                    start_line.wait();
                    let (start, cpu0) = (Instant::now(), thread_cpu_ns());
                    while replay.engine().stats().frames - before < messages {
                        blocked += replay.run() as u64;
                    }
                    let (end, cpu1) = (Instant::now(), thread_cpu_ns());
                    let messages = replay.engine().stats().frames - before;
                    ThreadRun { start, end, cpu_s: (cpu1 - cpu0) as f64 / 1e9, messages, blocked, pinned }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("an engine thread panicked")).collect()
    })
}

/// CPU time of the calling thread, ns: what it actually ran, which on a machine busy with
/// other work is less than the wall time.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: writes a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The 1-minute load average, `None` where `/proc/loadavg` cannot be read.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// CPU model and usable CPUs of this machine, and its load before the run.
fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == "model name")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    Machine { cpu_model, cpus, load_before: load_average() }
}

/// The current UTC time as `20261205T081500Z` (ISO 8601 basic format, fit for a directory
/// name).
pub fn utc_stamp() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    stamp_at(secs)
}

/// `secs` after the Unix epoch as `20261205T081500Z`.
fn stamp_at(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`:
/// counts in 400-year eras starting on March 1st, so the leap day ends a year).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_configurations_forward_everything_on_one_and_two_threads() {
        let shipped = RuleSource::Shipped(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"));
        let workloads = workloads(2, 4);
        let mix = fixtures::message_mix().len() as u64;
        for src in [RuleSource::Generated(10), shipped] {
            let rules = Arc::new(src.compile().unwrap());
            for t in [1, 2] {
                let c = configuration(src.label(), &rules, 0.0, &workloads[..t], 1000, 2);
                assert_eq!((c.rules, c.threads, c.runs.len()), (rules.rules.len(), t, 2));
                for r in &c.runs {
                    // 1000 messages round up to whole mixes.
                    assert_eq!(r.messages_per_thread, 1000u64.div_ceil(mix) * mix);
                    assert!(r.msgs_per_s > 0.0 && r.ns_per_msg > 0.0);
                    assert_eq!(r.blocked, 0, "{} on {t} thread(s)", c.rule_set);
                }
            }
        }
    }

    #[test]
    fn reports_are_written_and_read_back() {
        let rules = Arc::new(RuleSource::Generated(10).compile().unwrap());
        let c = configuration("generated-10".into(), &rules, 0.0, &workloads(1, 2), 100, 3);
        let report = EngineReport {
            tool: "secsip-perf test".into(),
            secsip: env!("CARGO_PKG_VERSION").into(),
            started: utc_stamp(),
            optimized: !cfg!(debug_assertions),
            quick: true,
            machine: machine(),
            mix_messages: fixtures::message_mix().len(),
            variants_per_thread: 2,
            step_ns: STEP_NS,
            messages_per_thread: 100,
            repeats: 3,
            rules_dir: "rules".into(),
            configs: vec![c],
        };
        let dir = std::env::temp_dir().join(format!("secsip-perf-engine-test-{}", std::process::id()));
        let md = write_reports(&dir, &report).unwrap();
        let back: EngineReport = serde_json::from_str(&std::fs::read_to_string(dir.join("engine.json")).unwrap()).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("engine.md")).unwrap(), md);
        std::fs::remove_dir_all(&dir).unwrap();
        // serde_json may round the last digit of a float; counts and first digits must survive.
        let key = |r: &Run| (r.messages_per_thread, r.blocked, (r.msgs_per_s * 1e-3).round());
        let runs = |rep: &EngineReport| rep.configs[0].runs.iter().map(key).collect::<Vec<_>>();
        assert_eq!(runs(&back), runs(&report), "every repeat is kept");
        assert_eq!(back.configs[0].runs.len(), 3);
        assert!(back.machine.cpus >= 1 && !back.machine.cpu_model.is_empty());
        assert!(md.contains("| generated-10 | 10 | 1 |"), "{md}");
    }

    #[test]
    fn threads_replay_distinct_calls() {
        let w = workloads(2, 3);
        assert_eq!((w.len(), w[0].len(), w[1].len()), (2, 3, 3));
        assert_eq!(w[0][0], fixtures::mix_variant(0));
        assert_eq!(w[1][0], fixtures::mix_variant(3));
    }

    #[test]
    fn a_missing_rules_directory_is_an_error() {
        assert!(RuleSource::Shipped(PathBuf::from("/nonexistent/rules")).compile().is_err());
    }

    #[test]
    fn stamps_known_times() {
        assert_eq!(stamp_at(0), "19700101T000000Z");
        assert_eq!(stamp_at(1_796_458_500), "20261205T081500Z");
        assert_eq!(stamp_at(951_868_799), "20000229T235959Z");
        assert_eq!(stamp_at(4_107_542_400), "21000301T000000Z");
        assert_eq!(utc_stamp().len(), "20261205T081500Z".len());
    }
}
