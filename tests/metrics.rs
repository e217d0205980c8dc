//! `/metrics` validation: the Prometheus text rendered from daemon reports is checked by a
//! strict parser of the 0.0.4 exposition format written here, and by `promtool check metrics`
//! (Debian's, unpacked by tests/install-deps.sh into /var/cache/secsip-promtool).
//!
//! The reports: tests/fixtures/report.json, captured from the testbed appliance (one engine,
//! a drop rule, calls and an OPTIONS probe), a hand-built two-engine report with every
//! section and awkward values, and a live capture when the testbed can run (root,
//! namespaces). Without promtool or the testbed these tests print SKIPPED, unless
//! SECSIP_REQUIRE_NETNS=1 (CI), where that is a failure.

#[path = "common/appliance.rs"]
mod appliance;

use secsip::mgmt::metrics::render;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A report captured from the testbed (see [`live_report_renders_and_names_the_dropping_source`]).
fn captured() -> Value {
    let p = appliance::root().join("tests/fixtures/report.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// Every section, two engines, a refused last reload, a rule id needing escapes, big counters.
fn hand_built() -> Value {
    let mut r = captured();
    let mut e1 = r["engines"][0].clone();
    e1["engine"] = json!(1);
    e1["frames"] = json!(u64::MAX - 1);
    e1["judge"]["inject_failed"] = json!({"too_large": 2, "not_udp": 1});
    r["engines"].as_array_mut().unwrap().push(e1);
    let mut lat1 = r["latency"][0].clone();
    lat1["engine"] = json!(1);
    r["latency"].as_array_mut().unwrap().insert(1, lat1);
    r["rule_hits"]["odd \"rule\"\\id\nx"] = json!(3);
    r["verdicts"]["banned.drop"] = json!(12);
    r["reloads"] = json!({"ok": 3, "failed": 2, "last_error": "99-extra.toml:1:1: bad", "last_success_unix": 1.7e9, "last_failure_unix": 1.7e9 + 60.0, "rules": 1});
    r["events"] = json!({"written": 10, "queued": 11, "suppressed": 5, "lost": 1});
    r["bans"] = json!({"active": 3, "in_xdp": 3});
    r["nics"][0]["unclassified"]["fragment"] = json!(7);
    r["nics"][0]["xdp"]["unclassified_dropped"] = json!(7);
    r["top_drop_sources"] = json!([{"ip": "2001:db8::66", "drops": 99}, {"ip": "192.0.2.1", "drops": 1}]);
    r
}

/// What the strict parser found.
#[derive(Debug, Default)]
struct Parsed {
    /// Family name → type.
    types: BTreeMap<String, String>,
    /// Series (name and sorted labels) → value.
    series: BTreeMap<String, f64>,
}

impl Parsed {
    fn get(&self, series: &str) -> f64 {
        *self.series.get(series).unwrap_or_else(|| panic!("no series {series}"))
    }
}

fn valid_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':') && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_') && c.all(|x| x.is_ascii_alphanumeric() || x == '_') && !s.starts_with("__")
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if s.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')) => s.parse().ok(),
        _ => None,
    }
}

/// Parses `{a="x",b="y"}` at the start of `s`; returns the labels and the rest.
type Labels = Vec<(String, String)>;

fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let mut rest = s.strip_prefix('{').ok_or("no {")?;
    if let Some(r) = rest.strip_prefix('}') {
        return Ok((labels, r));
    }
    loop {
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !valid_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..].strip_prefix('"').ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, '\n') => return Err("raw newline in a label value".into()),
                (_, c) => value.push(c),
            }
        };
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("label {name} twice"));
        }
        labels.push((name.to_string(), value));
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        rest = rest.strip_prefix(',').ok_or("labels not separated by ,")?;
    }
}

