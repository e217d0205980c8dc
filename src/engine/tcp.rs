//! SIP over TCP in the engine: segments go through [`Streams`]; each message it frames is
//! judged by the same [`Core::judge_sip`] as a UDP datagram; frames are released once every
//! byte they carry is judged and passed, and a refused message (or a broken stream) resets
//! the connection, dropping every frame it holds. With several engines, a message whose
//! Call-ID another engine owns is judged there ([`Consult`]): its direction pauses until the
//! verdict comes back through [`TcpSide::resume`].

use super::{Core, SipSummary};
use crate::stream::{FlowKey, Push, ResetPoint, Segment, StreamError, Streams};
use crate::verdict::{Action, Cause, Verdict};
use crate::wire::reasm::FrameId;
use crate::hash::{shard_of, Keyer};
use crate::wire::{self, DecodeError, Transport};
use hashbrown::HashMap;
use std::net::SocketAddr;

/// What the TCP side made of a segment.
pub(super) enum TcpOutcome<'a> {
    /// Held, nothing released.
    Held,
    /// A verdict for `frames` (which may not include the segment just handled: `keep` says it
    /// stays held).
    Judged { verdict: Verdict, frames: &'a [FrameId], sip: Option<SipSummary<'a>>, keep: bool, reset: Option<ResetPoint> },
    /// A message another engine must judge; the segment just handled stays held.
    Consult(Consult<'a>),
}

/// Names a paused direction of a connection, for the answer to a consult to find it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsultTicket {
    key: FlowKey,
    dir: u8,
    token: u64,
    transport: Transport,
}

impl ConsultTicket {
    /// Sender and receiver of the consulted message.
    pub fn ends(&self) -> (SocketAddr, SocketAddr) {
        ends_of(self.key, self.dir as usize)
    }

    /// What carried the message (TCP or WebSocket): the owner judges it as that.
    pub fn transport(&self) -> Transport {
        self.transport
    }
}

/// A TCP message whose Call-ID another engine owns: that engine judges it
/// ([`super::Engine::judge_consulted`]) against its dialogs, and its verdict comes back
/// through [`super::Engine::resume`]. Meanwhile the message's frames stay held and framing
/// of its direction waits, so order is kept.
#[derive(Clone, Copy, Debug)]
pub struct Consult<'a> {
    /// The engine that owns the Call-ID.
    pub engine: usize,
    /// What to hand back with the verdict.
    pub ticket: ConsultTicket,
    /// Source of the message.
    pub src: SocketAddr,
    /// Destination of the message.
    pub dst: SocketAddr,
    /// The message, whole.
    pub msg: &'a [u8],
}

/// Which engine owns a Call-ID: the same keyed hash the data path shards UDP SIP by.
#[derive(Clone, Copy)]
struct Shard {
    index: usize,
    engines: usize,
    keyer: Keyer,
}

/// A direction waiting for another engine's verdict on its next message.
struct Paused {
    token: u64,
    len: usize,
    generation: u64,
}

/// The engine's TCP state: the connections and the scratch space of one segment.
pub(super) struct TcpSide {
    pub(super) streams: Streams,
    /// The messages framed from the current segment, copied so that judging them can borrow
    /// them while the connection moves on.
    arena: Vec<u8>,
    ranges: Vec<(usize, usize)>,
    frames: Vec<FrameId>,
    shard: Shard,
    /// Directions waiting for a consult's answer; at most `consults` by the data path's pool
    /// (allocated up front), and entries of forgotten connections are swept on tick.
    paused: HashMap<(FlowKey, u8), Paused>,
    next_token: u64,
}

/// TCP flag bits (RFC 9293 §3.1).
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// The TCP header fields reassembly needs, read from the frame at the decoder's L4 offset.
fn segment_of<'a>(frame: &[u8], d: &wire::Decoded<'a>) -> Option<Segment<'a>> {
    let h = frame.get(d.l4_offset..d.l4_offset + 14)?;
    let seq = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    let ack = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
    let flags = h[13];
    Some(Segment {
        seq,
        ack: (flags & ACK != 0).then_some(ack),
        syn: flags & SYN != 0,
        fin: flags & FIN != 0,
        rst: flags & RST != 0,
        payload: d.payload,
    })
}

