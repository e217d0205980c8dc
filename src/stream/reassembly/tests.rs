use super::*;
use proptest::prelude::*;
use std::net::SocketAddr;

const MS: u64 = 1_000_000;

fn key() -> (FlowKey, usize) {
    let c: SocketAddr = "10.77.0.1:40000".parse().unwrap();
    let s: SocketAddr = "10.77.0.2:5060".parse().unwrap();
    FlowKey::of(c, s)
}

fn msg(i: usize, body: usize) -> Vec<u8> {
    let mut m = format!("OPTIONS sip:s@b SIP/2.0\r\nCall-ID: c{i}\r\nContent-Length: {body}\r\n\r\n").into_bytes();
    m.resize(m.len() + body, b'x');
    m
}

fn seg(seq: u32, payload: &[u8]) -> Segment<'_> {
    Segment { seq, ack: None, syn: false, fin: false, rst: false, payload }
}

/// A connection whose client side has sent its SYN with ISN `isn` (data starts at isn + 1).
fn open(isn: u32) -> (Streams, FlowKey, usize) {
    open_with(isn, StreamLimits::default())
}

fn open_with(isn: u32, limits: StreamLimits) -> (Streams, FlowKey, usize) {
    let mut s = Streams::new(limits);
    let (k, d) = key();
    let syn = Segment { syn: true, ..seg(isn, b"") };
    assert_eq!(s.push(0, k, d, &syn, 0), Push::Pass);
    (s, k, d)
}

/// Takes every complete message of direction `d`, accepting each.
fn drain(s: &mut Streams, k: FlowKey, d: usize) -> Vec<Vec<u8>> {
    let mut out = vec![];
    while let Some(m) = s.next_message(k, d) {
        let m = m.expect("framable").to_vec();
        s.accept(1, k, d, m.len());
        out.push(m);
    }
    out
}

fn released(s: &mut Streams, k: FlowKey, d: usize) -> Vec<FrameId> {
    let mut out = vec![];
    s.release(k, d, &mut out);
    out
}

#[test]
fn a_message_split_anywhere_is_framed_once_and_its_frames_released_together() {
    let m = msg(1, 12);
    for cut in 1..m.len() {
        let (mut s, k, d) = open(1000);
        assert_eq!(s.push(MS, k, d, &seg(1001, &m[..cut]), 1), Push::Held);
        assert!(drain(&mut s, k, d).is_empty(), "cut {cut}");
        assert!(released(&mut s, k, d).is_empty());
        assert_eq!(s.push(MS, k, d, &seg(1001 + cut as u32, &m[cut..]), 2), Push::Held);
        assert_eq!(drain(&mut s, k, d), vec![m.clone()]);
        assert_eq!(released(&mut s, k, d), vec![1, 2]);
    }
}

#[test]
fn a_keepalive_is_passed_and_does_not_hide_the_message_after_it() {
    let (mut s, k, d) = open(7);
    let mut p = b"\r\n\r\n".to_vec();
    p.extend_from_slice(&msg(1, 0));
    assert_eq!(s.push(MS, k, d, &seg(8, &p), 1), Push::Held);
    assert_eq!(drain(&mut s, k, d), vec![msg(1, 0)]);
    assert_eq!(s.stats().keepalives, 1);
    // A keepalive alone: its frame is released without a message.
    assert_eq!(s.push(MS, k, d, &seg(8 + p.len() as u32, b"\r\n\r\n"), 2), Push::Held);
    assert!(drain(&mut s, k, d).is_empty());
    assert_eq!(released(&mut s, k, d), vec![1, 2]);
    // The server's pong, in the other direction, before that side ever sent anything.
    assert_eq!(s.push(MS, k, 1 - d, &seg(555, b"\r\n"), 3), Push::Held);
    assert!(drain(&mut s, k, 1 - d).is_empty());
    assert_eq!(released(&mut s, k, 1 - d), vec![3]);
}

#[test]
fn pipelined_messages_are_each_framed_and_the_frame_waits_for_all() {
    let (mut s, k, d) = open(0);
    let (a, b) = (msg(1, 3), msg(2, 0));
    let mut p = a.clone();
    p.extend_from_slice(&b[..10]);
    assert_eq!(s.push(MS, k, d, &seg(1, &p), 1), Push::Held);
    assert_eq!(drain(&mut s, k, d), vec![a.clone()]);
    assert!(released(&mut s, k, d).is_empty(), "frame 1 still carries part of message 2");
    assert_eq!(s.push(MS, k, d, &seg(1 + p.len() as u32, &b[10..]), 2), Push::Held);
    assert_eq!(drain(&mut s, k, d), vec![b]);
    assert_eq!(released(&mut s, k, d), vec![1, 2]);
}

