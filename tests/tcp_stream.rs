//! End to end: SIP over TCP through the appliance, inspected as a stream (src/stream).
//!
//! SIPp calls over one shared connection (`-t t1`) and over one connection per call
//! (`-t tn`), with one engine and with two (a connection must stay on one engine). Every call
//! must succeed, and the engines' counters must show the messages were framed and judged
//! from the streams, none reset. Without root or namespaces these tests print SKIPPED
//! (unless SECSIP_REQUIRE_NETNS=1, where that is a failure).

#[path = "common/appliance.rs"]
mod appliance;

use appliance::{config_text, root, ChildGuard, Daemon, Side, SippResult, Testbed};
use serde_json::Value;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// SIPp's UAS on the server over TCP with `transport` (`t1` or `tn`).
fn uas_tcp(tb: &Testbed, tag: &str, transport: &str) -> ChildGuard {
    let child = tb
        .cmd(Side::Server, "timeout")
        .args(["120", "sipp", "-sn", "uas", "-t", transport, "-i", "10.99.0.2", "-p", "5060", "-nostdin"])
        .args(["-max_socket", "4096", "-trace_stat", "-fd", "1", "-stf"])
        .arg(tb.work.join(format!("uas-{tag}.csv")))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tb.work.join(format!("uas-{tag}.log"))).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    ChildGuard(Some(child))
}

/// `calls` calls at `rate`/s from the client over TCP with `transport`.
fn uac_tcp(tb: &Testbed, tag: &str, transport: &str, calls: u32, rate: u32) -> SippResult {
    let stf = tb.work.join(format!("uac-{tag}.csv"));
    let _ = std::fs::remove_file(&stf);
    let st = tb
        .cmd(Side::Client, "timeout")
        .args(["--kill-after=2", "65", "sipp", "-sn", "uac", "10.99.0.2:5060", "-t", transport])
        .args(["-i", "10.99.0.1", "-p", "5060", "-m", &calls.to_string(), "-r", &rate.to_string()])
        .args(["-l", &(rate * 2).to_string(), "-max_socket", "4096", "-nostdin", "-timeout", "60s"])
        .args(["-trace_stat", "-fd", "1", "-stf"])
        .arg(&stf)
        .args(["-trace_err", "-error_file"])
        .arg(tb.work.join(format!("uac-{tag}-errors.log")))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tb.work.join(format!("uac-{tag}.log"))).unwrap())
        .status()
        .unwrap();
    SippResult::read(&stf, st)
}

/// 1,000 calls over TCP with `transport` through an appliance of `engines` engines.
fn thousand_calls(transport: &str, engines: &str) {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let name = format!("tcp-{transport}-{engines}");
    let Some(tb) = Testbed::up(&name) else { return };
    let d = Daemon::start(&tb, &name, &config_text(&root().join("rules"), ""), &["--engines", engines]);
    let _uas = uas_tcp(&tb, &name, transport);
    // 90 calls/s: the shipped rules cap new INVITEs per source at 100/s.
    let r = uac_tcp(&tb, &name, transport, 1000, 90);
    assert_eq!((r.successful, r.failed, r.unexpected), (1000, 0, 0), "{transport}, {engines} engine(s): {r:?}");
    let s = d.assert_frames_home();
    let engines_stats: Vec<&Value> = s["engines"].as_array().unwrap().iter().map(|e| &e["stats"]).collect();
    let framed: u64 = engines_stats.iter().map(|e| n(&e["tcp"]["messages"])).sum();
    let resets: u64 = engines_stats.iter().map(|e| n(&e["tcp_resets"])).sum();
    // INVITE, ACK, BYE one way, 180, 200, 200 the other: 6 messages a call.
    assert!(framed >= 6000, "messages framed from the TCP streams: {framed}; {}", s["verdicts"]);
    assert_eq!(resets, 0, "no honest connection is reset: {}", s["verdicts"]);
    if engines == "2" {
        let busy = engines_stats.iter().filter(|e| n(&e["tcp"]["messages"]) > 0).count();
        let want = if transport == "tn" { 2 } else { 1 };
        assert!(busy >= want, "connections spread over {busy} engine(s)");
    }
    let (st, log) = d.stop();
    assert!(st.success(), "secsip exit {st}:\n{log}");
}

#[test]
fn sipp_tcp_one_connection_one_engine() {
    thousand_calls("t1", "1");
}

#[test]
fn sipp_tcp_connection_per_call_one_engine() {
    thousand_calls("tn", "1");
}

#[test]
fn sipp_tcp_one_connection_two_engines() {
    thousand_calls("t1", "2");
}

#[test]
fn sipp_tcp_connection_per_call_two_engines() {
    thousand_calls("tn", "2");
}