/// The sender and receiver of direction `dir` of `key`.
fn ends_of(key: FlowKey, dir: usize) -> (SocketAddr, SocketAddr) {
    if dir == 0 {
        (key.a, key.b)
    } else {
        (key.b, key.a)
    }
}

/// How framing stopped.
enum Framed {
    /// Every whole message is in the arena.
    Done,
    /// The stream cannot be framed.
    Broken(StreamError),
    /// The next message (at `arena[at..at + n]`) belongs to engine `owner`; not accepted.
    Remote { owner: usize, at: usize, n: usize },
}

impl TcpSide {
    pub(super) fn new(streams: Streams, keyer: Keyer) -> TcpSide {
        let paused = HashMap::with_capacity(streams.limits().consults);
        TcpSide {
            streams,
            arena: Vec::with_capacity(4096),
            ranges: Vec::new(),
            frames: Vec::with_capacity(16),
            shard: Shard { index: 0, engines: 1, keyer },
            paused,
            next_token: 1,
        }
    }

    /// Makes this engine `index` of `engines`: messages whose Call-ID another engine owns are
    /// consulted on.
    pub(super) fn set_shard(&mut self, index: usize, engines: usize) {
        self.shard.index = index;
        self.shard.engines = engines.max(1);
    }

    /// Judges one segment of a SIP port (frame `id`, received at `now`).
    pub(super) fn judge<'a>(&'a mut self, core: &mut Core, now: u64, frame: &[u8], d: &wire::Decoded<'_>, id: FrameId) -> TcpOutcome<'a> {
        self.frames.clear();
        self.arena.clear();
        self.ranges.clear();
        let Some(seg) = segment_of(frame, d) else {
            self.frames.push(id);
            return TcpOutcome::Judged { verdict: core.undecodable(DecodeError::TruncatedTcp), frames: &self.frames, sip: None, keep: false, reset: None };
        };
        let src = SocketAddr::new(d.src, d.src_port);
        let dst = SocketAddr::new(d.dst, d.dst_port);
        let (key, dir) = FlowKey::of(src, dst);
        if seg.syn {
            // A new connection on the same ports voids the message out for judging: its
            // answer must not move the new stream's judged point.
            self.paused.remove(&(key, dir as u8));
        }
        let pushed = self.streams.push(now, key, dir, &seg, id);
        core.stats.tcp.copy_from(self.streams.stats());
        let verdict = match pushed {
            Push::Held => None,
            // Handshakes and pure ACKs are plain bridging, as before.
            Push::Pass if seg.payload.is_empty() => Some(core.not_sip(1)),
            Push::Pass => Some(Verdict::forward(Cause::Retransmission)),
            Push::Drop(e) => Some(Verdict::drop(Cause::Stream(e))),
            Push::Reset(e) => {
                self.paused.remove(&(key, dir as u8));
                return self.abort(core, key, dir, Some(id), Verdict::drop(Cause::Stream(e)), None);
            }
        };
        if let Some(verdict) = verdict {
            self.frames.push(id);
            return TcpOutcome::Judged { verdict, frames: &self.frames, sip: None, keep: false, reset: None };
        }
        core.stats.tcp_segments_held += 1;
        if self.paused.contains_key(&(key, dir as u8)) {
            // Framing of this direction waits for the verdict on its current message.
            return TcpOutcome::Held;
        }
        self.judge_messages(core, now, key, dir, Some(id))
    }

