//! A small synthetic report for the tests of the report writers: two middles with three steps
//! per workload, a rule sweep, and a summary whose numbers the tests can check by hand.

use crate::model::{
    Cpu, LatencyAt, Machine, MiddleSummary, Percentiles, Report, RunConfig, Step, Summary, Target,
    Versions, Workload,
};

/// The report: bridge and secsip on the call, flood and latency workloads, the rule sweep
/// over 10, 100 and 1000 generated rules and the shipped 42.
pub(crate) fn report() -> Report {
    let mut steps = Vec::new();
    for middle in ["bridge", "secsip"] {
        for (calls, passed) in [(100.0, true), (200.0, true), (400.0, middle == "bridge")] {
            steps.push(step(Workload::Calls, middle, calls, 7, passed));
        }
        for (tx, passed) in [(2000.0, true), (4500.0, true), (5000.0, middle == "bridge")] {
            steps.push(step(Workload::Flood, middle, tx, 2, passed));
        }
        for tx in [1250.0, 2500.0, 3750.0] {
            steps.push(step(Workload::Latency, middle, tx, 2, true));
        }
    }
    for (middle, rules) in [
        ("secsip-rules=10", 10),
        ("secsip-rules=100", 100),
        ("secsip-rules=1000", 1000),
        ("secsip", 42),
    ] {
        let mut s = step(Workload::RuleSweep, middle, 30.0, 2, true);
        s.rules = Some(rules);
        s.wire_latency_us = Some(pct(40.0 + rules as f64 / 10.0));
        s.appliance_latency_us = Some(pct(10.0 + rules as f64 / 20.0));
        steps.push(s);
    }
    Report {
        tool: "secsip-perf 0.1.0".into(),
        started: "2025-01-02T03:04:05Z".into(),
        duration_s: 754.0,
        quick: false,
        machine: Machine {
            hostname: "testbed".into(),
            cpu_model: "Example CPU @ 3.00GHz".into(),
            cpus: 8,
            memory_kib: 16 * 1024 * 1024,
            kernel: "6.8.0-test".into(),
            os: "Example Linux 1".into(),
        },
        versions: Versions {
            secsip: "secsip 0.1.0".into(),
            sipp: "SIPp v3.7.3".into(),
            perf: "0.1.0".into(),
        },
        config: RunConfig {
            step_s: 10.0,
            sources: 16,
            middles: ["bridge", "secsip", "secsip-rules=10", "secsip-rules=100"]
                .map(String::from)
                .to_vec(),
            call_ladder: vec![100.0, 200.0, 400.0],
            flood_ladder: vec![2000.0, 4500.0, 5000.0],
            rule_counts: vec![10, 100, 1000],
            sweep_msgs_per_s: 60.0,
            appliance_config: "perf/secsip.toml".into(),
            shipped_rules: "rules/".into(),
            appliance_nice: -10,
        },
        steps,
        summary: summary(),
    }
}

/// One step whose numbers follow from its rate; the bridge has no process of its own.
fn step(workload: Workload, middle: &str, rate: f64, msgs_per_unit: u32, passed: bool) -> Step {
    let bridge = middle == "bridge";
    let offered = rate * f64::from(msgs_per_unit);
    let loss = if passed { 0.0 } else { 0.05 };
    Step {
        workload: Some(workload),
        middle: middle.into(),
        rules: (!bridge).then_some(42),
        target_rate: rate,
        msgs_per_unit,
        offered_rate: rate,
        offered_msgs_per_s: offered,
        delivered_msgs_per_s: offered * (1.0 - loss),
        loss,
        attempted: (rate * 10.0) as u64,
        successful: (rate * 10.0 * (1.0 - loss)) as u64,
        failed: (rate * 10.0 * loss) as u64,
        retransmissions: 0,
        rule_drops: (!bridge).then_some(0),
        sipp_rt_ms: Some(pct(1.0)),
        wire_latency_us: Some(pct(if bridge { 20.0 } else { 60.0 } + offered / 1000.0)),
        appliance_latency_us: (!bridge).then(|| pct(15.0 + offered / 2000.0)),
        cpu: Cpu {
            wall_s: 11.0,
            middle_s: (!bridge).then_some(offered / 2000.0),
            sipp_client_s: 2.5,
            sipp_server_s: 2.25,
            softirq_s: 1.5,
            machine_busy_s: 8.0,
        },
        middle_peak_rss_kib: (!bridge).then_some(51_200),
        uninspected: (!bridge).then_some(0),
        passed,
        note: if passed {
            String::new()
        } else {
            "loss 5.00 % | SIPp timeouts".into()
        },
    }
}

/// Percentiles that grow from a median `p50`.
fn pct(p50: f64) -> Percentiles {
    Percentiles {
        count: 1000,
        p50,
        p90: p50 * 1.5,
        p99: p50 * 2.0,
        p999: p50 * 3.0,
        max: p50 * 4.0,
    }
}

fn summary() -> Summary {
    let middle = |name: &str, rules, calls, flood, limited_by: &str| MiddleSummary {
        middle: name.into(),
        rules,
        max_call_rate: calls,
        max_flood_msgs_per_s: flood,
        limited_by: limited_by.into(),
    };
    let latency = |fraction: f64, name: &str, wire: f64, appliance: Option<f64>| LatencyAt {
        fraction,
        msgs_per_s: 10_000.0 * fraction,
        middle: name.into(),
        wire_latency_us: Some(pct(wire)),
        sipp_rt_ms: Some(pct(1.0)),
        appliance_latency_us: appliance.map(pct),
        loss: 0.0,
    };
    Summary {
        middles: vec![
            middle(
                "bridge",
                None,
                Some(400.0),
                Some(10_000.0),
                "SIPp client CPU",
            ),
            middle(
                "secsip",
                Some(42),
                Some(200.0),
                Some(9_000.0),
                "loss 5.00 %",
            ),
            middle("secsip-rules=10", Some(10), None, Some(8_500.0), ""),
            middle("secsip-rules=100", Some(100), None, Some(8_000.0), ""),
        ],
        latency_at: vec![
            latency(0.25, "bridge", 22.0, None),
            latency(0.25, "secsip", 62.0, Some(16.0)),
            latency(0.5, "bridge", 25.0, None),
            latency(0.5, "secsip", 65.0, Some(17.5)),
            latency(0.75, "bridge", 27.5, None),
            latency(0.75, "secsip", 67.5, Some(18.75)),
        ],
        targets: vec![
            Target {
                name: "≥ 90 % of the bridge's flood rate".into(),
                met: Some(true),
                detail: "9000 / 10000 msg/s = 90.0 %".into(),
            },
            Target {
                name: "p99 added latency ≤ 20 µs".into(),
                met: Some(false),
                detail: "+40.0 µs at 50 %".into(),
            },
            Target {
                name: "10 000 rules".into(),
                met: None,
                detail: "rule sweep stopped at 1000".into(),
            },
        ],
        limits: vec![
            "secsip: its engine thread at 98 % CPU".into(),
            "bridge: the SIPp client at 100 % of one CPU".into(),
        ],
    }
}
