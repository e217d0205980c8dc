//! The network run: the workloads, stepped and alternated over the middles, and what the
//! steps add up to.
//!
//! Every step starts its middle fresh, starts the SIPp server, runs the SIPp client to the
//! end of a fixed number of calls at a fixed rate, and takes the middle out again. Ladders
//! go up one rate at a time for every middle still passing, the order of middles rotating
//! from one rate to the next, so slow drift of the machine falls on all of them alike.

use crate::capture::{self, Capture};
use crate::middle::{self, Middle, Rules, Setup};
use crate::model::{Cpu, LatencyAt, MiddleSummary, Report, Step, Summary, Target, Workload};
use crate::sipp::{self, Client, Server};
use crate::sys::MachineCpu;
use crate::testbed::{Side, Testbed};
use anyhow::{bail, Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a run does.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Seconds of traffic per ladder step.
    pub step_s: f64,
    /// Client source addresses.
    pub sources: usize,
    /// Middles of the call ladder.
    pub call_middles: Vec<Middle>,
    /// Call rates (calls/s).
    pub call_ladder: Vec<f64>,
    /// Middles of the flood ladder.
    pub flood_middles: Vec<Middle>,
    /// Transaction rates (OPTIONS/s).
    pub flood_ladder: Vec<f64>,
    /// One more step per middle between its last pass and first failure.
    pub refine: bool,
    /// Fractions of the bridge's maximum for the latency steps.
    pub latency_fractions: Vec<f64>,
    /// Middles of the latency steps.
    pub latency_middles: Vec<Middle>,
    /// Middles of the rule sweep.
    pub sweep_middles: Vec<Middle>,
    /// Message rate of the rule sweep.
    pub sweep_msgs_per_s: f64,
    /// Seconds per rule-sweep step.
    pub sweep_s: f64,
}

fn gen(n: usize) -> Middle {
    Middle::Secsip { rules: Rules::Generated(n), rtc: false }
}

const RTC: Middle = Middle::Secsip { rules: Rules::Shipped, rtc: true };

impl Plan {
    /// The default run (under 10 minutes).
    pub fn full() -> Plan {
        let rules: Vec<Middle> = [10, 100, 1000, 10000].into_iter().map(gen).collect();
        let mut flood_middles = vec![Middle::Bridge, Middle::SECSIP, RTC];
        flood_middles.extend(rules.iter().cloned());
        let mut sweep_middles = rules;
        sweep_middles.push(Middle::SECSIP);
        Plan {
            step_s: 4.0,
            sources: 128,
            call_middles: vec![Middle::Bridge, Middle::SECSIP, RTC],
            call_ladder: vec![500.0, 1000.0, 2000.0, 4000.0, 8000.0],
            flood_middles,
            flood_ladder: vec![2500.0, 5000.0, 10000.0, 20000.0, 40000.0, 80000.0],
            refine: true,
            latency_fractions: vec![0.25, 0.5, 0.75],
            latency_middles: vec![Middle::Bridge, Middle::SECSIP, RTC],
            sweep_middles,
            sweep_msgs_per_s: 60.0,
            sweep_s: 8.0,
        }
    }

    /// `--quick` (under 2 minutes): two rates a ladder, one latency fraction, two rule counts.
    pub fn quick() -> Plan {
        Plan {
            step_s: 2.0,
            sources: 64,
            call_middles: vec![Middle::Bridge, Middle::SECSIP],
            call_ladder: vec![500.0, 2000.0],
            flood_middles: vec![Middle::Bridge, Middle::SECSIP, RTC, gen(10), gen(1000)],
            flood_ladder: vec![2500.0, 10000.0],
            refine: false,
            latency_fractions: vec![0.5],
            latency_middles: vec![Middle::Bridge, Middle::SECSIP],
            sweep_middles: vec![gen(10), gen(1000)],
            sweep_msgs_per_s: 60.0,
            sweep_s: 3.0,
        }
    }

    /// Every distinct middle of the plan, in first-use order.
    pub fn middles(&self) -> Vec<Middle> {
        let mut v: Vec<Middle> = Vec::new();
        for m in self.call_middles.iter().chain(&self.flood_middles).chain(&self.latency_middles).chain(&self.sweep_middles) {
            if !v.contains(m) {
                v.push(m.clone());
            }
        }
        v
    }
}

