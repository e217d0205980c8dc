//! End to end: the appliance as a transparent AF_XDP bridge between two network namespaces,
//! with real SIPp calls, real sipvicious scans and forged requests crossing it.
//!
//! Each test builds its own testbed (tests/lib/testbed.sh) and runs `secsip run` in the middle
//! namespace. They run one at a time (a static lock): the machine has two cores, and SIPp
//! loads in parallel would measure each other. Without root or namespaces they print SKIPPED
//! (unless SECSIP_REQUIRE_NETNS=1, as in CI, where that is a failure).

#[path = "common/appliance.rs"]
mod appliance;

use appliance::{config_text, root, sipvicious, Daemon, Side, SippResult, Testbed};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn shipped_rules() -> std::path::PathBuf {
    root().join("rules")
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn xdp(r: &Value, nic: usize, counter: &str) -> u64 {
    n(&r["nics"][nic]["xdp"][counter])
}

fn rule_hits(r: &Value, id: &str) -> u64 {
    n(&r["rule_hits"][id])
}

fn assert_calls_ok(what: &str, r: &SippResult, calls: u64) {
    assert_eq!(
        (r.successful, r.failed, r.unexpected),
        (calls, 0, 0),
        "{what}: expected {calls} successful calls and no failure: {r:?}"
    );
}

#[test]
fn calls_cross_and_everything_else_is_bridged_in_the_kernel() {
    let _g = serial();
    let Some(tb) = Testbed::up("ssp-calls") else { return };
    let d = Daemon::start(&tb, "calls", &config_text(&shipped_rules(), ""), &[]);
    let _uas = tb.uas("calls");

    // 90 calls/s: the shipped rules cap new INVITEs per source at 100/s (burst 200).
    let r = tb.uac("calls", "10.99.0.1", 5060, 1000, 90, 40);
    assert_calls_ok("1000 calls through the bridge", &r, 1000);

    assert!(tb.ping("10.99.0.2", 5), "ICMP v4 does not cross");
    assert!(tb.ping("fd99::2", 5), "ICMP v6 (and neighbour discovery) does not cross");
    assert!(tb.arp_resolved(), "ARP did not resolve the server through the bridge");
    let got = tb.udp_stream(500, 1000);
    assert_eq!(got, 500, "UDP 'RTP' stream lost datagrams");

    let s = d.assert_frames_home();
    // The non-SIP traffic never reached userspace: the kernel bridged it.
    let bridged = xdp(&s, 0, "bridged");
    assert!(bridged >= 500 + 5, "outside bridged in kernel only {bridged}");
    assert!(xdp(&s, 1, "bridged") >= 5, "inside: ICMP replies should be bridged in kernel");
    // 1000 calls = 3000 SIP messages each way (INVITE, ACK, BYE / 180, 200, 200), retransmissions aside.
    let to_user = xdp(&s, 0, "to_userspace") + xdp(&s, 1, "to_userspace");
    assert!(to_user >= 6000, "SIP frames to userspace: {to_user}");
    let q = &s["queues"][0]["counters"];
    assert_eq!(n(&q["rx"]["outside"]) + n(&q["rx"]["inside"]), to_user, "every redirected frame was received");
    assert_eq!(n(&q["tx"]["outside"]) + n(&q["tx"]["inside"]), to_user, "every SIP frame was forwarded: {}", s["verdicts"]);
    assert_eq!(n(&s["verdicts"]["valid.accept"]), to_user, "{}", s["verdicts"]);
    assert!(n(&s["latency"][0]["count"]) >= to_user, "latency recorded for every SIP frame");
    let (st, log) = d.stop();
    assert!(st.success(), "secsip exit {st}:\n{log}");
    assert!(log.contains("unaccounted 0"), "{log}");
}

#[test]
fn run_to_completion_mode_carries_calls() {
    let _g = serial();
    let Some(tb) = Testbed::up("ssp-rtc") else { return };
    let d = Daemon::start(&tb, "rtc", &config_text(&shipped_rules(), ""), &["--engines", "0"]);
    assert_eq!(d.stats()["mode"], "run-to-completion");
    let _uas = tb.uas("rtc");
    let r = tb.uac("rtc", "10.99.0.1", 5060, 200, 90, 30);
    assert_calls_ok("200 calls, run-to-completion", &r, 200);
    let _uas6 = tb.uas_on("rtc6", "fd99::2");
    let r6 = tb.uac("rtc6", "fd99::1", 5060, 100, 50, 30);
    assert_calls_ok("100 calls over IPv6, run-to-completion", &r6, 100);
    d.assert_frames_home();
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
}

#[test]
fn a_forged_bye_is_dropped_and_the_real_one_passes() {
    let _g = serial();
    let Some(tb) = Testbed::up("ssp-bye") else { return };
    let d = Daemon::start(&tb, "bye", &config_text(&shipped_rules(), ""), &[]);
    let _uas = tb.uas("bye");
    let out = tb
        .cmd(Side::Client, "timeout")
        .args(["20", "python3"])
        .arg(root().join("tests/attacks/bye-attack.py"))
        .args(["--caller", "10.99.0.1:5062", "--attacker", "10.99.0.3:5060", "--callee", "10.99.0.2:5060"])
        .output()
        .unwrap();
    let res: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("bye-attack.py: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(res["call_established"], true, "{res}");
    assert_eq!(res["forged_bye_accepted"], false, "the forged BYE reached the callee: {res}");
    assert_eq!(res["real_bye_status"], 200, "the caller's own BYE did not end the call: {res}");
    let s = d.assert_frames_home();
    assert_eq!(rule_hits(&s, "dialog-forged-request"), 1, "{}", s["rule_hits"]);
    let ev = d.wait_event("dialog-forged-request").unwrap_or_else(|| panic!("no event for the forged BYE: {:?}", d.events()));
    assert_eq!(ev["event_type"], "drop", "{ev}");
    assert_eq!(ev["src_ip"], "10.99.0.3", "{ev}");
    assert_eq!(ev["in_iface"], "outside", "{ev}");
    assert_eq!(ev["sip"]["method"], "BYE", "{ev}");
    assert_eq!(ev["alert"]["action"], "blocked", "{ev}");
    d.stop();
}

#[test]
fn scans_get_no_answer_and_the_rules_are_named() {
    let _g = serial();
    let Some(tb) = Testbed::up("ssp-scan") else { return };
    let d = Daemon::start(&tb, "scan", &config_text(&shipped_rules(), ""), &[]);
    // A target that answers scanners like a real PBX (it would be found without the firewall).
    let target = tb
        .cmd(Side::Server, "timeout")
        .args(["60", "python3"])
        .arg(root().join("tests/attacks/target.py"))
        .args(["--bind", "10.99.0.2:5060", "--users", "100,101,102,110", "--max-seconds", "55"])
        .stdout(std::fs::File::create(tb.work.join("target.json")).unwrap())
        .stderr(std::fs::File::create(tb.work.join("target.log")).unwrap())
        .spawn()
        .unwrap();
    let _target = appliance::ChildGuard(Some(target));
    std::thread::sleep(Duration::from_millis(500));
    let run = |tool: &str, args: &[&str]| -> String {
        let sv = sipvicious(tool);
        let out = tb.cmd(Side::Client, "timeout").arg("40").args(&sv).args(args).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        std::fs::write(tb.work.join(format!("{tool}.log")), &text).unwrap();
        text
    };
    let svmap = run("svmap", &["-x", "10.99.0.1", "10.99.0.2"]);
    assert!(!svmap.contains("10.99.0.2:5060"), "svmap found the server through the firewall:\n{svmap}");
    let svwar = run("svwar", &["-x", "10.99.0.1", "-e", "95-115", "10.99.0.2"]);
    for ext in ["100", "101", "102", "110"] {
        assert!(!svwar.lines().any(|l| l.contains(&format!("| {ext} "))), "svwar found extension {ext}:\n{svwar}");
    }
    let s = d.assert_frames_home();
    let hits = s["rule_hits"].as_object().unwrap();
    assert!(hits.keys().any(|k| k.starts_with("scanner-")), "no scanner rule fired: {}", s["rule_hits"]);
    let dropped: u64 = s["verdicts"].as_object().unwrap().iter().filter(|(k, _)| !k.ends_with(".accept")).map(|(_, v)| n(v)).sum();
    assert!(dropped > 0, "{}", s["verdicts"]);
    // The event log names the rules that stopped the scan.
    // Once banned, the scanner's SIP is dropped in XDP, before userspace.
    assert!(n(&s["bans"]["in_xdp"]) >= 1, "{}", s["bans"]);
    let scanner = hits.keys().find(|k| k.starts_with("scanner-")).unwrap().clone();
    let ev = d.wait_event(&scanner).unwrap_or_else(|| panic!("no event names {scanner}: {:?}", d.events()));
    assert_eq!(ev["src_ip"], "10.99.0.1", "{ev}");
    assert!(ev["sip"]["user_agent"].as_str().is_some_and(|u| !u.is_empty()), "{ev}");
    d.stop();
}

#[test]
fn an_invite_flood_is_cut_to_the_limit_and_another_caller_still_calls() {
    let _g = serial();
    let Some(tb) = Testbed::up("ssp-flood") else { return };
    let d = Daemon::start(&tb, "flood", &config_text(&shipped_rules(), ""), &[]);
    let _uas = tb.uas("flood");
    let start = Instant::now();
    // 400 new calls per second for 4 s from one address: 4x the per-source limit (burst 200,
    // then 100/s).
    let mut flood = tb.uac_cmd("flood", "10.99.0.1", 5060, 1600, 400, 8).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let honest = tb.uac("honest", "10.99.0.3", 5070, 30, 10, 20);
    let _ = flood.wait();
    let elapsed = start.elapsed().as_secs_f64();
    assert_calls_ok("the other caller during the flood", &honest, 30);
    let s = d.assert_frames_home();
    let cut = rule_hits(&s, "flood-invite-rate");
    let admitted = rule_hits(&s, "count-prefix-invites");
    // Every new INVITE admitted for the flooding address: the burst plus the leak rate.
    let limit = 200.0 + 100.0 * (elapsed + 1.0);
    assert!(cut > 300, "the flood was not cut: {}", s["rule_hits"]);
    assert!((admitted as f64) <= limit + 30.0 + 10.0, "admitted {admitted} new INVITEs in {elapsed:.1} s (limit {limit:.0} + the other caller's 30)");
    assert!(admitted >= 200, "admitted only {admitted}: the burst should pass");
    d.stop();
}

fn write_rules(dir: &Path, extra: &str) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("lists")).unwrap();
    for e in std::fs::read_dir(shipped_rules()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    for e in std::fs::read_dir(shipped_rules().join("lists")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join("lists").join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.join("99-extra.toml"), extra).unwrap();
}

#[test]
fn twenty_reloads_during_calls_lose_nothing_and_a_broken_file_changes_nothing() {
    let _g = serial();
    let Some(tb) = Testbed::up("ssp-reload") else { return };
    let (a, b) = (tb.work.join("rules-a"), tb.work.join("rules-b"));
    write_rules(&a, "# set A: the shipped rules\n");
    write_rules(&b, "[[rule]]\nid = \"set-b-marker\"\nwhen = 'sip.method == \"MESSAGE\"'\naction = \"drop\"\n");
    let d = Daemon::start(&tb, "reload", &config_text(&a, ""), &[]);
    let _uas = tb.uas("reload");
    let mut uac = tb.uac_cmd("reload", "10.99.0.1", 5060, 1000, 90, 40).spawn().unwrap();
    for i in 0..20 {
        std::thread::sleep(Duration::from_millis(400));
        let dir = if i % 2 == 0 { &b } else { &a };
        std::fs::write(&d.config, config_text(dir, "")).unwrap();
        d.reload();
    }
    let st = uac.wait().unwrap();
    let r = SippResult::read(&tb.work.join("uac-reload.csv"), st);
    assert_calls_ok("1000 calls during 20 reloads", &r, 1000);
    // Wait for the last reload to be counted.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut s = d.stats();
    while n(&s["reloads"]["ok"]) < 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        s = d.stats();
    }
    assert_eq!((n(&s["reloads"]["ok"]), n(&s["reloads"]["failed"])), (20, 0), "{}", s["reloads"]);
    let swaps: u64 = s["engines"].as_array().unwrap().iter().map(|e| n(&e["judge"]["rule_swaps"])).sum();
    assert!(swaps >= 1, "the engines never picked up a reloaded set");
    let rules_before = n(&s["reloads"]["rules"]);

    // A broken file: refused, reported with file:line:col, the running set stays.
    std::fs::write(a.join("99-extra.toml"), "[[rule]]\nid = \"broken\"\nwhen = 'sip.method == '\n").unwrap();
    std::fs::write(&d.config, config_text(&a, "")).unwrap();
    d.reload();
    let deadline = Instant::now() + Duration::from_secs(5);
    while n(&s["reloads"]["failed"]) < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        s = d.stats();
    }
    assert_eq!(n(&s["reloads"]["failed"]), 1, "{}", s["reloads"]);
    let err = s["reloads"]["last_error"].as_str().unwrap_or_default().to_string();
    assert!(err.contains("99-extra.toml:3:"), "error does not name file and line: {err}");
    assert_eq!(n(&s["reloads"]["rules"]), rules_before, "the running set changed");
    let r2 = tb.uac("after-broken", "10.99.0.1", 5060, 20, 20, 20);
    assert_calls_ok("calls after a refused reload", &r2, 20);
    d.assert_frames_home();
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
    assert!(log.contains("reload refused"), "{log}");
}

