//! `report.md`: what an operator reads after a network run. Every number comes from the
//! [`Report`]; a missing one prints as "—" rather than as a zero that was never measured.

use crate::model::{LatencyAt, MiddleSummary, Percentiles, Report, Step, Workload};
use std::fmt::{self, Write};

/// What a missing number prints as.
const NONE: &str = "—";

/// Messages in one call of the call ladder: INVITE, 100, 180, 200, ACK, BYE, 200.
const MSGS_PER_CALL: f64 = 7.0;

/// The Markdown report.
pub fn render(report: &Report) -> String {
    let mut md = String::new();
    write_report(&mut md, report).expect("writing into a String cannot fail");
    md
}

fn write_report(md: &mut String, r: &Report) -> fmt::Result {
    header(md, r)?;
    targets(md, r)?;
    highest_rates(md, r)?;
    latency_at(md, r)?;
    rule_sweep(md, r)?;
    limits(md, r)?;
    every_step(md, r)?;
    how_to_read(md)
}

fn header(md: &mut String, r: &Report) -> fmt::Result {
    let (m, v, c) = (&r.machine, &r.versions, &r.config);
    writeln!(md, "# SecSip performance: appliance vs Linux bridge\n")?;
    let kind = if r.quick {
        "quick run (`--quick`)"
    } else {
        "full run"
    };
    writeln!(
        md,
        "Started {}, took {}, {kind}; written by {}.\n",
        text(&r.started),
        duration(r.duration_s),
        text(&r.tool)
    )?;
    writeln!(md, "## Machine and versions\n")?;
    writeln!(md, "- Host: {}", text(&m.hostname))?;
    writeln!(md, "- CPU: {}, {} CPUs online", text(&m.cpu_model), m.cpus)?;
    writeln!(md, "- Memory: {}", memory(m.memory_kib))?;
    writeln!(md, "- Kernel: {}; OS: {}", text(&m.kernel), text(&m.os))?;
    writeln!(
        md,
        "- secsip: {}; SIPp: {}; secsip-perf: {}\n",
        text(&v.secsip),
        text(&v.sipp),
        text(&v.perf)
    )?;
    writeln!(md, "## Run configuration\n")?;
    writeln!(
        md,
        "- {} s of traffic per step, spread over {} client source addresses (one /24 each)",
        num(c.step_s),
        c.sources
    )?;
    writeln!(
        md,
        "- Middles: {}",
        if c.middles.is_empty() {
            NONE.into()
        } else {
            c.middles.join(", ")
        }
    )?;
    writeln!(
        md,
        "- Call ladder (calls/s, 7 messages a call): {}",
        list(&c.call_ladder)
    )?;
    writeln!(
        md,
        "- Flood ladder (OPTIONS transactions/s, 2 messages each): {}",
        list(&c.flood_ladder)
    )?;
    let rules: Vec<f64> = c.rule_counts.iter().map(|&n| n as f64).collect();
    writeln!(
        md,
        "- Rule sweep: {} rules at {} messages/s",
        list(&rules),
        num(c.sweep_msgs_per_s)
    )?;
    writeln!(
        md,
        "- Appliance configuration: `{}`; shipped rules: `{}`; the appliance runs at nice {} (SIPp at 0: \
         the Linux bridge works in softirq, ahead of every process, so the appliance gets a head start too)\n",
        text(&c.appliance_config),
        text(&c.shipped_rules),
        c.appliance_nice
    )
}

fn targets(md: &mut String, r: &Report) -> fmt::Result {
    writeln!(md, "## Targets\n")?;
    let rows = r.summary.targets.iter().map(|t| {
        let met = match t.met {
            Some(true) => "met",
            Some(false) => "not met",
            None => "not judged",
        };
        vec![t.name.clone(), met.into(), t.detail.clone()]
    });
    table(
        md,
        &["target", "met", "numbers"],
        "lll",
        rows,
        "No targets were judged.",
    )
}