/// Everything a step needs.
pub struct Ctx {
    /// The testbed.
    pub tb: Testbed,
    /// Appliance inputs.
    pub setup: Setup,
    /// SIPp scenarios directory.
    pub scenarios: PathBuf,
    /// Rules in the shipped set.
    pub shipped_rules: usize,
    /// When the run began.
    pub started: Instant,
    /// Steps done.
    pub done: usize,
    /// Steps expected (for the progress line; ladders may stop early).
    pub expected: usize,
    /// Set by SIGINT or SIGTERM: stop after the step in progress, tearing the testbed down.
    pub interrupted: Arc<AtomicBool>,
}

/// Messages per call or transaction.
fn msgs_per_unit(w: Workload) -> u32 {
    match w {
        Workload::Flood | Workload::Latency => 2,
        Workload::Calls | Workload::RuleSweep => 7,
    }
}

/// A call or transaction waiting longer than this for its next message fails.
const RECV_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs one step.
pub fn step(ctx: &mut Ctx, w: Workload, m: &Middle, rate: f64, seconds: f64, capture: bool) -> Result<Step> {
    if ctx.interrupted.load(Ordering::Relaxed) {
        bail!("interrupted: the testbed is torn down and no report is written");
    }
    let name = m.name();
    ctx.done += 1;
    let work = ctx.setup.work.join(format!("step-{:03}-{:?}-{}-{}", ctx.done, w, name, rate as u64).to_lowercase());
    std::fs::create_dir_all(&work)?;
    let mpu = msgs_per_unit(w);
    let (uac, uas) = match w {
        Workload::Flood | Workload::Latency => ("options-uac.xml", "options-uas.xml"),
        Workload::Calls | Workload::RuleSweep => ("call-uac.xml", "call-uas.xml"),
    };
    let calls = ((rate * seconds).round() as u64).max(1);
    let running = middle::start(&ctx.tb, m, &ctx.setup).with_context(|| format!("{name}: cannot start"))?;
    let server = Server::start(&ctx.tb, &ctx.scenarios.join(uas), &work)?;
    let caps = if capture {
        let mask = capture::sample_mask(rate * mpu as f64, 4000.0);
        Some((
            Capture::start(&ctx.tb, Side::Client, &work.join("client.pcap"), mask)?,
            Capture::start(&ctx.tb, Side::Server, &work.join("server.pcap"), mask)?,
        ))
    } else {
        None
    };
    let cpu0 = MachineCpu::now()?;
    let middle_cpu0 = running.cpu_s();
    let client = Client { tb: &ctx.tb, scenario: &ctx.scenarios.join(uac), work: &work, rate, calls, recv_timeout: RECV_TIMEOUT, retransmit: mpu == 7 }.run()?;
    let (srv, srv_exit) = server.stop()?;
    let cpu = MachineCpu::now()?.since(&cpu0);
    let middle_cpu = running.cpu_s().zip(middle_cpu0).map(|(a, b)| a - b);
    let mut note = Vec::new();
    let wire = match caps {
        Some((c, s)) => {
            let (cp, cd) = c.stop()?;
            let (sp, sd) = s.stop()?;
            if cd + sd > 0 {
                note.push(format!("capture taps dropped {} packets", cd + sd));
            }
            let l = capture::one_way_latency(&cp, &sp)?;
            // The captures served their purpose; at these rates they are large.
            let _ = std::fs::remove_file(&cp);
            let _ = std::fs::remove_file(&sp);
            l
        }
        None => None,
    };
    let mm = running.finish(&ctx.tb).with_context(|| format!("{name}: cannot stop"))?;
    let _ = std::fs::remove_dir_all(work.join("rtt"));

    // Calls that timed out kept the client waiting one receive timeout after the last start.
    let tail = if client.stats.failed > 0 { RECV_TIMEOUT.as_secs_f64() } else { 0.0 };
    let window = (client.wall.as_secs_f64() - tail).max(seconds * 0.5);
    let offered_rate = client.stats.outgoing as f64 / window;
    let delivered = match w {
        Workload::Flood | Workload::Latency => srv.incoming + client.stats.successful,
        Workload::Calls | Workload::RuleSweep => client.stats.successful * 7,
    } as f64
        / window;
    let loss = if client.stats.outgoing == 0 { 1.0 } else { 1.0 - (srv.incoming.min(client.stats.outgoing) as f64 / client.stats.outgoing as f64) };
    let retrans = client.stats.retransmissions + srv.retransmissions;
    let mut passed = true;
    if client.exit.code != 0 && client.stats.failed == 0 {
        note.push(format!("SIPp client exited with {}", client.exit.code));
        passed = false;
    }
    if offered_rate < 0.95 * rate {
        note.push(format!("SIPp offered only {:.0}/s of {:.0}/s", offered_rate, rate));
        passed = false;
    }
    match w {
        Workload::Calls | Workload::RuleSweep => {
            if client.stats.failed > 0 {
                note.push(format!("{} of {} calls failed", client.stats.failed, client.stats.outgoing));
                passed = false;
            }
            let sent = (client.stats.outgoing * 7).max(1);
            if retrans as f64 > 0.01 * sent as f64 {
                note.push(format!("retransmissions {:.2}% of messages", 100.0 * retrans as f64 / sent as f64));
                passed = false;
            }
        }
        Workload::Flood | Workload::Latency => {
            if loss >= 0.001 {
                note.push(format!("loss {:.3}%", 100.0 * loss));
                passed = false;
            }
            if client.stats.failed > 0 && loss < 0.001 {
                note.push(format!("{} answers lost on the way back", client.stats.failed));
            }
        }
    }
    if mm.uninspected > 0 {
        note.push(format!("{} messages forwarded uninspected (an engine thread gone)", mm.uninspected));
        passed = false;
    }
    if mm.overload_drops > 0 {
        note.push(format!("{} frames shed or dropped for lack of room", mm.overload_drops));
    }
    if let Some(d) = mm.rule_drops.filter(|&d| d > 0) {
        note.push(format!("rules dropped {d}"));
    }
    let s = Step {
        workload: Some(w),
        middle: name,
        rules: m.rule_count(ctx.shipped_rules),
        target_rate: rate,
        msgs_per_unit: mpu,
        offered_rate,
        offered_msgs_per_s: offered_rate * mpu as f64,
        delivered_msgs_per_s: delivered,
        loss,
        attempted: client.stats.outgoing,
        successful: client.stats.successful,
        failed: client.stats.failed,
        retransmissions: retrans,
        rule_drops: mm.rule_drops,
        sipp_rt_ms: sipp::percentiles(client.rtt_ms),
        wire_latency_us: wire,
        appliance_latency_us: mm.latency_us,
        cpu: Cpu {
            wall_s: client.wall.as_secs_f64(),
            middle_s: middle_cpu,
            sipp_client_s: client.exit.cpu_s,
            sipp_server_s: srv_exit.cpu_s,
            softirq_s: cpu.softirq_s,
            machine_busy_s: cpu.busy_s,
        },
        middle_peak_rss_kib: mm.peak_rss_kib,
        uninspected: (!matches!(m, Middle::Bridge)).then_some(mm.uninspected),
        passed,
        note: note.join("; "),
    };
    progress(ctx, &s);
    Ok(s)
}

