//! What `secsip-perf engine` measured: the data behind `engine.json`, and `engine.md` made
//! from it. Field names carry their units.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Below this share of CPU time over wall time, a run is flagged as disturbed.
const BUSY_SHARE: f64 = 0.9;

/// One whole engine benchmark.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EngineReport {
    /// `secsip-perf <version>`.
    pub tool: String,
    /// Version of the `secsip` library measured.
    pub secsip: String,
    /// Start of the run, UTC (`20261205T081500Z`).
    pub started: String,
    /// Built with optimizations (a debug build's numbers mean little).
    pub optimized: bool,
    /// `--quick` was given.
    pub quick: bool,
    /// The machine.
    pub machine: Machine,
    /// Messages in one copy of the mix.
    pub mix_messages: usize,
    /// Distinct copies of the mix each thread cycles through (its warm-up is one cycle).
    pub variants_per_thread: u32,
    /// Virtual time between two messages of one engine, ns.
    pub step_ns: u64,
    /// Messages each thread was asked to judge per repeat (rounded up to whole mixes).
    pub messages_per_thread: u64,
    /// Repeats of each configuration.
    pub repeats: usize,
    /// The shipped rules directory.
    pub rules_dir: String,
    /// Every configuration, in the order measured.
    pub configs: Vec<Config>,
}

/// The machine.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// CPUs this process may run on.
    pub cpus: usize,
    /// 1-minute load average when the run started: above zero, other work competed for the
    /// CPUs (see each run's `cpu_share`).
    pub load_before: Option<f64>,
}

/// One rule set on one number of engine threads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    /// `shipped` or `generated-<n>`.
    pub rule_set: String,
    /// Rules in the set.
    pub rules: usize,
    /// Engine threads, each with its own engine and its own calls.
    pub threads: usize,
    /// Every thread was pinned to a core of its own.
    pub pinned: bool,
    /// Time to compile the rule set, s.
    pub compile_s: f64,
    /// Every repeat, in the order run.
    pub runs: Vec<Run>,
    /// The median repeat by throughput (the lower middle one for an even count).
    pub median: Run,
    /// Slowest repeat's throughput, messages/s.
    pub min_msgs_per_s: f64,
    /// Fastest repeat's throughput, messages/s.
    pub max_msgs_per_s: f64,
}

/// One measurement of a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// From the first thread's start to the last thread's end, s.
    pub wall_s: f64,
    /// CPU time the threads got meanwhile, all threads, s.
    pub cpu_s: f64,
    /// `cpu_s` / (`wall_s` × threads): below 1, the threads waited for a CPU (other work on
    /// the machine, or more threads than CPUs).
    pub cpu_share: f64,
    /// Messages each thread judged.
    pub messages_per_thread: u64,
    /// All threads' messages over the wall time.
    pub msgs_per_s: f64,
    /// `msgs_per_s` / threads.
    pub msgs_per_s_per_core: f64,
    /// Wall time per message of one thread, ns.
    pub ns_per_msg: f64,
    /// CPU time per message, ns: the engine's cost whether or not the threads had to wait
    /// for a CPU (more than `ns_per_msg` × `cpu_share` only by rounding).
    pub cpu_ns_per_msg: f64,
    /// Messages not forwarded, warm-up included (0 unless a rule matched the mix).
    pub blocked: u64,
}

impl Run {
    /// A run of `threads` threads that each judged `messages_per_thread` in `wall_s`, on
    /// `cpu_s` of CPU time together.
    pub fn new(wall_s: f64, cpu_s: f64, messages_per_thread: u64, threads: usize, blocked: u64) -> Run {
        let total = (messages_per_thread * threads as u64) as f64;
        let msgs_per_s = total / wall_s;
        Run {
            wall_s,
            cpu_s,
            cpu_share: cpu_s / (wall_s * threads as f64),
            messages_per_thread,
            msgs_per_s,
            msgs_per_s_per_core: msgs_per_s / threads as f64,
            ns_per_msg: 1e9 * wall_s / messages_per_thread as f64,
            cpu_ns_per_msg: 1e9 * cpu_s / total,
            blocked,
        }
    }
}