#[test]
fn out_of_order_segments_wait_for_the_gap() {
    let m = msg(1, 40);
    let (mut s, k, d) = open(100);
    assert_eq!(s.push(MS, k, d, &seg(101 + 30, &m[30..]), 1), Push::Held);
    assert_eq!(s.push(MS, k, d, &seg(101 + 10, &m[10..30]), 2), Push::Held);
    assert!(drain(&mut s, k, d).is_empty());
    assert_eq!(s.push(MS, k, d, &seg(101, &m[..10]), 3), Push::Held);
    assert_eq!(drain(&mut s, k, d), vec![m]);
    assert_eq!(released(&mut s, k, d), vec![1, 2, 3]);
}

#[test]
fn an_overlap_with_different_bytes_breaks_the_stream_and_an_equal_one_does_not() {
    let m = msg(1, 0);
    let (mut s, k, d) = open(0);
    assert_eq!(s.push(MS, k, d, &seg(1, &m[..20]), 1), Push::Held);
    assert_eq!(s.push(MS, k, d, &seg(11, &m[10..30]), 2), Push::Held);
    let mut forged = m[10..30].to_vec();
    forged[5] ^= 0x20;
    assert_eq!(s.push(MS, k, d, &seg(11, &forged), 3), Push::Reset(StreamError::ConflictingOverlap));
    // The same against an out-of-order piece.
    let (mut s, k, d) = open(0);
    assert_eq!(s.push(MS, k, d, &seg(41, &m[40..]), 1), Push::Held);
    let mut forged = m[30..50].to_vec();
    forged[15] ^= 0x20;
    assert_eq!(s.push(MS, k, d, &seg(31, &forged), 2), Push::Reset(StreamError::ConflictingOverlap));
    assert_eq!(s.stats().errors[StreamError::ConflictingOverlap.index()], 1);
}

#[test]
fn forwarded_bytes_are_verified_until_the_peer_acknowledges_them() {
    let m = msg(1, 0);
    let (mut s, k, d) = open(0);
    assert_eq!(s.push(MS, k, d, &seg(1, &m), 1), Push::Held);
    assert_eq!(drain(&mut s, k, d).len(), 1);
    assert_eq!(released(&mut s, k, d), vec![1]);
    assert_eq!(s.push(MS, k, d, &seg(1, &m), 2), Push::Pass, "honest retransmission");
    let mut other = m.clone();
    other[0] = b'X';
    assert_eq!(s.push(MS, k, d, &seg(1, &other), 3), Push::Reset(StreamError::ConflictingOverlap));
    // Once acknowledged, the endpoint discards a retransmission whatever it holds.
    let (mut s, k, d) = open(0);
    s.push(MS, k, d, &seg(1, &m), 1);
    drain(&mut s, k, d);
    let ack = Segment { ack: Some(1 + m.len() as u32), ..seg(9000, b"") };
    assert_eq!(s.push(MS, k, 1 - d, &ack, 2), Push::Pass);
    assert_eq!(s.bytes(), 0, "acknowledged bytes are forgotten");
    assert_eq!(s.push(MS, k, d, &seg(1, &other), 3), Push::Pass);
}

#[test]
fn sequence_numbers_wrap_around() {
    let (a, b) = (msg(1, 100), msg(2, 0));
    let mut p = a.clone();
    p.extend_from_slice(&b);
    let isn = u32::MAX - 50;
    let (mut s, k, d) = open(isn);
    let cut = 80;
    assert_eq!(s.push(MS, k, d, &seg(isn.wrapping_add(1 + cut), &p[cut as usize..]), 1), Push::Held);
    assert_eq!(s.push(MS, k, d, &seg(isn.wrapping_add(1), &p[..cut as usize]), 2), Push::Held);
    assert_eq!(drain(&mut s, k, d), vec![a, b]);
    assert_eq!(released(&mut s, k, d), vec![1, 2]);
    let mut out = vec![];
    let reset = s.abort(k, d, &mut out).unwrap();
    assert_eq!(reset.to_receiver, isn.wrapping_add(1 + p.len() as u32));
}

