//! Bounded IP fragment reassembly for SIP over UDP, IPv4 and IPv6.
//!
//! The firewall inspects the reassembled datagram but forwards the *original* fragments: the
//! caller holds every fragment frame until [`Reassembler::push`] returns
//! [`Pushed::Complete`] (forward or drop them all, by verdict) or [`Pushed::Failed`] /
//! an entry in the `evicted` vector (drop them). Because the host only ever receives the
//! exact set of fragments that were inspected, the only way to make the host see other
//! bytes than the firewall is ambiguity inside that set; so any ambiguity fails the datagram:
//! - overlapping fragments, whatever their content ("first wins" and "last wins" hosts
//!   differ, RFC 1858 §4, RFC 3128); overlaps are never rewritten;
//! - an exact duplicate (same offset, length, more-flag and bytes) is not ambiguous and is
//!   tolerated — networks do duplicate — but counted in [`ReasmStats::duplicates`], and its
//!   frame is held and released with the others;
//! - a non-last fragment whose length or offset is not a multiple of 8 (RFC 8200 §4.5
//!   discards it, some IPv4 stacks truncate it);
//! - a second last fragment with another end, or data beyond the end of the last fragment.
//!
//! Memory: payload bytes live in one pool of `max_bytes` allocated at construction, cut in
//! [`CHUNK`]-byte chunks; metadata is bounded by `max_datagrams` slots of at most
//! `max_fragments` records each, and the slot vectors keep their capacity across datagrams,
//! so a warmed-up reassembler does not allocate per fragment. When the pool or the slots are
//! full, the oldest datagram in flight is evicted. [`Reassembler::bytes`] therefore never
//! exceeds `max_bytes` and [`Reassembler::datagrams`] never exceeds `max_datagrams`.

use std::collections::HashMap;
use std::net::IpAddr;

/// Caller's handle on a held frame (e.g. a UMEM address or a pcap frame number).
pub type FrameId = u64;

/// Why a datagram was abandoned; its frames are to be dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReasmError {
    /// Not complete within `timeout_ms` of its first fragment.
    Timeout,
    /// Evicted (oldest first) to make room for newer datagrams.
    Evicted,
    /// Two fragments cover a common byte (not an identical duplicate).
    Overlap,
    /// More than `max_fragments` fragments.
    TooManyFragments,
    /// Fragment ends beyond `max_datagram_bytes`.
    TooBig,
    /// Empty fragment, or non-last fragment shorter than `min_fragment_bytes`.
    TinyFragment,
    /// Non-last fragment length or fragment offset not a multiple of 8.
    Misaligned,
    /// Data beyond the end set by the last fragment.
    BeyondEnd,
    /// A second last fragment with a different end.
    ConflictingEnd,
}

impl ReasmError {
    /// Every variant, in declaration order (for counter tables).
    pub const ALL: &'static [ReasmError] = &[
        ReasmError::Timeout,
        ReasmError::Evicted,
        ReasmError::Overlap,
        ReasmError::TooManyFragments,
        ReasmError::TooBig,
        ReasmError::TinyFragment,
        ReasmError::Misaligned,
        ReasmError::BeyondEnd,
        ReasmError::ConflictingEnd,
    ];

    /// Stable snake_case name, used as a counter / metric label.
    pub fn name(&self) -> &'static str {
        match self {
            ReasmError::Timeout => "timeout",
            ReasmError::Evicted => "evicted",
            ReasmError::Overlap => "overlap",
            ReasmError::TooManyFragments => "too_many_fragments",
            ReasmError::TooBig => "too_big",
            ReasmError::TinyFragment => "tiny_fragment",
            ReasmError::Misaligned => "misaligned",
            ReasmError::BeyondEnd => "beyond_end",
            ReasmError::ConflictingEnd => "conflicting_end",
        }
    }
}

impl core::fmt::Display for ReasmError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for ReasmError {}

