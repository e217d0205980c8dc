//! Per-connection TCP reassembly, both directions, bounded (policy in the [parent](super)).
//!
//! Offsets: each direction numbers its bytes from the first one seen (`base`, the ISN + 1
//! after a SYN) as an `i64`, unwrapped from the 32-bit sequence space relative to the judged
//! point, so sequence wrap-around is just arithmetic. Within a direction:
//! `low <= judged <= next`, where `[low, judged)` is forwarded but not yet acknowledged (kept
//! to verify retransmissions), `[judged, next)` is received in order and not yet judged, and
//! `ooo` holds disjoint out-of-order pieces beyond `next`.

use super::framing::{self, Framed};
use super::websocket::{WsFlow, WsFramed, WsLimits, WsPass};
use super::{FlowKey, Segment, StreamError, StreamLimits, StreamStats};
use crate::wire::reasm::FrameId;
use hashbrown::HashMap;
use std::collections::VecDeque;

/// What [`Streams::push`] made of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Push {
    /// Nothing to judge (handshake, pure ACK, FIN, verified retransmission): forward it now.
    Pass,
    /// Held with its connection; call [`Streams::next_message`] then [`Streams::release`].
    Held,
    /// Refused, the connection kept: drop this segment (counted).
    Drop(StreamError),
    /// The stream is broken: call [`Streams::abort`] and reset the connection.
    Reset(StreamError),
}

/// Where to reset a connection so that both endpoints accept the RST (RFC 5961 wants the
/// exact next sequence number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResetPoint {
    /// Sequence number for the RST sent on in the segment's direction (to its receiver):
    /// the first byte not released.
    pub to_receiver: u32,
    /// Sequence number for the RST sent back to the segment's sender: what that sender
    /// acknowledged last, when known.
    pub to_sender: Option<u32>,
}

#[derive(Default)]
struct Half {
    synced: bool,
    /// Sequence number of offset 0.
    base: u32,
    low: i64,
    /// Whether the endpoint is known to hold everything below `low`.
    low_acked: bool,
    judged: i64,
    /// The end of the released frames: the endpoint's next expected byte, as far as the
    /// firewall can tell (frames released past a hole it cannot see would make it later).
    forwarded: i64,
    buf: Vec<u8>,
    ooo: Vec<(i64, Vec<u8>)>,
    /// Frames carrying unjudged bytes, with the offset their data ends at, in arrival order.
    held: VecDeque<(FrameId, i64)>,
    /// The acknowledgement number this side sent last.
    ack: Option<u32>,
    /// This side sent a FIN.
    fin: bool,
    /// The sequence number after this side's latest segment, synced or not.
    last_seq: Option<u32>,
}

impl Half {
    fn next(&self) -> i64 {
        self.low + self.buf.len() as i64
    }

    fn offset(&self, seq: u32) -> i64 {
        let at = self.base.wrapping_add(self.judged as u32);
        self.judged + i64::from(seq.wrapping_sub(at) as i32)
    }

    fn seq(&self, off: i64) -> u32 {
        self.base.wrapping_add(off as u32)
    }

    fn bytes(&self) -> usize {
        self.buf.len() + self.ooo.iter().map(|(_, b)| b.len()).sum::<usize>()
    }

    fn pending(&self) -> bool {
        self.judged < self.next() || !self.ooo.is_empty()
    }

    fn sync(&mut self, base: u32, acked: bool) {
        *self = Half { synced: true, base, low_acked: acked, ack: self.ack, last_seq: self.last_seq, ..Half::default() };
    }

    /// The peer acknowledged up to `ack`: forget forwarded bytes below it.
    fn acknowledged(&mut self, ack: u32) {
        let off = self.offset(ack).min(self.judged);
        if off >= self.low {
            self.buf.drain(..(off - self.low) as usize);
            self.low = off;
            self.low_acked = true;
        }
    }

