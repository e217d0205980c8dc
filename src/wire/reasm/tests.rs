use super::*;
use crate::wire::testutil::*;
use crate::wire::{decode, udp_datagram, Frame};
use proptest::prelude::*;
use std::net::Ipv4Addr;

const A4: [u8; 4] = [198, 51, 100, 1];
const B4: [u8; 4] = [198, 51, 100, 2];
const A6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const B6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const MS: u64 = 1_000_000;

fn key(id: u32) -> FragKey {
    FragKey {
        src: IpAddr::V4(Ipv4Addr::from(A4)),
        dst: IpAddr::V4(Ipv4Addr::from(B4)),
        id,
        proto: 17,
    }
}

fn invite(len: usize) -> Vec<u8> {
    let mut m =
        b"INVITE sip:bob@example.com SIP/2.0\r\nCall-ID: frag@test\r\nContent-Length: 0\r\n"
            .to_vec();
    while m.len() + 2 < len {
        m.extend_from_slice(b"X-Pad: 0123456789abcdef\r\n");
    }
    m.truncate(len - 2);
    m.extend_from_slice(b"\r\n");
    m
}

/// (offset, more, data) of one fragment.
type Piece<'a> = (u32, bool, &'a [u8]);
/// Reassembled bytes and frames, or the failure and its frames.
type Outcome = Result<(Vec<u8>, Vec<FrameId>), (ReasmError, Vec<FrameId>)>;

/// (offset, more, data) pieces of `d` cut every `step` bytes.
fn pieces(d: &[u8], step: usize) -> Vec<Piece<'_>> {
    d.chunks(step)
        .enumerate()
        .map(|(i, c)| ((i * step) as u32, (i + 1) * step < d.len(), c))
        .collect()
}

/// Pushes `order` of `ps` (frame id = index in `ps`) and returns the final outcome as owned data.
fn run(r: &mut Reassembler, k: FragKey, ps: &[Piece<'_>], order: &[usize]) -> Outcome {
    let mut ev = Vec::new();
    for (n, &i) in order.iter().enumerate() {
        let (off, more, data) = ps[i];
        match r.push(0, k, off, more, data, i as FrameId, &mut ev) {
            Pushed::Incomplete => {
                assert!(n + 1 < order.len(), "incomplete after the last fragment")
            }
            Pushed::Complete { datagram, frames } => {
                assert_eq!(n + 1, order.len(), "complete too early");
                return Ok((datagram.to_vec(), frames.to_vec()));
            }
            Pushed::Failed { reason, frames } => return Err((reason, frames.to_vec())),
        }
    }
    assert!(ev.is_empty());
    panic!("never completed")
}

fn shuffled(n: usize, mut seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.swap(i, (seed >> 33) as usize % (i + 1));
    }
    v
}

#[test]
fn in_order_reversed_and_shuffled() {
    let udp = udp_v4(A4, B4, 5060, 5060, &invite(3000));
    let ps = pieces(&udp, 1480);
    assert_eq!(ps.len(), 3);
    let mut r = Reassembler::new(ReasmLimits::default());
    let n = ps.len();
    let mut orders = vec![(0..n).collect::<Vec<_>>(), (0..n).rev().collect()];
    let ps_small = pieces(&udp, 264);
    for seed in 0..20 {
        orders.push(shuffled(n, seed));
    }
    for order in orders {
        let (d, frames) = run(&mut r, key(1), &ps, &order).unwrap();
        assert_eq!(d, udp);
        assert_eq!(
            frames,
            order.iter().map(|&i| i as FrameId).collect::<Vec<_>>()
        );
        assert_eq!((r.datagrams(), r.bytes()), (0, 0));
    }
    for seed in 0..20 {
        let order = shuffled(ps_small.len(), seed);
        let (d, _) = run(&mut r, key(2), &ps_small, &order).unwrap();
        assert_eq!(d, udp);
    }
    assert_eq!(r.stats().completed, 42);
}

fn push_frames(r: &mut Reassembler, frames: &[Vec<u8>]) -> (Vec<u8>, Vec<FrameId>) {
    let mut ev = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let Ok(Frame::Ip(d)) = decode(f) else {
            panic!("decode")
        };
        let fi = d.frag.expect("a fragment");
        match r.push(
            0,
            d.frag_key().unwrap(),
            fi.offset,
            fi.more,
            d.payload,
            i as FrameId,
            &mut ev,
        ) {
            Pushed::Incomplete => {}
            Pushed::Complete { datagram, frames } => return (datagram.to_vec(), frames.to_vec()),
            Pushed::Failed { reason, .. } => panic!("failed: {reason:?}"),
        }
    }
    panic!("never completed")
}

