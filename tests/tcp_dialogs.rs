//! End to end, two engines: a call set up over one TCP connection and hung up by the callee
//! over a connection of its own that another engine frames. The BYE is judged by the engine
//! that owns the Call-ID (it holds the dialog), consulted by the framing engine: the honest
//! BYE crosses, a forged one (a To tag no dialog has) is dropped and its connection reset.
//!
//! The daemon's hash key is random, so the test finds out which engine owns what from the
//! per-engine counters: the dialog's engine from `state.dialogs`, a connection's engine by
//! sending its SYN first and seeing whose `tcp.flows_created` grows. Crafted frames, a few
//! seconds. Without root or namespaces it prints SKIPPED (a failure with
//! SECSIP_REQUIRE_NETNS=1).

#[path = "common/appliance.rs"]
mod appliance;
#[path = "common/craft.rs"]
mod craft;

use appliance::{config_text, root, Daemon, Side, Testbed};
use craft::{tcp_flags, FrameSpec, Ip, RawPort, Sniffer, CLIENT_MAC, L4, SERVER_MAC};
use secsip::fixtures::{self, CallParams};
use serde_json::Value;
use std::time::{Duration, Instant};

const CLIENT: &str = "10.99.0.1";
const SERVER: &str = "10.99.0.2";

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// `stats.<path>` of every engine.
fn per_engine(d: &Daemon, f: impl Fn(&Value) -> u64) -> Vec<u64> {
    d.stats()["engines"].as_array().unwrap().iter().map(f).collect()
}

fn tcp(m: &[u8]) -> Vec<u8> {
    String::from_utf8(m.to_vec()).unwrap().replace("SIP/2.0/UDP", "SIP/2.0/TCP").into_bytes()
}

/// Both ends' raw ports: index 0 the client, 1 the server.
struct Ends {
    tx: [RawPort; 2],
}

impl Ends {
    /// Sends a segment from end `from` (port `sport`) to the other end's `dport`.
    fn send(&self, from: usize, sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) {
        let (src, dst, smac, dmac) = if from == 0 { (CLIENT, SERVER, CLIENT_MAC, SERVER_MAC) } else { (SERVER, CLIENT, SERVER_MAC, CLIENT_MAC) };
        let mut l4 = L4::tcp_data(sport, dport, seq, 1, payload);
        if let L4::Tcp { flags: f, .. } = &mut l4 {
            *f = flags;
        }
        let spec = FrameSpec { dst_mac: dmac, src_mac: smac, vlans: vec![], ip: Ip::v4(src, dst), l4 };
        self.tx[from].send(&spec.build());
        std::thread::sleep(Duration::from_millis(20));
    }

