//! `GET /metrics`: the daemon's report rendered in the Prometheus text exposition format 0.0.4.
//!
//! Written by hand rather than with `prometheus-client`: that crate encodes OpenMetrics text
//! only (`# EOF`, counters typed under their name without `_total`, `info` and `unknown`
//! types), which a 0.0.4 parser such as `promtool check metrics` reads as mismatched families,
//! and it has no summary type for our latency quantiles. The report is already a snapshot
//! summed at scrape time (the collector the conventions ask for), so all that is left is
//! formatting, which [`Exposition`] does with escaping and duplicate-series checks.
//!
//! Conventions: `secsip_` names in base units (seconds, frames, packets, messages), counters
//! end in `_total`, labels are bounded (`nic`, `role`, `queue`, `engine`, `verdict`, `reason`,
//! `rule`, `method`, `class`, `table`, `state`, `quantile`): `top_drop_sources` is not
//! exported, an IP address is never a label.

use crate::dataplane::judge::{ACTIONS, CAUSES};
use crate::dataplane::admit::Shed;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use crate::dataplane::control::unix_now;

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Quantiles of the latency summaries, with the report's field for each.
const QUANTILES: [(&str, &str); 4] = [("0.5", "p50_us"), ("0.9", "p90_us"), ("0.99", "p99_us"), ("0.999", "p999_us")];

/// NIC roles in the order the report lists NICs and per-queue sides.
const ROLES: [&str; 2] = ["outside", "inside"];

/// Renders `report` (the document `secsip stats --json` prints) as Prometheus text 0.0.4.
/// Missing sections are skipped, so a partial report still renders valid text.
pub fn render(report: &Value) -> String {
    let mut e = Exposition::default();
    process(&mut e, report);
    let nics = nic_names(report);
    xdp(&mut e, report, &nics);
    queues(&mut e, report, &nics);
    engines(&mut e, report);
    verdicts(&mut e, report);
    reloads(&mut e, report);
    events_and_bans(&mut e, report);
    latency(&mut e, report);
    e.finish()
}

fn process(e: &mut Exposition, r: &Value) {
    let version = r["version"].as_str().unwrap_or("unknown");
    e.gauge("secsip_build_info", "The daemon's version, as a label; always 1.", &[("version", version)], 1.0);
    if let Some(mode) = r["mode"].as_str() {
        e.gauge("secsip_mode_info", "The data path's mode (sharded or run-to-completion), as a label; always 1.", &[("mode", mode)], 1.0);
    }
    if let Some(up) = r["uptime_s"].as_f64() {
        e.gauge("secsip_uptime_seconds", "Seconds since the data path started.", &[], up);
        e.gauge("secsip_start_time_seconds", "Unix time the data path started.", &[], r["started_unix"].as_f64().unwrap_or_else(|| unix_now() - up));
    }
}

/// NIC names by role index (`outside`, `inside` when the report does not name them).
fn nic_names(r: &Value) -> [String; 2] {
    let named = |i: usize| r["nics"][i]["name"].as_str().map(str::to_string);
    [named(0).unwrap_or_else(|| ROLES[0].into()), named(1).unwrap_or_else(|| ROLES[1].into())]
}