fn sigkill_during_calls(name: &str, policy: &str) -> (SippResult, SippResult) {
    let tb = Testbed::up(name).unwrap();
    let d = Daemon::start(&tb, policy, &config_text(&shipped_rules(), ""), &["--failure", policy]);
    let _uas = tb.uas(policy);
    let before = tb.uac("before", "10.99.0.1", 5060, 50, 50, 20);
    d.assert_frames_home();
    d.kill();
    std::thread::sleep(Duration::from_millis(200));
    let after = tb.uac("after", "10.99.0.1", 5060, 50, 50, 10);
    // ARP, ICMP and RTP are bridged in the kernel either way.
    assert!(tb.ping("10.99.0.2", 3), "non-SIP stopped crossing after the daemon died");
    (before, after)
}

#[test]
fn fail_open_keeps_sip_flowing_when_the_daemon_is_killed() {
    let _g = serial();
    if appliance::testbed_skipped("fail_open_keeps_sip_flowing_when_the_daemon_is_killed") {
        return;
    }
    let (before, after) = sigkill_during_calls("ssp-fopen", "fail_open");
    assert_calls_ok("before SIGKILL", &before, 50);
    assert_calls_ok("after SIGKILL, fail_open", &after, 50);
}

#[test]
fn fail_closed_stops_sip_when_the_daemon_is_killed() {
    let _g = serial();
    if appliance::testbed_skipped("fail_closed_stops_sip_when_the_daemon_is_killed") {
        return;
    }
    let (before, after) = sigkill_during_calls("ssp-fclose", "fail_closed");
    assert_calls_ok("before SIGKILL", &before, 50);
    assert_eq!(after.successful, 0, "SIP crossed a dead fail_closed appliance: {after:?}");
}