    /// Which engine frames the connection from end `from` port `sport` to `dport`: its SYN
    /// is sent, and the engine whose connection count grows is the one.
    fn engine_of(&self, d: &Daemon, from: usize, sport: u16, dport: u16) -> usize {
        let flows = |d: &Daemon| per_engine(d, |e| n(&e["stats"]["tcp"]["flows_created"]));
        let before = flows(d);
        self.send(from, sport, dport, 999, tcp_flags::SYN, b"");
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let now = flows(d);
            if let Some(i) = (0..now.len()).find(|&i| now[i] > before[i]) {
                return i;
            }
            assert!(Instant::now() < deadline, "no engine took the SYN from port {sport}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A port of end `from` whose connection to `dport` another engine than `not` frames.
    fn port_not_on(&self, d: &Daemon, from: usize, first: u16, dport: u16, not: usize) -> u16 {
        (first..first + 32).find(|&p| self.engine_of(d, from, p, dport) != not).expect("32 ports all on one engine")
    }
}

#[test]
fn a_callee_bye_over_its_own_connection_on_another_engine_is_judged_with_its_dialog() {
    let Some(tb) = Testbed::up("tcp-dialogs") else { return };
    let rules = tb.work.join("rules-dialogs");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::copy(root().join("rules/40-dialogs.toml"), rules.join("40-dialogs.toml")).unwrap();
    let d = Daemon::start(&tb, "tcp-dialogs", &config_text(&rules, ""), &["--engines", "2"]);
    let sniff = Sniffer::start(&tb, Side::Client, "eth0");
    let ends = Ends { tx: [RawPort::open(&tb, Side::Client, "eth0"), RawPort::open(&tb, Side::Server, "eth0")] };
    let p = CallParams {
        call_id: format!("xdlg-{}@{CLIENT}", std::process::id()),
        client_ip: CLIENT.parse().unwrap(),
        server_ip: SERVER.parse().unwrap(),
        ..Default::default()
    };
    // The call, over the caller's connection 40000 -> 5060 (picked up mid-stream).
    let inv = tcp(&fixtures::invite_with_sdp(&p));
    let ok = tcp(&fixtures::response(&inv, 200, "OK", Some(&p.to_tag)));
    let ack = tcp(&fixtures::ack(&p, p.cseq, &p.to_tag));
    ends.send(0, 40000, 5060, 1_000, tcp_flags::ACK | tcp_flags::PSH, &inv);
    ends.send(1, 5060, 40000, 900_000, tcp_flags::ACK | tcp_flags::PSH, &ok);
    ends.send(0, 40000, 5060, 1_000 + inv.len() as u32, tcp_flags::ACK | tcp_flags::PSH, &ack);
    std::thread::sleep(Duration::from_millis(200));
    let dialogs = per_engine(&d, |e| n(&e["state"]["dialogs_confirmed"]));
    let owner = dialogs.iter().position(|&x| x == 1).unwrap_or_else(|| panic!("no engine confirmed the dialog: {dialogs:?}; {}", d.stats()["verdicts"]));
    let asked0 = per_engine(&d, |e| n(&e["stats"]["consults"]["asked"]));
    let judged0 = per_engine(&d, |e| n(&e["stats"]["consults"]["judged"]));

    // The callee's honest BYE, on a connection of its own that the other engine frames.
    let sport = ends.port_not_on(&d, 1, 41000, 5060, owner);
    let bye = tcp(&fixtures::callee_bye(&p));
    ends.send(1, sport, 5060, 1_000, tcp_flags::ACK | tcp_flags::PSH, &bye);
    let branch = format!("z9hG4bK-callee-bye-{}", p.to_tag);
    assert!(sniff.wait_for(branch.as_bytes(), Duration::from_secs(2)), "the callee's honest BYE did not cross: {}", d.stats()["verdicts"]);

    // A forged BYE (a To tag no dialog has) on another such connection: dropped, reset.
    let fport = ends.port_not_on(&d, 1, sport + 1, 5060, owner);
    let forged = String::from_utf8(bye.clone()).unwrap();
    let forged = forged.replace(&format!("tag={}", p.from_tag), "tag=forged").replace(&branch, "z9hG4bK-forged-bye").into_bytes();
    ends.send(1, fport, 5060, 1_000, tcp_flags::ACK | tcp_flags::PSH, &forged);
    std::thread::sleep(Duration::from_millis(300));
    assert!(sniff.with(b"z9hG4bK-forged-bye").is_empty(), "the forged BYE crossed");
    assert!(!sniff.resets(fport, true).is_empty(), "the forged BYE's connection was not reset toward the caller");

    let asked = per_engine(&d, |e| n(&e["stats"]["consults"]["asked"]));
    let judged = per_engine(&d, |e| n(&e["stats"]["consults"]["judged"]));
    let other = 1 - owner;
    eprintln!("dialog on engine {owner}; BYE connections {sport} and {fport} on engine {other}; consults asked {asked:?}, judged {judged:?}");
    assert!(asked[other] >= asked0[other] + 2, "both BYEs consulted the owner: asked {asked0:?} -> {asked:?}");
    assert!(judged[owner] >= judged0[owner] + 2, "the owner judged both: {judged0:?} -> {judged:?}");
    let refused: u64 = per_engine(&d, |e| n(&e["stats"]["consults"]["refused"])).iter().sum();
    assert_eq!(refused, 0);
    d.assert_frames_home();
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
}