fn xdp(e: &mut Exposition, r: &Value, names: &[String; 2]) {
    for (i, nic) in arr(&r["nics"]).iter().enumerate() {
        let name = names.get(i).map_or("?", String::as_str);
        let role = ROLES.get(i).copied().unwrap_or("other");
        let mode = nic["mode"].as_str().unwrap_or("unknown");
        e.gauge("secsip_nic_info", "A bridged NIC: its role and how the XDP program is attached; always 1.", &[("nic", name), ("role", role), ("mode", mode)], 1.0);
        for (k, v) in obj(&nic["xdp"]) {
            let help = match k.as_str() {
                "rx" => "Packets the XDP program saw.",
                "bridged" => "Packets bridged to the peer NIC in the kernel (not SIP).",
                "to_userspace" => "SIP packets redirected to an AF_XDP socket.",
                "fail_open" => "SIP packets bridged uninspected because no socket was attached (fail_open).",
                "fail_closed" => "SIP packets dropped because no socket was attached (fail_closed).",
                "banned" => "Packets dropped in XDP because their source is banned.",
                "redirect_failed" => "Packets whose redirect failed.",
                "unclassified_dropped" => "Packets the XDP program could not classify, dropped (appliance.unclassified = drop).",
                _ => "An XDP program counter.",
            };
            e.counter(&format!("secsip_xdp_{}_packets_total", sanitize(k)), help, &[("nic", name)], v);
        }
        for (cause, v) in obj(&nic["unclassified"]) {
            let help = "Packets the XDP program could not prove are not SIP (sent to userspace or dropped), by cause.";
            e.counter("secsip_xdp_unclassified_packets_total", help, &[("nic", name), ("cause", cause)], v);
        }
    }
}

fn queues(e: &mut Exposition, r: &Value, names: &[String; 2]) {
    for q in arr(&r["queues"]) {
        let queue = label_of(&q["queue"]);
        let queue = queue.as_str();
        for (k, v) in obj(&q["counters"]) {
            if k == "shed" {
                // Only the causes this build knows: the label stays bounded whatever the report says.
                for (cause, n) in obj(v).filter(|(c, _)| Shed::ALL.iter().any(|s| s.name() == c.as_str())) {
                    e.counter(
                        "secsip_worker_shed_frames_total",
                        "SIP frames dropped before any engine judged them, by cause (rate, congestion, queue_full, engine_gone).",
                        &[("queue", queue), ("cause", cause)],
                        n,
                    );
                }
                continue;
            }
            if let Value::Object(per_nic) = v {
                let (name, help): (String, &str) = match k.as_str() {
                    "rx" => ("secsip_worker_rx_frames_total".into(), "Frames a worker took off a NIC's AF_XDP RX ring."),
                    "tx" => ("secsip_worker_tx_frames_total".into(), "Frames a worker put on a NIC's AF_XDP TX ring."),
                    _ => (format!("secsip_worker_{}_total", sanitize(k)), "A per-NIC worker counter."),
                };
                for (i, role) in ROLES.iter().enumerate() {
                    if let Some(n) = per_nic.get(*role) {
                        e.counter(&name, help, &[("queue", queue), ("nic", &names[i])], n);
                    }
                }
                continue;
            }
            let (name, help): (String, &str) = match k.as_str() {
                "dropped" => ("secsip_worker_dropped_frames_total".into(), "Frames dropped on an engine's verdict."),
                "injected" => ("secsip_worker_injected_frames_total".into(), "Reject answers put on the wire."),
                "uninspected_forwarded" => ("secsip_worker_uninspected_forwarded_frames_total".into(), "SIP frames forwarded without a verdict because their engine thread is gone (fail_open)."),
                "tx_backlog_dropped" => ("secsip_worker_tx_backlog_dropped_frames_total".into(), "Frames dropped because a TX ring stayed full until the backlog overflowed."),
                "split_unsent" => ("secsip_worker_split_unsent_frames_total".into(), "RSTs toward a refused TCP connection's sender not sent: no free frame to carry them."),
                "sleeps" => ("secsip_worker_sleeps_total".into(), "Times a worker went to sleep in poll(2)."),
                _ => (format!("secsip_worker_{}_total", sanitize(k)), "A worker counter."),
            };
            e.counter(&name, help, &[("queue", queue)], v);
        }
        let f = &q["frames"];
        for state in ["free", "in_fill", "in_engines", "in_tx", "backlog"] {
            if let Some(n) = f[state].as_f64() {
                e.gauge("secsip_umem_frames", "UMEM frames of a queue by where they are now.", &[("queue", queue), ("state", state)], n);
            }
        }
        if let Some(n) = f["total"].as_f64() {
            e.gauge("secsip_umem_frames_capacity", "UMEM frames of a queue.", &[("queue", queue)], n);
        }
        if let Some(n) = f["lost"].as_f64() {
            e.gauge("secsip_umem_frames_unaccounted", "UMEM frames no place accounts for (must be 0).", &[("queue", queue)], n);
        }
        for (i, x) in arr(&q["xsk"]).iter().enumerate() {
            let Some(nic) = names.get(i) else { continue };
            for (k, v) in obj(x) {
                let help = match k.as_str() {
                    "rx_dropped" => "AF_XDP socket: packets dropped for reasons other than invalid descriptors.",
                    "rx_invalid_descs" => "AF_XDP socket: packets dropped because of invalid RX descriptors.",
                    "tx_invalid_descs" => "AF_XDP socket: packets dropped because of invalid TX descriptors.",
                    "rx_ring_full" => "AF_XDP socket: packets dropped because the RX ring was full.",
                    "rx_fill_ring_empty_descs" => "AF_XDP socket: times the fill ring was empty when a packet arrived.",
                    "tx_ring_empty_descs" => "AF_XDP socket: times the TX ring was empty when the kernel looked.",
                    _ => "An AF_XDP socket statistic (XDP_STATISTICS).",
                };
                e.counter(&format!("secsip_xsk_{}_total", sanitize(k)), help, &[("queue", queue), ("nic", nic)], v);
            }
        }
    }
}