impl Config {
    /// A configuration and its median and spread. Panics if `runs` is empty.
    pub fn new(rule_set: String, rules: usize, threads: usize, pinned: bool, compile_s: f64, runs: Vec<Run>) -> Config {
        let mut sorted = runs.clone();
        sorted.sort_by(|a, b| a.msgs_per_s.total_cmp(&b.msgs_per_s));
        let median = sorted[(sorted.len() - 1) / 2];
        let (min_msgs_per_s, max_msgs_per_s) = (sorted[0].msgs_per_s, sorted[sorted.len() - 1].msgs_per_s);
        Config { rule_set, rules, threads, pinned, compile_s, runs, median, min_msgs_per_s, max_msgs_per_s }
    }

    /// Messages not forwarded over all repeats.
    pub fn blocked(&self) -> u64 {
        self.runs.iter().map(|r| r.blocked).sum()
    }
}

/// `512k`, `1.23M`: three significant digits.
pub fn rate(x: f64) -> String {
    let (v, unit) = if x >= 1e6 { (x / 1e6, "M") } else if x >= 1e3 { (x / 1e3, "k") } else { (x, "") };
    let decimals = if v >= 100.0 { 0 } else if v >= 10.0 { 1 } else { 2 };
    format!("{v:.decimals$}{unit}")
}

/// `850 ns`, `1.95 µs`, `12.3 ms`.
pub fn duration_ns(ns: f64) -> String {
    let (v, unit) = if ns >= 1e6 { (ns / 1e6, "ms") } else if ns >= 1e3 { (ns / 1e3, "µs") } else { (ns, "ns") };
    let decimals = if v >= 100.0 { 0 } else if v >= 10.0 { 1 } else { 2 };
    format!("{v:.decimals$} {unit}")
}

/// The Markdown report: a table of the configurations, the thread scaling per rule set and
/// the cost of the largest generated rule set against the smallest.
pub fn markdown(r: &EngineReport) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# secsip-perf engine: the rule engine alone\n");
    let pinning = if r.configs.iter().all(|c| c.pinned) {
        "pinned to a core of its own"
    } else {
        "pinned to a core of its own where there were enough cores (rows marked unpinned ran where the OS put them)"
    };
    let _ = writeln!(
        md,
        "{} messages per thread per repeat, median of {} repeat(s), on copies of the {}-message mix \
         ({} per thread, the first cycle a warm-up) in virtual time ({} ms per message of each \
         engine, so no rate limit fires). Every thread has its own engine and calls and is {pinning}; \
         the threads share the rule set, the host table and the virtual clock.\n",
        r.messages_per_thread,
        r.repeats,
        r.mix_messages,
        r.variants_per_thread,
        r.step_ns / 1_000_000
    );
    let build = if r.optimized { "release build" } else { "DEBUG BUILD (numbers mean little)" };
    let quick = if r.quick { " --quick" } else { "" };
    let load = r.machine.load_before.map_or(String::new(), |l| format!(", load average {l:.2} at the start"));
    let _ = writeln!(
        md,
        "Machine: {}, {} CPU(s){load}. {}{quick}, {build}; started {}.\n",
        r.machine.cpu_model, r.machine.cpus, r.tool, r.started
    );
    let _ = writeln!(md, "| rule set | rules | threads | msg/s | msg/s per core | ns/msg | spread | CPU | CPU ns/msg |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---|---:|---:|");
    for c in &r.configs {
        let m = &c.median;
        let range = 100.0 * (c.max_msgs_per_s - c.min_msgs_per_s) / m.msgs_per_s;
        let _ = writeln!(
            md,
            "| {} | {} | {}{} | {} | {} | {:.0} | {}–{} ({range:.1}%) | {:.0}% | {:.0} |",
            c.rule_set,
            c.rules,
            c.threads,
            if c.pinned { "" } else { " (unpinned)" },
            rate(m.msgs_per_s),
            rate(m.msgs_per_s_per_core),
            m.ns_per_msg,
            rate(c.min_msgs_per_s),
            rate(c.max_msgs_per_s),
            100.0 * m.cpu_share,
            m.cpu_ns_per_msg,
        );
    }
    let _ = writeln!(
        md,
        "\nspread: slowest–fastest repeat in msg/s (range as a share of the median). \
         CPU: CPU time the threads got over wall time × threads, and CPU ns/msg: CPU time per \
         message, both in the median repeat."
    );
    if r.configs.iter().any(|c| c.median.cpu_share < BUSY_SHARE) {
        let _ = writeln!(
            md,
            "\nWarning: some threads got less than {:.0}% of a CPU (other work competed for the \
             machine, or a thread finished early and waited): their msg/s understate the \
             engine; their CPU ns/msg does not.",
            100.0 * BUSY_SHARE
        );
    }
    for line in scaling(r).into_iter().chain(slowdown(r)) {
        let _ = writeln!(md, "\n{line}");
    }
    for c in r.configs.iter().filter(|c| c.blocked() > 0) {
        let _ = writeln!(
            md,
            "\nWarning: {} on {} did not forward {} message(s): a rule matched the mix, so that \
             row measures more than the cost of looking.",
            c.rule_set,
            threads_word(c.threads),
            c.blocked()
        );
    }
    md
}

