//! `secsip-perf`: how many SIP messages per second the appliance carries without loss and how
//! much delay it adds, measured side by side with a plain Linux bridge on the same testbed,
//! and the rule engine's own speed apart from the network (`secsip-perf engine`).

mod capture;
mod engine;
mod flood;
mod markdown;
mod middle;
mod model;
mod plot;
mod run;
#[cfg(test)]
mod sample;
mod sipp;
mod sys;
mod testbed;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "secsip-perf",
    version,
    about = "Latency and throughput of the secsip appliance against SIPp floods, side by side with a plain Linux bridge",
    long_about = "Latency and throughput of the secsip appliance against SIPp floods, side by side with a plain Linux bridge.\n\n\
The network run (the default command; root) builds the three-namespace testbed of DESIGN §8 and measures, with the \
same traffic, each middle: `bridge` (br0 over the two veths: what the path does without us), `secsip` (the appliance \
with the shipped config and rules), `secsip-rules=N` (N generated rules), `secsip-rtc` (run-to-completion). \
Workloads: a SIPp call ladder, an OPTIONS flood ladder, latency steps at 25/50/75% of the bridge's highest flood \
rate (one-way latency from packet captures on both end hosts), and SecSip's scenario 2 (60 msg/s, rule count swept).\n\n\
It writes report.json (every number), report.md (the tables) and SVG plots into --out, with a progress line per \
step on stderr. `secsip-perf engine` measures the rule engine alone, without the network.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The offline rule-engine benchmark: messages/s per core and ns/message on the message
    /// mix, for the shipped rules and 10..10,000 generated rules, on 1 and 2 engine threads.
    Engine(engine::EngineArgs),
    /// A UDP OPTIONS flood from one or N source addresses, raw on an AF_PACKET socket in
    /// sendmmsg bursts, bounded by time and count; prints the rate it offered (JSON).
    Flood(flood::FloodArgs),
}

/// The network run (the default command).
#[derive(Args, Debug)]
struct RunArgs {
    /// A short run (under 2 minutes): two rates a ladder, fewer middles, shorter steps.
    /// CI runs this as a smoke test.
    #[arg(long)]
    quick: bool,
    /// Where the reports go (default perf/out/<UTC timestamp>/ in the repository).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The appliance binary (default: `secsip` next to this program).
    #[arg(long, value_name = "FILE")]
    secsip: Option<PathBuf>,
    /// The repository: testbed script, scenarios, config/secsip.toml and rules/.
    #[arg(long, value_name = "DIR", default_value = env!("CARGO_MANIFEST_DIR"))]
    repo: PathBuf,
    /// Seconds of traffic per ladder step (default 4, quick 2).
    #[arg(long, value_name = "S")]
    step_seconds: Option<f64>,
    /// Scheduling niceness of the appliance (-20..19). The Linux bridge forwards in softirq,
    /// ahead of every process; on a box the appliance shares with SIPp, a negative value gives
    /// it the same head start, as a dedicated appliance (nothing else to run) would have.
    #[arg(long, value_name = "N", default_value_t = -10, allow_negative_numbers = true, value_parser = clap::value_parser!(i32).range(-20..=19))]
    nice: i32,
    /// Only these middles (comma-separated: bridge, secsip, secsip-rtc, secsip-rules=N).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    middles: Vec<String>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Engine(a)) => engine::run(&a),
        Some(Command::Flood(a)) => flood::run(&a),
        None => network(&cli.run),
    }
}