#[test]
fn sigterm_with_fail_closed_detaches_and_restart_replaces_the_pinned_program() {
    let _g = serial();
    let Some(tb) = Testbed::up("ssp-restart") else { return };
    let d = Daemon::start(&tb, "first", &config_text(&shipped_rules(), ""), &[]);
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
    assert!(log.contains("left pinned"), "{log}");
    assert!(tb.ping("10.99.0.2", 2), "fail_open after SIGTERM must keep bridging");
    // A second daemon replaces the pinned program in place.
    let d = Daemon::start(&tb, "second", &config_text(&shipped_rules(), ""), &["--failure", "fail_closed"]);
    let _uas = tb.uas("restart");
    let r = tb.uac("restart", "10.99.0.1", 5060, 10, 10, 15);
    assert_calls_ok("calls after a restart", &r, 10);
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
    assert!(log.contains("detached"), "{log}");
    let out = tb.cmd(Side::Fw, "ip").args(["link", "show", "outside"]).stderr(Stdio::null()).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("xdp"), "program still attached after fail_closed SIGTERM");
}

#[test]
fn a_rejected_call_is_answered_by_the_appliance_with_a_valid_403() {
    let _g = serial();
    let Some(tb) = Testbed::up("ssp-reject") else { return };
    let d = Daemon::start(&tb, "reject", &config_text(&shipped_rules(), ""), &[]);
    // A call to an international revenue-share prefix (rules/70-toll-fraud.toml rejects it).
    let script = r#"
import json, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.99.0.1", 5064)); s.settimeout(3)
m = ("INVITE sip:00882123456@10.99.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.99.0.1:5064;branch=z9hG4bKirsf1\r\n"
     "Max-Forwards: 70\r\nFrom: <sip:alice@10.99.0.1>;tag=a1\r\nTo: <sip:00882123456@10.99.0.2>\r\n"
     "Call-ID: irsf-1@10.99.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@10.99.0.1:5064>\r\nContent-Length: 0\r\n\r\n")
s.sendto(m.encode(), ("10.99.0.2", 5060))
try:
    data, addr = s.recvfrom(65535)
    print(json.dumps({"from": "%s:%d" % addr, "status_line": data.split(b"\r\n")[0].decode(), "call_id": b"irsf-1@10.99.0.1" in data}))
except socket.timeout:
    print(json.dumps({"from": None}))
"#;
    // The kernel hands a datagram to the socket only if its IP and UDP checksums are right.
    let out = tb.cmd(Side::Client, "timeout").args(["10", "python3", "-c", script]).output().unwrap();
    let res: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(res["from"], "10.99.0.2:5060", "no answer, or from elsewhere: {res}");
    assert!(res["status_line"].as_str().unwrap_or_default().starts_with("SIP/2.0 403"), "{res}");
    assert_eq!(res["call_id"], true, "{res}");
    let s = d.assert_frames_home();
    assert_eq!(n(&s["queues"][0]["counters"]["injected"]), 1, "{}", s["queues"]);
    assert_eq!(n(&s["verdicts"]["rule.reject"]), 1, "{}", s["verdicts"]);
    // Nothing reached the server: the inside NIC sent nothing to it.
    assert_eq!(n(&s["queues"][0]["counters"]["tx"]["inside"]), 0, "{}", s["queues"]);
    let ev = d.wait_event("toll-fraud-destination").expect("no event for the reject");
    assert_eq!(ev["event_type"], "reject", "{ev}");
    d.stop();
}

