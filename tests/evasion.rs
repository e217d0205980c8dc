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

// ---- Steering: encapsulations the XDP program used to bridge unseen ----

/// A source address of its own for each case: the scanner rule bans the source it catches,
/// and an honest twin from a banned source would prove nothing.
fn src_v4(case: u8) -> String {
    format!("10.99.1.{case}")
}

fn src_v6(case: u8) -> String {
    format!("fd99::1:{case}")
}

fn ip_v4(case: u8) -> Ip {
    Ip::v4(&src_v4(case), "10.99.0.2")
}

fn ip_v6(case: u8, exts: Vec<Ext>) -> Ip {
    Ip::V6 { src: src_v6(case).parse().unwrap(), dst: "fd99::2".parse().unwrap(), exts, hop_limit: 64 }
}

fn scanner_hits(d: &Daemon) -> u64 {
    d.stats()["rule_hits"]["scanner-user-agent"].as_u64().unwrap_or(0)
}

/// Sends the honest OPTIONS, then the scanner's, each as the frames `frames` makes of the SIP
/// message (same encapsulation for both): the honest one must cross, the scanner's must not,
/// and the scanner rule must be what stopped it (not a decode drop).
fn twins(d: &Daemon, tx: &RawPort, sniff: &Sniffer, case: &str, via_src: &str, frames: impl Fn(&[u8]) -> Vec<Vec<u8>>) {
    let before = scanner_hits(d);
    let honest = format!("{case}-honest");
    for f in frames(&options_with(&honest, "Linphone/5.2", via_src)) {
        tx.send(&f);
    }
    assert!(sniff.wait_for(honest.as_bytes(), Duration::from_secs(2)), "{case}: the honest OPTIONS did not cross\n{}", d.stats());
    let scan = format!("{case}-scan");
    for f in frames(&options_with(&scan, "friendly-scanner", via_src)) {
        tx.send(&f);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while scanner_hits(d) == before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(sniff.with(scan.as_bytes()).is_empty(), "{case}: the scanner's OPTIONS crossed");
    assert_eq!(scanner_hits(d), before + 1, "{case}: the scanner rule did not judge it\n{}", d.stats());
}

/// One datagram as one frame.
fn whole(ip: Ip, vlans: &[(u16, u16)]) -> impl Fn(&[u8]) -> Vec<Vec<u8>> + '_ {
    move |sip: &[u8]| {
        let mut spec = FrameSpec::client_to_server(ip.clone(), L4::udp(5060, 5060, sip));
        for &(tpid, vid) in vlans {
            spec = spec.vlan(tpid, vid);
        }
        vec![spec.build()]
    }
}

/// Eight IPv6 extension headers: the chain the XDP program walks to its bound, AH among them.
fn eight_exts() -> Vec<Ext> {
    vec![
        Ext::HopByHop { len8: 0 },
        Ext::DestOpts { len8: 1 },
        Ext::Routing,
        Ext::DestOpts { len8: 0 },
        Ext::Routing,
        Ext::Ah { spi: 7, seq: 1, icv_words: 3 },
        Ext::DestOpts { len8: 2 },
        Ext::DestOpts { len8: 0 },
    ]
}