fn progress(ctx: &Ctx, s: &Step) {
    let el = ctx.started.elapsed().as_secs();
    let p = |x: Option<f64>| x.map_or("—".to_string(), |v| format!("{v:.0}"));
    eprintln!(
        "[{:>2}/{} {}:{:02}] {:<9} {:<18} {:>7.0}/s: delivered {:>7.0} msg/s, loss {:.2}%, wire p99 {} µs, appliance p99 {} µs, CPU middle {} s {}{}",
        ctx.done,
        ctx.expected,
        el / 60,
        el % 60,
        format!("{:?}", s.workload.unwrap_or(Workload::Calls)).to_lowercase(),
        s.middle,
        s.target_rate,
        s.delivered_msgs_per_s,
        100.0 * s.loss,
        p(s.wire_latency_us.map(|l| l.p99)),
        p(s.appliance_latency_us.map(|l| l.p99)),
        s.cpu.middle_s.map_or("—".into(), |c| format!("{c:.2}")),
        if s.passed { "ok" } else { "FAIL" },
        if s.note.is_empty() { String::new() } else { format!(" ({})", s.note) },
    );
}

/// A ladder: every rate for every middle still passing, middles rotating; then, with
/// `refine`, one step between each middle's last pass and first failure.
fn ladder(ctx: &mut Ctx, w: Workload, middles: &[Middle], rates: &[f64], seconds: f64, refine: bool, steps: &mut Vec<Step>) -> Result<()> {
    let mut alive: Vec<Middle> = middles.to_vec();
    let mut bounds: Vec<(Middle, Option<f64>, Option<f64>)> = middles.iter().map(|m| (m.clone(), None, None)).collect();
    for (i, &rate) in rates.iter().enumerate() {
        if alive.is_empty() {
            break;
        }
        let n = alive.len();
        let order: Vec<Middle> = (0..n).map(|k| alive[(k + i) % n].clone()).collect();
        for m in order {
            let s = step(ctx, w, &m, rate, seconds, false)?;
            let b = bounds.iter_mut().find(|b| b.0 == m).expect("every middle has bounds");
            if s.passed {
                b.1 = Some(rate);
            } else {
                b.2 = Some(rate);
                alive.retain(|x| *x != m);
            }
            steps.push(s);
        }
    }
    if refine {
        for (m, pass, fail) in bounds {
            if let (Some(p), Some(f)) = (pass, fail) {
                steps.push(step(ctx, w, &m, (p * f).sqrt().round(), seconds, false)?);
            }
        }
    }
    Ok(())
}