    /// Another engine's verdict on the message `ticket` names: forwarded, framing goes on;
    /// refused, the connection is reset. Held when the connection is gone (its frames were
    /// dropped with it) or nothing more can be released yet.
    pub(super) fn resume<'a>(&'a mut self, core: &mut Core, now: u64, ticket: ConsultTicket, verdict: Verdict) -> TcpOutcome<'a> {
        self.frames.clear();
        self.arena.clear();
        self.ranges.clear();
        let (key, dir) = (ticket.key, ticket.dir as usize);
        let live = self.paused.get(&(key, ticket.dir)).is_some_and(|p| p.token == ticket.token && self.streams.generation(key) == Some(p.generation));
        if !live {
            core.stats.consults.unmatched += 1;
            return TcpOutcome::Held;
        }
        let Some(p) = self.paused.remove(&(key, ticket.dir)) else { return TcpOutcome::Held };
        if verdict.cause != Cause::Stream(StreamError::ConsultRefused) {
            core.stats.consults.answered += 1;
        }
        if verdict.action != Action::Forward {
            return self.abort(core, key, dir, None, Verdict { action: Action::Drop, cause: verdict.cause }, None);
        }
        self.streams.accept(now, key, dir, p.len);
        let out = self.judge_messages(core, now, key, dir, None);
        match out {
            // The consulted message's verdict stands for its frames when nothing later was judged here.
            TcpOutcome::Judged { verdict: v, frames, sip: None, keep, reset: None } if v.cause == Cause::Keepalive => {
                TcpOutcome::Judged { verdict, frames, sip: None, keep, reset: None }
            }
            o => o,
        }
    }

    /// Frames and judges the messages of one direction from its judged point: local ones
    /// here, until one whose Call-ID another engine owns (consulted on); releases what passed.
    /// `id` is the segment just handled, if any.
    fn judge_messages<'a>(&'a mut self, core: &mut Core, now: u64, key: FlowKey, dir: usize, id: Option<FrameId>) -> TcpOutcome<'a> {
        let stop = self.frame_messages(now, key, dir);
        core.stats.tcp.copy_from(self.streams.stats());
        let (src, dst) = ends_of(key, dir);
        let transport = if self.streams.is_websocket(key) { Transport::Ws } else { Transport::Tcp };
        let TcpSide { streams, arena, ranges, frames, paused, next_token, .. } = self;
        let arena: &'a Vec<u8> = arena;
        let mut last: Option<(Verdict, SipSummary<'a>)> = None;
        for &(at, n) in ranges.iter() {
            let (v, s) = core.judge_sip(now, src, dst, transport, &arena[at..at + n]);
            if v.action != Action::Forward {
                // A reject cannot be answered inside a stream the firewall does not own: the
                // connection is reset instead.
                core.has_response = false;
                let v = Verdict { action: Action::Drop, cause: v.cause };
                return abort_flow(streams, frames, core, key, dir, id, v, Some(s));
            }
            last = Some((v, s));
        }
        match stop {
            Framed::Broken(e) => return abort_flow(streams, frames, core, key, dir, id, Verdict::drop(Cause::Stream(e)), None),
            Framed::Remote { owner, at, n } => {
                let token = *next_token;
                *next_token += 1;
                let generation = streams.generation(key).unwrap_or(0);
                paused.insert((key, dir as u8), Paused { token, len: n, generation });
                core.stats.consults.asked += 1;
                let ticket = ConsultTicket { key, dir: dir as u8, token, transport };
                return TcpOutcome::Consult(Consult { engine: owner, ticket, src, dst, msg: &arena[at..at + n] });
            }
            Framed::Done => {}
        }
        streams.release(key, dir, frames);
        if frames.is_empty() {
            return TcpOutcome::Held;
        }
        let keep = id.is_some_and(|id| !frames.contains(&id));
        let (verdict, sip) = match last {
            Some((v, s)) => (v, Some(s)),
            None => (Verdict::forward(Cause::Keepalive), None),
        };
        TcpOutcome::Judged { verdict, frames, sip, keep, reset: None }
    }

    /// Copies every whole message of the connection's direction into the arena (marking it
    /// judged for framing's sake: a refusal later aborts the connection anyway), up to the
    /// first one another engine owns.
    fn frame_messages(&mut self, now: u64, key: FlowKey, dir: usize) -> Framed {
        let shard = self.shard;
        loop {
            let m = match self.streams.next_message(key, dir) {
                None => return Framed::Done,
                Some(Err(e)) => return Framed::Broken(e),
                Some(Ok(m)) => m,
            };
            let (at, n) = (self.arena.len(), m.len());
            self.arena.extend_from_slice(m);
            let owner = match (shard.engines > 1).then(|| crate::dataplane::shard::find_call_id(m)).flatten() {
                Some(cid) => shard_of(shard.keyer.call_id(cid), shard.engines),
                None => shard.index,
            };
            if owner != shard.index {
                return Framed::Remote { owner, at, n };
            }
            self.ranges.push((at, n));
            self.streams.accept(now, key, dir, n);
        }
    }

    /// Forgets paused directions of connections that are gone (timed out, evicted, reset):
    /// an answer that never comes is bounded by the connection's reassembly timeout.
    pub(super) fn sweep(&mut self, core: &mut Core) {
        let streams = &self.streams;
        let before = self.paused.len();
        self.paused.retain(|(k, _), p| streams.generation(*k) == Some(p.generation));
        core.stats.consults.abandoned += (before - self.paused.len()) as u64;
    }

    fn abort<'a>(&'a mut self, core: &mut Core, key: FlowKey, dir: usize, id: Option<FrameId>, v: Verdict, sip: Option<SipSummary<'a>>) -> TcpOutcome<'a> {
        let TcpSide { streams, frames, .. } = self;
        abort_flow(streams, frames, core, key, dir, id, v, sip)
    }
}