    /// Adds the bytes `p` at offset `off`; Err on a conflict with bytes already held.
    fn insert(&mut self, off: i64, p: &[u8], window: usize) -> Result<(), StreamError> {
        let end = off + p.len() as i64;
        let next = self.next();
        // Compare with the in-order buffer.
        let (a, b) = (off.max(self.low), end.min(next));
        if a < b && p[(a - off) as usize..(b - off) as usize] != self.buf[(a - self.low) as usize..(b - self.low) as usize] {
            return Err(StreamError::ConflictingOverlap);
        }
        // Compare with every out-of-order piece it touches.
        for (s, piece) in &self.ooo {
            let (a, b) = (off.max(*s), end.min(*s + piece.len() as i64));
            if a < b && p[(a - off) as usize..(b - off) as usize] != piece[(a - s) as usize..(b - s) as usize] {
                return Err(StreamError::ConflictingOverlap);
            }
        }
        if end <= next {
            return Ok(());
        }
        if end > self.judged + window as i64 {
            return Err(StreamError::OutOfWindow);
        }
        // Keep the parts no piece covers yet, then append whatever became contiguous.
        let mut cursor = off.max(next);
        let mut gaps: Vec<(i64, i64)> = Vec::new();
        for (s, piece) in &self.ooo {
            let e = *s + piece.len() as i64;
            if *s > cursor && *s < end {
                gaps.push((cursor, *s));
            }
            if e > cursor && *s < end {
                cursor = cursor.max(e);
            }
        }
        if cursor < end {
            gaps.push((cursor, end));
        }
        for (a, b) in gaps {
            self.ooo.push((a, p[(a - off) as usize..(b - off) as usize].to_vec()));
        }
        self.ooo.sort_unstable_by_key(|(s, _)| *s);
        while let Some((s, _)) = self.ooo.first() {
            if *s != self.next() {
                break;
            }
            let (_, piece) = self.ooo.remove(0);
            self.buf.extend_from_slice(&piece);
        }
        Ok(())
    }
}

struct Flow {
    halves: [Half; 2],
    last_seen: u64,
    /// When the connection began holding unjudged bytes.
    pending_since: Option<u64>,
    generation: u64,
    /// SIP over WebSocket (a `sip_ws_ports` connection): framed by RFC 6455, not §18.3.
    ws: Option<WsFlow>,
}

impl Flow {
    fn bytes(&self) -> usize {
        self.halves[0].bytes() + self.halves[1].bytes()
    }

    fn refresh(&mut self, now: u64) {
        let pending = self.halves.iter().any(Half::pending);
        self.pending_since = match (pending, self.pending_since) {
            (true, Some(t)) => Some(t),
            (true, None) => Some(now),
            (false, _) => None,
        };
    }

    fn drop_held(&mut self, e: StreamError, out: &mut Vec<(FrameId, StreamError)>) {
        for h in &mut self.halves {
            out.extend(h.held.drain(..).map(|(id, _)| (id, e)));
        }
    }
}

/// Every tracked connection of one engine.
pub struct Streams {
    limits: StreamLimits,
    flows: HashMap<FlowKey, Flow>,
    /// Connections in the order they were last checked for expiry: (key, generation, at).
    order: VecDeque<(FlowKey, u64, u64)>,
    generation: u64,
    bytes: usize,
    stats: StreamStats,
    /// Frames of connections evicted or expired since the last drain.
    dropped: Vec<(FrameId, StreamError)>,
    /// Server ports whose connections carry SIP over WebSocket.
    ws_ports: Vec<u16>,
    ws_limits: WsLimits,
    /// The unmasked payload of the WebSocket message last handed out.
    ws_message: Vec<u8>,
}

impl Streams {
    /// An empty table within `limits`.
    pub fn new(limits: StreamLimits) -> Streams {
        let stats = StreamStats::new();
        Streams {
            flows: HashMap::with_capacity(limits.max_flows.min(1 << 16)),
            order: VecDeque::new(),
            limits,
            generation: 0,
            bytes: 0,
            stats,
            dropped: Vec::new(),
            ws_ports: Vec::new(),
            ws_limits: WsLimits::default(),
            ws_message: Vec::new(),
        }
    }

    /// Frames connections to `ports` as SIP over WebSocket (RFC 7118) within `limits`.
    pub fn with_websocket(mut self, ports: &[u16], limits: WsLimits) -> Streams {
        self.ws_ports = ports.to_vec();
        self.ws_message = Vec::with_capacity(self.limits.max_message_bytes);
        self.ws_limits = limits;
        self
    }

    /// Whether connection `key` carries SIP over WebSocket.
    pub fn is_websocket(&self, key: FlowKey) -> bool {
        self.flows.get(&key).is_some_and(|f| f.ws.is_some())
    }

    /// Counters so far.
    pub fn stats(&self) -> &StreamStats {
        &self.stats
    }

    /// The bounds in force.
    pub fn limits(&self) -> &StreamLimits {
        &self.limits
    }

    /// Connections tracked now.
    pub fn flows(&self) -> usize {
        self.flows.len()
    }

    /// Bytes buffered now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Moves frames dropped by eviction or timeout into `out`.
    pub fn drain_dropped(&mut self, out: &mut Vec<(FrameId, StreamError)>) {
        out.append(&mut self.dropped);
    }