fn network(a: &RunArgs) -> Result<()> {
    let repo = std::path::absolute(&a.repo)?;
    let secsip = match &a.secsip {
        Some(p) => std::path::absolute(p)?,
        None => std::env::current_exe()?.parent().context("no directory of this program")?.join("secsip"),
    };
    if !secsip.exists() {
        bail!("{}: no secsip binary (cargo build --release, or --secsip FILE)", secsip.display());
    }
    if cfg!(debug_assertions) {
        eprintln!("secsip-perf: warning: this is a debug build of secsip-perf; the appliance measured is {}", secsip.display());
    }
    testbed::Testbed::check(&repo).context("the testbed cannot run here")?;
    let mut plan = if a.quick { run::Plan::quick() } else { run::Plan::full() };
    if let Some(s) = a.step_seconds {
        if !(0.5..=60.0).contains(&s) {
            bail!("--step-seconds must be 0.5..60");
        }
        plan.step_s = s;
    }
    if !a.middles.is_empty() {
        let keep: Vec<middle::Middle> = a.middles.iter().map(|s| middle::Middle::parse(s)).collect::<Result<_>>()?;
        for list in [&mut plan.call_middles, &mut plan.flood_middles, &mut plan.latency_middles, &mut plan.sweep_middles] {
            list.retain(|m| keep.contains(m));
        }
    }
    let stamp = engine::utc_stamp();
    let out = match &a.out {
        Some(o) => o.clone(),
        None => repo.join("perf/out").join(&stamp),
    };
    let work = out.join("work");
    std::fs::create_dir_all(&work).with_context(|| format!("{}", work.display()))?;
    let setup = middle::Setup { secsip, config: repo.join("config/secsip.toml"), rules: repo.join("rules"), work: std::path::absolute(&work)?, nice: a.nice };
    let shipped = middle::shipped_rule_count(&setup.rules)?;
    let expected = expected_steps(&plan);
    eprintln!(
        "secsip-perf: {} run, about {} steps, out {}; middles {}",
        if a.quick { "quick" } else { "full" },
        expected,
        out.display(),
        plan.middles().iter().map(middle::Middle::name).collect::<Vec<_>>().join(", ")
    );
    let started = Instant::now();
    // Ctrl-C must not leave namespaces and a pinned XDP program behind: the signal only
    // raises a flag, the step in progress fails (its SIPp got the same SIGINT) or ends, and
    // the testbed is torn down on the way out.
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, interrupted.clone())?;
    }
    // SECSIP_TESTBED_PREFIX (as for the tests' testbeds) lets two checkouts run at once.
    let name = format!("{}sperf", std::env::var("SECSIP_TESTBED_PREFIX").unwrap_or_default());
    let tb = testbed::Testbed::up(&repo, &name, plan.sources)?;
    let mut ctx = run::Ctx { tb, setup, scenarios: repo.join("perf/scenarios"), shipped_rules: shipped, started, done: 0, expected, interrupted };
    let steps = run::run_plan(&mut ctx, &plan);
    let run::Ctx { tb, setup, .. } = ctx;
    drop(tb);
    let steps = steps?;
    let report = run::report(&plan, steps, shipped, rfc3339(&stamp), started.elapsed(), a.quick, &setup);
    write_reports(&report, &out)
}

/// Writes report.json, report.md and the plots; prints where they are.
fn write_reports(report: &model::Report, out: &Path) -> Result<()> {
    std::fs::write(out.join("report.json"), serde_json::to_string_pretty(report)?)?;
    let md = markdown::render(report);
    std::fs::write(out.join("report.md"), &md)?;
    let plots = plot::write_all(report, out)?;
    println!("{md}");
    eprintln!(
        "secsip-perf: {} steps in {:.0} s; wrote {}, {}{}",
        report.steps.len(),
        report.duration_s,
        out.join("report.json").display(),
        out.join("report.md").display(),
        plots.iter().map(|p| format!(", {}", p.display())).collect::<String>()
    );
    Ok(())
}

fn expected_steps(p: &run::Plan) -> usize {
    p.call_middles.len() * p.call_ladder.len() + p.flood_middles.len() * p.flood_ladder.len() + p.latency_fractions.len() * p.latency_middles.len() + p.sweep_middles.len()
}

/// `20261205T081500Z` as `2026-12-05T08:15:00Z`.
fn rfc3339(stamp: &str) -> String {
    let s = stamp.as_bytes();
    if s.len() != 16 {
        return stamp.to_string();
    }
    let g = |a: usize, b: usize| &stamp[a..b];
    format!("{}-{}-{}T{}:{}:{}Z", g(0, 4), g(4, 6), g(6, 8), g(9, 11), g(11, 13), g(13, 15))
}