/// Bounds of the reassembler (a config section); every field has a default.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReasmLimits {
    /// Datagrams in flight at once (default 1024). Each costs a slot of metadata, and the
    /// caller holds up to `max_fragments` frames for it.
    pub max_datagrams: usize,
    /// Total buffered fragment payload, in bytes (default 4 MiB), allocated up front.
    /// Should be well above `max_datagram_bytes`, or large datagrams are evicted.
    pub max_bytes: usize,
    /// Largest reassembled IP payload, in bytes (default 65535).
    pub max_datagram_bytes: usize,
    /// Time from a datagram's first fragment to its abandonment, in ms (default 2000).
    /// Short on purpose: SIP fragments arrive back to back, and held frames cost buffers.
    pub timeout_ms: u64,
    /// Fragments (including tolerated duplicates) per datagram (default 64).
    pub max_fragments: usize,
    /// Smallest non-last fragment, in bytes (default 256).
    ///
    /// Tiny fragments serve evasion, not transport: the "tiny fragment" attack (RFC 1858 §3)
    /// splits the transport header so that a filter sees no ports, and RFC 3128 combines it
    /// with overlaps; they also maximise per-byte bookkeeping and held frames. The IPv6
    /// minimum MTU (1280) gives 1232-byte fragments and the IPv4 576-byte minimum datagram
    /// gives 552, so 256 refuses nothing a real link produces.
    pub min_fragment_bytes: usize,
}

impl Default for ReasmLimits {
    fn default() -> Self {
        ReasmLimits {
            max_datagrams: 1024,
            max_bytes: 4 << 20,
            max_datagram_bytes: 65535,
            timeout_ms: 2000,
            max_fragments: 64,
            min_fragment_bytes: 256,
        }
    }
}

/// Identifies the datagram a fragment belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragKey {
    /// IP source.
    pub src: IpAddr,
    /// IP destination.
    pub dst: IpAddr,
    /// IPv4 identification or IPv6 fragment identification.
    pub id: u32,
    /// IP protocol (IPv4) or the fragment header's next header (IPv6).
    pub proto: u8,
}

/// Outcome of [`Reassembler::push`]; the slices borrow the reassembler until its next call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed<'r> {
    /// Holes remain; hold the frame.
    Incomplete,
    /// All fragments are in.
    Complete {
        /// The reassembled IP payload (UDP header + data).
        datagram: &'r [u8],
        /// Every fragment's frame, in arrival order, duplicates included.
        frames: &'r [FrameId],
    },
    /// The datagram is abandoned; drop these frames (the pushed one included, last).
    Failed {
        /// Why.
        reason: ReasmError,
        /// Frames to drop, in arrival order.
        frames: &'r [FrameId],
    },
}

/// Counters of a [`Reassembler`]; datagram counts unless said otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReasmStats {
    /// Fragments pushed.
    pub fragments: u64,
    /// Datagrams reassembled.
    pub completed: u64,
    /// Datagrams abandoned for any reason, timeouts and evictions included.
    pub failed: u64,
    /// Datagrams expired.
    pub timeouts: u64,
    /// Datagrams evicted for room.
    pub evicted: u64,
    /// Datagrams failed on an overlap.
    pub overlaps: u64,
    /// Identical duplicate fragments tolerated.
    pub duplicates: u64,
    /// Datagrams failed on a tiny fragment.
    pub tiny: u64,
    /// Datagrams failed on too many fragments.
    pub too_many: u64,
    /// Datagrams failed on size.
    pub too_big: u64,
    /// Datagrams failed on a misaligned fragment.
    pub misaligned: u64,
    /// Datagrams failed on an inconsistent end (beyond_end, conflicting_end).
    pub bad_end: u64,
}

/// Granularity of the payload pool: each fragment starts on a fresh chunk, so the waste is
/// under one chunk per fragment (at most 2x with `min_fragment_bytes` = 256).
pub const CHUNK: usize = 512;

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Frag {
    offset: u32,
    len: u32,
    /// Index in `Slot::chunks` of this fragment's first chunk.
    chunk0: u32,
}