/// An engine's TCP stream reassembly counters (`stats.tcp`).
fn tcp_streams(e: &mut Exposition, engine: &str, t: &Value) {
    let l = [("engine", engine)];
    let counters: [(&str, &str, &str); 8] = [
        ("flows_created", "secsip_engine_tcp_flows_total", "TCP connections tracked."),
        ("ws_handshakes", "secsip_engine_ws_handshakes_total", "WebSocket upgrade requests and 101s passed."),
        ("ws_messages", "secsip_engine_ws_messages_total", "WebSocket messages framed, each one SIP message."),
        ("ws_control_frames", "secsip_engine_ws_control_frames_total", "WebSocket ping, pong and close frames passed."),
        ("midstream", "secsip_engine_tcp_midstream_pickups_total", "TCP connections picked up mid-stream (first segment without SYN)."),
        ("messages", "secsip_engine_tcp_messages_total", "SIP messages framed from TCP streams."),
        ("keepalives", "secsip_engine_tcp_keepalives_total", "CRLF keepalives (RFC 5626) passed."),
        ("idle_expired", "secsip_engine_tcp_idle_expired_total", "Idle TCP connections forgotten."),
    ];
    for (k, name, help) in counters {
        e.counter(name, help, &l, &t[k]);
    }
    for (i, v) in arr(&t["errors"]).iter().enumerate() {
        let reason = crate::stream::StreamError::ALL.get(i).map_or_else(|| format!("index_{i}"), |r| r.name().to_string());
        e.counter("secsip_engine_tcp_stream_errors_total", "TCP segments refused or connections broken by stream reassembly, by reason.", &[("engine", engine), ("reason", &reason)], v);
    }
    e.gauge("secsip_engine_tcp_flows", "TCP connections tracked now.", &l, t["flows"].as_f64().unwrap_or(0.0));
    e.gauge("secsip_engine_tcp_buffered_bytes", "Bytes TCP reassembly buffers now.", &l, t["bytes"].as_f64().unwrap_or(0.0));
}

