//! Bodies of the coverage-guided fuzz targets (`fuzz/`), kept in the library so that
//! `cargo test` replays the kept corpus and every past crash through exactly the same code
//! (`tests/fuzz_corpus.rs`) on the stable toolchain, without libFuzzer.
//!
//! Each function takes arbitrary bytes, must never panic, and asserts the invariants that the
//! rest of the data path relies on (slices inside their buffer, counters that add up).

use crate::config::Config;
use crate::engine::{Engine, Outcome};
use crate::hash::Keyer;
use crate::hosttable::HostTable;
use crate::rules::RuleSet;
use crate::sip::{Contacts, Limits, Parser};
use crate::stream::{FlowKey, Push, Segment, StreamLimits, Streams};
use crate::wire::reasm::FrameId;
use std::net::SocketAddr;
use crate::wire::{self, Frame};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// True when `sub` lies inside `buf` (parsers hand out sub-slices only).
fn within(buf: &[u8], sub: &[u8]) -> bool {
    let (b, s) = (buf.as_ptr() as usize, sub.as_ptr() as usize);
    sub.is_empty() || (s >= b && s + sub.len() <= b + buf.len())
}

/// The frame decoder: any bytes as an Ethernet frame.
pub fn frame(data: &[u8]) {
    if let Ok(Frame::Ip(d)) = wire::decode(data) {
        assert!(within(data, d.payload), "payload outside the frame");
        assert!(d.l3_offset <= d.l4_offset && d.l4_offset <= data.len(), "offsets {} {} of {}", d.l3_offset, d.l4_offset, data.len());
        if let Some(f) = d.frag {
            // A fragment's payload is what reassembly stores: never more than the frame.
            assert!(d.payload.len() <= data.len() && f.offset as usize <= 65535);
        }
    }
    let _ = wire::udp_datagram(data);
}

/// The SIP parser and every accessor the rules read: any bytes as one message.
pub fn sip(data: &[u8]) {
    let mut parser = Parser::new(Limits::default());
    let msg = parser.parse(data);
    let _ = (msg.method(), msg.status(), msg.reason_phrase(), msg.version(), msg.reasons());
    let _ = msg.headers().len();
    for v in [msg.call_id(), msg.content_type(), msg.user_agent(), msg.server(), msg.request_uri_bytes()].into_iter().flatten() {
        assert!(within(data, v), "a header value outside the message");
    }
    assert!(within(data, msg.body()), "body outside the message");
    if let Some(Ok(u)) = msg.request_uri() {
        let _ = (u.user, u.host, u.user_param());
    }
    let _ = (msg.cseq(), msg.from(), msg.to(), msg.max_forwards(), msg.expires(), msg.content_length());
    for v in msg.vias() {
        assert!(within(data, v.host), "a Via host outside the message");
        let _ = (v.port, v.branch(), v.received());
    }
    if let Contacts::List(l) = msg.contacts() {
        let _ = l.count();
    }
    let _ = (msg.routes().count(), msg.record_routes().count(), msg.allow().count());
    let _ = (msg.authorization(), msg.proxy_authorization(), msg.www_authenticate(), msg.proxy_authenticate());
    if msg.is_sdp() {
        let _ = msg.sdp();
    }
}

/// The normalisers rules match on: any bytes as a URI. Validation's check must fail exactly
/// when the user or host normaliser does, and every normal form is UTF-8 inside the buffer.
pub fn normal(data: &[u8]) {
    use crate::sip::normal::{self, Norm};
    let Ok(u) = crate::sip::uri::Uri::parse(data) else { return };
    let mut out = Vec::new();
    let (user, host, whole) = (normal::user(&u, &mut out), normal::host(&u, &mut out), normal::uri(&u, &mut out));
    let failed = user.is_err() || host.is_err();
    assert_eq!(normal::check(&u).is_err(), failed, "validation and the normalisers disagree");
    assert_eq!(whole.is_err(), failed, "the whole URI normalises when its parts do");
    for r in [user, host, whole].into_iter().flatten() {
        if let Norm::Written(r) = r {
            let w = out.get(r).expect("a normal form outside the buffer");
            assert!(std::str::from_utf8(w).is_ok(), "a normal form that is not UTF-8");
        }
    }
    let _ = normal::is_number(&u);
}

