//! End to end: SIP over WebSocket (RFC 7118) and the TLS port policy, through the appliance,
//! with real sockets (tests/lib/ws_peer.py) whose segments are cut where the test says.
//!
//! WebSocket on port 8080: a scanner's OPTIONS and REGISTER (masked with a real key) are
//! stopped with a reset while their honest twin crosses; a message split over WebSocket
//! frames and TCP segments crosses whole; two messages in one segment are each judged (a
//! scanner behind an honest one takes the segment down); a WebSocket port used without the
//! upgrade is reset.
//! Frames the sniffer must read are masked with the all-zero key (still masked, as a client
//! must; the payload then reads plainly on the wire).
//! TLS: an allowed port carries bytes uninspected, a denied one and an unlisted client get no
//! connection, and a burst of connections is cut at the SYN rate; counters asserted.

#[path = "common/appliance.rs"]
mod appliance;
#[path = "common/craft.rs"]
mod craft;

use appliance::{config_text, root, ChildGuard, Daemon, Side, Testbed};
use craft::{options_with, Sniffer};
use secsip::stream::websocket::build;
use serde_json::Value;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
const ZERO: Option<[u8; 4]> = Some([0, 0, 0, 0]);
const KEY: Option<[u8; 4]> = Some([0x5a, 0x13, 0xc7, 0x81]);

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn peer() -> String {
    root().join("tests/lib/ws_peer.py").display().to_string()
}

/// The server peer listening on `ports`.
fn server(tb: &Testbed, ports: &[&str]) -> ChildGuard {
    let child = tb
        .cmd(Side::Server, "timeout")
        .args(["60", "python3", &peer(), "server", "10.99.0.2"])
        .args(ports)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tb.work.join("ws-server.log")).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    ChildGuard(Some(child))
}