#[test]
fn scans_in_vlan_stacks_extension_chains_ah_and_ip_options_are_stopped_and_their_twins_cross() {
    let _g = serial();
    let Some(tb) = Testbed::up("ev-steer") else { return };
    let d = Daemon::start(&tb, "steer", &config_text(&root().join("rules"), ""), &[]);
    let sniff = Sniffer::start(&tb, Side::Server, "eth0");
    let tx = RawPort::open(&tb, Side::Client, "eth0");
    twins(&d, &tx, &sniff, "qinq", &src_v4(1), whole(ip_v4(1), &[(0x88a8, 10), (0x8100, 20)]));
    twins(&d, &tx, &sniff, "three-tags", &src_v4(2), whole(ip_v4(2), &[(0x88a8, 10), (0x8100, 20), (0x8100, 30)]));
    twins(&d, &tx, &sniff, "four-tags-9100", &src_v4(3), whole(ip_v4(3), &[(0x9100, 1), (0x88a8, 2), (0x8100, 3), (0x8100, 4)]));
    let v6src = format!("[{}]", src_v6(4));
    twins(&d, &tx, &sniff, "v6-eight-exts", &v6src, whole(ip_v6(4, eight_exts()), &[]));
    let mut seven = eight_exts();
    seven.remove(0);
    let v6src = format!("[{}]", src_v6(5));
    twins(&d, &tx, &sniff, "v6-seven-exts-tagged", &v6src, whole(ip_v6(5, seven), &[(0x8100, 5)]));
    let v6src = format!("[{}]", src_v6(6));
    twins(&d, &tx, &sniff, "v6-ah", &v6src, whole(ip_v6(6, vec![Ext::Ah { spi: 9, seq: 3, icv_words: 3 }]), &[]));
    let Ip::V4 { src, dst, .. } = ip_v4(7) else { unreachable!() };
    let ah4 = Ip::V4 { src, dst, options: vec![], ah: Some((0x100, 1)), frag: None, ttl: 64 };
    twins(&d, &tx, &sniff, "v4-ah", &src_v4(7), whole(ah4, &[]));
    // Router alert, then NOPs: the transport header moves by the IHL.
    let Ip::V4 { src, dst, .. } = ip_v4(8) else { unreachable!() };
    let opts = Ip::V4 { src, dst, options: vec![0x94, 4, 0, 0, 1, 1, 1, 1], ah: None, frag: None, ttl: 64 };
    twins(&d, &tx, &sniff, "v4-options", &src_v4(8), whole(opts, &[]));
    let r = d.stats();
    let outside = &r["nics"][0];
    assert!(outside["xdp"]["bridged"].as_u64().is_some(), "{outside}");
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
}

/// `sip` as IP fragments of `chunk` bytes (the last may be shorter), each built by `frag`
/// from (offset in 8-byte units, more-fragments, data).
fn fragments(udp: &[u8], chunk: usize, frag: impl Fn(u16, bool, &[u8]) -> Vec<u8>) -> Vec<Vec<u8>> {
    udp.chunks(chunk).enumerate().map(|(i, c)| frag((i * chunk / 8) as u16, (i + 1) * chunk < udp.len(), c)).collect()
}

fn v4_fragments(case: u8, id: u16) -> impl Fn(&[u8]) -> Vec<Vec<u8>> {
    move |sip: &[u8]| {
        let Ip::V4 { src, dst, .. } = ip_v4(case) else { unreachable!() };
        let udp = L4::udp(5060, 5060, sip).bytes(src.into(), dst.into());
        fragments(&udp, 256, |off, more, data| {
            let ip = Ip::V4 { src, dst, options: vec![], ah: None, frag: Some((off, more, id)), ttl: 64 };
            FrameSpec::client_to_server(ip, L4::Raw { proto: craft::proto::UDP, bytes: data.to_vec() }).build()
        })
    }
}

fn v6_fragments(case: u8, id: u32) -> impl Fn(&[u8]) -> Vec<Vec<u8>> {
    move |sip: &[u8]| {
        let Ip::V6 { src, dst, .. } = ip_v6(case, vec![]) else { unreachable!() };
        let udp = L4::udp(5060, 5060, sip).bytes(src.into(), dst.into());
        fragments(&udp, 256, |off, more, data| {
            let exts = vec![Ext::DestOpts { len8: 0 }, Ext::Fragment { offset8: off, more, id }];
            FrameSpec::client_to_server(ip_v6(case, exts), L4::Raw { proto: craft::proto::UDP, bytes: data.to_vec() }).build()
        })
    }
}