#[test]
fn two_engines_share_the_calls_by_call_id() {
    let _g = serial();
    let Some(tb) = Testbed::up("ssp-shard") else { return };
    let d = Daemon::start(&tb, "shard", &config_text(&shipped_rules(), ""), &["--engines", "2"]);
    let _uas = tb.uas("shard");
    let r = tb.uac("shard", "10.99.0.1", 5060, 300, 90, 30);
    assert_calls_ok("300 calls over two engines", &r, 300);
    let s = d.assert_frames_home();
    let engines = s["engines"].as_array().unwrap();
    assert_eq!(engines.len(), 2);
    let mut terminated = 0;
    for e in engines {
        assert!(n(&e["frames"]) > 300, "an engine got too little of the load: {}", e["frames"]);
        terminated += n(&e["state"]["dialogs_terminated"]);
    }
    // Every dialog ended on the engine that saw it start: both directions met one engine.
    assert_eq!(terminated, 300, "dialogs ended across engines: {terminated}");
    d.stop();
}

#[test]
fn systemd_readiness_comes_after_the_sockets_and_rules() {
    let _g = serial();
    let Some(tb) = Testbed::up("ssp-notify") else { return };
    let sock_path = tb.work.join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let cfg = tb.work.join("notify.toml");
    std::fs::write(&cfg, config_text(&shipped_rules(), "")).unwrap();
    let child = tb
        .cmd(Side::Fw, "env")
        .arg(format!("NOTIFY_SOCKET={}", sock_path.display()))
        .arg(env!("CARGO_BIN_EXE_secsip"))
        .args(["run", "-c"])
        .arg(&cfg)
        .arg("--run-dir")
        .arg(tb.work.join("run-notify"))
        .arg("--bpffs")
        .arg(tb.bpffs())
        .stderr(std::fs::File::create(tb.work.join("notify.log")).unwrap())
        .spawn()
        .unwrap();
    let _child = appliance::ChildGuard(Some(child));
    let mut buf = [0u8; 256];
    let n_read = sock.recv(&mut buf).expect("no sd_notify message within 15 s");
    let msg = String::from_utf8_lossy(&buf[..n_read]).to_string();
    assert!(msg.contains("READY=1"), "{msg}");
    // At READY, the XDP program is attached and the daemon answers.
    let out = tb.cmd(Side::Fw, "ip").args(["link", "show", "outside"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("secsip_xdp"), "READY before XDP was attached");
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_secsip"))
        .args(["stats", "--run-dir"])
        .arg(tb.work.join("run-notify"))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "READY before the control socket answered");
}