/// Forgets the connection and drops everything it holds plus frame `id`; the reset point
/// goes with the verdict for the data path to build RSTs from.
#[allow(clippy::too_many_arguments)]
fn abort_flow<'a>(
    streams: &mut Streams,
    frames: &'a mut Vec<FrameId>,
    core: &mut Core,
    key: FlowKey,
    dir: usize,
    id: Option<FrameId>,
    v: Verdict,
    sip: Option<SipSummary<'a>>,
) -> TcpOutcome<'a> {
    frames.clear();
    let reset = streams.abort(key, dir, frames);
    if let Some(id) = id.filter(|id| !frames.contains(id)) {
        frames.push(id);
    }
    core.stats.tcp_resets += 1;
    core.stats.tcp.copy_from(streams.stats());
    TcpOutcome::Judged { verdict: v, frames, sip, keep: false, reset }
}

#[cfg(test)]
mod tests {
    use crate::config::EngineConfig;
    use crate::engine::{Engine, Outcome};
    use crate::fixtures::{self, tcp_flags::*, CallParams};
    use crate::hash::Keyer;
    use crate::stream::{ResetPoint, StreamError};
    use crate::verdict::{Action, Cause, Verdict};
    use std::net::SocketAddr;

    const SEC: u64 = 1_000_000_000;
    const ISN: u32 = 7_000;

    fn ends() -> (SocketAddr, SocketAddr) {
        ("10.77.0.1:40000".parse().unwrap(), "10.77.0.2:5060".parse().unwrap())
    }

    fn engine() -> Engine {
        let mut e = Engine::new(EngineConfig::default(), Keyer::with_keys(3, 4));
        let (c, s) = ends();
        assert!(matches!(judged(&mut e, &fixtures::tcp_frame(c, s, ISN, 0, SYN, b""), 1), Some((v, _, _)) if v == Verdict::forward(Cause::NotSip)));
        assert!(judged(&mut e, &fixtures::tcp_frame(s, c, 90_000, ISN + 1, SYN | ACK, b""), 2).is_some());
        e
    }

    /// An honest OPTIONS over TCP, and its twin with a missing Call-ID (dropped as malformed).
    fn honest() -> Vec<u8> {
        let p = CallParams::default();
        let m = String::from_utf8(fixtures::options(&p, 1)).unwrap();
        m.replace("SIP/2.0/UDP", "SIP/2.0/TCP").into_bytes()
    }

    fn malformed() -> Vec<u8> {
        let m = String::from_utf8(honest()).unwrap();
        let start = m.find("Call-ID:").unwrap();
        let end = start + m[start..].find("\r\n").unwrap() + 2;
        format!("{}{}", &m[..start], &m[end..]).into_bytes()
    }

    /// Verdict, frames and reset point of a judged frame; None when held.
    fn judged(e: &mut Engine, f: &[u8], id: u64) -> Option<(Verdict, Vec<u64>, Option<ResetPoint>)> {
        match e.handle(SEC, f, id) {
            Outcome::Held => None,
            Outcome::Consult(_) => panic!("one engine consulted"),
            Outcome::Judged(j) => Some((j.verdict, j.frames.to_vec(), j.reset)),
        }
    }