    fn count(&mut self, e: StreamError) {
        self.stats.errors[e.index()] += 1;
    }

    /// Counts a stream error the caller found (a consult it could not make).
    pub fn count_error(&mut self, e: StreamError) {
        self.count(e);
    }

    /// The incarnation of connection `key`, if tracked: a connection forgotten and seen
    /// again (or restarted) gets a new one, so a late answer about the old one is told apart.
    pub fn generation(&self, key: FlowKey) -> Option<u64> {
        self.flows.get(&key).map(|f| f.generation)
    }

    /// Takes in a segment of connection `key` in direction `dir` (from [`FlowKey::of`]),
    /// carried by frame `id`, at `now` (ns).
    pub fn push(&mut self, now: u64, key: FlowKey, dir: usize, seg: &Segment<'_>, id: FrameId) -> Push {
        self.expire(now);
        if seg.rst {
            return self.peer_reset(key, dir, seg);
        }
        if !self.flows.contains_key(&key) {
            if seg.payload.is_empty() && !seg.syn {
                return Push::Pass; // an ACK or FIN of a connection nobody holds anything for
            }
            // The server's port decides: the SYN's destination, the SYN-ACK's source; a
            // connection picked up mid-stream may show it either way.
            let (dst, src) = if dir == 0 { (key.b.port(), key.a.port()) } else { (key.a.port(), key.b.port()) };
            let ws = match (seg.syn, seg.ack.is_some()) {
                (true, false) => self.ws_ports.contains(&dst),
                (true, true) => self.ws_ports.contains(&src),
                (false, _) => self.ws_ports.contains(&dst) || self.ws_ports.contains(&src),
            };
            self.create(now, key, ws);
        }
        let limits = &self.limits;
        let flow = self.flows.get_mut(&key).expect("created above");
        let before = flow.bytes();
        flow.last_seen = now;
        let out = handle_segment(flow, dir, seg, id, limits, &mut self.dropped, &mut self.stats);
        let after = flow.bytes();
        flow.refresh(now);
        self.account(before, after);
        match out {
            Push::Held => {
                self.stats.segments_held += 1;
                if after > self.limits.max_flow_bytes {
                    return self.fail(StreamError::FlowOverBudget);
                }
                if self.flows[&key].halves[dir].held.len() > self.limits.max_flow_segments {
                    return self.fail(StreamError::TooManySegments);
                }
                self.make_room(key);
            }
            Push::Drop(e) | Push::Reset(e) => self.count(e),
            Push::Pass => {
                let f = &self.flows[&key];
                if f.halves.iter().all(|h| h.fin) && f.pending_since.is_none() {
                    self.remove(key, StreamError::PeerReset); // closed cleanly: nothing held
                }
            }
        }
        out
    }

    fn fail(&mut self, e: StreamError) -> Push {
        self.count(e);
        Push::Reset(e)
    }

    fn account(&mut self, before: usize, after: usize) {
        self.bytes = (self.bytes + after).saturating_sub(before);
        self.stats.bytes = self.bytes as u64;
        self.stats.peak_bytes = self.stats.peak_bytes.max(self.stats.bytes);
    }

    fn create(&mut self, now: u64, key: FlowKey, ws: bool) {
        while self.flows.len() >= self.limits.max_flows {
            if !self.evict_oldest(None) {
                break;
            }
        }
        self.generation += 1;
        let ws = ws.then(WsFlow::default);
        let flow = Flow { halves: Default::default(), last_seen: now, pending_since: None, generation: self.generation, ws };
        self.flows.insert(key, flow);
        self.order.push_back((key, self.generation, now));
        self.stats.flows_created += 1;
        self.stats.flows = self.flows.len() as u64;
        if self.order.len() > 2 * self.limits.max_flows.max(1024) {
            let flows = &self.flows;
            self.order.retain(|(k, g, _)| flows.get(k).is_some_and(|f| f.generation == *g));
        }
    }

    /// Evicts the least recently checked connection other than `keep`; false when none.
    fn evict_oldest(&mut self, keep: Option<FlowKey>) -> bool {
        while let Some((k, g, at)) = self.order.pop_front() {
            let live = self.flows.get(&k).is_some_and(|f| f.generation == g);
            if !live {
                continue;
            }
            if Some(k) == keep {
                self.order.push_back((k, g, at));
                if self.order.len() == 1 {
                    return false;
                }
                continue;
            }
            self.remove(k, StreamError::Evicted);
            self.count(StreamError::Evicted);
            return true;
        }
        false
    }

