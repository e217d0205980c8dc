//! Evasions, end to end: frames an attacker who has read our rules would craft, sent raw from
//! the client namespace through the appliance, each next to its honest twin. The server's
//! `eth0` is sniffed, so a test sees exactly which frames crossed.
//!
//! One testbed at a time (a static lock), like `tests/appliance.rs`; without root they print
//! SKIPPED unless `SECSIP_REQUIRE_NETNS=1`.

#[path = "common/appliance.rs"]
mod appliance;
#[path = "common/craft.rs"]
mod craft;

use appliance::{config_text, root, Daemon, Side, Testbed};
use craft::{options_with, Ext, FrameSpec, Ip, RawPort, Sniffer, L4};
use std::sync::Mutex;
use std::time::Duration;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn crafted_frames_decode_with_valid_checksums() {
    let qinq = FrameSpec::client_to_server(Ip::v4("10.99.0.1", "10.99.0.2"), L4::udp(5060, 5060, b"hello"))
        .vlan(0x88a8, 10)
        .vlan(0x8100, 20)
        .build();
    let p = etherparse::SlicedPacket::from_ethernet(&qinq).expect("QinQ frame decodes");
    assert!(p.vlan().is_some());
    let chain = vec![Ext::HopByHop { len8: 0 }, Ext::DestOpts { len8: 1 }, Ext::Routing, Ext::Ah { spi: 1, seq: 1, icv_words: 3 }];
    let v6 = Ip::V6 { src: "fd99::1".parse().unwrap(), dst: "fd99::2".parse().unwrap(), exts: chain, hop_limit: 64 };
    let f = FrameSpec::client_to_server(v6, L4::udp(5060, 5060, b"x")).build();
    let p = etherparse::SlicedPacket::from_ethernet(&f).expect("IPv6 chain with AH decodes");
    assert!(matches!(p.transport, Some(etherparse::TransportSlice::Udp(u)) if u.destination_port() == 5060));
    // A checksum over its own pseudo-header folds to zero, as the receiver checks it.
    let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
    let l4 = L4::udp(1, 2, b"abc").bytes(a, b);
    assert_eq!(craft::l4_checksum(a, b, craft::proto::UDP, &l4), 0);
    let l4 = L4::tcp_data(1, 2, 7, 9, b"abcd").bytes(a, b);
    assert_eq!(craft::l4_checksum(a, b, craft::proto::TCP, &l4), 0);
}

/// The harness itself, on the simplest case: a crafted honest OPTIONS crosses, the same
/// datagram with a scanner's User-Agent does not.
#[test]
fn a_crafted_scan_is_stopped_and_its_honest_twin_crosses() {
    let _g = serial();
    let Some(tb) = Testbed::up("ev-basic") else { return };
    let d = Daemon::start(&tb, "basic", &config_text(&root().join("rules"), ""), &[]);
    let sniff = Sniffer::start(&tb, Side::Server, "eth0");
    let tx = RawPort::open(&tb, Side::Client, "eth0");
    let send = |token: &str, ua: &str| {
        let payload = options_with(token, ua, "10.99.0.1");
        tx.send(&FrameSpec::client_to_server(Ip::v4("10.99.0.1", "10.99.0.2"), L4::udp(5060, 5060, &payload)).build());
    };
    send("honest-1", "Linphone/5.2");
    assert!(sniff.wait_for(b"honest-1", Duration::from_secs(2)), "the honest OPTIONS did not cross");
    send("scan-1", "friendly-scanner");
    std::thread::sleep(Duration::from_millis(500));
    assert!(sniff.with(b"scan-1").is_empty(), "the scanner's OPTIONS crossed");
    let s = d.stats();
    assert!(s["rule_hits"].as_object().is_some_and(|h| h.keys().any(|k| k.contains("scanner"))), "no scanner rule fired: {}", s["rule_hits"]);
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
}
