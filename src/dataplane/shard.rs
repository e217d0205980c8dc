//! Which engine judges a frame: the Call-ID's hash, so that every message of a dialog, both
//! directions, meets the same dialog table.
//!
//! The worker runs this on every SIP frame before any parsing, so it is a scan, not a parse:
//! memchr to each line start, then a case-insensitive look for `Call-ID:` or the compact `i:`.
//! Frames with no Call-ID in reach (malformed SIP, TCP continuations) hash their addresses;
//! IP fragments hash (source, destination, IP id) so all fragments of a datagram reach the
//! engine that reassembles it.

use crate::hash::{shard_of, Keyer};
use crate::wire::{self, Frame};
use std::net::IpAddr;

/// The Call-ID value of a SIP message's header block, trimmed; `None` when absent before the
/// blank line that ends the headers.
pub fn find_call_id(msg: &[u8]) -> Option<&[u8]> {
    // The start line is never a header; each header starts after a '\n'.
    for nl in memchr::memchr_iter(b'\n', msg) {
        let line = &msg[nl + 1..];
        match line.first() {
            None | Some(b'\r') | Some(b'\n') => return None, // end of headers
            _ => {}
        }
        let name_len = if starts_with_ci(line, b"call-id") {
            7
        } else if line[0] | 0x20 == b'i' {
            1
        } else {
            continue;
        };
        let rest = skip_ws(&line[name_len..]);
        let Some(value) = rest.strip_prefix(b":") else { continue };
        let end = memchr::memchr(b'\n', value).unwrap_or(value.len());
        let v = trim(&value[..end]);
        return (!v.is_empty()).then_some(v);
    }
    None
}

fn starts_with_ci(s: &[u8], lower: &[u8]) -> bool {
    s.len() >= lower.len() && s[..lower.len()].iter().zip(lower).all(|(a, b)| a.to_ascii_lowercase() == *b)
}

fn skip_ws(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &s[n..]
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let end = s.len() - s[start..].iter().rev().take_while(|b| b.is_ascii_whitespace()).count();
    &s[start..end]
}

fn addr_bytes(ip: &IpAddr) -> ([u8; 16], usize) {
    let mut b = [0u8; 16];
    match ip {
        IpAddr::V4(a) => {
            b[..4].copy_from_slice(&a.octets());
            (b, 4)
        }
        IpAddr::V6(a) => (a.octets(), 16),
    }
}

/// Engine index in `0..engines` for `frame`.
pub fn shard(keyer: &Keyer, frame: &[u8], engines: usize) -> usize {
    if engines <= 1 {
        return 0;
    }
    shard_decoded(keyer, wire::decode(frame), engines)
}