    /// Sends `bytes` from the client cut at `cuts` (relative offsets), frames numbered from 10;
    /// returns the last outcome.
    fn send_cut(e: &mut Engine, bytes: &[u8], cuts: &[usize]) -> Option<(Verdict, Vec<u64>, Option<ResetPoint>)> {
        let (c, s) = ends();
        let mut points = vec![0];
        points.extend_from_slice(cuts);
        points.push(bytes.len());
        let mut last = None;
        for (i, w) in points.windows(2).enumerate() {
            let f = fixtures::tcp_frame(c, s, ISN + 1 + w[0] as u32, 90_001, ACK, &bytes[w[0]..w[1]]);
            last = judged(e, &f, 10 + i as u64);
            if i + 2 < points.len() {
                assert!(last.is_none(), "segment {i} of an unfinished message released");
            }
        }
        last
    }

    /// Cuts inside the start line, inside a header, between headers and body (here: right
    /// before the blank line) and several at once.
    fn cut_sets(m: &[u8]) -> Vec<Vec<usize>> {
        let head_end = m.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        vec![vec![3], vec![30, 60], vec![head_end + 2], vec![10, 50, head_end + 3]]
    }

    #[test]
    fn a_split_message_is_judged_once_and_released_or_reset_whole() {
        let (m, bad) = (honest(), malformed());
        for (cuts, bad_cuts) in cut_sets(&m).into_iter().zip(cut_sets(&bad)) {
            let mut e = engine();
            let (v, frames, reset) = send_cut(&mut e, &m, &cuts).expect("judged on the last segment");
            assert_eq!(v, Verdict::forward(Cause::Valid));
            assert_eq!(frames, (10..10 + cuts.len() as u64 + 1).collect::<Vec<_>>());
            assert_eq!((reset, e.stats().sip_messages), (None, 1));
            let mut e = engine();
            let (v, frames, reset) = send_cut(&mut e, &bad, &bad_cuts).unwrap();
            assert_eq!(v, Verdict::drop(Cause::Malformed));
            assert_eq!(frames.len(), bad_cuts.len() + 1, "every held segment dropped");
            assert_eq!(reset, Some(ResetPoint { to_receiver: ISN + 1, to_sender: Some(90_001) }));
            assert_eq!(e.stats().tcp_resets, 1);
            assert_eq!(e.streams().flows(), 0);
        }
    }

    #[test]
    fn a_message_after_a_keepalive_is_judged() {
        for m in [honest(), malformed()] {
            let mut e = engine();
            let mut p = b"\r\n\r\n".to_vec();
            p.extend_from_slice(&m);
            let (v, _, _) = send_cut(&mut e, &p, &[]).unwrap();
            let want = if m == honest() { Action::Forward } else { Action::Drop };
            assert_eq!(v.action, want);
            assert_eq!(e.stats().tcp.keepalives, 1);
        }
        let mut e = engine();
        let (v, frames, _) = send_cut(&mut e, b"\r\n\r\n", &[]).unwrap();
        assert_eq!((v, frames), (Verdict::forward(Cause::Keepalive), vec![10]));
    }

    #[test]
    fn pipelined_messages_are_each_judged() {
        let mut both = honest();
        both.extend_from_slice(&honest());
        let mut e = engine();
        assert_eq!(send_cut(&mut e, &both, &[]).unwrap().0, Verdict::forward(Cause::Valid));
        assert_eq!(e.stats().sip_messages, 2);
        let mut attack = honest();
        attack.extend_from_slice(&malformed());
        let mut e = engine();
        assert_eq!(send_cut(&mut e, &attack, &[]).unwrap().0, Verdict::drop(Cause::Malformed));
    }