#[test]
fn a_connection_seen_midstream_is_picked_up_and_older_bytes_wait_for_proof() {
    let mut s = Streams::new(StreamLimits::default());
    let (k, d) = key();
    let m = msg(1, 0);
    assert_eq!(s.push(MS, k, d, &seg(5000, &m), 1), Push::Held);
    assert_eq!(drain(&mut s, k, d), vec![m.clone()]);
    assert_eq!(s.stats().midstream, 1);
    assert_eq!(s.push(MS, k, d, &seg(4000, &m), 2), Push::Drop(StreamError::BeforePickup));
    let ack = Segment { ack: Some(5000 + m.len() as u32), ..seg(77, b"") };
    s.push(MS, k, 1 - d, &ack, 3);
    assert_eq!(s.push(MS, k, d, &seg(4000, &m), 4), Push::Pass, "proven received by the endpoint");
}

#[test]
fn a_message_without_content_length_cannot_be_framed() {
    let (mut s, k, d) = open(0);
    let m = b"OPTIONS sip:s@b SIP/2.0\r\nCall-ID: x\r\n\r\n";
    s.push(MS, k, d, &seg(1, m), 1);
    assert_eq!(s.next_message(k, d), Some(Err(StreamError::MissingContentLength)));
    let mut out = vec![];
    let ack = Segment { ack: Some(900), ..seg(899, b"") };
    s.push(MS, k, 1 - d, &ack, 2);
    let r = s.abort(k, d, &mut out).unwrap();
    assert_eq!(out, vec![1]);
    assert_eq!(r, ResetPoint { to_receiver: 1, to_sender: Some(899) });
    assert_eq!(s.flows(), 0);
}

#[test]
fn a_reset_in_window_forgets_the_connection_and_a_blind_one_does_not() {
    let (mut s, k, d) = open(0);
    s.push(MS, k, d, &seg(1, b"OPTIONS sip"), 1);
    let blind = Segment { rst: true, ..seg(1 << 30, b"") };
    assert_eq!(s.push(MS, k, d, &blind, 2), Push::Pass);
    assert_eq!(s.flows(), 1);
    let rst = Segment { rst: true, ..seg(12, b"") };
    assert_eq!(s.push(MS, k, d, &rst, 3), Push::Pass);
    assert_eq!(s.flows(), 0);
    let mut out = vec![];
    s.drain_dropped(&mut out);
    assert_eq!(out, vec![(1, StreamError::PeerReset)]);
}

#[test]
fn a_closed_connection_is_forgotten() {
    let (mut s, k, d) = open(0);
    s.push(MS, k, d, &seg(1, &msg(1, 0)), 1);
    drain(&mut s, k, d);
    let fin = Segment { fin: true, ..seg(1 + msg(1, 0).len() as u32, b"") };
    assert_eq!(s.push(MS, k, d, &fin, 2), Push::Pass);
    let fin = Segment { fin: true, ..seg(300, b"") };
    assert_eq!(s.push(MS, k, 1 - d, &fin, 3), Push::Pass);
    assert_eq!(s.flows(), 0);
}

#[test]
fn data_beyond_the_window_is_dropped_not_held() {
    let limits = StreamLimits { window_bytes: 1000, ..Default::default() };
    let (mut s, k, d) = open_with(0, limits);
    assert_eq!(s.push(MS, k, d, &seg(2000, b"abc"), 1), Push::Drop(StreamError::OutOfWindow));
    assert_eq!(s.bytes(), 0);
}

#[test]
fn per_connection_bounds_break_the_stream() {
    let limits = StreamLimits { max_flow_bytes: 1024, max_message_bytes: 1024, ..Default::default() };
    let (mut s, k, d) = open_with(0, limits);
    assert_eq!(s.push(MS, k, d, &seg(1, &[b'a'; 1000]), 1), Push::Held);
    assert_eq!(s.push(MS, k, d, &seg(1001, &[b'a'; 100]), 2), Push::Reset(StreamError::FlowOverBudget));
    let limits = StreamLimits { max_flow_segments: 4, ..Default::default() };
    let (mut s, k, d) = open_with(0, limits);
    let m = msg(1, 0);
    for i in 0..4 {
        assert_eq!(s.push(MS, k, d, &seg(1 + i, &m[i as usize..i as usize + 1]), i as u64), Push::Held);
    }
    assert_eq!(s.push(MS, k, d, &seg(5, &m[4..5]), 9), Push::Reset(StreamError::TooManySegments));
    // Headers that never end within the largest message.
    let limits = StreamLimits { max_message_bytes: 100, max_flow_bytes: 1000, ..Default::default() };
    let (mut s, k, d) = open_with(0, limits);
    s.push(MS, k, d, &seg(1, &[b'a'; 150]), 1);
    assert_eq!(s.next_message(k, d), Some(Err(StreamError::MessageTooLarge)));
}