#[derive(Debug)]
struct Slot {
    key: FragKey,
    born_ns: u64,
    /// Sorted by offset, no overlaps.
    frags: Vec<Frag>,
    /// Arrival order.
    frames: Vec<FrameId>,
    /// Pool chunks, in arrival order of the fragments.
    chunks: Vec<u32>,
    received: u32,
    end: Option<u32>,
    /// Age list (oldest first), by slot index.
    older: u32,
    newer: u32,
}

/// Reassembles fragmented datagrams in bounded memory; see the module doc.
#[derive(Debug)]
pub struct Reassembler {
    limits: ReasmLimits,
    timeout_ns: u64,
    index: HashMap<FragKey, u32>,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    oldest: u32,
    newest: u32,
    pool: Vec<u8>,
    free_chunks: Vec<u32>,
    bytes: usize,
    out: Vec<u8>,
    out_frames: Vec<FrameId>,
    stats: ReasmStats,
}

impl Reassembler {
    /// Allocates the payload pool (`max_bytes`) and the index; zero limits are raised to 1.
    pub fn new(l: ReasmLimits) -> Self {
        let mut limits = l;
        limits.max_datagrams = limits.max_datagrams.clamp(1, NIL as usize - 1);
        limits.max_fragments = limits.max_fragments.max(1);
        limits.max_datagram_bytes = limits.max_datagram_bytes.min(u32::MAX as usize / 2);
        let chunks = (limits.max_bytes / CHUNK).min(NIL as usize - 1);
        Reassembler {
            timeout_ns: limits.timeout_ms.saturating_mul(1_000_000),
            // Twice the live maximum so that tombstones are always cleaned by an in-place
            // rehash, never by growing: the index does not allocate after construction.
            index: HashMap::with_capacity(limits.max_datagrams * 2),
            slots: Vec::new(),
            free_slots: Vec::new(),
            oldest: NIL,
            newest: NIL,
            pool: vec![0; chunks * CHUNK],
            free_chunks: (0..chunks as u32).rev().collect(),
            bytes: 0,
            out: Vec::with_capacity(limits.max_datagram_bytes.min(1 << 16)),
            out_frames: Vec::with_capacity(limits.max_fragments + 1),
            stats: ReasmStats::default(),
            limits,
        }
    }

    /// The limits in force (after raising zeros).
    pub fn limits(&self) -> &ReasmLimits {
        &self.limits
    }

