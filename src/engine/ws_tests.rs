//! SIP over WebSocket through the engine: frames split over TCP segments, several in one,
//! the upgrade required, every refusal a reset.

use crate::config::EngineConfig;
use crate::engine::{Engine, Outcome};
use crate::fixtures::{self, tcp_flags::*, CallParams};
use crate::hash::Keyer;
use crate::stream::websocket::build;
use crate::stream::StreamError;
use crate::verdict::{Action, Cause, Verdict};
use std::net::SocketAddr;

const SEC: u64 = 1_000_000_000;
const CISN: u32 = 7_000;
const SISN: u32 = 90_000;
const KEY: Option<[u8; 4]> = Some([9, 8, 7, 6]);

fn ends() -> (SocketAddr, SocketAddr) {
    ("10.77.0.1:40000".parse().unwrap(), "10.77.0.2:8080".parse().unwrap())
}

/// A test connection: the engine and each side's next sequence number.
struct Conn {
    e: Engine,
    seq: [u32; 2],
    id: u64,
}

/// What a segment came to: None when held, else (verdict, frames released).
type Got = Option<(Verdict, Vec<u64>)>;

impl Conn {
    /// A WebSocket port 8080, the TCP handshake done.
    fn new() -> Conn {
        let cfg = EngineConfig { sip_ws_ports: vec![8080], ..EngineConfig::default() };
        let mut c = Conn { e: Engine::new(cfg, Keyer::with_keys(3, 4)), seq: [CISN + 1, SISN + 1], id: 0 };
        let (a, b) = ends();
        assert!(c.raw(a, b, CISN, 0, SYN, b"").is_some());
        assert!(c.raw(b, a, SISN, CISN + 1, SYN | ACK, b"").is_some());
        c
    }

    /// Upgraded to `sip`.
    fn open() -> Conn {
        let mut c = Conn::new();
        assert_eq!(c.send(0, &build::request("sip")), Some((Verdict::forward(Cause::Keepalive), vec![3])));
        assert_eq!(c.send(1, &build::response("sip")).unwrap().0.action, Action::Forward);
        c
    }

    fn raw(&mut self, src: SocketAddr, dst: SocketAddr, seq: u32, ack: u32, flags: u8, p: &[u8]) -> Got {
        self.id += 1;
        match self.e.handle(SEC, &fixtures::tcp_frame(src, dst, seq, ack, flags, p), self.id) {
            Outcome::Held => None,
            Outcome::Judged(j) => Some((j.verdict, j.frames.to_vec())),
            Outcome::Consult(_) => panic!("one engine consults nobody"),
        }
    }

    /// Sends `p` in one segment from side `dir` (0: client).
    fn send(&mut self, dir: usize, p: &[u8]) -> Got {
        let (a, b) = ends();
        let (src, dst) = if dir == 0 { (a, b) } else { (b, a) };
        let (seq, ack) = (self.seq[dir], self.seq[1 - dir]);
        self.seq[dir] = seq.wrapping_add(p.len() as u32);
        self.raw(src, dst, seq, ack, ACK, p)
    }

    /// Sends `p` from the client cut at `cuts`; every segment but the last must be held.
    fn send_cut(&mut self, p: &[u8], cuts: &[usize]) -> Got {
        let mut points = vec![0];
        points.extend_from_slice(cuts);
        points.push(p.len());
        let mut last = None;
        for (i, w) in points.windows(2).enumerate() {
            last = self.send(0, &p[w[0]..w[1]]);
            if i + 2 < points.len() {
                assert!(last.is_none(), "segment {i} of an unfinished message released");
            }
        }
        last
    }
}

fn honest() -> Vec<u8> {
    let m = String::from_utf8(fixtures::options(&CallParams::default(), 1)).unwrap();
    m.replace("SIP/2.0/UDP", "SIP/2.0/WS").into_bytes()
}

fn malformed() -> Vec<u8> {
    let m = String::from_utf8(honest()).unwrap();
    let start = m.find("Call-ID:").unwrap();
    let end = start + m[start..].find("\r\n").unwrap() + 2;
    format!("{}{}", &m[..start], &m[end..]).into_bytes()
}

#[test]
fn a_message_split_over_ws_frames_and_tcp_segments_is_judged_once_whole() {
    for (m, want) in [(honest(), Verdict::forward(Cause::Valid)), (malformed(), Verdict::drop(Cause::Malformed))] {
        let wire = build::message(&m, &[7, 100, 101], KEY);
        for cuts in [vec![1], vec![3, 9, 50], vec![wire.len() - 1]] {
            let mut c = Conn::open();
            let before = c.e.stats().sip_messages;
            let (v, frames) = c.send_cut(&wire, &cuts).expect("judged on the last segment");
            assert_eq!(v, want, "cuts {cuts:?}");
            assert_eq!(frames.len(), cuts.len() + 1, "every segment released or dropped together");
            assert_eq!(c.e.stats().sip_messages - before, 1);
            assert_eq!(c.e.stats().tcp_resets, u64::from(want.action == Action::Drop));
        }
    }
}