    /// Evicts other connections while the buffered bytes exceed `max_bytes`.
    fn make_room(&mut self, keep: FlowKey) {
        while self.bytes > self.limits.max_bytes {
            if !self.evict_oldest(Some(keep)) {
                break;
            }
        }
    }

    fn remove(&mut self, key: FlowKey, e: StreamError) {
        if let Some(mut f) = self.flows.remove(&key) {
            f.drop_held(e, &mut self.dropped);
            self.bytes -= f.bytes().min(self.bytes);
            self.stats.bytes = self.bytes as u64;
            self.stats.flows = self.flows.len() as u64;
        }
    }

    /// Expires connections: unfinished messages after `timeout_ms` (their frames dropped),
    /// idle connections after `idle_timeout_s`; either at most a quarter of the shorter late.
    pub fn expire(&mut self, now: u64) {
        let reasm = self.limits.timeout_ms * 1_000_000;
        let idle = self.limits.idle_timeout_s * 1_000_000_000;
        // Each connection is looked at again a quarter of the shorter timeout after its last
        // look: expiry is at most that late, and costs O(1) per connection per quarter.
        let step = (reasm.min(idle) / 4).max(1);
        while let Some(&(k, g, at)) = self.order.front() {
            if at.saturating_add(step) > now {
                break;
            }
            self.order.pop_front();
            let Some(f) = self.flows.get(&k).filter(|f| f.generation == g) else { continue };
            match f.pending_since {
                Some(t) if t.saturating_add(reasm) <= now => {
                    self.remove(k, StreamError::Timeout);
                    self.count(StreamError::Timeout);
                }
                None if f.last_seen.saturating_add(idle) <= now => {
                    self.remove(k, StreamError::Evicted);
                    self.stats.idle_expired += 1;
                }
                _ => self.order.push_back((k, g, now)),
            }
        }
    }

    fn peer_reset(&mut self, key: FlowKey, dir: usize, seg: &Segment<'_>) -> Push {
        let window = self.limits.window_bytes as i64;
        if let Some(f) = self.flows.get(&key) {
            let h = &f.halves[dir];
            let off = h.offset(seg.seq);
            // An RST the endpoint would ignore (RFC 5961 §3) must not clear what is held.
            if !h.synced || (off >= h.judged - window && off <= h.next() + window) {
                self.remove(key, StreamError::PeerReset);
            }
        }
        Push::Pass
    }

    /// The next whole message of direction `dir`, after any keepalives; `None` until one is
    /// complete, `Err` when the stream cannot be framed (then [`Streams::abort`]).
    pub fn next_message(&mut self, key: FlowKey, dir: usize) -> Option<Result<&[u8], StreamError>> {
        let max = self.limits.max_message_bytes;
        let flow = self.flows.get_mut(&key)?;
        if flow.ws.is_some() {
            return next_ws_message(flow, dir, max, &self.ws_limits, &mut self.stats, &mut self.ws_message);
        }
        let h = &mut flow.halves[dir];
        loop {
            let unjudged = &h.buf[(h.judged - h.low) as usize..];
            match framing::frame(unjudged, max) {
                Framed::Need => return None,
                Framed::Keepalive(n) => {
                    h.judged += n as i64;
                    self.stats.keepalives += 1;
                }
                Framed::Message(n) => {
                    self.stats.messages += 1;
                    let h = &flow.halves[dir];
                    let at = (h.judged - h.low) as usize;
                    return Some(Ok(&h.buf[at..at + n]));
                }
                Framed::Error(e) => {
                    self.stats.errors[e.index()] += 1;
                    return Some(Err(e));
                }
            }
        }
    }

    /// Marks the message [`Streams::next_message`] gave (`len` bytes) as judged and passed.
    pub fn accept(&mut self, now: u64, key: FlowKey, dir: usize, len: usize) {
        if let Some(f) = self.flows.get_mut(&key) {
            // A WebSocket message's raw frames are longer than the payload judged.
            let len = f.ws.map_or(len, |w| w.pending_raw[dir]);
            let h = &mut f.halves[dir];
            h.judged = (h.judged + len as i64).min(h.next());
            f.refresh(now);
        }
    }

    /// Moves into `out`, in arrival order, the frames of direction `dir` whose bytes are all
    /// judged.
    pub fn release(&mut self, key: FlowKey, dir: usize, out: &mut Vec<FrameId>) {
        if let Some(f) = self.flows.get_mut(&key) {
            let h = &mut f.halves[dir];
            let judged = h.judged;
            let forwarded = &mut h.forwarded;
            h.held.retain(|&(id, end)| {
                if end <= judged {
                    *forwarded = (*forwarded).max(end);
                    out.push(id);
                    false
                } else {
                    true
                }
            });
        }
    }