/// `1 thread`, `2 threads`.
pub fn threads_word(n: usize) -> String {
    format!("{n} thread{}", if n == 1 { "" } else { "s" })
}

/// The median of `rule_set` on `threads` threads.
fn median(r: &EngineReport, rule_set: &str, threads: usize) -> Option<Run> {
    r.configs.iter().find(|c| c.rule_set == rule_set && c.threads == threads).map(|c| c.median)
}

/// Rule sets in the order measured, each once, with their rule counts.
fn rule_sets(r: &EngineReport) -> Vec<(&str, usize)> {
    let mut v: Vec<(&str, usize)> = Vec::new();
    for c in &r.configs {
        if !v.iter().any(|(n, _)| *n == c.rule_set) {
            v.push((&c.rule_set, c.rules));
        }
    }
    v
}

fn thread_counts(r: &EngineReport) -> Vec<usize> {
    let mut t: Vec<usize> = r.configs.iter().map(|c| c.threads).collect();
    t.sort_unstable();
    t.dedup();
    t
}

/// One line per thread count above the smallest: total msg/s against the smallest count.
fn scaling(r: &EngineReport) -> Vec<String> {
    let threads = thread_counts(r);
    let Some((&base, more)) = threads.split_first() else { return Vec::new() };
    more.iter()
        .map(|&t| {
            let parts: Vec<String> = rule_sets(r)
                .into_iter()
                .filter_map(|(name, _)| {
                    let (a, b) = (median(r, name, base)?, median(r, name, t)?);
                    Some(format!("{name} {:.2}×", b.msgs_per_s / a.msgs_per_s))
                })
                .collect();
            format!("Scaling, {t} threads vs {base} (total msg/s): {}.", parts.join(", "))
        })
        .collect()
}