#[test]
fn two_ws_messages_in_one_segment_are_each_judged_with_transport_ws() {
    let mut c = Conn::open();
    let mut two = build::message(&honest(), &[], KEY);
    two.extend(build::message(&honest(), &[40], KEY));
    assert_eq!(c.send(0, &two).unwrap().0, Verdict::forward(Cause::Valid));
    assert_eq!((c.e.stats().sip_messages, c.e.stats().tcp.ws_messages), (2, 2));
    let mut c = Conn::open();
    let mut hidden = build::message(&honest(), &[], KEY);
    hidden.extend(build::message(&malformed(), &[], KEY));
    assert_eq!(c.send(0, &hidden).unwrap().0, Verdict::drop(Cause::Malformed), "the second is judged too");
    // Two SIP messages in one WebSocket message break RFC 7118 §5.
    let mut c = Conn::open();
    let glued = [honest(), honest()].concat();
    assert_eq!(c.send(0, &build::message(&glued, &[], KEY)).unwrap().0.action, Action::Drop);
}

#[test]
fn a_ws_port_without_the_upgrade_is_reset() {
    let reset = |e: StreamError| Verdict::drop(Cause::Stream(e));
    let mut c = Conn::new();
    assert_eq!(c.send(0, &honest()).unwrap().0, reset(StreamError::WsNoUpgrade), "plain SIP on the WS port");
    let mut c = Conn::new();
    assert_eq!(c.send(0, &build::message(&honest(), &[], KEY)).unwrap().0, reset(StreamError::WsNoUpgrade));
    let mut c = Conn::new();
    assert_eq!(c.send(0, &build::request("xmpp")).unwrap().0, reset(StreamError::WsSubprotocol));
    let mut c = Conn::new();
    assert!(c.send(0, &build::request("sip")).is_some());
    assert_eq!(c.send(1, &build::response("xmpp")).unwrap().0, reset(StreamError::WsSubprotocol));
    let mut c = Conn::open();
    assert_eq!(c.send(0, &build::message(&honest(), &[], None)).unwrap().0, reset(StreamError::WsUnmasked));
    assert_eq!(c.e.stats().tcp.errors[StreamError::WsUnmasked.index()], 1);
    assert_eq!(c.e.streams().flows(), 0, "the connection is forgotten once reset");
}

#[test]
fn pings_pass_and_server_messages_are_judged() {
    let mut c = Conn::open();
    let ping = build::frame(true, 9, KEY, b"k");
    assert_eq!(c.send(0, &ping).unwrap().0, Verdict::forward(Cause::Keepalive));
    assert_eq!(c.send(1, &build::message(&honest(), &[], None)).unwrap().0, Verdict::forward(Cause::Valid));
    assert_eq!(c.e.stats().tcp.ws_control_frames, 1);
}

#[test]
fn the_server_port_decides_whatever_segment_is_seen_first() {
    let cfg = EngineConfig { sip_ws_ports: vec![8080], sip_tcp_ports: vec![5060], ..EngineConfig::default() };
    // A client whose own port happens to be 8080, calling plain SIP on 5060.
    let mut e = Engine::new(cfg.clone(), Keyer::with_keys(3, 4));
    let (c, s): (SocketAddr, SocketAddr) = ("10.77.0.1:8080".parse().unwrap(), "10.77.0.2:5060".parse().unwrap());
    let tcp_sip = String::from_utf8(honest()).unwrap().replace("SIP/2.0/WS", "SIP/2.0/TCP").into_bytes();
    let _ = e.handle(SEC, &fixtures::tcp_frame(c, s, CISN, 0, SYN, b""), 1);
    match e.handle(SEC, &fixtures::tcp_frame(c, s, CISN + 1, 1, ACK, &tcp_sip), 2) {
        Outcome::Judged(j) => assert_eq!(j.verdict, Verdict::forward(Cause::Valid)),
        Outcome::Held | Outcome::Consult(_) => panic!("a whole message, one engine"),
    }
    // The first segment seen is the server's SYN-ACK: still a WebSocket connection.
    let mut e = Engine::new(cfg, Keyer::with_keys(3, 4));
    let (c, s) = ends();
    let _ = e.handle(SEC, &fixtures::tcp_frame(s, c, SISN, CISN + 1, SYN | ACK, b""), 1);
    match e.handle(SEC, &fixtures::tcp_frame(c, s, CISN + 1, SISN + 1, ACK, &honest()), 2) {
        Outcome::Judged(j) => assert_eq!(j.verdict, Verdict::drop(Cause::Stream(StreamError::WsNoUpgrade))),
        Outcome::Held | Outcome::Consult(_) => panic!("refused at once"),
    }
}