/// The shipped configuration (tables shrunk) and rules, compiled once.
fn shipped_rules() -> &'static (Config, Arc<RuleSet>) {
    static RULES: OnceLock<(Config, Arc<RuleSet>)> = OnceLock::new();
    RULES.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut cfg = Config::load(&root.join("config/secsip.toml")).expect("config/secsip.toml loads");
        // Small tables: a fresh engine per input stays cheap (thousands of runs a second rather
        // than dozens), and the fuzzer reaches eviction paths with a few frames.
        cfg.hosts.max_hosts = 256;
        cfg.engine.transactions.max_entries = 64;
        cfg.engine.dialogs.max_entries = 64;
        cfg.engine.reassembly.max_datagrams = 16;
        cfg.engine.objects.max_containers = 64;
        // WebSocket and TLS ports too, so that mutated ports reach those paths.
        cfg.engine.sip_ws_ports = vec![8080];
        cfg.engine.tls.ports = vec![crate::engine::tls::TlsPort { port: 5061, policy: crate::engine::tls::TlsPolicy::Allow, sources: vec![] }];
        let rules = crate::rules::compile_dir(&root.join("rules"), &cfg.compile_options()).expect("shipped rules compile");
        (cfg, Arc::new(rules))
    })
}

/// The whole engine: `data` is a sequence of frames, each prefixed by a 2-byte big-endian
/// length, judged in order 1 ms apart with the shipped configuration and rules (decode,
/// fragment reassembly, parsing, state tracking and rules across frames).
pub fn engine(data: &[u8]) {
    let (cfg, rules) = shipped_rules();
    let hosts = Arc::new(HostTable::new(cfg.hosts.clone()));
    let mut e = Engine::with_rules(cfg.engine.clone(), Keyer::with_keys(1, 2), rules.clone(), hosts);
    let (mut rest, mut id, mut judged) = (data, 0u64, 0u64);
    while rest.len() >= 2 {
        let n = (usize::from(rest[0]) << 8 | usize::from(rest[1])).min(rest.len() - 2);
        let (f, tail) = rest[2..].split_at(n);
        rest = tail;
        id += 1;
        if let Outcome::Judged(j) = e.handle(id * 1_000_000, f, id) {
            assert!(!j.frames.is_empty() && j.frames.iter().all(|&x| x <= id), "a verdict names frames never given");
            judged += j.frames.len() as u64;
        }
    }
    let s = e.stats();
    assert_eq!(s.frames, id);
    assert!(judged <= id && s.forwarded + s.dropped <= id + s.frames, "counts do not add up: {judged} judged of {id}");
}

/// Bounds small enough that a few records reach eviction, budgets and timeouts.
fn fuzz_stream_limits() -> StreamLimits {
    StreamLimits {
        max_flows: 2,
        max_bytes: 4096,
        max_flow_bytes: 2048,
        max_flow_segments: 16,
        max_message_bytes: 1024,
        window_bytes: 2048,
        timeout_ms: 5000,
        idle_timeout_s: 3600,
        consults: 4,
    }
}

/// Where one frame ended up; each frame must end up exactly once.
fn settle(fates: &mut [u8], ids: impl IntoIterator<Item = FrameId>) {
    for id in ids {
        let f = fates.get_mut(id as usize).expect("a frame id never given");
        assert_eq!(*f, 0, "frame {id} settled twice");
        *f = 1;
    }
}