#[test]
fn an_unfinished_message_times_out_and_its_frames_are_dropped() {
    let (mut s, k, d) = open(0);
    s.push(MS, k, d, &seg(1, b"OPTIONS sip:"), 1);
    s.expire(MS + 4_999 * MS);
    assert_eq!(s.flows(), 1);
    s.expire(MS + 6_300 * MS);
    assert_eq!(s.flows(), 0);
    let mut out = vec![];
    s.drain_dropped(&mut out);
    assert_eq!(out, vec![(1, StreamError::Timeout)]);
    assert_eq!(s.stats().errors[StreamError::Timeout.index()], 1);
}

#[test]
fn a_flood_of_never_finished_flows_stays_within_the_bounds() {
    let limits = StreamLimits { max_flows: 1000, max_bytes: 256 << 10, ..Default::default() };
    let mut s = Streams::new(limits);
    let server: SocketAddr = "10.77.0.2:5060".parse().unwrap();
    let mut dropped = vec![];
    for i in 0..100_000u32 {
        let src = SocketAddr::new(std::net::IpAddr::from((0x0a00_0000u32 + i).to_be_bytes()), 40000);
        let (k, d) = FlowKey::of(src, server);
        let syn = Segment { syn: true, ..seg(i, b"") };
        s.push(u64::from(i) * 1000, k, d, &syn, u64::from(i) * 2);
        let p = [b'A'; 600];
        assert_eq!(s.push(u64::from(i) * 1000, k, d, &seg(i + 1, &p), u64::from(i) * 2 + 1), Push::Held);
        assert!(s.flows() <= 1000);
        assert!(s.bytes() <= 256 << 10);
        s.drain_dropped(&mut dropped);
    }
    let evicted = s.stats().errors[StreamError::Evicted.index()];
    assert!(evicted >= 99_000, "evictions counted: {evicted}");
    assert_eq!(dropped.len() as u64, evicted, "every evicted connection's frame is reported");
}

/// Stream of messages (some with bodies) and keepalives, as a sender would write it.
fn stream_strategy() -> impl Strategy<Value = (Vec<u8>, Vec<Vec<u8>>)> {
    prop::collection::vec((0usize..3, 0usize..200), 1..8).prop_map(|parts| {
        let mut bytes = vec![];
        let mut msgs = vec![];
        for (i, (kind, body)) in parts.into_iter().enumerate() {
            if kind == 0 {
                bytes.extend_from_slice(if body % 2 == 0 { b"\r\n\r\n" } else { b"\r\n" });
            }
            let m = msg(i, body);
            bytes.extend_from_slice(&m);
            msgs.push(m);
        }
        (bytes, msgs)
    })
}

proptest! {
    #[test]
    fn any_segmentation_and_order_yields_the_same_messages(
        (bytes, msgs) in stream_strategy(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
        order in any::<prop::sample::Index>(),
        dup in any::<prop::sample::Index>(),
        isn in any::<u32>(),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len())).collect();
        points.extend([0, bytes.len()]);
        points.sort_unstable();
        points.dedup();
        let mut segs: Vec<(usize, usize)> = points.windows(2).map(|w| (w[0], w[1])).collect();
        // A rotation of the segments plus one duplicate: arbitrary arrival order within the window.
        let r = order.index(segs.len());
        segs.rotate_left(r);
        segs.push(segs[dup.index(segs.len())]);
        let (mut s, k, d) = open(isn);
        let mut got = vec![];
        let mut frames = vec![];
        for (i, (a, b)) in segs.iter().enumerate() {
            let p = seg(isn.wrapping_add(1 + *a as u32), &bytes[*a..*b]);
            let out = s.push(MS, k, d, &p, i as u64);
            prop_assert!(matches!(out, Push::Held | Push::Pass), "{out:?}");
            got.extend(drain(&mut s, k, d));
            s.release(k, d, &mut frames);
        }
        prop_assert_eq!(got, msgs);
        frames.sort_unstable();
        let held: Vec<u64> = (0..segs.len() as u64).filter(|i| !frames.contains(i)).collect();
        // Every frame is released, except a duplicate that passed at once.
        prop_assert!(held.len() <= 1, "held {held:?}");
        prop_assert_eq!(s.bytes(), bytes.len(), "forwarded bytes kept until acknowledged");
    }
}