/// An engine's consults: TCP messages judged by the engine owning their Call-ID (`stats.consults`).
fn consults(e: &mut Exposition, engine: &str, c: &Value, j: &Value) {
    let l = [("engine", engine)];
    let counters: [(&str, &str, &str); 6] = [
        ("asked", "secsip_engine_tcp_consults_asked_total", "TCP messages an engine framed and asked the engine owning their Call-ID to judge."),
        ("answered", "secsip_engine_tcp_consults_answered_total", "Consult answers applied (frames released or the connection reset)."),
        ("refused", "secsip_engine_tcp_consults_refused_total", "Consults that could not be made (peer queue full, no buffer): message dropped, connection reset."),
        ("unmatched", "secsip_engine_tcp_consults_unmatched_total", "Consult answers whose connection was gone."),
        ("abandoned", "secsip_engine_tcp_consults_abandoned_total", "Connections forgotten while waiting for a consult answer."),
        ("judged", "secsip_engine_tcp_consults_judged_total", "TCP messages an engine judged for another engine."),
    ];
    for (k, name, help) in counters {
        e.counter(name, help, &l, &c[k]);
    }
    e.counter("secsip_engine_tcp_consults_sent_total", "Consults an engine put on another engine's queue.", &l, &j["consults_sent"]);
    e.counter("secsip_engine_tcp_consult_answers_lost_total", "Consult answers the asking engine's queue refused.", &l, &j["consult_answers_lost"]);
}

/// An engine's TLS port counters (`stats.tls`).
fn tls_ports(e: &mut Exposition, engine: &str, t: &Value) {
    let l = [("engine", engine)];
    e.counter("secsip_engine_tls_uninspected_frames_total", "Frames of TLS ports let through uninspected (encrypted).", &l, &t["uninspected_frames"]);
    e.counter("secsip_engine_tls_uninspected_connections_total", "New connections (SYNs) to TLS ports let through uninspected.", &l, &t["uninspected_connections"]);
    for (i, v) in arr(&t["denied"]).iter().enumerate() {
        let cause = crate::engine::tls::TlsDenial::ALL.get(i).map_or_else(|| format!("index_{i}"), |d| d.name().to_string());
        e.counter("secsip_engine_tls_denied_total", "Frames of TLS ports dropped, by cause.", &[("engine", engine), ("cause", &cause)], v);
    }
}