#[test]
fn decode_then_push_end_to_end_v4_and_v6() {
    let sip = invite(3000);
    let mut r = Reassembler::new(ReasmLimits::default());
    let v4 = sip_fragments_v4(A4, B4, (5062, 5060), 77, &sip, 1480);
    let (d, frames) = push_frames(&mut r, &v4);
    assert_eq!(frames, vec![0, 1, 2]);
    assert_eq!(udp_datagram(&d), Ok((5062, 5060, &sip[..])));
    let mut v6 = sip_fragments_v6(A6, B6, (5062, 5060), 0x01020304, &sip, 1232);
    v6.reverse();
    let (d, frames) = push_frames(&mut r, &v6);
    assert_eq!(frames, vec![0, 1, 2]);
    assert_eq!(udp_datagram(&d), Ok((5062, 5060, &sip[..])));
}

#[test]
fn overlap_fails_the_datagram() {
    let data = vec![1u8; 2048];
    let mut r = Reassembler::new(ReasmLimits::default());
    let mut ev = Vec::new();
    assert_eq!(
        r.push(0, key(1), 0, true, &data[..1024], 10, &mut ev),
        Pushed::Incomplete
    );
    let p = r.push(0, key(1), 512, true, &data[..1024], 11, &mut ev);
    assert_eq!(
        p,
        Pushed::Failed {
            reason: ReasmError::Overlap,
            frames: &[10, 11]
        }
    );
    assert_eq!((r.datagrams(), r.bytes(), r.stats().overlaps), (0, 0, 1));
    // Overlap into the next fragment, arriving out of order.
    r.push(0, key(2), 1024, false, &data[..100], 20, &mut ev);
    let p = r.push(0, key(2), 0, true, &data[..1032], 21, &mut ev);
    assert!(matches!(
        p,
        Pushed::Failed {
            reason: ReasmError::Overlap,
            ..
        }
    ));
    // Same offset, other bytes: an overlap, not a duplicate.
    r.push(0, key(3), 0, true, &data[..1024], 30, &mut ev);
    let p = r.push(0, key(3), 0, true, &[2u8; 1024], 31, &mut ev);
    assert!(matches!(
        p,
        Pushed::Failed {
            reason: ReasmError::Overlap,
            ..
        }
    ));
    assert!(ev.is_empty());
}

#[test]
fn identical_duplicate_is_tolerated_and_counted() {
    let udp = udp_v4(A4, B4, 1, 2, &invite(2000));
    let ps = pieces(&udp, 1024);
    let mut r = Reassembler::new(ReasmLimits::default());
    let mut ev = Vec::new();
    assert_eq!(
        r.push(0, key(1), ps[0].0, ps[0].1, ps[0].2, 1, &mut ev),
        Pushed::Incomplete
    );
    assert_eq!(
        r.push(0, key(1), ps[0].0, ps[0].1, ps[0].2, 2, &mut ev),
        Pushed::Incomplete
    );
    assert_eq!(r.bytes(), 1024);
    let p = r.push(0, key(1), ps[1].0, ps[1].1, ps[1].2, 3, &mut ev);
    assert_eq!(
        p,
        Pushed::Complete {
            datagram: &udp,
            frames: &[1, 2, 3]
        }
    );
    assert_eq!(r.stats().duplicates, 1);
    // A duplicate of the last fragment that drops the "last" flag is ambiguous.
    r.push(0, key(2), ps[1].0, false, ps[1].2, 1, &mut ev);
    let p = r.push(0, key(2), ps[1].0, true, ps[1].2, 2, &mut ev);
    assert!(matches!(p, Pushed::Failed { .. }));
}