/// [`shard`] of a frame the caller has decoded already.
pub fn shard_decoded(keyer: &Keyer, decoded: Result<Frame<'_>, wire::DecodeError>, engines: usize) -> usize {
    if engines <= 1 {
        return 0;
    }
    let Ok(Frame::Ip(d)) = decoded else { return 0 };
    if let Some(f) = d.frag {
        let (s, sl) = addr_bytes(&d.src);
        let (t, tl) = addr_bytes(&d.dst);
        return shard_of(keyer.key(&[&s[..sl], &t[..tl], &f.id.to_be_bytes()]), engines);
    }
    if d.transport == wire::Transport::Tcp {
        // A connection is one stream: all its segments, both ways, must meet one engine's
        // reassembly whatever they carry (most carry no Call-ID). The endpoints are sorted
        // so that both directions hash alike.
        let a = (addr_bytes(&d.src), d.src_port.to_be_bytes());
        let b = (addr_bytes(&d.dst), d.dst_port.to_be_bytes());
        let ((lo, lp), (hi, hp)) = if a <= b { (a, b) } else { (b, a) };
        return shard_of(keyer.key(&[&lo.0[..lo.1], &lp, &hi.0[..hi.1], &hp]), engines);
    }
    if let Some(cid) = find_call_id(d.payload) {
        return shard_of(keyer.call_id(cid), engines);
    }
    // No Call-ID: any engine will do, as long as one source's junk stays on one engine (its
    // per-engine counters then see all of it).
    let (s, sl) = addr_bytes(&d.src);
    shard_of(keyer.key(&[&s[..sl]]), engines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use crate::wire::testutil::{fragment_v4, udp_v4};

    /// A whole (unfragmented) Ethernet + IPv4 + UDP frame.
    fn frame_v4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        fragment_v4(src, dst, 1, &udp_v4(src, dst, sport, dport, payload), 1480).remove(0)
    }

    #[test]
    fn long_and_compact_forms_any_case() {
        let m = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP x\r\nCALL-id :  abc@host \r\n\r\n";
        assert_eq!(find_call_id(m), Some(&b"abc@host"[..]));
        let m = b"BYE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP x\r\nI: xyz\r\n\r\n";
        assert_eq!(find_call_id(m), Some(&b"xyz"[..]));
    }

    #[test]
    fn headers_that_only_start_like_call_id_do_not_count() {
        let m = b"OPTIONS sip:a SIP/2.0\r\nIdentity: foo\r\nCall-Info: <x>\r\ni: real\r\n\r\n";
        assert_eq!(find_call_id(m), Some(&b"real"[..]));
    }

    #[test]
    fn body_lines_are_not_headers() {
        let m = b"INVITE sip:a SIP/2.0\r\nTo: <x>\r\n\r\ni: in-the-body\r\n";
        assert_eq!(find_call_id(m), None);
        assert_eq!(find_call_id(b"i: start-line-is-not-a-header"), None);
        assert_eq!(find_call_id(b"X\r\nCall-ID:   \r\n\r\n"), None);
    }

    #[test]
    fn every_segment_of_a_tcp_connection_meets_one_engine() {
        use crate::fixtures::{tcp_flags::ACK, tcp_frame};
        let k = Keyer::with_keys(7, 9);
        let spread: std::collections::HashSet<usize> = (0..64u16)
            .map(|port| {
                let c: std::net::SocketAddr = format!("10.0.0.1:{}", 40000 + port).parse().unwrap();
                let s: std::net::SocketAddr = "10.0.0.2:5060".parse().unwrap();
                let first = tcp_frame(c, s, 1, 1, ACK, b"INVITE sip:b SIP/2.0\r\nCall-ID: c1@x\r\n");
                let rest = tcp_frame(c, s, 40, 1, ACK, b"Content-Length: 0\r\n\r\n");
                let back = tcp_frame(s, c, 1, 60, ACK, b"SIP/2.0 100 Trying\r\ni: other\r\n\r\n");
                let n = shard(&k, &first, 4);
                assert_eq!((shard(&k, &rest, 4), shard(&k, &back, 4)), (n, n));
                n
            })
            .collect();
        assert_eq!(spread.len(), 4, "connections spread over the engines");
    }

    #[test]
    fn both_directions_of_a_dialog_meet_one_engine() {
        let k = Keyer::with_keys(7, 9);
        let req = frame_v4([10, 0, 0, 1], [10, 0, 0, 2], 5060, 5060, b"INVITE sip:b SIP/2.0\r\nCall-ID: c1@x\r\n\r\n");
        let resp = frame_v4([10, 0, 0, 2], [10, 0, 0, 1], 5060, 5060, b"SIP/2.0 200 OK\r\ni: c1@x\r\n\r\n");
        for n in 2..9 {
            assert_eq!(shard(&k, &req, n), shard(&k, &resp, n));
        }
        // And different calls spread.
        let spread: std::collections::HashSet<usize> = (0..64)
            .map(|i| {
                let m = format!("INVITE sip:b SIP/2.0\r\nCall-ID: call-{i}\r\n\r\n");
                shard(&k, &frame_v4([10, 0, 0, 1], [10, 0, 0, 2], 5060, 5060, m.as_bytes()), 4)
            })
            .collect();
        assert_eq!(spread.len(), 4);
    }

    proptest! {
        #[test]
        fn never_panics_and_value_is_inside(msg in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Some(v) = find_call_id(&msg) {
                let start = v.as_ptr() as usize - msg.as_ptr() as usize;
                prop_assert!(start + v.len() <= msg.len());
                prop_assert!(!v.is_empty());
            }
            prop_assert!(shard(&Keyer::with_keys(1, 2), &msg, 3) < 3);
        }
    }
}