/// A strict reading of text format 0.0.4 plus our conventions: every line parses, names are
/// valid and `secsip_`, each family's HELP then TYPE come before its samples and its samples
/// are contiguous, counters end in `_total` (and only counters), values parse (counters ≥ 0),
/// summaries carry `quantile` in [0, 1], no series twice, no IP address as a label value.
fn check_exposition(text: &str) -> Result<Parsed, String> {
    let mut p = Parsed::default();
    let mut help: HashMap<String, usize> = HashMap::new();
    let mut closed: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    if !text.ends_with('\n') {
        return Err("the text does not end with a newline".into());
    }
    for (no, line) in text.lines().enumerate() {
        let no = no + 1;
        let err = |m: String| format!("line {no}: {m}: {line:?}");
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, doc) = rest.split_once(' ').ok_or_else(|| err("HELP without text".into()))?;
            if !valid_metric_name(name) || !name.starts_with("secsip_") {
                return Err(err(format!("bad name {name}")));
            }
            if doc.trim().is_empty() {
                return Err(err("empty HELP".into()));
            }
            if help.insert(name.to_string(), no).is_some() || closed.contains(name) {
                return Err(err(format!("family {name} described twice")));
            }
            if let Some(c) = current.take() {
                closed.insert(c);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or_else(|| err("TYPE without type".into()))?;
            if help.get(name) != Some(&(no - 1)) {
                return Err(err(format!("TYPE of {name} not right after its HELP")));
            }
            if !["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind) {
                return Err(err(format!("unknown type {kind}")));
            }
            if (kind == "counter") != name.ends_with("_total") {
                return Err(err(format!("{name}: counters and only counters end in _total")));
            }
            if p.types.insert(name.to_string(), kind.to_string()).is_some() {
                return Err(err(format!("{name} typed twice")));
            }
            current = Some(name.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            return Err(err("unexpected comment or blank line".into()));
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| err("no value".into()))?;
        let name = &line[..name_end];
        if !valid_metric_name(name) {
            return Err(err(format!("bad metric name {name:?}")));
        }
        let (mut labels, rest) = if line[name_end..].starts_with('{') { parse_labels(&line[name_end..]).map_err(&err)? } else { (Vec::new(), &line[name_end..]) };
        let value = rest.strip_prefix(' ').ok_or_else(|| err("no space before the value".into()))?;
        let value = parse_value(value).ok_or_else(|| err(format!("bad value {value:?} (timestamps are not emitted)")))?;
        let family = current.clone().ok_or_else(|| err("sample before any HELP/TYPE".into()))?;
        let kind = &p.types[&family];
        let ok_name = name == family || (kind == "summary" && (name == format!("{family}_sum") || name == format!("{family}_count")));
        if !ok_name {
            return Err(err(format!("sample {name} outside its family's block (current family {family})")));
        }
        if kind == "counter" && (value.is_nan() || value < 0.0) {
            return Err(err("negative counter".into()));
        }
        if kind == "summary" && name == family {
            let q = labels.iter().find(|(n, _)| n == "quantile").ok_or_else(|| err("summary sample without quantile".into()))?;
            let qv: f64 = q.1.parse().map_err(|_| err("bad quantile".into()))?;
            if !(0.0..=1.0).contains(&qv) {
                return Err(err("quantile outside [0, 1]".into()));
            }
        }
        for (n, v) in &labels {
            if v.parse::<std::net::IpAddr>().is_ok() || ["ip", "src_ip", "call_id"].contains(&n.as_str()) {
                return Err(err(format!("label {n}={v:?}: never an IP or a Call-ID as a label")));
            }
        }
        labels.sort();
        let key = format!("{name}{{{}}}", labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect::<Vec<_>>().join(","));
        if p.series.insert(key.clone(), value).is_some() {
            return Err(err(format!("duplicate series {key}")));
        }
    }
    for (name, _) in help {
        if !p.types.contains_key(&name) {
            return Err(format!("{name} has HELP but no TYPE"));
        }
    }
    Ok(p)
}

fn promtool() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("SECSIP_PROMTOOL").map(PathBuf::from),
        Some(PathBuf::from("/var/cache/secsip-promtool/usr/bin/promtool")),
        Some(PathBuf::from("/usr/bin/promtool")),
    ];
    candidates.into_iter().flatten().find(|p| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success()))
}