#[test]
fn tiny_misaligned_too_big_and_bad_ends() {
    let d = [0u8; 4096];
    let mut r = Reassembler::new(ReasmLimits::default());
    let mut ev = Vec::new();
    let fail = |p: Pushed<'_>| match p {
        Pushed::Failed { reason, frames } => (reason, frames.to_vec()),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        fail(r.push(0, key(1), 0, true, &d[..8], 1, &mut ev)),
        (ReasmError::TinyFragment, vec![1])
    );
    r.push(0, key(2), 0, true, &d[..512], 1, &mut ev);
    assert_eq!(
        fail(r.push(0, key(2), 512, true, &d[..64], 2, &mut ev)),
        (ReasmError::TinyFragment, vec![1, 2])
    );
    assert_eq!(
        fail(r.push(0, key(3), 0, true, &d[..300], 1, &mut ev)).0,
        ReasmError::Misaligned
    );
    assert_eq!(
        fail(r.push(0, key(3), 4, false, &d[..300], 1, &mut ev)).0,
        ReasmError::Misaligned
    );
    assert_eq!(
        fail(r.push(0, key(3), 0, false, &d[..0], 1, &mut ev)).0,
        ReasmError::TinyFragment
    );
    assert_eq!(
        fail(r.push(0, key(4), 65528, false, &d[..16], 1, &mut ev)).0,
        ReasmError::TooBig
    );
    // Data beyond the last fragment's end, either order.
    r.push(0, key(5), 1024, false, &d[..512], 1, &mut ev);
    assert_eq!(
        fail(r.push(0, key(5), 2048, true, &d[..512], 2, &mut ev)).0,
        ReasmError::BeyondEnd
    );
    r.push(0, key(6), 2048, true, &d[..512], 1, &mut ev);
    assert_eq!(
        fail(r.push(0, key(6), 1024, false, &d[..512], 2, &mut ev)).0,
        ReasmError::BeyondEnd
    );
    // A second last fragment with another end.
    r.push(0, key(7), 1024, false, &d[..512], 1, &mut ev);
    assert_eq!(
        fail(r.push(0, key(7), 2048, false, &d[..512], 2, &mut ev)).0,
        ReasmError::ConflictingEnd
    );
    assert_eq!((r.datagrams(), r.bytes()), (0, 0));
    let s = r.stats();
    assert_eq!((s.tiny, s.misaligned, s.too_big, s.bad_end), (3, 2, 1, 3));
    assert!(ev.is_empty());
}

#[test]
fn too_many_fragments() {
    let mut r = Reassembler::new(ReasmLimits {
        max_fragments: 4,
        ..Default::default()
    });
    let mut ev = Vec::new();
    let d = [0u8; 256];
    for i in 0..4u32 {
        assert_eq!(
            r.push(0, key(1), i * 256, true, &d, u64::from(i), &mut ev),
            Pushed::Incomplete
        );
    }
    let p = r.push(0, key(1), 4 * 256, false, &d, 4, &mut ev);
    assert_eq!(
        p,
        Pushed::Failed {
            reason: ReasmError::TooManyFragments,
            frames: &[0, 1, 2, 3, 4]
        }
    );
}

#[test]
fn flood_of_incomplete_datagrams_stays_bounded() {
    let d = [0x55u8; 1480];
    for limits in [
        ReasmLimits::default(),
        // Bytes run out before slots do.
        ReasmLimits {
            max_datagrams: 100_000,
            max_bytes: 1 << 20,
            ..Default::default()
        },
    ] {
        let mut r = Reassembler::new(limits.clone());
        let mut ev = Vec::new();
        let mut evicted_frames = 0u64;
        for i in 0..100_000u32 {
            let p = r.push(
                u64::from(i) * 1000,
                key(i),
                0,
                true,
                &d,
                u64::from(i),
                &mut ev,
            );
            assert_eq!(p, Pushed::Incomplete);
            assert!(r.datagrams() <= limits.max_datagrams);
            assert!(r.bytes() <= limits.max_bytes);
            for (f, why) in ev.drain(..) {
                assert_eq!(why, ReasmError::Evicted);
                assert_eq!(f, evicted_frames, "oldest first");
                evicted_frames += 1;
            }
        }
        assert_eq!(evicted_frames + r.datagrams() as u64, 100_000);
        assert_eq!(r.stats().evicted, evicted_frames);
        assert_eq!(r.frames_held(), r.datagrams());
        // Still works after the flood.
        let udp = udp_v4(A4, B4, 1, 2, &invite(3000));
        let (got, _) = run(&mut r, key(1 << 30), &pieces(&udp, 1480), &[2, 0, 1]).unwrap();
        assert_eq!(got, udp);
    }
}

