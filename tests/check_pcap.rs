//! `secsip check --pcap` end to end: captures built from fixtures, run through the binary.

use secsip::fixtures::{self, CallParams, Direction};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("secsip-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn secsip(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_secsip")).args(args).output().expect("run secsip")
}

/// Frames of `calls` complete calls (distinct Call-IDs), 10 ms apart.
fn call_frames(calls: usize, v6: bool) -> Vec<(u64, Vec<u8>)> {
    let mut frames = vec![];
    let mut t = 1_700_000_000_000_000_000u64;
    for n in 0..calls {
        let mut p = CallParams { call_id: format!("call-{n}-a84b4c76e66710@pc33"), ..Default::default() };
        if v6 {
            p.client_ip = "2001:db8::1".parse().unwrap();
            p.server_ip = "2001:db8::2".parse().unwrap();
        }
        let c = SocketAddr::new(p.client_ip, p.client_port);
        let s = SocketAddr::new(p.server_ip, p.server_port);
        for (dir, m) in fixtures::complete_call(&p) {
            let (a, b) = if dir == Direction::ClientToServer { (c, s) } else { (s, c) };
            frames.push((t, fixtures::udp_frame(a, b, &m)));
            t += 10_000_000;
        }
    }
    frames
}

fn json_lines(out: &[u8]) -> (Vec<Value>, Value) {
    let text = String::from_utf8(out.to_vec()).unwrap();
    let mut lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary = lines.pop().expect("summary line");
    (lines, summary["summary"].clone())
}