/// Runs the plan; the steps in the order they ran.
pub fn run_plan(ctx: &mut Ctx, plan: &Plan) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    ladder(ctx, Workload::Calls, &plan.call_middles, &plan.call_ladder, plan.step_s, plan.refine, &mut steps)?;
    ladder(ctx, Workload::Flood, &plan.flood_middles, &plan.flood_ladder, plan.step_s, plan.refine, &mut steps)?;
    if let Some(bmax) = max_flood(&steps, "bridge") {
        for &f in &plan.latency_fractions {
            let n = plan.latency_middles.len().max(1);
            for k in 0..n {
                let m = plan.latency_middles[(k + (f * 4.0) as usize) % n].clone();
                // Transactions/s for the message rate.
                steps.push(step(ctx, Workload::Latency, &m, (f * bmax / 2.0).round().max(1.0), plan.step_s, true)?);
            }
        }
    } else {
        eprintln!("secsip-perf: the bridge passed no flood step: no latency steps");
    }
    for m in &plan.sweep_middles {
        steps.push(step(ctx, Workload::RuleSweep, m, plan.sweep_msgs_per_s / 7.0, plan.sweep_s, true)?);
    }
    Ok(steps)
}

/// The highest passing flood rate of a middle, messages/s delivered.
pub fn max_flood(steps: &[Step], middle: &str) -> Option<f64> {
    steps
        .iter()
        .filter(|s| s.workload == Some(Workload::Flood) && s.middle == middle && s.passed)
        .map(|s| s.delivered_msgs_per_s)
        .max_by(f64::total_cmp)
}

fn max_calls(steps: &[Step], middle: &str) -> Option<f64> {
    steps.iter().filter(|s| s.workload == Some(Workload::Calls) && s.middle == middle && s.passed).map(|s| s.target_rate).max_by(f64::total_cmp)
}

/// The first failing step of a workload above a middle's maximum.
fn first_failure<'a>(steps: &'a [Step], w: Workload, middle: &str) -> Option<&'a Step> {
    steps.iter().filter(|s| s.workload == Some(w) && s.middle == middle && !s.passed).min_by(|a, b| a.target_rate.total_cmp(&b.target_rate))
}

/// CPU shares of a step in words, as evidence of what limited it.
pub fn cpu_evidence(s: &Step, cpus: usize) -> String {
    let w = s.cpu.wall_s.max(1e-9);
    // Process times are exact; /proc/stat's tick samples undercount bursty processes, so the
    // sum of the parts is the better measure of how full the machine was.
    let parts = s.cpu.middle_s.unwrap_or(0.0) + s.cpu.sipp_client_s + s.cpu.sipp_server_s + s.cpu.softirq_s;
    format!(
        "{}SIPp client {:.2}, SIPp server {:.2}, softirq ≥ {:.2}: ≥ {:.2} of {} CPUs",
        s.cpu.middle_s.map_or(String::new(), |c| format!("appliance {:.2}, ", c / w)),
        s.cpu.sipp_client_s / w,
        s.cpu.sipp_server_s / w,
        s.cpu.softirq_s / w,
        parts / w,
        cpus,
    )
}