#[test]
fn expiry_after_timeout() {
    let mut r = Reassembler::new(ReasmLimits {
        timeout_ms: 100,
        ..Default::default()
    });
    let mut out = Vec::new();
    let d = [0u8; 512];
    r.push(0, key(1), 0, true, &d, 1, &mut out);
    r.push(50 * MS, key(2), 0, true, &d, 2, &mut out);
    r.push(60 * MS, key(1), 512, true, &d, 3, &mut out);
    r.expire(100 * MS, &mut out);
    assert!(out.is_empty());
    r.expire(100 * MS + 1, &mut out);
    assert_eq!(
        out,
        vec![(1, ReasmError::Timeout), (3, ReasmError::Timeout)]
    );
    assert_eq!((r.datagrams(), r.bytes()), (1, 512));
    // `push` expires too, and reports it in its out-vector.
    out.clear();
    r.push(200 * MS, key(3), 0, true, &d, 4, &mut out);
    assert_eq!(out, vec![(2, ReasmError::Timeout)]);
    assert_eq!(r.stats().timeouts, 2);
    // A late fragment of an expired datagram starts afresh.
    assert_eq!(
        r.push(200 * MS, key(1), 1024, false, &d, 5, &mut out),
        Pushed::Incomplete
    );
}

#[test]
fn pool_exhaustion_evicts_oldest_even_the_current_one() {
    let mut r = Reassembler::new(ReasmLimits {
        max_bytes: 4 * CHUNK,
        ..Default::default()
    });
    let mut ev = Vec::new();
    let d = [0u8; 1024];
    r.push(0, key(1), 0, true, &d, 1, &mut ev);
    r.push(0, key(2), 0, true, &d, 2, &mut ev);
    r.push(0, key(3), 0, true, &d, 3, &mut ev);
    assert_eq!(ev, vec![(1, ReasmError::Evicted)]);
    ev.clear();
    // Key 2 is now the oldest: growing it past the pool evicts it.
    let p = r.push(0, key(2), 1024, true, &[0u8; 1536], 4, &mut ev);
    assert_eq!(
        p,
        Pushed::Failed {
            reason: ReasmError::Evicted,
            frames: &[2, 4]
        }
    );
    assert_eq!(ev, vec![]);
}

#[test]
fn error_names_and_limits_config() {
    let mut names: Vec<_> = ReasmError::ALL.iter().map(|e| e.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ReasmError::ALL.len());
    let l: ReasmLimits = serde_json::from_str(r#"{"timeout_ms": 500}"#).unwrap();
    assert_eq!(
        l,
        ReasmLimits {
            timeout_ms: 500,
            ..Default::default()
        }
    );
    assert!(serde_json::from_str::<ReasmLimits>(r#"{"timeout": 500}"#).is_err());
    let back: ReasmLimits = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
    assert_eq!(back, l);
}

#[derive(Debug, Clone)]
struct Op {
    dt_ms: u64,
    id: u32,
    offset_units: u32,
    len: usize,
    more: bool,
    byte: u8,
}

fn op() -> impl Strategy<Value = Op> {
    (
        0u64..50,
        0u32..6,
        0u32..40,
        prop_oneof![
            Just(0usize),
            1usize..300,
            Just(256),
            Just(512),
            Just(1024),
            1000usize..2000
        ],
        any::<bool>(),
        0u8..2,
    )
        .prop_map(|(dt_ms, id, offset_units, len, more, byte)| Op {
            dt_ms,
            id,
            offset_units,
            len,
            more,
            byte,
        })
}

proptest! {
    #[test]
    fn random_fragments_never_panic_nor_exceed_bounds(ops in proptest::collection::vec(op(), 1..200), expire in any::<bool>()) {
        let limits = ReasmLimits { max_datagrams: 3, max_bytes: 8 * CHUNK, max_fragments: 5, max_datagram_bytes: 4000, timeout_ms: 300, min_fragment_bytes: 64 };
        let mut r = Reassembler::new(limits.clone());
        let mut ev = Vec::new();
        let data = [[0u8; 2048], [1u8; 2048]];
        let mut now = 0;
        let mut held = 0usize;
        for (i, o) in ops.iter().enumerate() {
            now += o.dt_ms * MS;
            if expire {
                r.expire(now, &mut ev);
            }
            let off = o.offset_units * 8 * 13;
            let released = match r.push(now, key(o.id), off, o.more, &data[o.byte as usize][..o.len], i as u64, &mut ev) {
                Pushed::Incomplete => 0,
                Pushed::Complete { datagram, frames } => {
                    prop_assert!(datagram.len() <= limits.max_datagram_bytes);
                    frames.len()
                }
                Pushed::Failed { frames, .. } => frames.len(),
            };
            held = held + 1 - released - ev.len();
            ev.clear();
            prop_assert!(r.datagrams() <= limits.max_datagrams);
            prop_assert!(r.bytes() <= limits.max_bytes);
            prop_assert_eq!(held, r.frames_held());
        }
    }
}