fn engines(e: &mut Exposition, r: &Value) {
    use crate::sip::Method;
    // Method names by `Method as usize`, the index of the engines' `requests` array.
    const TOKENS: [&str; 14] = ["INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "INFO", "PRACK", "SUBSCRIBE", "NOTIFY", "UPDATE", "MESSAGE", "REFER", "PUBLISH"];
    let method_name = |i: usize| -> Option<&'static str> {
        if i == Method::Other as usize {
            return Some("OTHER");
        }
        TOKENS.iter().copied().find(|t| Method::parse(t.as_bytes()) as usize == i)
    };
    for eng in arr(&r["engines"]) {
        let engine = label_of(&eng["engine"]);
        let l = [("engine", engine.as_str())];
        let s = &eng["stats"];
        e.counter("secsip_engine_frames_total", "Frames handed to an engine.", &l, &eng["frames"]);
        let plain: [(&str, &str, &str); 11] = [
            ("forwarded", "secsip_engine_forwarded_frames_total", "Frames an engine forwarded."),
            ("dropped", "secsip_engine_dropped_frames_total", "Frames an engine dropped."),
            ("not_sip", "secsip_engine_not_sip_frames_total", "Frames that were not SIP (bridged untouched)."),
            ("fragments_held", "secsip_engine_fragments_held_total", "IP fragments held for reassembly."),
            ("reassembled", "secsip_engine_reassembled_datagrams_total", "Datagrams reassembled from fragments."),
            ("tcp_segments_held", "secsip_engine_tcp_segments_held_total", "TCP segments held until the message they carry was judged."),
            ("tcp_resets", "secsip_engine_tcp_resets_total", "TCP connections reset (a refused message or a broken stream)."),
            ("sip_messages", "secsip_engine_sip_messages_total", "SIP messages parsed."),
            ("malformed", "secsip_engine_malformed_messages_total", "SIP messages with at least one validation failure."),
            ("banned", "secsip_engine_banned_messages_total", "SIP messages dropped because their source or destination is banned."),
            ("ban_failures", "secsip_engine_ban_failures_total", "Bans the host table could not hold."),
        ];
        for (k, name, help) in plain {
            e.counter(name, help, &l, &s[k]);
        }
        let by_name: [(&str, &str, &str, Vec<&str>); 3] = [
            (
                "decode_errors",
                "secsip_engine_decode_errors_total",
                "Frames that failed L2-L4 decoding, by reason.",
                crate::wire::DecodeError::ALL.iter().map(|d| d.name()).collect(),
            ),
            (
                "fragment_drops",
                "secsip_engine_fragment_drops_total",
                "Frames dropped because their datagram's reassembly failed, by reason.",
                crate::wire::reasm::ReasmError::ALL.iter().map(|d| d.name()).collect(),
            ),
            (
                "malformed_by_reason",
                "secsip_engine_validation_failures_total",
                "SIP validation failures, by reason.",
                crate::sip::validate::Reason::ALL.iter().map(|d| d.name()).collect(),
            ),
        ];
        for (k, name, help, names) in by_name {
            for (i, v) in arr(&s[k]).iter().enumerate() {
                let reason = names.get(i).map_or_else(|| format!("index_{i}"), |n| n.to_string());
                e.counter(name, help, &[("engine", &engine), ("reason", &reason)], v);
            }
        }
        for (i, v) in arr(&s["requests"]).iter().enumerate() {
            if let Some(m) = method_name(i) {
                e.counter("secsip_engine_sip_requests_total", "SIP requests parsed, by method.", &[("engine", &engine), ("method", m)], v);
            }
        }
        for (i, v) in arr(&s["responses"]).iter().enumerate() {
            let class = if (1..=6).contains(&i) { format!("{i}xx") } else { "other".into() };
            e.counter("secsip_engine_sip_responses_total", "SIP responses parsed, by class.", &[("engine", &engine), ("class", &class)], v);
        }
        tcp_streams(e, &engine, &s["tcp"]);
        consults(e, &engine, &s["consults"], &eng["judge"]);
        tls_ports(e, &engine, &s["tls"]);
        let st = &eng["state"];
        let state: [(&str, &str, &str); 7] = [
            ("transactions", "secsip_engine_transactions_total", "SIP transactions created."),
            ("retransmissions", "secsip_engine_retransmissions_total", "Request retransmissions absorbed by a live transaction."),
            ("stray_responses", "secsip_engine_stray_responses_total", "Responses that matched no live transaction."),
            ("dialogs", "secsip_engine_dialogs_total", "SIP dialogs created (early)."),
            ("dialogs_confirmed", "secsip_engine_dialogs_confirmed_total", "SIP dialogs confirmed by a 2xx."),
            ("dialogs_terminated", "secsip_engine_dialogs_terminated_total", "SIP dialogs ended by BYE or a final failure."),
            ("unknown_dialog_requests", "secsip_engine_unknown_dialog_requests_total", "In-dialog requests that matched no live dialog."),
        ];
        for (k, name, help) in state {
            e.counter(name, help, &l, &st[k]);
        }
        for (k, table) in [("transaction_table", "transactions"), ("dialog_table", "dialogs")] {
            for (field, help) in [
                ("inserted", "State table entries created."),
                ("evicted", "State table entries evicted because the table was full."),
                ("expired", "State table entries removed because their deadline passed."),
                ("removed", "State table entries removed explicitly."),
            ] {
                e.counter(&format!("secsip_engine_table_{field}_total"), help, &[("engine", &engine), ("table", table)], &st[k][field]);
            }
        }
        let j = &eng["judge"];
        let judge: [(&str, &str, &str); 4] = [
            ("held_dropped", "secsip_engine_held_frames_dropped_total", "Held frames dropped because their datagram was abandoned."),
            ("held_evicted", "secsip_engine_held_frames_evicted_total", "Held frames dropped because the hold cap was reached."),
            ("injected", "secsip_engine_rejects_injected_total", "Reject responses an engine wrote for injection."),
            ("rule_swaps", "secsip_engine_rule_swaps_total", "Rule-set swaps an engine picked up."),
        ];
        for (k, name, help) in judge {
            e.counter(name, help, &l, &j[k]);
        }
        for reason in crate::wire::inject::InjectError::ALL.iter().map(|x| x.name()) {
            e.counter("secsip_engine_inject_failures_total", "Rejects that could not be answered on the wire, by reason.", &[("engine", &engine), ("reason", reason)], j["inject_failed"].get(reason).unwrap_or(&Value::from(0)));
        }
        for (reason, v) in obj(&j["inject_failed"]) {
            e.counter("secsip_engine_inject_failures_total", "Rejects that could not be answered on the wire, by reason.", &[("engine", &engine), ("reason", reason)], v);
        }
        if let Some(n) = eng["held"].as_f64() {
            e.gauge("secsip_engine_held_frames", "Frames an engine holds for reassembly now.", &l, n);
        }
    }
}