#[test]
fn two_queues_get_a_worker_each_and_calls_from_two_sources_cross() {
    let _g = serial();
    let Some(tb) = Testbed::up_with_queues("ssp-queues", 2) else { return };
    let d = Daemon::start(&tb, "queues", &config_text(&shipped_rules(), "queues = 2\nengines = 2\n"), &[]);
    let _uas = tb.uas("queues");
    // Two flows (addresses and ports differ): the veth spreads flows over its queues by hash.
    let mut other = tb.uac_cmd("q-b", "10.99.0.3", 5070, 150, 45, 20).spawn().unwrap();
    let a = tb.uac("q-a", "10.99.0.1", 5060, 150, 45, 20);
    let st = other.wait().unwrap();
    let b = SippResult::read(&tb.work.join("uac-q-b.csv"), st);
    assert_calls_ok("first source", &a, 150);
    assert_calls_ok("second source", &b, 150);
    let s = d.assert_frames_home();
    let queues = s["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 2);
    let rx: u64 = queues.iter().map(|q| n(&q["counters"]["rx"]["outside"]) + n(&q["counters"]["rx"]["inside"])).sum();
    let to_user = xdp(&s, 0, "to_userspace") + xdp(&s, 1, "to_userspace");
    assert_eq!(rx, to_user, "frames redirected to queues were all received");
    assert!(rx >= 1800, "{rx}");
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
}

/// Sends `count` OPTIONS as fast as python can from the client (bounded: one pass).
fn options_burst(tb: &Testbed, count: u32) {
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.99.0.1", 5066))
for i in range(int(sys.argv[1])):
    m = ("OPTIONS sip:10.99.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.99.0.1:5066;branch=z9hG4bKq%d\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:probe@10.99.0.1>;tag=%d\r\nTo: <sip:10.99.0.2>\r\n"
         "Call-ID: burst-%d@10.99.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n") % (i, i, i)
    s.sendto(m.encode(), ("10.99.0.2", 5060))
"#;
    let st = tb.cmd(Side::Client, "timeout").args(["30", "python3", "-c", script, &count.to_string()]).status().unwrap();
    assert!(st.success());
}

#[test]
fn a_full_engine_queue_sheds_whatever_the_failure_policy() {
    let _g = serial();
    let Some(tb) = Testbed::up("ssp-qfull") else { return };
    // One slot per engine queue and a tiny batch: a burst must overflow it. The per-source cap
    // is out of the way, so what sheds is the queue (congestion, then full).
    let extra = "engine_queue = 1\nbatch = 1\n[appliance.admission]\nmax_rate = 1000000\n";
    for policy in ["fail_closed", "fail_open"] {
        let d = Daemon::start(&tb, policy, &config_text(&shipped_rules(), extra), &["--failure", policy]);
        options_burst(&tb, 20_000);
        let s = d.assert_frames_home();
        let c = &s["queues"][0]["counters"];
        let shed = n(&c["shed"]["congestion"]) + n(&c["shed"]["queue_full"]);
        assert!(shed > 0, "{policy}: nothing shed after a burst into a one-slot queue: {c}");
        assert_eq!(n(&c["shed"]["rate"]), 0, "{policy}: {c}");
        assert_eq!(n(&c["uninspected_forwarded"]), 0, "{policy}: a live daemon forwarded uninspected: {c}");
        let (st, log) = d.stop();
        assert!(st.success(), "{log}");
    }
}