fn highest_rates(md: &mut String, r: &Report) -> fmt::Result {
    writeln!(md, "## Highest rates\n")?;
    writeln!(
        md,
        "The highest step of each ladder that passed: no failed call, retransmissions ≤ 1 %, \
         loss < 0.1 %, offered rate reached.\n"
    )?;
    let bridge = r.summary.middles.iter().find(|m| m.middle == "bridge");
    let of_bridge = |own: Option<f64>, pick: fn(&MiddleSummary) -> Option<f64>| {
        ratio(own, bridge.and_then(pick))
    };
    let rows = r.summary.middles.iter().map(|m| {
        vec![
            m.middle.clone(),
            opt(m.rules, |n| n.to_string()),
            opt(m.max_call_rate, rate),
            opt(m.max_call_rate, |c| rate(c * MSGS_PER_CALL)),
            of_bridge(m.max_call_rate, |b| b.max_call_rate),
            opt(m.max_flood_msgs_per_s, rate),
            of_bridge(m.max_flood_msgs_per_s, |b| b.max_flood_msgs_per_s),
            text(&m.limited_by),
        ]
    });
    let head = [
        "middle",
        "rules",
        "calls/s",
        "call msg/s",
        "calls vs bridge",
        "flood msg/s",
        "flood vs bridge",
        "limited by",
    ];
    table(md, &head, "lrrrrrrl", rows, "No ladder ran.")
}

fn latency_at(md: &mut String, r: &Report) -> fmt::Result {
    writeln!(md, "## Latency at 25/50/75 % of the bridge's maximum\n")?;
    writeln!(
        md,
        "Flood traffic at fixed fractions of the bridge's highest passing flood rate. Wire \
         latency and the appliance's rx→tx in µs, SIPp response times in ms.\n"
    )?;
    let bridge_p99 = |at: &LatencyAt| {
        r.summary
            .latency_at
            .iter()
            .find(|b| b.middle == "bridge" && (b.fraction - at.fraction).abs() < 1e-9)
            .and_then(|b| b.wire_latency_us)
            .map(|b| b.p99)
    };
    let mut rows: Vec<&LatencyAt> = r.summary.latency_at.iter().collect();
    // Stable, so the middles keep their run order within a fraction.
    rows.sort_by(|a, b| a.fraction.total_cmp(&b.fraction));
    let rows = rows.into_iter().map(|at| {
        let wire = at.wire_latency_us;
        let added = match (wire, bridge_p99(at)) {
            (Some(w), Some(b)) if at.middle != "bridge" => signed(w.p99 - b),
            _ => NONE.into(),
        };
        vec![
            format!("{:.0} %", at.fraction * 100.0),
            rate(at.msgs_per_s),
            at.middle.clone(),
            pct_of(wire, |p| p.p50, us),
            pct_of(wire, |p| p.p90, us),
            pct_of(wire, |p| p.p99, us),
            pct_of(wire, |p| p.p999, us),
            added,
            pct_of(at.sipp_rt_ms, |p| p.p50, ms),
            pct_of(at.sipp_rt_ms, |p| p.p99, ms),
            pct_of(at.appliance_latency_us, |p| p.p50, us),
            pct_of(at.appliance_latency_us, |p| p.p99, us),
            loss(at.loss),
        ]
    });
    let head = [
        "of bridge max",
        "msg/s",
        "middle",
        "wire p50 µs",
        "p90",
        "p99",
        "p99.9",
        "p99 vs bridge µs",
        "SIPp p50 ms",
        "SIPp p99 ms",
        "appliance p50 µs",
        "appliance p99 µs",
        "loss %",
    ];
    table(
        md,
        &head,
        "rrlrrrrrrrrrr",
        rows,
        "The latency steps did not run.",
    )
}

fn rule_sweep(md: &mut String, r: &Report) -> fmt::Result {
    writeln!(md, "## Rule-count sweep\n")?;
    writeln!(
        md,
        "SecSip scenario 2: a fixed {} messages/s while the number of rules grows.\n",
        num(r.config.sweep_msgs_per_s)
    )?;
    let rows = r
        .steps
        .iter()
        .filter(|s| s.workload == Some(Workload::RuleSweep))
        .map(|s| {
            vec![
                s.middle.clone(),
                opt(s.rules, |n| n.to_string()),
                rate(s.delivered_msgs_per_s),
                pct_of(s.wire_latency_us, |p| p.p50, us),
                pct_of(s.wire_latency_us, |p| p.p99, us),
                pct_of(s.appliance_latency_us, |p| p.p50, us),
                pct_of(s.appliance_latency_us, |p| p.p99, us),
                opt(s.cpu.middle_s, cpu),
            ]
        });
    let head = [
        "middle",
        "rules",
        "delivered msg/s",
        "wire p50 µs",
        "wire p99 µs",
        "appliance p50 µs",
        "appliance p99 µs",
        "middle CPU s",
    ];
    table(md, &head, "lrrrrrrr", rows, "The rule sweep did not run.")
}

