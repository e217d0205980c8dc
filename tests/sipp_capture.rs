//! Real SIPp calls captured in network namespaces, replayed through `secsip check`.
//!
//! Needs root, `ip netns`, `sipp` and `tcpdump` (the capture script checks, exit 77): without
//! them the test prints one SKIPPED line, or fails under `SECSIP_REQUIRE_NETNS=1` (CI, `make
//! test` as root).

#[path = "common/appliance.rs"]
mod appliance;

use serde_json::Value;
use std::path::Path;
use std::process::Command;

#[test]
fn sipp_calls_captured_in_namespaces_replay_with_exact_counts() {
    let dir = std::env::temp_dir().join(format!("secsip-sipp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("sipp.pcap");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/capture-call.sh");
    let calls = 5;
    let out = Command::new("bash").arg(&script).arg(&pcap).arg(calls.to_string()).output().unwrap();
    if appliance::script_skipped("sipp_calls_captured_in_namespaces_replay_with_exact_counts", &out) {
        return;
    }
    assert!(
        out.status.success(),
        "capture script failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_secsip")).args(["check", "--pcap", pcap.to_str().unwrap(), "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let last = text.lines().last().unwrap();
    let s: Value = serde_json::from_str::<Value>(last).unwrap()["summary"].clone();
    // Per call: REGISTER 401 REGISTER 200 INVITE 100 180 200 ACK BYE 200.
    assert_eq!(s["sip_messages"], 11 * calls, "{s}");
    assert_eq!(s["malformed"], 0, "{s}");
    assert_eq!(s["dialogs"], calls, "{s}");
    assert_eq!(s["dialogs_confirmed"], calls, "{s}");
    assert_eq!(s["transactions"], 5 * calls, "{s}");
    assert_eq!(s["stray_responses"], 0, "{s}");
    assert_eq!(s["message_verdicts"]["accept"], 11 * calls, "{s}");
    std::fs::remove_dir_all(&dir).ok();
}