/// The cost per message of the largest generated rule set against the smallest, per
/// thread count (none unless two generated sizes were measured).
fn slowdown(r: &EngineReport) -> Option<String> {
    let generated: Vec<(&str, usize)> = rule_sets(r).into_iter().filter(|(n, _)| n.starts_with("generated-")).collect();
    let small = generated.iter().min_by_key(|(_, n)| *n)?;
    let large = generated.iter().max_by_key(|(_, n)| *n)?;
    if small.1 == large.1 {
        return None;
    }
    let parts: Vec<String> = thread_counts(r)
        .into_iter()
        .filter_map(|t| {
            let (a, b) = (median(r, small.0, t)?, median(r, large.0, t)?);
            Some(format!("{:.2}× on {}", b.ns_per_msg / a.ns_per_msg, threads_word(t)))
        })
        .collect();
    Some(format!("Slowdown, {} vs {} generated rules (ns/msg): {}.", large.1, small.1, parts.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rule_set: &str, rules: usize, threads: usize, rates: &[f64]) -> Config {
        // A thread judges 1,000 messages on a CPU of its own; the wall time follows from the
        // wanted total rate.
        let runs = rates
            .iter()
            .map(|&x| {
                let wall_s = 1000.0 * threads as f64 / x;
                Run::new(wall_s, wall_s * threads as f64, 1000, threads, 0)
            })
            .collect();
        Config::new(rule_set.into(), rules, threads, true, 0.01, runs)
    }

    fn report(configs: Vec<Config>) -> EngineReport {
        EngineReport {
            tool: "secsip-perf 0.1.0".into(),
            secsip: "0.1.0".into(),
            started: "20261205T081500Z".into(),
            optimized: true,
            quick: false,
            machine: Machine { cpu_model: "Test CPU".into(), cpus: 2, load_before: Some(0.5) },
            mix_messages: 44,
            variants_per_thread: 64,
            step_ns: 20_000_000,
            messages_per_thread: 1000,
            repeats: 3,
            rules_dir: "rules".into(),
            configs,
        }
    }

    #[test]
    fn run_derives_rates_from_wall_time() {
        let r = Run::new(2.0, 3.0, 1_000_000, 2, 0);
        assert_eq!(r.msgs_per_s, 1_000_000.0);
        assert_eq!(r.cpu_share, 0.75);
        assert_eq!(r.cpu_ns_per_msg, 1500.0);
        assert_eq!(r.msgs_per_s_per_core, 500_000.0);
        assert_eq!(r.ns_per_msg, 2000.0);
    }

    #[test]
    fn median_and_spread_of_the_repeats() {
        let c = config("generated-10", 10, 1, &[300e3, 100e3, 200e3]);
        assert!((c.median.msgs_per_s - 200e3).abs() < 1e-6);
        assert!((c.min_msgs_per_s - 100e3).abs() < 1e-6 && (c.max_msgs_per_s - 300e3).abs() < 1e-6);
        assert_eq!(c.runs.len(), 3);
        let even = config("generated-10", 10, 1, &[400e3, 100e3]);
        assert!((even.median.msgs_per_s - 100e3).abs() < 1e-6, "the lower middle of an even count");
    }

    #[test]
    fn markdown_has_a_row_per_configuration_and_the_ratios() {
        let r = report(vec![
            config("shipped", 57, 1, &[500e3]),
            config("shipped", 57, 2, &[900e3]),
            config("generated-10", 10, 1, &[400e3]),
            config("generated-10", 10, 2, &[800e3]),
            config("generated-10000", 10000, 1, &[100e3]),
            config("generated-10000", 10000, 2, &[150e3]),
        ]);
        let md = markdown(&r);
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| rule set")).collect();
        assert_eq!(rows.len(), r.configs.len(), "{md}");
        assert!(rows[0].starts_with("| shipped | 57 | 1 | 500k | 500k | 2000 | 500k–500k (0.0%) | 100% | 2000 |"), "{}", rows[0]);
        assert!(rows[5].starts_with("| generated-10000 | 10000 | 2 | 150k | 75.0k | 13333 |"), "{}", rows[5]);
        assert!(md.contains("Scaling, 2 threads vs 1 (total msg/s): shipped 1.80×, generated-10 2.00×, generated-10000 1.50×."), "{md}");
        assert!(md.contains("Slowdown, 10000 vs 10 generated rules (ns/msg): 4.00× on 1 thread, 5.33× on 2 threads."), "{md}");
        assert!(md.contains("2 CPU(s), load average 0.50 at the start."), "{md}");
        assert!(md.contains("calls and is pinned to a core of its own;"), "{md}");
        assert!(!md.contains("Warning"));
    }

    #[test]
    fn one_thread_count_and_one_rule_set_give_no_ratios() {
        let md = markdown(&report(vec![config("shipped", 57, 1, &[500e3])]));
        assert!(!md.contains("Scaling") && !md.contains("Slowdown"), "{md}");
    }

    #[test]
    fn starved_threads_are_flagged() {
        let mut c = config("shipped", 57, 2, &[500e3]);
        c.median.cpu_share = 0.6;
        let md = markdown(&report(vec![c]));
        assert!(md.contains("| 60% |") && md.contains("less than 90% of a CPU"), "{md}");
        assert!(!md.contains("Scaling"), "one thread count: {md}");
    }

    #[test]
    fn blocked_messages_are_flagged() {
        let mut c = config("shipped", 57, 1, &[500e3]);
        c.runs[0].blocked = 3;
        let md = markdown(&report(vec![c]));
        assert!(md.contains("did not forward 3 message(s)"), "{md}");
    }

    #[test]
    fn units() {
        assert_eq!(rate(512_345.0), "512k");
        assert_eq!(rate(1_234_567.0), "1.23M");
        assert_eq!(rate(75_000.0), "75.0k");
        assert_eq!(rate(999.0), "999");
        assert_eq!(duration_ns(1950.0), "1.95 µs");
        assert_eq!(duration_ns(850.0), "850 ns");
        assert_eq!(duration_ns(12_345_678.0), "12.3 ms");
    }
}