fn limits(md: &mut String, r: &Report) -> fmt::Result {
    writeln!(md, "## What limited the top rate\n")?;
    if r.summary.limits.is_empty() {
        return writeln!(md, "Nothing was recorded.\n");
    }
    for limit in &r.summary.limits {
        writeln!(md, "- {}", limit.replace('\n', " "))?;
    }
    writeln!(md)
}

fn every_step(md: &mut String, r: &Report) -> fmt::Result {
    writeln!(md, "## Every step\n")?;
    writeln!(
        md,
        "In the order they ran; a ladder stops at its first failing step.\n"
    )?;
    let rows = r.steps.iter().enumerate().map(|(i, s)| {
        let c = &s.cpu;
        vec![
            (i + 1).to_string(),
            workload(s.workload).into(),
            s.middle.clone(),
            format!("{} {}", num(s.target_rate), unit(s)),
            rate(s.offered_msgs_per_s),
            rate(s.delivered_msgs_per_s),
            loss(s.loss),
            s.failed.to_string(),
            s.retransmissions.to_string(),
            pct_of(s.wire_latency_us, |p| p.p50, us),
            pct_of(s.wire_latency_us, |p| p.p99, us),
            pct_of(s.appliance_latency_us, |p| p.p99, us),
            opt(c.middle_s, cpu),
            cpu(c.sipp_client_s),
            cpu(c.sipp_server_s),
            cpu(c.softirq_s),
            cpu(c.machine_busy_s),
            opt(s.middle_peak_rss_kib, |k| {
                format!("{:.1}", k as f64 / 1024.0)
            }),
            if s.passed { "✓" } else { "✗" }.into(),
            s.note.clone(),
        ]
    });
    let head = [
        "#",
        "workload",
        "middle",
        "target",
        "offered msg/s",
        "delivered msg/s",
        "loss %",
        "failed",
        "retrans",
        "wire p50 µs",
        "wire p99 µs",
        "appliance p99 µs",
        "middle CPU s",
        "SIPp client CPU s",
        "SIPp server CPU s",
        "softirq s",
        "machine busy s",
        "RSS MiB",
        "passed",
        "note",
    ];
    table(md, &head, "rllrrrrrrrrrrrrrrrcl", rows, "No step ran.")
}

fn how_to_read(md: &mut String) -> fmt::Result {
    writeln!(md, "## How to read this\n")?;
    writeln!(
        md,
        "Wire latency is the one-way time through the middle: the client veth's transmit \
         timestamp to the server veth's receive timestamp of the same message, both taken from \
         packet captures on one clock, so it covers the middle and the veths around it and \
         none of SIPp's own time. The appliance's rx→tx latency is its own histogram, from \
         frame received to frame sent. \
         SIPp response times run from request to final response as the client saw them, at \
         SIPp's 1 ms resolution, so they cannot show differences of microseconds. Every \
         process — SIPp client and server, the middle, the kernel's packet work — shares this \
         machine's CPUs, so a rate limit may be SIPp's or the machine's rather than the \
         middle's; the CPU columns say whose time it was. Process CPU times are the kernel's \
         exact run times (wait4, /proc/PID/stat); softirq and machine busy come from /proc/stat, \
         which samples at each tick and undercounts processes that run in short bursts (SIPp, \
         the appliance's workers): read them as lower bounds. \"—\" marks a number that was \
         not measured."
    )
}

/// A Markdown table; `align` holds one of `l`, `r`, `c` per column. Prints `empty` instead
/// when there are no rows, since a header alone reads like a failure to render.
fn table(
    md: &mut String,
    head: &[&str],
    align: &str,
    rows: impl IntoIterator<Item = Vec<String>>,
    empty: &str,
) -> fmt::Result {
    let mut rows = rows.into_iter().peekable();
    if rows.peek().is_none() {
        return writeln!(md, "{empty}\n");
    }
    writeln!(md, "| {} |", head.join(" | "))?;
    let rule: Vec<&str> = align
        .chars()
        .map(|a| match a {
            'r' => "---:",
            'c' => ":---:",
            _ => "---",
        })
        .collect();
    writeln!(md, "|{}|", rule.join("|"))?;
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        writeln!(md, "| {} |", cells.join(" | "))?;
    }
    writeln!(md)
}