    /// Forgets connection `key` after a refused message or a broken stream: its held frames
    /// go into `out` (to drop, those of direction `dir` first), and the result says where to
    /// reset it, seen from a segment of direction `dir`.
    pub fn abort(&mut self, key: FlowKey, dir: usize, out: &mut Vec<FrameId>) -> Option<ResetPoint> {
        let mut f = self.flows.remove(&key)?;
        self.bytes -= f.bytes().min(self.bytes);
        self.stats.bytes = self.bytes as u64;
        self.stats.flows = self.flows.len() as u64;
        // Direction `dir` first: a caller without the segment at hand builds RSTs from it.
        for d in [dir, 1 - dir] {
            out.extend(f.halves[d].held.drain(..).map(|(id, _)| id));
        }
        let (h, o) = (&f.halves[dir], &f.halves[1 - dir]);
        let to_sender = h.ack.or_else(|| if o.synced { Some(o.seq(o.judged)) } else { o.last_seq });
        Some(ResetPoint { to_receiver: h.seq(h.forwarded), to_sender })
    }
}

/// [`Streams::next_message`] of a WebSocket connection: handshake and control frames are
/// passed (judged) on the way, a data message's payload is unmasked into `out`.
fn next_ws_message<'a>(
    flow: &mut Flow,
    dir: usize,
    max: usize,
    limits: &WsLimits,
    stats: &mut StreamStats,
    out: &'a mut Vec<u8>,
) -> Option<Result<&'a [u8], StreamError>> {
    let ws = flow.ws.as_mut()?;
    let h = &mut flow.halves[dir];
    loop {
        let unjudged = &h.buf[(h.judged - h.low) as usize..];
        match ws.next(dir, unjudged, max, limits, out) {
            WsFramed::Need => return None,
            WsFramed::Pass(n, kind) => {
                h.judged += n as i64;
                match kind {
                    WsPass::Handshake => stats.ws_handshakes += 1,
                    WsPass::Control => stats.ws_control_frames += 1,
                }
            }
            WsFramed::Message(raw) => {
                ws.pending_raw[dir] = raw;
                stats.messages += 1;
                stats.ws_messages += 1;
                return Some(Ok(out.as_slice()));
            }
            WsFramed::Error(e) => {
                stats.errors[e.index()] += 1;
                return Some(Err(e));
            }
        }
    }
}

/// One segment of an existing connection.
fn handle_segment(
    flow: &mut Flow,
    dir: usize,
    seg: &Segment<'_>,
    id: FrameId,
    limits: &StreamLimits,
    dropped: &mut Vec<(FrameId, StreamError)>,
    stats: &mut StreamStats,
) -> Push {
    if let Some(ack) = seg.ack {
        flow.halves[dir].ack = Some(ack);
        let o = &mut flow.halves[1 - dir];
        if o.synced {
            o.acknowledged(ack);
        }
    }
    let h = &mut flow.halves[dir];
    let data_seq = if seg.syn { seg.seq.wrapping_add(1) } else { seg.seq };
    h.last_seq = Some(data_seq.wrapping_add(seg.payload.len() as u32));
    if seg.syn && !(h.synced && h.base == data_seq) {
        // A new connection on the same ports: whatever the old one held is void.
        out_held(h, dropped);
        h.sync(data_seq, true);
    } else if !h.synced {
        if seg.payload.is_empty() {
            h.fin |= seg.fin;
            return Push::Pass;
        }
        stats.midstream += 1;
        h.sync(data_seq, false);
    }
    h.fin |= seg.fin;
    if seg.payload.is_empty() {
        return Push::Pass;
    }
    let off = h.offset(data_seq);
    let end = off + seg.payload.len() as i64;
    if off < h.low && !h.low_acked {
        return Push::Drop(StreamError::BeforePickup);
    }
    if end <= h.low {
        return Push::Pass; // wholly acknowledged: the endpoint discards it
    }
    match h.insert(off, seg.payload, limits.window_bytes) {
        Err(StreamError::OutOfWindow) => return Push::Drop(StreamError::OutOfWindow),
        Err(e) => return Push::Reset(e),
        Ok(()) => {}
    }
    if end <= h.judged {
        return Push::Pass; // a retransmission of forwarded bytes, verified equal
    }
    h.held.push_back((id, end));
    Push::Held
}

fn out_held(h: &mut Half, dropped: &mut Vec<(FrameId, StreamError)>) {
    dropped.extend(h.held.drain(..).map(|(id, _)| (id, StreamError::PeerReset)));
}

#[cfg(test)]
mod tests;
