//! `secsip-perf --quick` end to end: the smoke test CI runs. It asserts what the run must
//! produce (the three report forms, a step per middle and workload, the appliance's own
//! measurements where it is the middle), never how fast anything was: CI machines are noisy
//! and the numbers belong in reports, not in pass/fail.

#[path = "common/appliance.rs"]
mod appliance;

use serde_json::Value;
use std::process::Command;

#[test]
fn quick_run_writes_json_markdown_and_plots() {
    if appliance::testbed_skipped("quick_run_writes_json_markdown_and_plots") {
        return;
    }
    let out = appliance::root().join("target/perf-smoke");
    let _ = std::fs::remove_dir_all(&out);
    let run = Command::new(env!("CARGO_BIN_EXE_secsip-perf"))
        .args(["--quick", "--out"])
        .arg(&out)
        .args(["--secsip", env!("CARGO_BIN_EXE_secsip")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "secsip-perf --quick failed:\n{stderr}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let steps = report["steps"].as_array().unwrap();
    // A progress line per step.
    assert_eq!(stderr.lines().filter(|l| l.starts_with('[')).count(), steps.len(), "{stderr}");
    for w in ["calls", "flood", "latency", "rule_sweep"] {
        for m in ["bridge", "secsip", "secsip-rtc", "secsip-rules=10", "secsip-rules=1000"] {
            let n = steps.iter().filter(|s| s["workload"] == w && s["middle"] == m).count();
            let planned = matches!((w, m), ("calls" | "latency", "bridge" | "secsip") | ("flood", _) | ("rule_sweep", "secsip-rules=10" | "secsip-rules=1000"));
            assert_eq!(n > 0, planned, "{w} steps for {m}: {n}");
        }
    }
    for s in steps {
        let appliance = s["middle"] != "bridge";
        assert!(s["attempted"].as_u64().unwrap() > 0, "{s}");
        // At the quick ladder's lowest rate nothing may be lost on any middle.
        if s["target_rate"].as_f64().unwrap() <= 500.0 {
            assert!(s["passed"].as_bool().unwrap(), "lowest step failed: {s}");
        }
        assert_eq!(s["appliance_latency_us"].is_object(), appliance, "{s}");
        assert_eq!(s["cpu"]["middle_s"].is_number(), appliance, "{s}");
        assert!(s["cpu"]["sipp_client_s"].as_f64().unwrap() > 0.0, "{s}");
        if s["workload"] == "latency" || s["workload"] == "rule_sweep" {
            assert!(s["wire_latency_us"]["count"].as_u64().unwrap() > 0, "no message matched between the captures: {s}");
        }
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for section in ["Targets", "Highest rates", "Every step"] {
        assert!(md.contains(section), "report.md has no {section} section:\n{md}");
    }
    let svgs: Vec<_> = std::fs::read_dir(&out).unwrap().flatten().filter(|e| e.path().extension().is_some_and(|x| x == "svg")).collect();
    assert!(svgs.len() >= 3, "plots: {svgs:?}");
    for e in svgs {
        assert!(std::fs::read_to_string(e.path()).unwrap().contains("<svg"), "{:?}", e.path());
    }
    // Nothing of the testbed is left behind.
    let ns = String::from_utf8_lossy(&Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).to_string();
    let mine = format!("{}sperf-", std::env::var("SECSIP_TESTBED_PREFIX").unwrap_or_default());
    assert!(!ns.lines().any(|l| l.starts_with(&mine)), "namespaces left: {ns}");
}