fn check_json(pcap: &Path) -> (Vec<Value>, Value) {
    let out = secsip(&["check", "--pcap", pcap.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    json_lines(&out.stdout)
}

#[test]
fn complete_call_has_one_dialog_five_transactions_and_nothing_malformed() {
    for v6 in [false, true] {
        let d = tmpdir(if v6 { "call6" } else { "call4" });
        let pcap = d.join("call.pcap");
        fixtures::write_pcap(&pcap, &call_frames(1, v6)).unwrap();
        let (msgs, s) = check_json(&pcap);
        assert_eq!(msgs.len(), 11);
        assert_eq!(s["sip_messages"], 11);
        assert_eq!(s["dialogs"], 1);
        assert_eq!(s["dialogs_confirmed"], 1);
        assert_eq!(s["transactions"], 5);
        assert_eq!(s["malformed"], 0);
        assert_eq!(s["requests"]["REGISTER"], 2);
        assert_eq!(s["requests"]["INVITE"], 1);
        assert_eq!(s["responses"]["1xx"], 2);
        assert_eq!(s["responses"]["2xx"], 3);
        assert_eq!(s["responses"]["4xx"], 1);
        assert_eq!(s["message_verdicts"]["accept"], 11);
        // Per-message objects carry the documented fields.
        let first = &msgs[0];
        assert_eq!(first["method"], "REGISTER");
        assert_eq!(first["verdict"], "accept");
        assert_eq!(first["reasons"], Value::Array(vec![]));
        assert!(first["call_id"].as_str().unwrap().starts_with("call-0-"));
        assert!(first["src"].as_str().unwrap().ends_with(":5060"));
        assert_eq!(msgs[1]["status"], 401);
        assert!(msgs[1].get("method").is_none());
        std::fs::remove_dir_all(&d).ok();
    }
}

#[test]
fn many_calls_count_exactly() {
    let d = tmpdir("many");
    let pcap = d.join("calls.pcap");
    fixtures::write_pcap(&pcap, &call_frames(50, false)).unwrap();
    let (_, s) = check_json(&pcap);
    assert_eq!(s["sip_messages"], 550);
    assert_eq!(s["dialogs"], 50);
    assert_eq!(s["transactions"], 250);
    assert_eq!(s["malformed"], 0);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn malformed_messages_are_dropped_named_and_written_apart() {
    let d = tmpdir("bad");
    let pcap = d.join("mixed.pcap");
    let mut frames = call_frames(1, false);
    let c: SocketAddr = "10.77.0.1:5060".parse().unwrap();
    let s: SocketAddr = "10.77.0.2:5060".parse().unwrap();
    let t = frames.last().unwrap().0;
    // No Call-ID, no CSeq; then a bad version; then RTP-like non-SIP traffic.
    let bad1 = b"OPTIONS sip:x@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.77.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:x@example.com>\r\n\r\n";
    let bad2 = b"OPTIONS sip:x@example.com SIP/3.0\r\nVia: SIP/2.0/UDP 10.77.0.1;branch=z9hG4bK2\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:x@example.com>\r\nCall-ID: q\r\nCSeq: 1 OPTIONS\r\n\r\n";
    frames.push((t + 1, fixtures::udp_frame(c, s, bad1)));
    frames.push((t + 2, fixtures::udp_frame(c, s, bad2)));
    frames.push((t + 3, fixtures::udp_frame("10.77.0.1:40000".parse().unwrap(), "10.77.0.2:40002".parse().unwrap(), &[0x80; 100])));
    fixtures::write_pcap(&pcap, &frames).unwrap();

    let passed = d.join("passed.pcap");
    let dropped = d.join("dropped.pcap");
    let out = secsip(&[
        "check", "--pcap", pcap.to_str().unwrap(), "--json",
        "--write-passed", passed.to_str().unwrap(), "--write-dropped", dropped.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let (msgs, s) = json_lines(&out.stdout);
    assert_eq!(msgs.len(), 13);
    assert_eq!(msgs[11]["verdict"], "drop");
    let r1: Vec<&str> = msgs[11]["reasons"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(r1.contains(&"missing_call_id") && r1.contains(&"missing_cseq"), "{r1:?}");
    assert!(msgs[12]["reasons"].as_array().unwrap().iter().any(|v| v == "bad_version"));
    assert_eq!(s["malformed"], 2);
    assert_eq!(s["malformed_by_reason"]["missing_call_id"], 1);
    assert_eq!(s["message_verdicts"]["drop"], 2);
    assert_eq!(s["frame_verdicts"]["accept"], 12);
    assert_eq!(s["frame_causes"]["not_sip"], 1);

    // The written pcaps hold exactly the frames of each verdict, and replay accordingly.
    let (_, sp) = check_json(&passed);
    assert_eq!(sp["frames"], 12);
    assert_eq!(sp["malformed"], 0);
    let (_, sd) = check_json(&dropped);
    assert_eq!(sd["frames"], 2);
    assert_eq!(sd["malformed"], 2);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn fragmented_invites_reassemble_in_v4_and_v6() {
    let d = tmpdir("frag");
    for (name, src, dst) in [("v4", "10.77.0.1:5060", "10.77.0.2:5060"), ("v6", "[2001:db8::1]:5060", "[2001:db8::2]:5060")] {
        let (src, dst): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        let p = CallParams { client_ip: src.ip(), server_ip: dst.ip(), ..Default::default() };
        let mut invite = fixtures::complete_call(&p)[4].1.clone();
        fixtures::pad_body(&mut invite, 3000);
        let frags = fixtures::fragment_udp(src, dst, &invite, 1000, 4242);
        assert!(frags.len() >= 4);
        let frames: Vec<(u64, Vec<u8>)> = frags.into_iter().enumerate().map(|(i, f)| (1_000_000 + i as u64, f)).collect();
        let pcap = d.join(format!("frag-{name}.pcap"));
        fixtures::write_pcap(&pcap, &frames).unwrap();
        let (msgs, s) = check_json(&pcap);
        assert_eq!(msgs.len(), 1, "{name}: one message from {} fragments", frames.len());
        assert_eq!(msgs[0]["method"], "INVITE");
        assert_eq!(msgs[0]["verdict"], "accept");
        assert_eq!(s["reassembled"], 1);
        assert_eq!(s["frame_verdicts"]["accept"], frames.len());
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn unreadable_input_fails_with_a_reason() {
    let d = tmpdir("unreadable");
    let out = secsip(&["check", "--pcap", d.join("missing.pcap").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.pcap") && err.contains("No such file"), "{err}");

    let junk = d.join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture at all").unwrap();
    let out = secsip(&["check", "--pcap", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a readable pcap"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn verbose_text_report_lists_messages_and_summary() {
    let d = tmpdir("verbose");
    let pcap = d.join("call.pcap");
    fixtures::write_pcap(&pcap, &call_frames(1, false)).unwrap();
    let out = secsip(&["check", "--pcap", pcap.to_str().unwrap(), "--verbose"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().filter(|l| l.contains(" -> ")).count(), 11);
    assert!(text.contains("INVITE"));
    assert!(text.contains("dialogs"));
    assert!(text.contains("1 created, 1 confirmed, 1 ended"), "{text}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn config_check_reports_file_line_and_column() {
    let d = tmpdir("conf");
    let good = d.join("good.toml");
    std::fs::write(&good, "[engine]\nsip_udp_ports = [5060, 5080]\n").unwrap();
    let out = secsip(&["--check", "-c", good.to_str().unwrap()]);
    assert!(out.status.success());
    let bad = d.join("bad.toml");
    std::fs::write(&bad, "[engine]\nsip_udp_ports = [5060]\n\n[engine.dialogs]\nmax_entrie = 10\n").unwrap();
    let out = secsip(&["--check", "-c", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:5:1:") && err.contains("max_entrie"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn config_check_compiles_the_rules_it_names() {
    let d = tmpdir("confrules");
    let rules = d.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("a.toml"), "[[rule]]\nid = \"x\"\nwhen = 'sip.metod == \"BYE\"'\naction = \"drop\"\n").unwrap();
    let conf = d.join("secsip.toml");
    std::fs::write(&conf, format!("[rules]\ndir = \"{}\"\n", rules.display())).unwrap();
    let out = secsip(&["--check", "-c", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a.toml:3:9: 'x': when: unknown field or object 'sip.metod' (did you mean 'sip.method'?)"), "{err}");
    std::fs::write(rules.join("a.toml"), "[[rule]]\nid = \"x\"\nwhen = 'sip.method == \"BYE\"'\naction = \"drop\"\n").unwrap();
    let out = secsip(&["--check", "-c", conf.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn rule_ids_and_tags_appear_in_json_lines() {
    let pcap = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pcaps/sipvicious-scan.pcap");
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let out = secsip(&["check", "--pcap", pcap.to_str().unwrap(), "--json", "--rules", rules.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (msgs, s) = json_lines(&out.stdout);
    assert_eq!(msgs[0]["rule"], "scanner-user-agent");
    assert_eq!(msgs[0]["tags"], serde_json::json!(["scanner"]));
    assert_eq!(msgs[0]["cause"], "rule:scanner-user-agent");
    assert!(msgs[1..].iter().all(|m| m["cause"] == "banned"));
    assert_eq!(s["rule_decisions"]["scanner-user-agent"], 1);
}


#[test]
fn tcp_streams_replay_with_the_appliances_verdicts() {
    use fixtures::tcp_flags::ACK;
    let d = tmpdir("tcp");
    let pcap = d.join("tcp.pcap");
    let p = CallParams::default();
    let ok = String::from_utf8(fixtures::options(&p, 1)).unwrap().replace("SIP/2.0/UDP", "SIP/2.0/TCP").into_bytes();
    let cid = String::from_utf8(ok.clone()).unwrap();
    let start = cid.find("Call-ID:").unwrap();
    let end = start + cid[start..].find("\r\n").unwrap() + 2;
    let bad = format!("\r\n\r\n{}{}", &cid[..start], &cid[end..]).into_bytes();
    let s: SocketAddr = "10.77.0.2:5060".parse().unwrap();
    let conn = |port: u16| -> SocketAddr { format!("10.77.0.1:{port}").parse().unwrap() };
    let t = 1_700_000_000_000_000_000u64;
    let frames = vec![
        // A split honest message, a keepalive-first malformed one, two pipelined honest ones.
        (t, fixtures::tcp_frame(conn(40001), s, 100, 1, ACK, &ok[..30])),
        (t + 1_000, fixtures::tcp_frame(conn(40001), s, 130, 1, ACK, &ok[30..])),
        (t + 2_000, fixtures::tcp_frame(conn(40002), s, 100, 1, ACK, &bad)),
        (t + 3_000, fixtures::tcp_frame(conn(40003), s, 100, 1, ACK, &[ok.clone(), ok.clone()].concat())),
    ];
    fixtures::write_pcap(&pcap, &frames).unwrap();
    let passed = d.join("passed.pcap");
    let out = secsip(&["check", "--pcap", pcap.to_str().unwrap(), "--json", "--write-passed", passed.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (msgs, sum) = json_lines(&out.stdout);
    let verdicts: Vec<&str> = msgs.iter().map(|m| m["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts, ["accept", "drop", "accept"], "{msgs:?}");
    assert!(msgs.iter().all(|m| m["transport"] == "tcp"));
    assert_eq!((sum["frame_verdicts"]["accept"].as_u64(), sum["frame_verdicts"]["drop"].as_u64()), (Some(3), Some(1)), "{sum}");
    let (_, sp) = check_json(&passed);
    assert_eq!(sp["frames"], 3);
    assert_eq!(sp["frame_verdicts"]["accept"], 3);
}