/// TCP reassembly and SIP stream framing, driven as the engine drives them. `data` is a
/// sequence of segments, each a 5-byte header (flags, 16-bit sequence offset, 8-bit
/// acknowledgement offset in units of 16 bytes, length) and its payload: flag bits 0-3 are
/// SYN, FIN, RST and ACK, bits 4-5 pick one of four connections, bit 6 the direction, bit 7
/// moves the clock 10 s on (timeouts). Every frame must be passed, dropped, released or
/// aborted exactly once, every message must fit `max_message_bytes` and the tables their bounds.
pub fn stream(data: &[u8]) {
    let limits = fuzz_stream_limits();
    let mut streams = Streams::new(limits.clone());
    let ends = |k: u8| {
        let a = SocketAddr::from(([192, 0, 2, 1], 5060 + u16::from(k)));
        FlowKey::of(a, SocketAddr::from(([192, 0, 2, 2], 5060)))
    };
    let mut fates = vec![0u8; data.len() / 5 + 2];
    let (mut rest, mut now, mut id) = (data, 1u64, 0u64);
    let (mut out, mut dropped) = (Vec::new(), Vec::new());
    while let [b0, s0, s1, a, n, tail @ ..] = rest {
        let payload = &tail[..usize::from(*n).min(tail.len())];
        rest = &tail[payload.len()..];
        id += 1;
        now += if b0 & 0x80 != 0 { 10_000_000_000 } else { 1_000_000 };
        let (key, mut dir) = ends((b0 >> 4) & 3);
        dir ^= usize::from(b0 >> 6 & 1);
        let isn = if dir == 0 { 1_000u32 } else { 900_000u32 };
        let seg = Segment {
            seq: isn.wrapping_add(u32::from(u16::from_be_bytes([*s0, *s1]))),
            ack: (b0 & 8 != 0).then(|| (if dir == 0 { 900_000u32 } else { 1_000 }).wrapping_add(u32::from(*a) * 16)),
            syn: b0 & 1 != 0,
            fin: b0 & 2 != 0,
            rst: b0 & 4 != 0,
            payload,
        };
        if let crate::stream::framing::Framed::Message(m) | crate::stream::framing::Framed::Keepalive(m) = crate::stream::framing::frame(payload, limits.max_message_bytes) {
            assert!(m <= payload.len() && m <= limits.max_message_bytes.max(payload.len()), "framed past the bytes given");
        }
        out.clear();
        match streams.push(now, key, dir, &seg, id) {
            Push::Pass | Push::Drop(_) => out.push(id),
            Push::Reset(_) => {
                let _ = streams.abort(key, dir, &mut out);
                if !out.contains(&id) {
                    out.push(id);
                }
            }
            Push::Held => {
                let broken = loop {
                    match streams.next_message(key, dir) {
                        None => break false,
                        Some(Err(_)) => break true,
                        Some(Ok(m)) => {
                            assert!(m.len() <= limits.max_message_bytes, "a message over max_message_bytes");
                            let len = m.len();
                            streams.accept(now, key, dir, len);
                        }
                    }
                };
                if broken {
                    let _ = streams.abort(key, dir, &mut out);
                } else {
                    streams.release(key, dir, &mut out);
                }
            }
        }
        settle(&mut fates, out.drain(..));
        streams.drain_dropped(&mut dropped);
        settle(&mut fates, dropped.drain(..).map(|(f, _)| f));
        assert!(streams.flows() <= limits.max_flows && streams.bytes() <= limits.max_bytes, "bounds exceeded");
    }
    for k in 0..4 {
        let (key, _) = ends(k);
        let _ = streams.abort(key, 0, &mut out);
    }
    settle(&mut fates, out.drain(..));
    assert!(fates[1..=id as usize].iter().all(|&f| f == 1), "a frame was never settled");
}