/// What the steps add up to.
pub fn summarize(steps: &[Step], plan_middles: &[Middle], shipped: usize, cpus: usize) -> Summary {
    let mut sum = Summary::default();
    for m in plan_middles {
        let name = m.name();
        let mut limited = Vec::new();
        for w in [Workload::Calls, Workload::Flood] {
            if let Some(f) = first_failure(steps, w, &name) {
                limited.push(format!("{w:?} at {:.0}/s: {} [{}]", f.target_rate, f.note, cpu_evidence(f, cpus)).to_lowercase());
            } else if steps.iter().any(|s| s.workload == Some(w) && s.middle == name) {
                limited.push(format!("{w:?}: passed every step of the ladder", w = w).to_lowercase());
            }
        }
        sum.middles.push(MiddleSummary {
            middle: name.clone(),
            rules: m.rule_count(shipped),
            max_call_rate: max_calls(steps, &name),
            max_flood_msgs_per_s: max_flood(steps, &name),
            limited_by: limited.join("; "),
        });
    }
    let bmax = max_flood(steps, "bridge");
    for s in steps.iter().filter(|s| s.workload == Some(Workload::Latency)) {
        let fraction = bmax.map_or(0.0, |b| ((s.target_rate * 2.0 / b) * 100.0).round() / 100.0);
        sum.latency_at.push(LatencyAt {
            fraction,
            msgs_per_s: s.offered_msgs_per_s,
            middle: s.middle.clone(),
            wire_latency_us: s.wire_latency_us,
            sipp_rt_ms: s.sipp_rt_ms,
            appliance_latency_us: s.appliance_latency_us,
            loss: s.loss,
        });
    }
    sum.targets = targets(&sum, steps);
    sum.limits = limits(steps, &sum, cpus);
    sum
}

fn targets(sum: &Summary, steps: &[Step]) -> Vec<Target> {
    let max = |m: &str| sum.middles.iter().find(|x| x.middle == m).and_then(|x| x.max_flood_msgs_per_s);
    let top_passed = |m: &str| !steps.iter().any(|s| s.workload == Some(Workload::Flood) && s.middle == m && !s.passed);
    let mut t = Vec::new();
    t.push(match (max("secsip"), max("bridge")) {
        (Some(s), Some(b)) => Target {
            name: "delivered message rate of secsip ≥ 90% of bridge".into(),
            met: Some(s >= 0.9 * b),
            detail: format!(
                "secsip {:.0} msg/s, bridge {:.0} msg/s{}: {:.1}%",
                s,
                b,
                if top_passed("bridge") { " (the bridge passed the top of the ladder: a lower bound)" } else { "" },
                100.0 * s / b
            ),
        },
        _ => Target { name: "delivered message rate of secsip ≥ 90% of bridge".into(), met: None, detail: "no passing flood step for secsip or the bridge".into() },
    });
    let half: Vec<&LatencyAt> = sum.latency_at.iter().filter(|l| (l.fraction - 0.5).abs() < 0.13).collect();
    let p99 = |m: &str| half.iter().find(|l| l.middle == m).and_then(|l| l.wire_latency_us).map(|p| p.p99);
    t.push(match (p99("secsip"), p99("bridge")) {
        (Some(s), Some(b)) => Target {
            name: "added p99 latency < 100 µs at half the bridge's max rate".into(),
            met: Some(s - b < 100.0),
            detail: format!("wire p99 secsip {s:.1} µs, bridge {b:.1} µs: added {:.1} µs at {:.0} msg/s", s - b, half[0].msgs_per_s),
        },
        _ => Target { name: "added p99 latency < 100 µs at half the bridge's max rate".into(), met: None, detail: "no latency step at half the bridge's maximum for both".into() },
    });
    t.push(match (max("secsip-rules=10000"), max("secsip-rules=10")) {
        (Some(a), Some(b)) => Target {
            name: "max rate at 10,000 rules ≥ 70% of the max rate at 10 rules".into(),
            met: Some(a >= 0.7 * b),
            detail: format!("10,000 rules {a:.0} msg/s, 10 rules {b:.0} msg/s: {:.1}%", 100.0 * a / b),
        },
        _ => Target { name: "max rate at 10,000 rules ≥ 70% of the max rate at 10 rules".into(), met: None, detail: "the run did not measure both rule counts (the full run does)".into() },
    });
    t
}

fn limits(steps: &[Step], sum: &Summary, cpus: usize) -> Vec<String> {
    let mut v = Vec::new();
    for m in &sum.middles {
        if !m.limited_by.is_empty() {
            v.push(format!("{}: {}", m.middle, m.limited_by));
        }
    }
    // The highest passing flood step of each middle: how busy the machine was there.
    for m in &sum.middles {
        if let Some(s) = steps
            .iter()
            .filter(|s| s.workload == Some(Workload::Flood) && s.middle == m.middle && s.passed)
            .max_by(|a, b| a.delivered_msgs_per_s.total_cmp(&b.delivered_msgs_per_s))
        {
            v.push(format!("{} at its highest passing rate ({:.0} msg/s): {}", m.middle, s.delivered_msgs_per_s, cpu_evidence(s, cpus)));
        }
    }
    v
}