/// Connects from `sport` to `dport`, sends `segments` (None: wait for the 101); what the
/// client saw at the end: "reset", "closed" or "open".
fn client(tb: &Testbed, sport: u16, dport: u16, segments: &[Option<Vec<u8>>]) -> String {
    let file = tb.work.join(format!("ws-client-{sport}.txt"));
    let lines: Vec<String> = segments
        .iter()
        .map(|s| match s {
            Some(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
            None => "WAIT101".into(),
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = tb.cmd(Side::Client, "timeout").args(["10", "python3", &peer(), "client", &sport.to_string(), &dport.to_string()]).arg(&file).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// `msg` over WebSocket after the upgrade, as `cuts` segments of the frames `frame_cuts` make.
fn upgraded(msg: &[u8], frame_cuts: &[usize], mask: Option<[u8; 4]>, cuts: &[usize]) -> Vec<Option<Vec<u8>>> {
    let wire = build::message(msg, frame_cuts, mask);
    let mut points = vec![0];
    points.extend_from_slice(cuts);
    points.push(wire.len());
    let mut segs = vec![Some(build::request("sip")), None];
    segs.extend(points.windows(2).map(|w| Some(wire[w[0]..w[1]].to_vec())));
    segs
}

fn ws_sip(token: &str, ua: &str) -> Vec<u8> {
    String::from_utf8(options_with(token, ua, "10.99.0.1")).unwrap().replace("SIP/2.0/UDP 10.99.0.1:5060", "SIP/2.0/WS df7jal23ls0d.invalid").into_bytes()
}

fn ws_register(token: &str, ua: &str) -> Vec<u8> {
    String::from_utf8(ws_sip(token, ua))
        .unwrap()
        .replace("OPTIONS sip:100@10.99.0.2", "REGISTER sip:10.99.0.2")
        .replace("CSeq: 1 OPTIONS", "CSeq: 1 REGISTER")
        .replace("Content-Length: 0", "Contact: <sip:probe@df7jal23ls0d.invalid;transport=ws>\r\nContent-Length: 0")
        .into_bytes()
}

/// The server saw an RST on the connection from client port `sport` (the firewall's reset).
fn assert_reset(sniff: &Sniffer, sport: u16, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        if !sniff.resets(sport, true).is_empty() {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: no RST reached the server");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sip_over_websocket_is_judged_and_a_refusal_resets() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(tb) = Testbed::up("ws") else { return };
    let rules = tb.work.join("rules-ws");
    std::fs::create_dir_all(&rules).unwrap();
    let rule = "[[rule]]\nid = \"scanner-ua\"\nwhen = 'sip.ua matches \"friendly-scanner\"'\naction = \"drop\"\n";
    std::fs::write(rules.join("10-scanner.toml"), rule).unwrap();
    let extra = "[engine]\nsip_ws_ports = [8080]\n";
    let d = Daemon::start(&tb, "ws", &config_text(&rules, extra), &["--engines", "1"]);
    let _srv = server(&tb, &["8080"]);
    let sniff = Sniffer::start(&tb, Side::Server, "eth0");
    let t0 = std::time::Instant::now();

    let m = ws_sip("ws-ok-1", "Linphone/5.2");
    assert_eq!(client(&tb, 43_001, 8080, &upgraded(&m, &[], ZERO, &[])), "open", "honest OPTIONS over WebSocket");
    assert!(sniff.wait_for(b"Subject: ws-ok-1\r\n", Duration::from_secs(2)), "the honest OPTIONS did not cross");
    let m = ws_sip("ws-bad-1", "friendly-scanner");
    client(&tb, 43_002, 8080, &upgraded(&m, &[], ZERO, &[]));
    assert_reset(&sniff, 43_002, "scanner OPTIONS");
    let m = ws_register("ws-bad-2", "friendly-scanner");
    client(&tb, 43_003, 8080, &upgraded(&m, &[], KEY, &[]));
    assert_reset(&sniff, 43_003, "scanner REGISTER, masked");
    let m = ws_register("ws-ok-2", "Linphone/5.2");
    assert_eq!(client(&tb, 43_004, 8080, &upgraded(&m, &[], KEY, &[])), "open", "honest REGISTER, masked");

    // Split over three frames (cuts before the Subject line) and five segments, one of them
    // inside the second frame's header.
    let m = ws_sip("ws-ok-split", "Linphone/5.2");
    let subject = m.windows(8).position(|w| w == b"Subject:").unwrap();
    let (f1, f2) = (20, subject - 10);
    let segs = upgraded(&m, &[f1, f2], ZERO, &[3, 6 + f1 + 1, 6 + f1 + 4, 6 + f2 + 20]);
    assert_eq!(client(&tb, 43_005, 8080, &segs), "open");
    assert!(sniff.wait_for(b"Subject: ws-ok-split\r\n", Duration::from_secs(2)), "a split message did not cross");
    let m = ws_sip("ws-bad-split", "friendly-scanner");
    let subject = m.windows(8).position(|w| w == b"Subject:").unwrap();
    let segs = upgraded(&m, &[20, subject - 10], ZERO, &[3, 27, 30, 6 + subject + 10]);
    client(&tb, 43_006, 8080, &segs);
    assert_reset(&sniff, 43_006, "a split scanner message");

    // Two messages in one segment: both judged; the scanner behind an honest message takes
    // the whole segment down with it.
    let two = [build::message(&ws_sip("ws-ok-pipe-a", "Linphone/5.2"), &[], ZERO), build::message(&ws_sip("ws-ok-pipe-b", "Linphone/5.2"), &[30], ZERO)].concat();
    assert_eq!(client(&tb, 43_008, 8080, &[Some(build::request("sip")), None, Some(two)]), "open");
    assert!(sniff.wait_for(b"Subject: ws-ok-pipe-b\r\n", Duration::from_secs(2)) && !sniff.with(b"Subject: ws-ok-pipe-a\r\n").is_empty());
    let two = [build::message(&ws_sip("ws-bad-pipe-a", "Linphone/5.2"), &[], ZERO), build::message(&ws_sip("ws-bad-pipe-b", "friendly-scanner"), &[], ZERO)].concat();
    client(&tb, 43_009, 8080, &[Some(build::request("sip")), None, Some(two)]);
    assert_reset(&sniff, 43_009, "a scanner pipelined behind an honest message");

    // No upgrade: plain SIP on the WebSocket port.
    let plain = String::from_utf8(options_with("ws-plain", "Linphone/5.2", "10.99.0.1")).unwrap().replace("SIP/2.0/UDP", "SIP/2.0/TCP").into_bytes();
    client(&tb, 43_007, 8080, &[Some(plain)]);
    assert_reset(&sniff, 43_007, "SIP without the upgrade");
    std::thread::sleep(Duration::from_millis(300));
    for bad in ["ws-bad-1", "ws-bad-split", "ws-plain", "ws-bad-pipe"] {
        assert!(sniff.with(bad.as_bytes()).is_empty(), "{bad} crossed");
    }
    let s = d.stats();
    let e = &s["engines"][0]["stats"];
    let err = |name: &str| n(&e["tcp"]["errors"][secsip::stream::StreamError::ALL.iter().position(|x| x.name() == name).unwrap()]);
    assert_eq!(n(&e["tcp"]["ws_handshakes"]), 16, "eight upgraded connections, request and 101 each: {}", e["tcp"]);
    assert!(n(&e["tcp"]["ws_messages"]) >= 10, "{}", e["tcp"]);
    // Once reset, a connection is forgotten: the client's retransmissions of refused bytes
    // are a connection without upgrade, refused again.
    assert!(err("ws_no_upgrade") >= 1, "{}", e["tcp"]);
    assert!(n(&e["tcp_resets"]) >= 4, "{e}");
    eprintln!("websocket e2e: {:?}, tcp {}", t0.elapsed(), e["tcp"]);
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
}

#[test]
fn tls_ports_follow_their_policy_and_the_syn_rate() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(tb) = Testbed::up("tls") else { return };
    let extra = "[engine.tls]\nsyn_per_second = 5\nports = [\n  { port = 5061, policy = \"allow\" },\n  { port = 443, policy = \"deny\" },\n  \
                 { port = 8443, policy = \"sources\", sources = [\"192.0.2.0/24\"] },\n  { port = 9443, policy = \"sources\", sources = [\"10.99.0.0/24\"] },\n]\n";
    let d = Daemon::start(&tb, "tls", &config_text(&root().join("rules"), extra), &["--engines", "2"]);
    let _srv = server(&tb, &["5061", "443", "8443", "9443"]);
    let sniff = Sniffer::start(&tb, Side::Server, "eth0");
    let hello = b"\x16\x03\x01 tls-uninspected-hello".to_vec();
    assert_eq!(client(&tb, 44_001, 5061, &[Some(hello.clone())]), "open", "allowed port");
    assert!(sniff.wait_for(b"tls-uninspected-hello", Duration::from_secs(2)), "allowed TLS bytes did not cross");
    assert_eq!(client(&tb, 44_002, 9443, &[Some(hello.clone())]), "open", "listed client");
    std::thread::sleep(Duration::from_millis(1100)); // a fresh second for the rate
    let connect = |port: &str, count: &str| -> u64 {
        let out = tb.cmd(Side::Client, "timeout").args(["10", "python3", &peer(), "connect", port, count, "0.6"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(u64::MAX)
    };
    let burst = connect("5061", "20");
    assert!((1..=5).contains(&burst), "a burst of 20 SYNs: {burst} connected, the rate is 5/s");
    assert_eq!(connect("443", "3"), 0, "a denied port");
    assert_eq!(connect("8443", "3"), 0, "an unlisted client");
    let s = d.stats();
    let sum = |f: &dyn Fn(&Value) -> u64| s["engines"].as_array().unwrap().iter().map(|e| f(&e["stats"]["tls"])).sum::<u64>();
    let denied = |i: usize| sum(&|t| n(&t["denied"][i]));
    let (frames, conns) = (sum(&|t| n(&t["uninspected_frames"])), sum(&|t| n(&t["uninspected_connections"])));
    eprintln!("tls e2e: frames {frames}, connections {conns}, denied policy {} unlisted {} rate {}", denied(0), denied(1), denied(2));
    assert!(conns >= 2 + burst && frames > conns, "uninspected: {frames} frames, {conns} connections");
    assert!(denied(0) >= 3 && denied(1) >= 3 && denied(2) >= 15, "denials: {}", s["engines"]);
    assert!(n(&s["verdicts"]["tls.accept"]) >= frames, "verdicts: {}", s["verdicts"]);
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
}
