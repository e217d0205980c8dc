//! SVG plots of a network run: what each middle delivered and how much delay it added as the
//! rate and the rule count grow, beside the plain Linux bridge.

mod chart;

use crate::model::{Percentiles, Report, Step, Workload};
use anyhow::Context;
use chart::{Chart, Line, Marker, Scale, Series};
use plotters::prelude::{RGBColor, SeriesLabelPosition, BLACK};
use std::path::{Path, PathBuf};

/// Writes every plot of `report` that has data into `dir`; returns the files written.
pub fn write_all(report: &Report, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let palette = Palette::new(report);
    let plots = [
        (
            "delivered-vs-offered.svg",
            delivered_vs_offered(report, &palette, Workload::Flood)?,
        ),
        (
            "calls-delivered-vs-offered.svg",
            delivered_vs_offered(report, &palette, Workload::Calls)?,
        ),
        ("latency-vs-rate.svg", latency_vs_rate(report, &palette)?),
        ("latency-vs-rules.svg", latency_vs_rules(report)?),
        ("maxrate-vs-rules.svg", maxrate_vs_rules(report, &palette)?),
    ];
    let mut written = Vec::new();
    for (name, svg) in plots {
        let Some(svg) = svg else { continue };
        let path = dir.join(name);
        std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Colours that stay with a middle from plot to plot (the bridge is always grey).
struct Palette(Vec<String>);

/// Tableau 10, minus its grey, which is the bridge's.
const COLORS: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const BRIDGE: RGBColor = RGBColor(100, 100, 100);
const DIAGONAL: RGBColor = RGBColor(170, 170, 170);

impl Palette {
    fn new(report: &Report) -> Self {
        let names = report
            .config
            .middles
            .iter()
            .chain(report.steps.iter().map(|s| &s.middle));
        let mut middles: Vec<String> = Vec::new();
        for name in names.chain(report.summary.middles.iter().map(|m| &m.middle)) {
            if name != "bridge" && !middles.contains(name) {
                middles.push(name.clone());
            }
        }
        Palette(middles)
    }

    fn color(&self, middle: &str) -> RGBColor {
        if middle == "bridge" {
            return BRIDGE;
        }
        let i = self.0.iter().position(|m| m == middle).unwrap_or(0);
        COLORS[i % COLORS.len()]
    }
}

/// Steps passing `keep`, grouped by middle in the order the middles first ran.
fn by_middle(report: &Report, keep: impl Fn(&Step) -> bool) -> Vec<(&str, Vec<&Step>)> {
    let mut groups: Vec<(&str, Vec<&Step>)> = Vec::new();
    for step in report.steps.iter().filter(|s| keep(s)) {
        match groups.iter_mut().find(|(m, _)| *m == step.middle) {
            Some((_, steps)) => steps.push(step),
            None => groups.push((&step.middle, vec![step])),
        }
    }
    groups
}

fn sorted(mut points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

fn has_points(series: &[Series]) -> bool {
    series
        .iter()
        .any(|s| s.points.iter().any(|(x, y)| x.is_finite() && y.is_finite()))
}

/// Delivered against offered messages/s of one ladder, with the lossless diagonal.
fn delivered_vs_offered(
    report: &Report,
    palette: &Palette,
    workload: Workload,
) -> anyhow::Result<Option<String>> {
    let mut series: Vec<Series> = by_middle(report, |s| s.workload == Some(workload))
        .into_iter()
        .map(|(middle, steps)| Series {
            label: Some(middle.into()),
            color: palette.color(middle),
            line: Line::Solid,
            marker: Marker::Dot,
            points: sorted(
                steps
                    .iter()
                    .map(|s| (s.offered_msgs_per_s, s.delivered_msgs_per_s))
                    .collect(),
            ),
        })
        .collect();
    // The diagonal alone is no plot.
    if !has_points(&series) {
        return Ok(None);
    }
    let top = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|x| x.is_finite())
        .fold(0.0, f64::max);
    series.insert(
        0,
        Series {
            label: Some("delivered = offered".into()),
            color: DIAGONAL,
            line: Line::Dashed,
            marker: Marker::None,
            points: vec![(0.0, 0.0), (top, top)],
        },
    );
    let (title, x_desc) = match workload {
        Workload::Calls => (
            "Call ladder: delivered vs offered messages/s (7 messages a call)",
            "offered (messages/s, both directions; calls/s × 7)",
        ),
        _ => (
            "OPTIONS flood: delivered vs offered messages/s",
            "offered (messages/s, both directions; transactions/s × 2)",
        ),
    };
    let chart = Chart {
        title,
        x_desc,
        y_desc: "delivered (messages/s)",
        x_scale: Scale::Linear,
        y_scale: Scale::Linear,
        legend: SeriesLabelPosition::UpperLeft,
    };
    chart::render(&chart, &series)
}

/// p50 and p99 latency against offered messages/s over the flood and latency steps.
fn latency_vs_rate(report: &Report, palette: &Palette) -> anyhow::Result<Option<String>> {
    let groups = by_middle(report, |s| {
        matches!(s.workload, Some(Workload::Flood | Workload::Latency))
    });
    let mut series = Vec::new();
    let (mut wire, mut appliance) = (false, false);
    for (middle, steps) in groups {
        // One source per middle, so a line never jumps between two different measurements.
        let use_wire = steps.iter().any(|s| s.wire_latency_us.is_some());
        let latency = |s: &Step| {
            if use_wire {
                s.wire_latency_us
            } else {
                s.appliance_latency_us
            }
        };
        let points = |f: fn(&Percentiles) -> f64| {
            sorted(
                steps
                    .iter()
                    .filter_map(|s| latency(s).map(|p| (s.offered_msgs_per_s, f(&p))))
                    .collect(),
            )
        };
        let (p50, p99) = (points(|p| p.p50), points(|p| p.p99));
        if p50.is_empty() && p99.is_empty() {
            continue;
        }
        wire |= use_wire;
        appliance |= !use_wire;
        let color = palette.color(middle);
        let label = if use_wire {
            middle.to_string()
        } else {
            format!("{middle} (appliance rx→tx)")
        };
        series.push(Series {
            label: Some(label),
            color,
            line: Line::Solid,
            marker: Marker::Dot,
            points: p50,
        });
        series.push(Series {
            label: None,
            color,
            line: Line::Dashed,
            marker: Marker::Dot,
            points: p99,
        });
    }
    if !has_points(&series) {
        return Ok(None);
    }
    series.push(Series::legend_only("p50", BLACK, Line::Solid, Marker::None));
    series.push(Series::legend_only(
        "p99",
        BLACK,
        Line::Dashed,
        Marker::None,
    ));
    let y_desc = match (wire, appliance) {
        (true, false) => "one-way latency through the middle, wire (µs)",
        (false, _) => "appliance rx→tx latency (µs)",
        (true, true) => "latency (µs): wire, or appliance rx→tx where marked",
    };
    let chart = Chart {
        title: "Latency vs offered rate (flood and latency steps): p50 solid, p99 dashed",
        x_desc: "offered (messages/s, both directions)",
        y_desc,
        x_scale: Scale::Linear,
        y_scale: Scale::Auto,
        legend: SeriesLabelPosition::UpperLeft,
    };
    chart::render(&chart, &series)
}

/// Whether a middle carries generated rules (`secsip-rules=N`) rather than the shipped set.
fn generated(middle: &str) -> bool {
    middle.starts_with("secsip-rules=")
}

/// Rule count of a middle: as recorded, else from its `secsip-rules=N` name.
fn rule_count(middle: &str, rules: Option<usize>) -> Option<f64> {
    rules
        .or_else(|| middle.strip_prefix("secsip-rules=")?.parse().ok())
        .map(|n| n as f64)
}

/// Wire and appliance latency of the rule sweep against the rule count.
fn latency_vs_rules(report: &Report) -> anyhow::Result<Option<String>> {
    let sweep: Vec<&Step> = report
        .steps
        .iter()
        .filter(|s| s.workload == Some(Workload::RuleSweep))
        .collect();
    type Measure = (
        &'static str,
        fn(&Step) -> Option<Percentiles>,
        fn(&Percentiles) -> f64,
    );
    let measures: [(Measure, RGBColor, Line); 4] = [
        (
            ("wire p50", |s| s.wire_latency_us, |p| p.p50),
            COLORS[0],
            Line::Solid,
        ),
        (
            ("wire p99", |s| s.wire_latency_us, |p| p.p99),
            COLORS[0],
            Line::Dashed,
        ),
        (
            ("appliance rx→tx p50", |s| s.appliance_latency_us, |p| p.p50),
            COLORS[1],
            Line::Solid,
        ),
        (
            ("appliance rx→tx p99", |s| s.appliance_latency_us, |p| p.p99),
            COLORS[1],
            Line::Dashed,
        ),
    ];
    let points =
        |shipped: bool, of: fn(&Step) -> Option<Percentiles>, at: fn(&Percentiles) -> f64| {
            sorted(
                sweep
                    .iter()
                    .filter(|s| generated(&s.middle) != shipped)
                    .filter_map(|s| Some((rule_count(&s.middle, s.rules)?, at(&of(s)?))))
                    .collect(),
            )
        };
    let mut series = Vec::new();
    for ((label, of, at), color, line) in measures {
        series.push(Series {
            label: Some(label.into()),
            color,
            line,
            marker: Marker::Dot,
            points: points(false, of, at),
        });
    }
    for ((_, of, at), color, _) in measures {
        series.push(Series {
            label: None,
            color,
            line: Line::None,
            marker: Marker::Cross,
            points: points(true, of, at),
        });
    }
    if !has_points(&series) {
        return Ok(None);
    }
    if series[4..].iter().any(|s| !s.points.is_empty()) {
        series.push(Series::legend_only(
            "shipped rule set (secsip)",
            BLACK,
            Line::None,
            Marker::Cross,
        ));
    }
    let title = format!(
        "Latency vs rule count (rule sweep at {:.0} messages/s)",
        report.config.sweep_msgs_per_s
    );
    let chart = Chart {
        title: &title,
        x_desc: "rules loaded (log scale)",
        y_desc: "latency (µs)",
        x_scale: Scale::Log,
        y_scale: Scale::Auto,
        legend: SeriesLabelPosition::UpperLeft,
    };
    chart::render(&chart, &series)
}

/// Highest passing flood rate against the rule count, with the bridge's as the ceiling.
fn maxrate_vs_rules(report: &Report, palette: &Palette) -> anyhow::Result<Option<String>> {
    let rated = |m: &&crate::model::MiddleSummary| m.max_flood_msgs_per_s.is_some();
    let point = |m: &crate::model::MiddleSummary| {
        Some((rule_count(&m.middle, m.rules)?, m.max_flood_msgs_per_s?))
    };
    let middles = &report.summary.middles;
    let rules: Vec<(f64, f64)> = sorted(
        middles
            .iter()
            .filter(rated)
            .filter(|m| generated(&m.middle))
            .filter_map(point)
            .collect(),
    );
    let secsip = palette.color("secsip");
    let mut series = vec![Series {
        label: Some("secsip, generated rules".into()),
        color: secsip,
        line: Line::Solid,
        marker: Marker::Dot,
        points: rules,
    }];
    if !has_points(&series) {
        return Ok(None);
    }
    let shipped: Vec<(f64, f64)> = middles
        .iter()
        .filter(|m| m.middle == "secsip")
        .filter(rated)
        .filter_map(point)
        .collect();
    if !shipped.is_empty() {
        series.push(Series {
            label: Some("secsip, shipped rules".into()),
            color: secsip,
            line: Line::None,
            marker: Marker::Cross,
            points: shipped,
        });
    }
    let bridge = middles
        .iter()
        .find(|m| m.middle == "bridge")
        .and_then(|m| m.max_flood_msgs_per_s);
    if let Some(top) = bridge {
        let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
        let (lo, hi) = xs.fold((f64::INFINITY, 0.0_f64), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        });
        series.push(Series {
            label: Some("bridge".into()),
            color: BRIDGE,
            line: Line::Dashed,
            marker: Marker::None,
            points: vec![(lo, top), (hi, top)],
        });
    }
    let chart = Chart {
        title: "Highest passing flood rate vs rule count",
        x_desc: "rules loaded (log scale)",
        y_desc: "highest passing flood rate (messages/s)",
        x_scale: Scale::Log,
        y_scale: Scale::Linear,
        legend: SeriesLabelPosition::LowerLeft,
    };
    chart::render(&chart, &series)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;
    use chart::tests::has_text;

    /// A fresh directory for one test's files.
    fn temp_dir(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("secsip-perf-plot-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(files: &[PathBuf]) -> Vec<String> {
        files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn writes_every_plot_of_a_full_report() {
        let dir = temp_dir("full");
        let files = write_all(&sample::report(), &dir).unwrap();
        let expected = [
            (
                "delivered-vs-offered.svg",
                "OPTIONS flood: delivered vs offered",
            ),
            (
                "calls-delivered-vs-offered.svg",
                "Call ladder: delivered vs offered",
            ),
            ("latency-vs-rate.svg", "Latency vs offered rate"),
            (
                "latency-vs-rules.svg",
                "Latency vs rule count (rule sweep at 60 messages/s)",
            ),
            (
                "maxrate-vs-rules.svg",
                "Highest passing flood rate vs rule count",
            ),
        ];
        assert_eq!(names(&files), expected.map(|(f, _)| f.to_string()));
        for ((_, title), file) in expected.iter().zip(&files) {
            let svg = std::fs::read_to_string(file).unwrap();
            assert!(svg.starts_with("<svg"), "{}", file.display());
            assert!(svg.trim_end().ends_with("</svg>"), "{}", file.display());
            assert!(svg.contains(title), "{} lacks its title", file.display());
            assert!(svg.contains("<polyline") || svg.contains("<path") || svg.contains("<circle"));
        }
        if let Ok(keep) = std::env::var("SECSIP_PLOT_KEEP") {
            for f in &files {
                std::fs::copy(f, Path::new(&keep).join(f.file_name().unwrap())).unwrap();
            }
        }
        let latency = std::fs::read_to_string(dir.join("latency-vs-rate.svg")).unwrap();
        assert!(has_text(
            &latency,
            "one-way latency through the middle, wire (µs)"
        ));
        assert!(has_text(&latency, "secsip") && has_text(&latency, "bridge"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_empty_report_has_no_plots() {
        let dir = temp_dir("empty");
        assert!(write_all(&Report::default(), &dir).unwrap().is_empty());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn plots_only_what_has_data() {
        let dir = temp_dir("flood-only");
        let mut report = sample::report();
        report.steps.retain(|s| s.workload == Some(Workload::Flood));
        report.summary = Default::default();
        // A step with no numbers is skipped, not drawn at zero or failed on.
        report.steps[0].delivered_msgs_per_s = f64::NAN;
        report.steps[0].wire_latency_us = None;
        let files = write_all(&report, &dir).unwrap();
        assert_eq!(
            names(&files),
            ["delivered-vs-offered.svg", "latency-vs-rate.svg"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn latency_falls_back_to_the_appliance_and_says_so() {
        let mut report = sample::report();
        for s in report.steps.iter_mut().filter(|s| s.middle == "secsip") {
            s.wire_latency_us = None;
        }
        let svg = latency_vs_rate(&report, &Palette::new(&report))
            .unwrap()
            .unwrap();
        assert!(has_text(&svg, "secsip (appliance rx→tx)"));
        assert!(has_text(
            &svg,
            "latency (µs): wire, or appliance rx→tx where marked"
        ));
    }

    #[test]
    fn rule_counts_come_from_the_step_or_the_name() {
        assert_eq!(rule_count("secsip-rules=100", None), Some(100.0));
        assert_eq!(rule_count("secsip", Some(42)), Some(42.0));
        assert_eq!(rule_count("secsip", None), None);
    }

    #[test]
    fn a_middle_keeps_its_colour() {
        let report = sample::report();
        let palette = Palette::new(&report);
        assert_eq!(palette.color("bridge"), BRIDGE);
        assert_eq!(palette.color("secsip"), COLORS[0]);
        assert_eq!(palette.color("secsip-rules=10"), COLORS[1]);
    }
}