fn verdicts(e: &mut Exposition, r: &Value) {
    const NAME: &str = "secsip_verdicts_total";
    const HELP: &str = "SIP messages (or frames without one) judged, by reason (cause) and verdict (action).";
    let v = &r["verdicts"];
    if v.is_object() {
        // Every known pair, zeros included, so rate() sees the first increment of each.
        for cause in CAUSES {
            for action in ACTIONS {
                let n = v.get(format!("{cause}.{action}")).cloned().unwrap_or(Value::from(0));
                e.counter(NAME, HELP, &[("reason", cause), ("verdict", action)], &n);
            }
        }
        for (k, n) in obj(v) {
            let (cause, action) = k.split_once('.').unwrap_or((k, "unknown"));
            e.counter(NAME, HELP, &[("reason", cause), ("verdict", action)], n);
        }
    }
    for (rule, n) in obj(&r["rule_hits"]) {
        e.counter("secsip_rule_hits_total", "Times a rule fired (monitor mode included); restarts from 0 when the rules are reloaded.", &[("rule", rule)], n);
    }
}

fn reloads(e: &mut Exposition, r: &Value) {
    let rl = &r["reloads"];
    if !rl.is_object() {
        return;
    }
    e.counter("secsip_config_reloads_total", "Rule reloads that succeeded (the start does not count).", &[], &rl["ok"]);
    e.counter("secsip_config_reload_failures_total", "Rule reloads refused (the running rules stayed).", &[], &rl["failed"]);
    let ok_at = rl["last_success_unix"].as_f64().unwrap_or(0.0);
    let failed_at = rl["last_failure_unix"].as_f64();
    let ok = failed_at.is_none_or(|f| f < ok_at);
    e.gauge("secsip_config_last_reload_success", "Whether the last load or reload of the rules succeeded (1) or was refused (0).", &[], if ok { 1.0 } else { 0.0 });
    e.gauge("secsip_config_last_reload_success_timestamp_seconds", "Unix time of the last successful load or reload of the rules.", &[], ok_at);
    if let Some(n) = rl["rules"].as_f64() {
        e.gauge("secsip_rules_loaded", "Rules in the running set.", &[], n);
    }
}

fn events_and_bans(e: &mut Exposition, r: &Value) {
    let ev = &r["events"];
    if ev.is_object() {
        for (k, help) in [
            ("written", "Security events written to the event log."),
            ("queued", "Security events engines queued for the writer."),
            ("suppressed", "Security events the rate limit suppressed."),
            ("lost", "Security events lost because the writer's queue was full."),
        ] {
            e.counter(&format!("secsip_events_{k}_total"), help, &[], &ev[k]);
        }
    }
    let b = &r["bans"];
    if let Some(n) = b["active"].as_f64() {
        e.gauge("secsip_bans_active", "Sources banned now in the host table.", &[], n);
    }
    if let Some(n) = b["in_xdp"].as_f64() {
        e.gauge("secsip_bans_in_xdp", "Bans in the XDP program's map (enforced in the kernel).", &[], n);
    }
}