/// Assembles the whole report.
pub fn report(plan: &Plan, steps: Vec<Step>, shipped: usize, started: String, elapsed: Duration, quick: bool, setup: &Setup) -> Report {
    let machine = crate::sys::machine();
    let summary = summarize(&steps, &plan.middles(), shipped, machine.cpus);
    Report {
        tool: format!("secsip-perf {}", env!("CARGO_PKG_VERSION")),
        started,
        duration_s: elapsed.as_secs_f64(),
        quick,
        versions: crate::model::Versions {
            secsip: version_of(&setup.secsip, "--version"),
            sipp: version_of(Path::new("sipp"), "-v"),
            perf: env!("CARGO_PKG_VERSION").into(),
        },
        machine,
        config: crate::model::RunConfig {
            step_s: plan.step_s,
            sources: plan.sources,
            middles: plan.middles().iter().map(Middle::name).collect(),
            call_ladder: plan.call_ladder.clone(),
            flood_ladder: plan.flood_ladder.clone(),
            rule_counts: plan.sweep_middles.iter().filter_map(|m| m.rule_count(shipped)).collect(),
            sweep_msgs_per_s: plan.sweep_msgs_per_s,
            appliance_config: setup.config.display().to_string(),
            shipped_rules: setup.rules.display().to_string(),
            appliance_nice: setup.nice,
        },
        steps,
        summary,
    }
}

fn version_of(program: &Path, flag: &str) -> String {
    std::process::Command::new(program)
        .arg(flag)
        .output()
        .map(|o| {
            let t = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
            t.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").to_string()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(w: Workload, m: &str, rate: f64, delivered: f64, passed: bool) -> Step {
        Step { workload: Some(w), middle: m.into(), target_rate: rate, delivered_msgs_per_s: delivered, passed, cpu: Cpu { wall_s: 2.0, ..Cpu::default() }, ..Step::default() }
    }

    #[test]
    fn maxima_targets_and_limits_follow_the_steps() {
        let steps = vec![
            st(Workload::Flood, "bridge", 1000.0, 2000.0, true),
            st(Workload::Flood, "secsip", 1000.0, 1990.0, true),
            st(Workload::Flood, "bridge", 2000.0, 4000.0, true),
            st(Workload::Flood, "secsip", 2000.0, 3000.0, false),
            st(Workload::Flood, "secsip-rules=10", 1000.0, 2000.0, true),
            st(Workload::Flood, "secsip-rules=10000", 1000.0, 1500.0, true),
        ];
        let middles = vec![Middle::Bridge, Middle::SECSIP, gen(10), gen(10000)];
        let s = summarize(&steps, &middles, 31, 2);
        assert_eq!(s.middles[0].max_flood_msgs_per_s, Some(4000.0));
        assert_eq!(s.middles[1].max_flood_msgs_per_s, Some(1990.0));
        assert!(s.middles[1].limited_by.contains("flood at 2000/s"), "{}", s.middles[1].limited_by);
        assert!(s.middles[0].limited_by.contains("passed every step"));
        // 1990 of 4000: not met; the bridge never failed, so its maximum is a lower bound.
        assert_eq!(s.targets[0].met, Some(false));
        assert!(s.targets[0].detail.contains("lower bound"));
        assert_eq!(s.targets[1].met, None);
        // 1500 of 2000 = 75 % ≥ 70 %.
        assert_eq!(s.targets[2].met, Some(true));
    }

    #[test]
    fn plans_stay_in_their_time_budget() {
        // Step time plus about two seconds of middle and SIPp start and stop per step.
        let cost = |p: &Plan| {
            let ladder = |m: usize, r: usize| (m * r) as f64 * (p.step_s + 2.0);
            ladder(p.call_middles.len(), p.call_ladder.len())
                + ladder(p.flood_middles.len(), p.flood_ladder.len())
                + (p.latency_fractions.len() * p.latency_middles.len()) as f64 * (p.step_s + 3.0)
                + p.sweep_middles.len() as f64 * (p.sweep_s + 3.0)
        };
        assert!(cost(&Plan::quick()) < 110.0, "quick plan {} s", cost(&Plan::quick()));
        // Ladders stop at a middle's first failure; the worst case runs them all.
        assert!(cost(&Plan::full()) < 600.0, "full plan {} s", cost(&Plan::full()));
    }
}