    /// Adds one fragment: `offset` in bytes, `more` = more-fragments flag, `data` = its IP
    /// payload. Datagrams expired or evicted meanwhile report their frames in `evicted`.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        now_ns: u64,
        key: FragKey,
        offset: u32,
        more: bool,
        data: &[u8],
        frame: FrameId,
        evicted: &mut Vec<(FrameId, ReasmError)>,
    ) -> Pushed<'_> {
        self.stats.fragments += 1;
        // Expiring here keeps the bounds meaningful even if the caller's timer is late.
        self.expire(now_ns, evicted);
        let existing = self.index.get(&key).copied();
        let len = data.len();
        let end = u64::from(offset) + len as u64;
        let local = if end > self.limits.max_datagram_bytes as u64 {
            Some(ReasmError::TooBig)
        } else if len == 0 || (more && len < self.limits.min_fragment_bytes) {
            Some(ReasmError::TinyFragment)
        } else if offset % 8 != 0 || (more && len % 8 != 0) {
            Some(ReasmError::Misaligned)
        } else {
            None
        };
        if let Some(reason) = local {
            return self.fail(existing, frame, reason);
        }
        // Both fit in u32: end <= max_datagram_bytes <= u32::MAX / 2.
        let (len, end) = (len as u32, end as u32);
        let s = match existing {
            Some(s) => s,
            None => self.new_slot(now_ns, key, evicted),
        };
        if let Err(reason) = self.check(s, offset, len, end, more, data) {
            return self.fail(Some(s), frame, reason);
        }
        let slot = &mut self.slots[s as usize];
        let pos = slot.frags.partition_point(|f| f.offset < offset);
        if slot.frags.get(pos).is_some_and(|f| f.offset == offset) {
            // `check` let it through: an identical duplicate.
            slot.frames.push(frame);
            self.stats.duplicates += 1;
            return Pushed::Incomplete;
        }
        let need = len.div_ceil(CHUNK as u32) as usize;
        while self.free_chunks.len() < need {
            let victim = self.oldest;
            if victim == s {
                self.stats.evicted += 1;
                return self.fail(Some(s), frame, ReasmError::Evicted);
            }
            self.evict(victim, ReasmError::Evicted, evicted);
        }
        let slot = &mut self.slots[s as usize];
        let chunk0 = slot.chunks.len() as u32;
        for piece in data.chunks(CHUNK) {
            let c = self.free_chunks.pop().expect("reserved above") as usize;
            self.pool[c * CHUNK..c * CHUNK + piece.len()].copy_from_slice(piece);
            slot.chunks.push(c as u32);
        }
        slot.frags.insert(
            pos,
            Frag {
                offset,
                len,
                chunk0,
            },
        );
        slot.frames.push(frame);
        slot.received += len;
        self.bytes += len as usize;
        if !more {
            slot.end = Some(end);
        }
        if slot.end == Some(slot.received) {
            return self.complete(s);
        }
        Pushed::Incomplete
    }

    /// Abandons datagrams whose first fragment is older than `timeout_ms`; their frames go
    /// to `out` with [`ReasmError::Timeout`].
    pub fn expire(&mut self, now_ns: u64, out: &mut Vec<(FrameId, ReasmError)>) {
        while self.oldest != NIL {
            let born = self.slots[self.oldest as usize].born_ns;
            // A clock going backwards expires nothing rather than everything.
            if now_ns.saturating_sub(born) <= self.timeout_ns {
                break;
            }
            self.stats.timeouts += 1;
            self.evict(self.oldest, ReasmError::Timeout, out);
        }
    }

    /// Datagrams in flight.
    pub fn datagrams(&self) -> usize {
        self.index.len()
    }

    /// Fragment payload bytes buffered.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Frames currently held across all datagrams in flight.
    pub fn frames_held(&self) -> usize {
        self.index
            .values()
            .map(|&s| self.slots[s as usize].frames.len())
            .sum()
    }

    /// Snapshot of the counters.
    pub fn stats(&self) -> ReasmStats {
        self.stats
    }

    /// Datagram-level checks against what slot `s` already holds.
    fn check(
        &self,
        s: u32,
        offset: u32,
        len: u32,
        end: u32,
        more: bool,
        data: &[u8],
    ) -> Result<(), ReasmError> {
        let slot = &self.slots[s as usize];
        if slot.frames.len() >= self.limits.max_fragments {
            return Err(ReasmError::TooManyFragments);
        }
        match slot.end {
            Some(t) if more && end > t => return Err(ReasmError::BeyondEnd),
            Some(t) if !more && end != t => return Err(ReasmError::ConflictingEnd),
            None if !more && slot.frags.last().is_some_and(|f| f.offset + f.len > end) => {
                return Err(ReasmError::BeyondEnd)
            }
            _ => {}
        }
        let pos = slot.frags.partition_point(|f| f.offset < offset);
        if let Some(f) = slot.frags.get(pos).filter(|f| f.offset == offset) {
            let stored_is_last = slot.end == Some(end);
            let same_last = more != stored_is_last;
            return if f.len == len && same_last && self.stored_equals(slot, f, data) {
                Ok(())
            } else {
                Err(ReasmError::Overlap)
            };
        }
        let prev_overlaps =
            pos > 0 && slot.frags[pos - 1].offset + slot.frags[pos - 1].len > offset;
        let next_overlaps = slot.frags.get(pos).is_some_and(|f| f.offset < end);
        if prev_overlaps || next_overlaps {
            return Err(ReasmError::Overlap);
        }
        Ok(())
    }

    fn stored_equals(&self, slot: &Slot, f: &Frag, data: &[u8]) -> bool {
        data.chunks(CHUNK).enumerate().all(|(i, piece)| {
            let c = slot.chunks[f.chunk0 as usize + i] as usize * CHUNK;
            &self.pool[c..c + piece.len()] == piece
        })
    }

    fn new_slot(&mut self, now_ns: u64, key: FragKey, out: &mut Vec<(FrameId, ReasmError)>) -> u32 {
        if self.free_slots.is_empty() && self.slots.len() >= self.limits.max_datagrams {
            self.evict(self.oldest, ReasmError::Evicted, out);
        }
        let s = match self.free_slots.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot {
                    key,
                    born_ns: now_ns,
                    frags: Vec::new(),
                    frames: Vec::new(),
                    chunks: Vec::new(),
                    received: 0,
                    end: None,
                    older: NIL,
                    newer: NIL,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[s as usize];
        slot.key = key;
        slot.born_ns = now_ns;
        slot.received = 0;
        slot.end = None;
        slot.older = self.newest;
        slot.newer = NIL;
        match self.newest {
            NIL => self.oldest = s,
            n => self.slots[n as usize].newer = s,
        }
        self.newest = s;
        self.index.insert(key, s);
        s
    }

    /// Reports the frames of `s` to `out` and frees it.
    fn evict(&mut self, s: u32, reason: ReasmError, out: &mut Vec<(FrameId, ReasmError)>) {
        if reason == ReasmError::Evicted {
            self.stats.evicted += 1;
        }
        self.stats.failed += 1;
        out.extend(self.slots[s as usize].frames.iter().map(|&f| (f, reason)));
        self.release(s);
    }

    /// Fails the datagram in `s` (if any) together with `frame`.
    fn fail(&mut self, s: Option<u32>, frame: FrameId, reason: ReasmError) -> Pushed<'_> {
        self.stats.failed += 1;
        match reason {
            ReasmError::Overlap => self.stats.overlaps += 1,
            ReasmError::TinyFragment => self.stats.tiny += 1,
            ReasmError::TooManyFragments => self.stats.too_many += 1,
            ReasmError::TooBig => self.stats.too_big += 1,
            ReasmError::Misaligned => self.stats.misaligned += 1,
            ReasmError::BeyondEnd | ReasmError::ConflictingEnd => self.stats.bad_end += 1,
            ReasmError::Timeout | ReasmError::Evicted => {}
        }
        self.out_frames.clear();
        if let Some(s) = s {
            self.out_frames
                .extend_from_slice(&self.slots[s as usize].frames);
            self.release(s);
        }
        self.out_frames.push(frame);
        Pushed::Failed {
            reason,
            frames: &self.out_frames,
        }
    }

    fn complete(&mut self, s: u32) -> Pushed<'_> {
        self.stats.completed += 1;
        let slot = &self.slots[s as usize];
        self.out.clear();
        for f in &slot.frags {
            let mut left = f.len as usize;
            for &c in &slot.chunks[f.chunk0 as usize..] {
                if left == 0 {
                    break;
                }
                let n = left.min(CHUNK);
                let c = c as usize * CHUNK;
                self.out.extend_from_slice(&self.pool[c..c + n]);
                left -= n;
            }
        }
        self.out_frames.clear();
        self.out_frames.extend_from_slice(&slot.frames);
        self.release(s);
        Pushed::Complete {
            datagram: &self.out,
            frames: &self.out_frames,
        }
    }

    /// Returns the chunks of `s` to the pool, unlinks and frees it; keeps its vectors'
    /// capacity for the next datagram.
    fn release(&mut self, s: u32) {
        let slot = &mut self.slots[s as usize];
        self.free_chunks.extend_from_slice(&slot.chunks);
        self.bytes -= slot.received as usize;
        slot.chunks.clear();
        slot.frags.clear();
        slot.frames.clear();
        slot.received = 0;
        slot.end = None;
        let (older, newer) = (slot.older, slot.newer);
        let key = slot.key;
        match older {
            NIL => self.oldest = newer,
            o => self.slots[o as usize].newer = newer,
        }
        match newer {
            NIL => self.newest = older,
            n => self.slots[n as usize].older = older,
        }
        self.index.remove(&key);
        self.free_slots.push(s);
    }
}

#[cfg(test)]
mod tests;