fn latency(e: &mut Exposition, r: &Value) {
    for l in arr(&r["latency"]) {
        let (name, max, help, labels): (&str, &str, &str, Vec<(&str, String)>) = match &l["engine"] {
            Value::String(s) if s == "all" => (
                "secsip_latency_seconds",
                "secsip_latency_max_seconds",
                "Time from RX to TX of SIP frames, all engines, since start.",
                vec![],
            ),
            other => (
                "secsip_engine_latency_seconds",
                "secsip_engine_latency_max_seconds",
                "Time from RX to TX of SIP frames an engine judged, since start.",
                vec![("engine", label_of(other))],
            ),
        };
        let base: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for (q, field) in QUANTILES {
            if let Some(us) = l[field].as_f64() {
                let mut ls = base.clone();
                ls.push(("quantile", q));
                e.sample(name, help, Kind::Summary, "", &ls, Num::F(us / 1e6));
            }
        }
        if let Some(us) = l["sum_us"].as_f64() {
            e.sample(name, help, Kind::Summary, "_sum", &base, Num::F(us / 1e6));
        }
        if let Some(n) = l["count"].as_u64() {
            e.sample(name, help, Kind::Summary, "_count", &base, Num::U(n));
        }
        if let Some(us) = l["max_us"].as_f64() {
            e.gauge(max, "Longest RX to TX time seen since start.", &base, us / 1e6);
        }
    }
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

fn obj(v: &Value) -> impl Iterator<Item = (&String, &Value)> {
    v.as_object().into_iter().flatten()
}

/// A JSON scalar as a label value (`0`, `"all"`).
fn label_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A report key as part of a metric name (`[a-zA-Z0-9_]`).
fn sanitize(k: &str) -> String {
    k.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c.to_ascii_lowercase() } else { '_' }).collect()
}


/// A metric type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Summary,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
        }
    }
}

/// A sample value: integers are printed exactly (a `u64` counter past 2^53 keeps its digits).
#[derive(Clone, Copy, Debug)]
enum Num {
    U(u64),
    I(i64),
    F(f64),
}

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Num::U(n) => write!(f, "{n}"),
            Num::I(n) => write!(f, "{n}"),
            Num::F(x) if x.is_nan() => f.write_str("NaN"),
            Num::F(x) if x.is_infinite() => f.write_str(if x > 0.0 { "+Inf" } else { "-Inf" }),
            Num::F(x) => write!(f, "{x}"),
        }
    }
}

struct Family {
    name: String,
    help: String,
    kind: Kind,
    /// Rendered sample lines.
    lines: Vec<String>,
}

/// Families in first-use order; each family's samples are written together under its HELP
/// and TYPE lines (text format 0.0.4 wants a family's lines contiguous).
#[derive(Default)]
struct Exposition {
    families: Vec<Family>,
    index: HashMap<String, usize>,
    series: HashSet<String>,
}