    #[test]
    fn a_segment_that_starts_the_next_message_stays_held_while_the_first_goes() {
        let (a, b) = (honest(), honest());
        let mut p = a.clone();
        p.extend_from_slice(&b);
        let mut e = engine();
        // Segment 10: message a; segment 11: a's last byte and b's first half; segment 12: the rest.
        let cut1 = a.len() - 1;
        let cut2 = a.len() + b.len() / 2;
        let (c, s) = ends();
        let f = |x: usize, y: usize| fixtures::tcp_frame(c, s, ISN + 1 + x as u32, 90_001, ACK, &p[x..y]);
        assert!(judged(&mut e, &f(0, cut1), 10).is_none());
        match e.handle(SEC, &f(cut1, cut2), 11) {
            Outcome::Judged(j) => assert_eq!((j.frames, j.keep), (&[10u64][..], true)),
            _ => panic!("message a is complete"),
        }
        assert_eq!(judged(&mut e, &f(cut2, p.len()), 12).unwrap().1, vec![11, 12]);
    }

    #[test]
    fn a_conflicting_overlap_resets_and_a_faithful_one_passes() {
        let m = honest();
        let (c, s) = ends();
        let mut e = engine();
        assert!(judged(&mut e, &fixtures::tcp_frame(c, s, ISN + 1, 90_001, ACK, &m[..40]), 10).is_none());
        let mut forged = m[20..60].to_vec();
        forged[10] ^= 0x20;
        let (v, frames, reset) = judged(&mut e, &fixtures::tcp_frame(c, s, ISN + 21, 90_001, ACK, &forged), 11).unwrap();
        assert_eq!(v, Verdict::drop(Cause::Stream(StreamError::ConflictingOverlap)));
        assert_eq!((frames, reset.is_some()), (vec![10, 11], true));
        let mut e = engine();
        assert!(judged(&mut e, &fixtures::tcp_frame(c, s, ISN + 1, 90_001, ACK, &m[..40]), 10).is_none());
        assert!(judged(&mut e, &fixtures::tcp_frame(c, s, ISN + 21, 90_001, ACK, &m[20..60]), 11).is_none());
        let (v, frames, _) = judged(&mut e, &fixtures::tcp_frame(c, s, ISN + 61, 90_001, ACK, &m[60..]), 12).unwrap();
        assert_eq!((v, frames), (Verdict::forward(Cause::Valid), vec![10, 11, 12]));
    }

    #[test]
    fn an_unfinished_message_times_out_and_its_frames_are_reported_dropped() {
        let mut e = engine();
        let (c, s) = ends();
        assert!(judged(&mut e, &fixtures::tcp_frame(c, s, ISN + 1, 90_001, ACK, b"OPTIONS sip:"), 10).is_none());
        e.tick(SEC + 7 * SEC);
        let mut out = vec![];
        e.drain_dropped(&mut out);
        assert_eq!(out, vec![(10, Verdict::drop(Cause::Stream(StreamError::Timeout)))]);
        assert_eq!(e.stats().tcp.errors[StreamError::Timeout.index()], 1);
        assert_eq!(e.stats().dropped, 1);
    }

    #[test]
    fn a_flood_of_never_finished_messages_stays_within_the_bounds() {
        let mut cfg = EngineConfig::default();
        cfg.tcp.max_flows = 2048;
        cfg.tcp.max_bytes = 1 << 20;
        let mut e = Engine::new(cfg, Keyer::with_keys(3, 4));
        let server: SocketAddr = "10.77.0.2:5060".parse().unwrap();
        let mut out = vec![];
        let mut reported = 0;
        for i in 0..100_000u32 {
            let c = SocketAddr::new(std::net::IpAddr::from((0x0a10_0000u32 + i).to_be_bytes()), 40000);
            assert!(judged(&mut e, &fixtures::tcp_frame(c, server, i, 0, SYN, b""), u64::from(i) * 2).is_some());
            let f = fixtures::tcp_frame(c, server, i + 1, 1, ACK, b"INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n");
            assert!(judged(&mut e, &f, u64::from(i) * 2 + 1).is_none());
            assert!(e.streams().flows() <= 2048 && e.streams().bytes() <= 1 << 20);
            e.drain_dropped(&mut out);
            reported += out.len();
            out.clear();
        }
        let evicted = e.stats().tcp.errors[StreamError::Evicted.index()];
        assert_eq!((evicted, reported as u64), (100_000 - 2048, 100_000 - 2048));
    }
}