/// A table cell: a `|` would end the cell and a newline the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// Free text, or "—" when there is none.
fn text(s: &str) -> String {
    if s.trim().is_empty() {
        NONE.into()
    } else {
        s.into()
    }
}

/// `f` of the value, or "—".
fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map_or_else(|| NONE.into(), f)
}

/// One percentile of an optional distribution, formatted by `f`.
fn pct_of(p: Option<Percentiles>, at: fn(&Percentiles) -> f64, f: fn(f64) -> String) -> String {
    opt(p, |p| f(at(&p)))
}

/// `v` with `decimals`, or "—" when it is not a number.
fn fixed(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        NONE.into()
    }
}

/// Microseconds.
fn us(v: f64) -> String {
    fixed(v, 1)
}

/// Milliseconds at SIPp's 1 ms resolution.
fn ms(v: f64) -> String {
    fixed(v, 0)
}

/// Messages (or calls) per second.
fn rate(v: f64) -> String {
    fixed(v, 0)
}

/// CPU seconds.
fn cpu(v: f64) -> String {
    fixed(v, 2)
}

/// A loss fraction (0..1) as a percentage.
fn loss(fraction: f64) -> String {
    fixed(fraction * 100.0, 2)
}

/// A difference in µs with its sign, so an added delay reads as one.
fn signed(v: f64) -> String {
    if v.is_finite() {
        format!("{v:+.1}")
    } else {
        NONE.into()
    }
}

/// `own` as a percentage of `bridge`.
fn ratio(own: Option<f64>, bridge: Option<f64>) -> String {
    match (own, bridge) {
        (Some(o), Some(b)) if b > 0.0 && o.is_finite() => format!("{:.1} %", o / b * 100.0),
        _ => NONE.into(),
    }
}

/// A setting as given: `50`, `0.5`.
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        NONE.into()
    }
}

fn list(values: &[f64]) -> String {
    if values.is_empty() {
        return NONE.into();
    }
    values
        .iter()
        .map(|&v| num(v))
        .collect::<Vec<_>>()
        .join(", ")
}

fn duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return NONE.into();
    }
    let whole = s.round() as u64;
    match (whole / 3600, whole / 60 % 60, whole % 60) {
        (0, 0, sec) => format!("{sec} s"),
        (0, min, sec) => format!("{min} min {sec} s"),
        (h, min, _) => format!("{h} h {min} min"),
    }
}

fn memory(kib: u64) -> String {
    if kib == 0 {
        return NONE.into();
    }
    format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0))
}

fn workload(w: Option<Workload>) -> &'static str {
    match w {
        Some(Workload::Calls) => "calls",
        Some(Workload::Flood) => "flood",
        Some(Workload::Latency) => "latency",
        Some(Workload::RuleSweep) => "rule sweep",
        None => NONE,
    }
}