/// `promtool check metrics` on `text`: its lint findings, or `None` when promtool is absent.
fn promtool_check(text: &str) -> Option<Result<(), String>> {
    let Some(tool) = promtool() else {
        appliance::skipped("promtool check metrics", Some("promtool not found (tests/install-deps.sh unpacks it into /var/cache/secsip-promtool)".into()));
        return None;
    };
    let mut child = Command::new(&tool).args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Some(if out.status.success() && said.trim().is_empty() { Ok(()) } else { Err(format!("{} says ({}):\n{said}", tool.display(), out.status)) })
}

fn validate(what: &str, report: &Value) -> Parsed {
    let text = render(report);
    if std::env::var_os("SECSIP_PRINT_METRICS").is_some() {
        eprintln!("--- {what}\n{text}");
    }
    let parsed = check_exposition(&text).unwrap_or_else(|e| panic!("{what}: {e}\n---\n{text}"));
    if let Some(r) = promtool_check(&text) {
        r.unwrap_or_else(|e| panic!("{what}: {e}\n---\n{text}"));
    }
    parsed
}

#[test]
fn the_captured_report_renders_valid_metrics() {
    let r = captured();
    let p = validate("captured report", &r);
    // Every section of the report is there.
    for family in [
        "secsip_build_info",
        "secsip_uptime_seconds",
        "secsip_nic_info",
        "secsip_xdp_rx_packets_total",
        "secsip_xdp_to_userspace_packets_total",
        "secsip_worker_rx_frames_total",
        "secsip_worker_shed_frames_total",
        "secsip_worker_uninspected_forwarded_frames_total",
        "secsip_umem_frames",
        "secsip_umem_frames_capacity",
        "secsip_xsk_rx_ring_full_total",
        "secsip_engine_frames_total",
        "secsip_engine_sip_requests_total",
        "secsip_engine_validation_failures_total",
        "secsip_engine_table_inserted_total",
        "secsip_verdicts_total",
        "secsip_rule_hits_total",
        "secsip_config_reloads_total",
        "secsip_config_reload_failures_total",
        "secsip_config_last_reload_success",
        "secsip_config_last_reload_success_timestamp_seconds",
        "secsip_events_written_total",
        "secsip_events_suppressed_total",
        "secsip_events_lost_total",
        "secsip_bans_active",
        "secsip_bans_in_xdp",
        "secsip_latency_seconds",
        "secsip_engine_latency_seconds",
    ] {
        assert!(p.types.contains_key(family), "no family {family}: {:?}", p.types.keys());
    }
    let outside = r["nics"][0]["name"].as_str().unwrap();
    assert_eq!(p.get(&format!("secsip_xdp_rx_packets_total{{nic={outside:?}}}")), r["nics"][0]["xdp"]["rx"].as_f64().unwrap());
    for (cause, v) in r["nics"][0]["unclassified"].as_object().expect("nics[].unclassified") {
        assert_eq!(p.get(&format!("secsip_xdp_unclassified_packets_total{{cause={cause:?},nic={outside:?}}}")), v.as_f64().unwrap(), "{cause}");
    }
    for (k, v) in r["verdicts"].as_object().unwrap() {
        let (cause, action) = k.split_once('.').unwrap();
        assert_eq!(p.get(&format!("secsip_verdicts_total{{reason={cause:?},verdict={action:?}}}")), v.as_f64().unwrap(), "{k}");
    }
    for (k, v) in r["rule_hits"].as_object().unwrap() {
        assert_eq!(p.get(&format!("secsip_rule_hits_total{{rule={k:?}}}")), v.as_f64().unwrap(), "{k}");
    }
    for cause in ["rate", "congestion", "queue_full", "engine_gone"] {
        let v = r["queues"][0]["counters"]["shed"][cause].as_f64().unwrap();
        assert_eq!(p.get(&format!("secsip_worker_shed_frames_total{{cause={cause:?},queue=\"0\"}}")), v, "{cause}");
    }
    assert_eq!(p.get("secsip_latency_seconds_count{}"), r["latency"].as_array().unwrap().last().unwrap()["count"].as_f64().unwrap());
    assert_eq!(p.get(r#"secsip_umem_frames{queue="0",state="free"}"#) + p.get(r#"secsip_umem_frames{queue="0",state="in_fill"}"#), p.get(r#"secsip_umem_frames_capacity{queue="0"}"#));
}

#[test]
fn a_report_with_every_section_and_awkward_values_renders_valid_metrics() {
    let r = hand_built();
    let text = render(&r);
    let p = validate("hand-built report", &r);
    assert_eq!(p.get("secsip_config_last_reload_success{}"), 0.0);
    assert_eq!(p.get("secsip_config_reload_failures_total{}"), 2.0);
    assert_eq!(p.get(r#"secsip_verdicts_total{reason="banned",verdict="drop"}"#), 12.0);
    assert_eq!(p.get(r#"secsip_engine_inject_failures_total{engine="1",reason="too_large"}"#), 2.0);
    assert_eq!(p.get(r#"secsip_xdp_unclassified_packets_total{cause="fragment",nic="outside"}"#), 7.0);
    assert_eq!(p.get(r#"secsip_xdp_unclassified_dropped_packets_total{nic="outside"}"#), 7.0);
    assert!(p.series.contains_key(&format!("secsip_rule_hits_total{{rule={:?}}}", "odd \"rule\"\\id\nx")), "{text}");
    assert!(text.contains(&format!("secsip_engine_frames_total{{engine=\"1\"}} {}\n", u64::MAX - 1)), "u64 counters keep every digit");
    assert!(p.series.contains_key(r#"secsip_engine_latency_seconds{engine="1",quantile="0.99"}"#));
    assert!(!text.contains("2001:db8::66") && !text.contains("192.0.2.1"), "top_drop_sources leaked into labels");
}

#[test]
fn the_strict_parser_refuses_what_it_should() {
    let good = "# HELP secsip_x_total X.\n# TYPE secsip_x_total counter\nsecsip_x_total{a=\"1\"} 2\n";
    assert!(check_exposition(good).is_ok());
    for (bad, why) in [
        ("secsip_x_total 1\n", "sample before HELP"),
        ("# HELP secsip_x X.\n# TYPE secsip_x counter\nsecsip_x 1\n", "counter without _total"),
        ("# HELP secsip_x_total X.\n# TYPE secsip_x_total gauge\nsecsip_x_total 1\n", "gauge with _total"),
        (&format!("{good}secsip_x_total{{a=\"1\"}} 3\n"), "duplicate series"),
        ("# HELP secsip_x_total X.\n# TYPE secsip_x_total counter\nsecsip_x_total{a=\"\\q\"} 1\n", "bad escape"),
        ("# HELP secsip_x_total X.\n# TYPE secsip_x_total counter\nsecsip_x_total{ip=\"10.0.0.1\"} 1\n", "IP label"),
        ("# HELP secsip_x_total X.\n# TYPE secsip_x_total counter\nsecsip_x_total{1a=\"x\"} 1\n", "bad label name"),
        ("# HELP secsip_x_total X.\n# TYPE secsip_x_total counter\nsecsip_y_total 1\n", "sample outside its family"),
        ("# HELP secsip_x_total X.\n# TYPE secsip_x_total counter\nsecsip_x_total -1\n", "negative counter"),
        ("# HELP secsip_x_total X.\n# TYPE secsip_x_total counter\nsecsip_x_total 1 1700000000\n", "timestamp"),
        ("# HELP secsip_s S.\n# TYPE secsip_s summary\nsecsip_s 1\n", "summary without quantile"),
    ] {
        assert!(check_exposition(bad).is_err(), "accepted ({why}): {bad:?}");
    }
}

#[test]
fn stats_view_of_a_real_report_keeps_its_shape() {
    let r = captured();
    let mut v = secsip::mgmt::stats::StatsView::new();
    let all = v.view(r.clone());
    assert_eq!(all["verdicts"], r["verdicts"]);
    assert_eq!(all["top_drop_sources"], r["top_drop_sources"]);
    v.reset(&r);
    let none = v.view(r.clone());
    assert_eq!(none["verdicts"], json!({}));
    assert_eq!(none["queues"], r["queues"], "the rest passes through");
}

/// Runs the appliance on the testbed: calls cross, an OPTIONS probe from 10.99.0.3 is dropped
/// by a rule. The report names the prober in `top_drop_sources` and renders valid metrics;
/// with SECSIP_CAPTURE_REPORT=1 it is saved as tests/fixtures/report.json.
#[test]
fn live_report_renders_and_names_the_dropping_source() {
    use appliance::{config_text, Daemon, Side, Testbed};
    let Some(tb) = Testbed::up("ssp-metrics") else { return };
    let rules = tb.work.join("rules-metrics");
    let _ = std::fs::remove_dir_all(&rules);
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("10-probe.toml"), "[[rule]]\nid = \"no-options\"\nwhen = 'sip.method == \"OPTIONS\"'\naction = \"drop\"\n").unwrap();
    let d = Daemon::start(&tb, "metrics", &config_text(&rules, ""), &[]);
    let _uas = tb.uas("metrics");
    let calls = tb.uac("metrics", "10.99.0.1", 5060, 20, 20, 20);
    assert_eq!(calls.successful, 20, "{calls:?}");
    probe(&tb, Side::Client, "10.99.0.3", 40);
    d.reload();
    // SIGHUP is asynchronous: wait for the reload to be counted.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while d.stats()["reloads"]["ok"] != 1 {
        assert!(std::time::Instant::now() < deadline, "the reload was not counted: {}", d.stats()["reloads"]);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let r = d.assert_frames_home();
    if std::env::var_os("SECSIP_CAPTURE_REPORT").is_some_and(|v| v == "1") {
        let p = appliance::root().join("tests/fixtures/report.json");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, serde_json::to_string_pretty(&r).unwrap() + "\n").unwrap();
        eprintln!("captured {}", p.display());
    }
    let top = &r["top_drop_sources"];
    assert_eq!(top[0]["ip"], "10.99.0.3", "{top}");
    assert!(top[0]["drops"].as_u64().unwrap() >= 40, "{top}");
    assert!(top.as_array().unwrap().iter().all(|e| e["ip"] != "10.99.0.1"), "the caller dropped nothing: {top}");
    let p = validate("live report", &r);
    assert!(p.get(r#"secsip_rule_hits_total{rule="no-options"}"#) >= 40.0);
    assert!(p.get(r#"secsip_verdicts_total{reason="rule",verdict="drop"}"#) >= 40.0);
    assert_eq!(p.get("secsip_config_reloads_total{}"), 1.0);
    assert_eq!(p.get("secsip_config_last_reload_success{}"), 1.0);
    let (st, log) = d.stop();
    assert!(st.success(), "secsip exit {st}:\n{log}");
}

/// Sends `count` OPTIONS requests from `src` (an address of the client namespace) to the server.
fn probe(tb: &appliance::Testbed, side: appliance::Side, src: &str, count: u32) {
    let script = r#"
import socket, sys, time
src = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((src, 5067))
for i in range(int(sys.argv[2])):
    m = ("OPTIONS sip:10.99.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP %s:5067;branch=z9hG4bKm%d\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:probe@%s>;tag=%d\r\nTo: <sip:10.99.0.2>\r\n"
         "Call-ID: metrics-%d@%s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n") % (src, i, src, i, i, src)
    s.sendto(m.encode(), ("10.99.0.2", 5060))
    time.sleep(0.002)
"#;
    let st = tb.cmd(side, "timeout").args(["30", "python3", "-c", script, src, &count.to_string()]).status().unwrap();
    assert!(st.success());
}