/// The WebSocket framer (RFC 6455 / RFC 7118): the first byte picks the direction, whether
/// the handshake is done first and a segment size; the rest is one direction's stream. It is
/// framed whole and again fed in pieces, and both must find the same handshakes, control
/// frames, messages and error (a split anywhere changes nothing).
pub fn websocket(data: &[u8]) {
    use crate::stream::websocket::{build, WsFlow, WsLimits};
    let Some((&ctl, stream)) = data.split_first() else { return };
    let limits = WsLimits { max_handshake_bytes: 512 };
    let mut flow = WsFlow::default();
    if ctl & 0x80 != 0 {
        let mut out = Vec::new();
        let _ = flow.next(0, &build::request("sip"), 1024, &limits, &mut out);
        let _ = flow.next(1, &build::response("sip"), 1024, &limits, &mut out);
    }
    let dir = usize::from(ctl >> 6 & 1);
    let whole = ws_drive(flow, dir, stream, stream.len().max(1), &limits);
    let pieces = ws_drive(flow, dir, stream, usize::from(ctl & 0x0f) + 1, &limits);
    assert_eq!(whole, pieces, "framing depends on where the stream was split");
}

/// Feeds `stream` to `flow` `chunk` bytes at a time; what it found, in order.
fn ws_drive(mut flow: crate::stream::websocket::WsFlow, dir: usize, stream: &[u8], chunk: usize, limits: &crate::stream::websocket::WsLimits) -> Vec<String> {
    use crate::stream::websocket::WsFramed;
    const MAX: usize = 1024;
    let (mut found, mut out, mut at) = (Vec::new(), Vec::new(), 0usize);
    for end in (chunk..stream.len() + chunk).step_by(chunk) {
        let buf = &stream[..end.min(stream.len())];
        loop {
            let rest = &buf[at..];
            match flow.next(dir, rest, MAX, limits, &mut out) {
                WsFramed::Need => break,
                WsFramed::Pass(n, kind) => {
                    assert!(n > 0 && n <= rest.len(), "pass of {n} of {}", rest.len());
                    found.push(format!("{kind:?} {n}"));
                    at += n;
                }
                WsFramed::Message(n) => {
                    assert!(n > 0 && n <= rest.len() && out.len() <= MAX && out.len() < n, "message of {n}, payload {}", out.len());
                    found.push(format!("message {n} {:?}", out));
                    at += n;
                }
                WsFramed::Error(e) => {
                    found.push(format!("error {e}"));
                    return found;
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_targets_take_garbage_and_real_frames() {
        for data in [&b""[..], b"\x00", b"INVITE sip:a SIP/2.0\r\nVia: x\r\n\r\n", &[0xff; 70]] {
            frame(data);
            sip(data);
            engine(data);
            stream(data);
            normal(data);
        }
        use crate::wire::testutil::{fragment_v4, udp_v4};
        let scan = b"OPTIONS sip:100@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1\r\nFrom: <sip:a@192.0.2.1>;tag=1\r\nTo: <sip:100@192.0.2.2>\r\nCall-ID: fz-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n";
        let (a, b) = ([192, 0, 2, 1], [192, 0, 2, 2]);
        let f = fragment_v4(a, b, 1, &udp_v4(a, b, 5060, 5060, scan), 1480).remove(0);
        let mut framed = (f.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&f);
        engine(&framed);
    }

    /// Encodes segments in [`stream`]'s format: (flags, sequence offset, payload).
    fn records(segs: &[(u8, u16, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        for (flags, seq, p) in segs {
            v.push(*flags);
            v.extend_from_slice(&seq.to_be_bytes());
            v.push(0);
            v.push(p.len() as u8);
            v.extend_from_slice(p);
        }
        v
    }

    #[test]
    fn the_stream_target_settles_split_pipelined_and_broken_streams() {
        let m = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 0\r\n\r\n";
        let (a, b) = m.split_at(20);
        // SYN at offset 0 makes the data start at 1; then the message in two pieces, a
        // keepalive and the message again, out of order; then garbage on another connection.
        stream(&records(&[(1, 0, b""), (8, 1, a), (8, 1 + 20, b), (8, 1 + m.len() as u16 + 4, m), (8, 1 + m.len() as u16, b"\r\n\r\n")]));
        stream(&records(&[(0x10 | 8, 0, b"GARBAGE\r\n\r\n"), (0x90, 5, b"x"), (0x24, 0, b"")]));
    }
}
