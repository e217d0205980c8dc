//! Overload, end to end: an OPTIONS flood at the highest rate `secsip-perf flood` offers, from
//! one source and from 1,000, while SIPp places 20 calls/s from another source. The flood is
//! shed per source before the engines (README "Overload", DESIGN §9): no call fails, and the
//! counters prove that nothing was forwarded uninspected.
//!
//! The flood is addressed to 10.99.0.200, an address no host holds, behind the server's MAC:
//! the appliance inspects it like any SIP, and the admitted part does not load the SIPp UAS
//! that answers the calls (a UAS drowning in OPTIONS would fail calls the appliance carried).

#[path = "common/appliance.rs"]
mod appliance;

use appliance::{config_text, root, Daemon, Side, Testbed};
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Seconds of flood per scenario.
const FLOOD_S: f64 = 10.0;
/// Calls per second of the honest UAC.
const CALL_RATE: u32 = 20;

/// Sum of a worker counter over all queues (`path` inside `counters`).
fn worker_sum(r: &Value, path: &[&str]) -> u64 {
    r["queues"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|q| n(path.iter().fold(&q["counters"], |v, k| &v[*k])))
        .sum()
}

/// Runs the flood generator in the client namespace; returns its JSON line.
fn flood(tb: &Testbed, sources: u32) -> Value {
    let out = tb
        .cmd(Side::Client, "timeout")
        .args(["--kill-after=2", &format!("{}", FLOOD_S as u32 + 10), env!("CARGO_BIN_EXE_secsip-perf"), "flood"])
        .args(["--src", "10.66.0.1", "--sources", &sources.to_string(), "--dst", "10.99.0.200:5060"])
        .args(["--seconds", &FLOOD_S.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "secsip-perf flood failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("flood output {:?}: {e}", String::from_utf8_lossy(&out.stdout)))
}

fn scenario(tb: &Testbed, tag: &str, sources: u32, extra: &str) {
    let d = Daemon::start(tb, tag, &config_text(&root().join("rules"), extra), &[]);
    let _uas = tb.uas(tag);
    let calls = CALL_RATE * FLOOD_S as u32;
    let mut uac = tb.uac_cmd(tag, "10.99.0.1", 5061, calls, CALL_RATE, 40).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let offered = flood(tb, sources);
    let st = uac.wait().unwrap();
    let sipp = appliance::SippResult::read(&tb.work.join(format!("uac-{tag}.csv")), st);
    let r = d.assert_frames_home();
    let shed = |c: &str| worker_sum(&r, &["shed", c]);
    let rx = worker_sum(&r, &["rx", "outside"]);
    let xdp_fail_open: u64 = r["nics"].as_array().into_iter().flatten().map(|x| n(&x["xdp"]["fail_open"])).sum();
    let banned: u64 = r["nics"].as_array().into_iter().flatten().map(|x| n(&x["xdp"]["banned"])).sum();
    let ring_dropped: u64 = r["queues"].as_array().into_iter().flatten().flat_map(|q| q["xsk"].as_array().into_iter().flatten()).map(|x| n(&x["rx_dropped"])).sum();
    eprintln!(
        "{tag}: offered {:.0} frames/s ({} sent from {sources} source(s)); appliance took {rx} off the outside ring \
         ({ring_dropped} dropped by the kernel with the ring full), XDP dropped {banned} banned; shed rate {} congestion {} queue_full {}; calls {} ok / {} failed",
        offered["rate"].as_f64().unwrap_or(0.0),
        offered["sent"],
        shed("rate"),
        shed("congestion"),
        shed("queue_full"),
        sipp.successful,
        sipp.failed,
    );
    assert!(n(&offered["sent"]) > 100_000, "{tag}: the generator offered too little to be a flood: {offered}");
    assert_eq!(worker_sum(&r, &["uninspected_forwarded"]), 0, "{tag}: forwarded uninspected: {}", r["queues"]);
    assert_eq!(xdp_fail_open, 0, "{tag}: the XDP program bridged SIP for want of a socket: {}", r["nics"]);
    assert!(shed("rate") + shed("congestion") + shed("queue_full") > 0, "{tag}: the flood was not shed: {}", r["queues"]);
    assert_eq!(shed("engine_gone"), 0, "{tag}");
    assert_eq!((sipp.successful, sipp.failed), (calls as u64, 0), "{tag}: honest calls under the flood: {}", sipp.raw);
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
    assert!(log.contains("overload: shed SIP frames before the engines"), "{tag}: shedding not logged:\n{log}");
}

#[test]
fn a_flood_is_shed_and_calls_from_another_source_keep_working() {
    let Some(tb) = Testbed::up("shed") else { return };
    // XDP bans off: the shipped rate rules would ban the lone source and the kernel would drop
    // the rest of its flood before the workers, hiding what admission does.
    scenario(&tb, "one-source", 1, "xdp_bans = false\n");
    // Defaults: 1,000 addresses over four /24s, each /24 one talker.
    scenario(&tb, "1000-sources", 1000, "");
}