impl Exposition {
    fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: &Value) {
        debug_assert!(name.ends_with("_total"), "{name}");
        // Counters are non-negative integers in the report; anything else is skipped.
        let n = match v {
            Value::Number(n) => match (n.as_u64(), n.as_f64()) {
                (Some(u), _) => Num::U(u),
                (None, Some(f)) if f >= 0.0 => Num::F(f),
                _ => return,
            },
            _ => return,
        };
        self.sample(name, help, Kind::Counter, "", labels, n);
    }

    fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        let n = if v.fract() == 0.0 && v.abs() < 9.0e15 { Num::I(v as i64) } else { Num::F(v) };
        self.sample(name, help, Kind::Gauge, "", labels, n);
    }

    /// Adds one sample of family `name` (`suffix` is `_sum`/`_count` for summaries). A series
    /// seen before is dropped: the first value wins.
    fn sample(&mut self, name: &str, help: &str, kind: Kind, suffix: &str, labels: &[(&str, &str)], v: Num) {
        let mut line = String::with_capacity(64);
        line.push_str(name);
        line.push_str(suffix);
        if !labels.is_empty() {
            line.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                line.push_str(k);
                line.push_str("=\"");
                escape_label(&mut line, val);
                line.push('"');
            }
            line.push('}');
        }
        if !self.series.insert(line.clone()) {
            return;
        }
        let _ = write!(line, " {v}");
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.families.push(Family { name: name.to_string(), help: help.to_string(), kind, lines: Vec::new() });
                self.index.insert(name.to_string(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        debug_assert_eq!(self.families[i].kind, kind, "{name} used with two types");
        self.families[i].lines.push(line);
    }

    fn finish(self) -> String {
        let mut o = String::with_capacity(self.families.iter().map(|f| 80 + f.lines.len() * 64).sum());
        for f in &self.families {
            o.push_str("# HELP ");
            o.push_str(&f.name);
            o.push(' ');
            escape_help(&mut o, &f.help);
            o.push('\n');
            let _ = writeln!(o, "# TYPE {} {}", f.name, f.kind.name());
            for l in &f.lines {
                o.push_str(l);
                o.push('\n');
            }
        }
        o
    }
}

/// Label values escape `\`, `"` and newline (text format 0.0.4).
fn escape_label(o: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
}

/// HELP text escapes `\` and newline.
fn escape_help(o: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_values_and_help_are_escaped() {
        let out = render(&json!({"version": "1.0", "rule_hits": {"we\"ird\\rule\nid": 3}}));
        assert!(out.contains(r#"secsip_rule_hits_total{rule="we\"ird\\rule\nid"} 3"#), "{out}");
        let mut h = String::new();
        escape_help(&mut h, "a\\b\nc");
        assert_eq!(h, "a\\\\b\\nc");
    }

    #[test]
    fn an_empty_report_still_has_build_info() {
        let out = render(&json!({}));
        assert_eq!(out, "# HELP secsip_build_info The daemon's version, as a label; always 1.\n# TYPE secsip_build_info gauge\nsecsip_build_info{version=\"unknown\"} 1\n");
    }

    #[test]
    fn duplicate_series_keep_the_first_value() {
        let mut e = Exposition::default();
        e.counter("x_total", "h", &[("a", "1")], &json!(1));
        e.counter("x_total", "h", &[("a", "1")], &json!(2));
        e.counter("x_total", "h", &[("a", "2")], &json!(3));
        assert_eq!(e.finish(), "# HELP x_total h\n# TYPE x_total counter\nx_total{a=\"1\"} 1\nx_total{a=\"2\"} 3\n");
    }

    #[test]
    fn reload_failure_after_success_clears_the_gauge() {
        let ok = render(&json!({"reloads": {"ok": 2, "failed": 1, "last_success_unix": 200.0, "last_failure_unix": 100.0, "rules": 4}}));
        assert!(ok.contains("secsip_config_last_reload_success 1\n"), "{ok}");
        assert!(ok.contains("secsip_config_last_reload_success_timestamp_seconds 200\n"), "{ok}");
        assert!(ok.contains("secsip_config_reload_failures_total 1\n"), "{ok}");
        let bad = render(&json!({"reloads": {"ok": 2, "failed": 1, "last_success_unix": 200.0, "last_failure_unix": 300.5, "rules": 4}}));
        assert!(bad.contains("secsip_config_last_reload_success 0\n"), "{bad}");
    }

    #[test]
    fn no_ip_address_becomes_a_label() {
        let out = render(&json!({"top_drop_sources": [{"ip": "192.0.2.7", "drops": 9}]}));
        assert!(!out.contains("192.0.2.7"), "{out}");
    }
}