#[test]
fn scans_in_ip_fragments_of_either_family_are_stopped_and_their_twins_cross() {
    let _g = serial();
    let Some(tb) = Testbed::up("ev-frag") else { return };
    let d = Daemon::start(&tb, "frag", &config_text(&root().join("rules"), ""), &[]);
    let sniff = Sniffer::start(&tb, Side::Server, "eth0");
    let tx = RawPort::open(&tb, Side::Client, "eth0");
    let probe = v4_fragments(20, 1)(&options_with("x", "friendly-scanner", "10.99.1.20"));
    assert!(probe.len() >= 2, "the OPTIONS must need two fragments");
    twins(&d, &tx, &sniff, "v4-frags", &src_v4(20), v4_fragments(20, 0x4242));
    twins(&d, &tx, &sniff, "v6-frags", &format!("[{}]", src_v6(21)), v6_fragments(21, 0x4343));
    let r = d.stats();
    let frag = r["nics"][0]["unclassified"]["fragment"].as_u64().unwrap_or(0);
    assert!(frag >= 8, "the XDP program counted {frag} fragments as unclassified: {}", r["nics"][0]);
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
}

#[test]
fn non_sip_traffic_in_deep_encapsulation_still_crosses() {
    let _g = serial();
    let Some(tb) = Testbed::up("ev-nonsip") else { return };
    let d = Daemon::start(&tb, "nonsip", &config_text(&root().join("rules"), ""), &[]);
    let sniff = Sniffer::start(&tb, Side::Server, "eth0");
    let tx = RawPort::open(&tb, Side::Client, "eth0");
    let tags = [(0x88a8, 10), (0x8100, 20), (0x8100, 30), (0x8100, 40)];
    // RTP-like UDP behind four tags and behind eight extension headers: proven not SIP in XDP.
    let mut f = FrameSpec::client_to_server(ip_v4(30), L4::udp(40000, 40002, b"rtp-four-tags"));
    for (t, v) in tags {
        f = f.vlan(t, v);
    }
    tx.send(&f.build());
    tx.send(&FrameSpec::client_to_server(ip_v6(31, eight_exts()), L4::udp(40000, 40002, b"rtp-eight-exts")).build());
    // An unlisted protocol (SCTP) cannot be proven in XDP: the engine decodes it and lets it by.
    tx.send(&FrameSpec::client_to_server(ip_v6(32, eight_exts()), L4::Raw { proto: 132, bytes: b"sctp-eight-exts".to_vec() }).build());
    for token in ["rtp-four-tags", "rtp-eight-exts", "sctp-eight-exts"] {
        assert!(sniff.wait_for(token.as_bytes(), Duration::from_secs(2)), "{token} did not cross");
    }
    // ESP cannot be inspected: sent up by XDP, dropped by the engine (engine.esp = drop).
    tx.send(&FrameSpec::client_to_server(ip_v4(34), L4::Raw { proto: 50, bytes: b"esp-sealed-payload".to_vec() }).build());
    // One tag more than the limit: not bridged, refused by name in userspace.
    let mut f = FrameSpec::client_to_server(ip_v4(33), L4::udp(40000, 40002, b"rtp-five-tags"));
    for (t, v) in tags.iter().chain(&[(0x8100, 50)]) {
        f = f.vlan(*t, *v);
    }
    tx.send(&f.build());
    std::thread::sleep(Duration::from_millis(300));
    assert!(sniff.with(b"rtp-five-tags").is_empty(), "a frame beyond the VLAN limit crossed");
    assert!(sniff.with(b"esp-sealed").is_empty(), "ESP crossed with engine.esp = drop");
    let r = d.stats();
    let u = &r["nics"][0]["unclassified"];
    assert!(u["protocol"].as_u64() >= Some(1) && u["vlan_depth"].as_u64() >= Some(1) && u["esp"].as_u64() >= Some(1), "{u}");
    assert_eq!(engine_decode_errors(&r, "esp"), 1, "{}", r["engines"]);
    assert!(r["nics"][0]["xdp"]["bridged"].as_u64() >= Some(2), "{}", r["nics"][0]);
    let decode = engine_decode_errors(&r, "too_many_vlans");
    assert_eq!(decode, 1, "{}", r["engines"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let logged = |d: &Daemon| d.events().into_iter().any(|e| e["drop"]["reason"] == "decode.too_many_vlans" && e["src_ip"] == src_v4(33));
    while !logged(&d) {
        assert!(std::time::Instant::now() < deadline, "no drop event for the five-tag frame: {:?}", d.events());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
}

/// A decode error counter summed over engines, by name.
fn engine_decode_errors(r: &serde_json::Value, name: &str) -> u64 {
    let i = secsip::wire::DecodeError::ALL.iter().position(|e| e.name() == name).unwrap();
    r["engines"].as_array().into_iter().flatten().map(|e| e["stats"]["decode_errors"][i].as_u64().unwrap_or(0)).sum()
}

#[test]
fn unclassified_drop_policy_drops_in_xdp_and_counts() {
    let _g = serial();
    let Some(tb) = Testbed::up("ev-uncl") else { return };
    let d = Daemon::start(&tb, "uncl", &config_text(&root().join("rules"), "unclassified = \"drop\"\n"), &[]);
    let sniff = Sniffer::start(&tb, Side::Server, "eth0");
    let tx = RawPort::open(&tb, Side::Client, "eth0");
    let frags = v4_fragments(40, 0x5151)(&options_with("uncl-frag", "Linphone/5.2", &src_v4(40)));
    for f in &frags {
        tx.send(f);
    }
    tx.send(&FrameSpec::client_to_server(ip_v4(41), L4::Raw { proto: 50, bytes: b"uncl-esp-payload".to_vec() }).build());
    // What can be classified is untouched: a SIP datagram in QinQ reaches the engine and crosses.
    let honest = options_with("uncl-qinq", "Linphone/5.2", &src_v4(42));
    tx.send(&FrameSpec::client_to_server(ip_v4(42), L4::udp(5060, 5060, &honest)).vlan(0x88a8, 1).vlan(0x8100, 2).build());
    assert!(sniff.wait_for(b"uncl-qinq", Duration::from_secs(2)), "the classified OPTIONS did not cross");
    std::thread::sleep(Duration::from_millis(200));
    assert!(sniff.with(b"uncl-frag").is_empty() && sniff.with(b"uncl-esp").is_empty(), "an unclassified frame crossed");
    let r = d.stats();
    let nic = &r["nics"][0];
    assert_eq!(nic["unclassified"]["fragment"].as_u64(), Some(frags.len() as u64), "{nic}");
    assert_eq!(nic["unclassified"]["esp"].as_u64(), Some(1), "{nic}");
    assert_eq!(nic["xdp"]["unclassified_dropped"].as_u64(), Some(frags.len() as u64 + 1), "{nic}");
    assert_eq!(engine_decode_errors(&r, "esp"), 0, "dropped in XDP, never seen by an engine");
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
}

#[test]
fn esp_forward_policy_lets_ipsec_cross_counted() {
    let _g = serial();
    let Some(tb) = Testbed::up("ev-esp") else { return };
    let cfg = format!("[engine]\nesp = \"forward\"\n{}", config_text(&root().join("rules"), ""));
    let d = Daemon::start(&tb, "esp", &cfg, &[]);
    let sniff = Sniffer::start(&tb, Side::Server, "eth0");
    let tx = RawPort::open(&tb, Side::Client, "eth0");
    tx.send(&FrameSpec::client_to_server(ip_v4(50), L4::Raw { proto: 50, bytes: b"esp-v4-tunnel".to_vec() }).build());
    let v6 = ip_v6(51, vec![Ext::DestOpts { len8: 0 }]);
    tx.send(&FrameSpec::client_to_server(v6, L4::Raw { proto: 50, bytes: b"esp-v6-tunnel".to_vec() }).build());
    for token in ["esp-v4-tunnel", "esp-v6-tunnel"] {
        assert!(sniff.wait_for(token.as_bytes(), Duration::from_secs(2)), "{token} did not cross with engine.esp = forward");
    }
    let r = d.stats();
    assert_eq!(engine_decode_errors(&r, "esp"), 2, "{}", r["engines"]);
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
}