/// The unit of a step's target rate, from the messages its unit carries.
fn unit(s: &Step) -> &'static str {
    match s.msgs_per_unit {
        7 => "calls/s",
        2 => "tx/s",
        _ => "/s",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    /// The lines of the section headed `title`, up to the next section.
    fn section<'a>(md: &'a str, title: &str) -> Vec<&'a str> {
        let start = md
            .find(&format!("\n## {title}\n"))
            .unwrap_or_else(|| panic!("no section {title}"));
        md[start + 1..]
            .lines()
            .skip(1)
            .take_while(|l| !l.starts_with("## "))
            .collect()
    }

    /// The body rows of the section's table.
    fn rows<'a>(md: &'a str, title: &str) -> Vec<Vec<&'a str>> {
        section(md, title)
            .into_iter()
            .filter(|l| l.starts_with('|'))
            .skip(2)
            .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
            .collect()
    }

    #[test]
    fn has_every_section() {
        let md = render(&sample::report());
        assert!(md.starts_with("# SecSip performance"));
        assert!(md.contains("Started 2025-01-02T03:04:05Z, took 12 min 34 s, full run"));
        for title in [
            "Machine and versions",
            "Run configuration",
            "Targets",
            "Highest rates",
            "Latency at 25/50/75 % of the bridge's maximum",
            "Rule-count sweep",
            "What limited the top rate",
            "Every step",
            "How to read this",
        ] {
            assert!(!section(&md, title).is_empty(), "{title}");
        }
        assert!(md.contains("- CPU: Example CPU @ 3.00GHz, 8 CPUs online"));
        assert!(md.contains("- Memory: 16.0 GiB"));
        assert!(md.contains("- Call ladder (calls/s, 7 messages a call): 100, 200, 400"));
        assert!(md.contains("- secsip: its engine thread at 98 % CPU"));
    }

    #[test]
    fn a_row_per_step_in_run_order() {
        let report = sample::report();
        let md = render(&report);
        let rows = rows(&md, "Every step");
        assert_eq!(rows.len(), report.steps.len());
        for (i, (row, step)) in rows.iter().zip(&report.steps).enumerate() {
            assert_eq!(row[0], (i + 1).to_string());
            assert_eq!(row[2], step.middle);
        }
        // The failing secsip call step: 400 calls/s, 2800 offered, 5 % lost, its note's `|`
        // escaped so the row keeps its columns.
        let failed = &rows[11];
        assert_eq!(
            failed[1..7],
            ["calls", "secsip", "400 calls/s", "2800", "2660", "5.00"]
        );
        assert_eq!(failed[18], "✗");
        assert_eq!(failed[19], "loss 5.00 % \\| SIPp timeouts");
        assert_eq!(rows[0][18], "✓");
    }

    #[test]
    fn ratios_to_the_bridge() {
        let md = render(&sample::report());
        let rows = rows(&md, "Highest rates");
        let secsip = rows.iter().find(|r| r[0] == "secsip").unwrap();
        assert_eq!(
            secsip[1..7],
            ["42", "200", "1400", "50.0 %", "9000", "90.0 %"]
        );
        let bridge = rows.iter().find(|r| r[0] == "bridge").unwrap();
        assert_eq!(bridge[4], "100.0 %");
        let generated = rows.iter().find(|r| r[0] == "secsip-rules=100").unwrap();
        assert_eq!(generated[2..8], [NONE, NONE, NONE, "8000", "80.0 %", NONE]);
    }

    #[test]
    fn latency_rows_compare_p99_with_the_bridge() {
        let md = render(&sample::report());
        let rows = rows(&md, "Latency at 25/50/75 % of the bridge's maximum");
        assert_eq!(rows.len(), 6);
        // 50 %: secsip p99 130.0 µs, bridge 50.0 µs.
        let half = rows
            .iter()
            .find(|r| r[0] == "50 %" && r[2] == "secsip")
            .unwrap();
        assert_eq!(
            half[1..8],
            ["5000", "secsip", "65.0", "97.5", "130.0", "195.0", "+80.0"]
        );
        let bridge = rows
            .iter()
            .find(|r| r[0] == "50 %" && r[2] == "bridge")
            .unwrap();
        // Not measured on the bridge, which has no process of its own.
        assert_eq!(bridge[7], NONE);
        assert_eq!(bridge[10..12], [NONE, NONE]);
    }

    #[test]
    fn rule_sweep_and_targets() {
        let md = render(&sample::report());
        let sweep = rows(&md, "Rule-count sweep");
        assert_eq!(sweep.len(), 4);
        assert_eq!(
            sweep[2][..5],
            ["secsip-rules=1000", "1000", "60", "140.0", "280.0"]
        );
        let targets = rows(&md, "Targets");
        let met: Vec<&str> = targets.iter().map(|r| r[1]).collect();
        assert_eq!(met, ["met", "not met", "not judged"]);
    }

    #[test]
    fn an_empty_report_says_what_did_not_run() {
        let md = render(&Report::default());
        assert!(md.contains("No step ran."));
        assert!(md.contains("The rule sweep did not run."));
        assert!(md.contains("Nothing was recorded."));
        assert!(md.contains("- Host: —"));
        assert!(md.contains("- Middles: —"));
    }

    #[test]
    fn formats() {
        assert_eq!(us(12.345), "12.3");
        assert_eq!(us(f64::NAN), NONE);
        assert_eq!(rate(9999.6), "10000");
        assert_eq!(cpu(1.0), "1.00");
        assert_eq!(loss(0.0005), "0.05");
        assert_eq!(signed(-2.04), "-2.0");
        assert_eq!(ratio(Some(9000.0), Some(10_000.0)), "90.0 %");
        assert_eq!(ratio(Some(1.0), Some(0.0)), NONE);
        assert_eq!(ratio(None, Some(1.0)), NONE);
        assert_eq!(duration(45.0), "45 s");
        assert_eq!(duration(3725.0), "1 h 2 min");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
        assert_eq!(opt(None::<u64>, |v| v.to_string()), NONE);
    }
}
