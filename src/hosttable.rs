//! The host table: per-source state shared by every engine thread.
//!
//! Engines own their SIP state without sharing; this table is the one exception. It holds, per
//! source address (aggregated to a prefix) or for the [`HostKey::GLOBAL`] entry:
//!
//! - leaky counters (`counter[decrement; period]`: flood rates, authentication failures),
//! - approximate distinct-value counters (extension enumeration: distinct To users per window),
//! - bans with an expiry, always for one exact address.
//!
//! # Shape
//!
//! One array of [`HostTable::capacity`] entries is allocated by [`HostTable::new`] and never grows.
//! An entry is a run of `AtomicU64` words, padded to whole 64-byte cache lines:
//!
//! | word | content |
//! |------|---------|
//! | `STATE` | seqlock word: `seq:40 \| tag:8 \| family:8 \| prefix:8`; `seq` odd = being rewritten |
//! | `HI`, `LO` | the 128-bit address of the key |
//! | `SEEN` | last-seen time (ns), for oldest-first eviction |
//! | `BAN_UNTIL`, `BAN_RULE` | the ban (0 = none) |
//! | counters × `counters` | `tag:8 \| value:24 \| period index:32` |
//! | distincts × `distincts` | window start + 1 (ns, 0 = unset) then a 256-bit bitmap in 4 words |
//!
//! A second array holds a 32-bit fingerprint of each entry's key hash, so that a lookup that
//! misses (the common case for [`HostTable::banned`]) reads one or two cache lines instead of
//! `probe` entries.
//!
//! # Index
//!
//! A key is hashed with SipHash-1-3 under a random per-table secret (attackers cannot aim many
//! sources at one probe window) and may live in any of the `probe` consecutive entries from its
//! home index. Lookups take the first entry (in probe order) whose full key matches; the hash is
//! only a hint: every match compares the full 128-bit address, the family and the prefix length.
//! When no entry matches, the key claims an empty entry, else the entry of the window with the
//! oldest last-seen time that holds no live ban (bans are pinned until they expire). If every
//! entry of the window holds a live ban, nothing is evicted: counters answer as if fresh and
//! count `full`, [`HostTable::ban`] returns `false` and counts `ban_failures`.
//!
//! # Concurrency and memory orderings
//!
//! Everything is an atomic; there is no lock on any path and no `unsafe`.
//!
//! - **`STATE` is a seqlock.** A writer that changes what an entry *is* (claiming it for another
//!   key, writing or clearing its ban, merging a duplicate) first CASes `seq` from even to odd
//!   (`Acquire`, so it sees the previous writer's words), issues a `Release` fence, writes the
//!   words (`Relaxed`), then stores the next even `seq` with `Release` (`SeqCst` when publishing a
//!   claim, see duplicates below). A reader loads `STATE` with `Acquire`, reads the words it needs
//!   (`Relaxed`), issues an `Acquire` fence and reloads `STATE` (`Relaxed`): if the two loads
//!   differ or `seq` was odd, the snapshot is discarded (retried, or the entry treated as absent).
//!   The fence pair guarantees that a reader that saw any word of a newer writer also sees that
//!   writer's odd `seq`, so a validated snapshot of key + ban is one host's data, never a mix.
//! - **Counters** are updated by a CAS loop on their one word without taking the seqlock: the
//!   updater loads the word (`Relaxed`), fences `Acquire` and re-validates `STATE` before the CAS
//!   (`Relaxed`). A claim rewrites every counter word with the new entry's 8-bit `tag`, so a CAS
//!   prepared for the previous host expects a word that no longer exists and fails; a CAS that
//!   won before the rewrite is erased by it. *Caveat:* an increment racing with the eviction of
//!   its entry may be lost (the operation is retried on the re-looked-up entry when the race is
//!   seen in time, else counted in `lost`). Misattributing it would need the same entry to be
//!   reclaimed 256 times while one thread sits between its validation and its CAS.
//! - **Distinct bitmaps** are `fetch_or`ed (`Relaxed`) and the entry re-validated afterwards (a
//!   failed validation retries the insert, which is idempotent). They are approximate by
//!   construction, and more so under races: an insert racing with an eviction may leave one
//!   stray bit in the next host's bitmap, and one racing with a window reset may land in either
//!   window.
//! - **Bans are exact.** `BAN_UNTIL`/`BAN_RULE` are only written under the seqlock, reset by
//!   every claim, and read in the same validated snapshot as the key. A ban is reported only for
//!   the exact address (and family) it was set on, whatever the hash says.
//! - **`SEEN`**, the table clock and the statistics are `Relaxed`: they steer eviction and
//!   reporting only. `SEEN` is refreshed at most once per millisecond per entry so that a hot key
//!   (the global entry) does not bounce its header line between cores on every operation.
//!
//! **Duplicates.** Two threads that miss the same new key at once may claim two different
//! entries. After publishing a claim (`SeqCst` store), the claimer rescans the window (`SeqCst`
//! loads): of two concurrent claimers at least one sees the other (the store→load order of a
//! Dekker pair), and the later entry in probe order is merged into the earlier one: its counter
//! words are `swap`ped out (so racing updates of it either land before the swap and are merged,
//! or fail their CAS and retry on the survivor), its bitmaps OR-ed in, its ban carried over. A
//! merged counter keeps the newer period index of the two (the leak parameters are not stored),
//! which errs towards the higher value. A key whose entry is locked for longer than a short spin
//! can also be duplicated; lookups then use the earlier entry and the other ages out, and ban
//! checks and [`HostTable::unban`] look at every matching entry.

use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher13;
use std::hash::{BuildHasher, Hasher};
use std::hint::spin_loop;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize};

/// Bounds of the table.
///
/// Defaults: `max_hosts = 65536`, `counters = 16`, `distincts = 8`, `probe = 16`, which is
/// 512 bytes + 4 bytes of fingerprint per entry, 32.3 MiB in all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostLimits {
    /// Number of entries (hosts, aggregated prefixes and the global entry). Rounded up to a power
    /// of two and clamped to `1..=2^26`. Default 65536.
    pub max_hosts: usize,
    /// Leaky counter slots per entry (the rule compiler assigns slots). Default 16, at most 4096.
    pub counters: usize,
    /// Distinct-count slots per entry (40 bytes each). Default 8, at most 1024.
    pub distincts: usize,
    /// Consecutive entries a key may occupy, probed on every lookup; clamped to
    /// `1..=capacity`. Longer windows evict less recent hosts but make misses cost more. Default 16.
    pub probe: usize,
}

impl Default for HostLimits {
    fn default() -> Self {
        HostLimits { max_hosts: 65536, counters: 16, distincts: 8, probe: 16 }
    }
}

const FAM_EMPTY: u8 = 0;
const FAM_GLOBAL: u8 = 1;
const FAM_V4: u8 = 4;
const FAM_V6: u8 = 6;

/// Which entry of the table: a source address aggregated to a prefix, or the global entry.
///
/// Addresses are masked to the prefix, so `HostKey::source(2001:db8::1, 32, 64)` and
/// `HostKey::source(2001:db8::2, 32, 64)` are equal. IPv4-mapped IPv6 addresses
/// (`::ffff:a.b.c.d`) are the IPv4 host they map to (RFC 4291 §2.5.5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HostKey {
    addr: u128,
    family: u8,
    prefix: u8,
}

impl HostKey {
    /// The one entry that aggregates everything (global rates).
    pub const GLOBAL: HostKey = HostKey { addr: 0, family: FAM_GLOBAL, prefix: 0 };

    /// The key of `ip` aggregated to `/v4_prefix` (IPv4) or `/v6_prefix` (IPv6); prefixes longer
    /// than the address are clamped. `(ip, 32, 64)` tracks IPv4 hosts and IPv6 /64 networks.
    pub fn source(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> HostKey {
        match ip.to_canonical() {
            IpAddr::V4(a) => {
                let p = v4_prefix.min(32);
                let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
                HostKey { addr: u128::from(u32::from(a) & mask), family: FAM_V4, prefix: p }
            }
            IpAddr::V6(a) => {
                let p = v6_prefix.min(128);
                let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
                HostKey { addr: u128::from(a) & mask, family: FAM_V6, prefix: p }
            }
        }
    }

    /// The key of exactly `ip` (/32 or /128): what bans use.
    pub fn exact(ip: IpAddr) -> HostKey {
        HostKey::source(ip, 32, 128)
    }

    /// The (masked) address; `::` for [`HostKey::GLOBAL`].
    pub fn addr(&self) -> IpAddr {
        match self.family {
            FAM_V4 => IpAddr::V4(Ipv4Addr::from(self.addr as u32)),
            _ => IpAddr::V6(Ipv6Addr::from(self.addr)),
        }
    }

    /// The prefix length; 0 for [`HostKey::GLOBAL`].
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether this is [`HostKey::GLOBAL`].
    pub fn is_global(&self) -> bool {
        self.family == FAM_GLOBAL
    }

    /// Whether this key is one full address (a key a ban can be set on).
    fn is_exact(&self) -> bool {
        matches!((self.family, self.prefix), (FAM_V4, 32) | (FAM_V6, 128))
    }

    fn meta(&self) -> u64 {
        (u64::from(self.family) << 8) | u64::from(self.prefix)
    }

    fn hi(&self) -> u64 {
        (self.addr >> 64) as u64
    }

    fn lo(&self) -> u64 {
        self.addr as u64
    }

    fn from_parts(hi: u64, lo: u64, meta: u64) -> HostKey {
        HostKey {
            addr: (u128::from(hi) << 64) | u128::from(lo),
            family: (meta >> 8) as u8,
            prefix: meta as u8,
        }
    }
}

/// A live ban.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Ban {
    /// The ban holds while `now < until_ns`.
    pub until_ns: u64,
    /// Opaque id of what set the ban (a rule id, or one reserved for the management API).
    pub rule: u32,
}

/// Counts since construction (monotone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HostStats {
    /// Entries claimed for a new key (empty or evicted).
    pub inserted: u64,
    /// Claims that evicted another key's entry.
    pub evicted: u64,
    /// Counter or distinct updates that found no entry to use (window full of live bans).
    pub full: u64,
    /// Bans refused: window full of live bans (or, very rarely, too much contention).
    pub ban_failures: u64,
    /// Duplicate entries of one key (concurrent first inserts) merged into one.
    pub merged: u64,
    /// Updates given up after repeated races with evictions of their entry.
    pub lost: u64,
}

// Word offsets inside an entry.
const STATE: usize = 0;
const HI: usize = 1;
const LO: usize = 2;
const SEEN: usize = 3;
const BAN_UNTIL: usize = 4;
const BAN_RULE: usize = 5;
const HEADER_WORDS: usize = 6;
/// Words of a distinct slot: window start and 4 bitmap words.
const DISTINCT_WORDS: usize = 5;
const WORDS_PER_LINE: usize = 8;

// STATE word layout.
const META_MASK: u64 = 0xffff;
const TAG_SHIFT: u32 = 16;
const LOW_MASK: u64 = 0xff_ffff;
const SEQ_ONE: u64 = 1 << 24;

// Counter word layout.
const VALUE_SHIFT: u32 = 32;
const TAG_WORD_SHIFT: u32 = 56;
/// Largest counter value; counters saturate here.
pub const COUNTER_MAX: u32 = (1 << 24) - 1;

/// Bits of a distinct bitmap.
const BITMAP_BITS: u32 = 256;
/// What a full bitmap reports: `round(256 · ln 256)`, the linear-counting estimate for one zero
/// bit rounded up. Distinct counts saturate here.
pub const DISTINCT_MAX: u32 = 1420;

/// Retries of an operation that lost a race with a rewrite of its entry.
const ATTEMPTS: usize = 8;
/// Spins on an entry being rewritten before treating it as absent.
const SPIN: usize = 128;
/// `SEEN` and the table clock are refreshed when at least this much older (1 ms).
const CLOCK_GRAIN_NS: u64 = 1_000_000;

fn busy(s: u64) -> bool {
    s & SEQ_ONE != 0
}
fn meta_of(s: u64) -> u64 {
    s & META_MASK
}
fn family_of(s: u64) -> u8 {
    (s >> 8) as u8
}
fn tag_of(s: u64) -> u64 {
    (s >> TAG_SHIFT) & 0xff
}
/// `s` (odd, locked) → the next even sequence with the given tag and meta.
fn unlocked(locked: u64, tag: u64, meta: u64) -> u64 {
    (locked.wrapping_add(SEQ_ONE) & !LOW_MASK) | (tag << TAG_SHIFT) | meta
}

fn counter_word(tag: u64, value: u32, idx: u32) -> u64 {
    (tag << TAG_WORD_SHIFT) | (u64::from(value) << VALUE_SHIFT) | u64::from(idx)
}
fn counter_value(w: u64) -> u32 {
    ((w >> VALUE_SHIFT) as u32) & COUNTER_MAX
}
fn period_index(now_ns: u64, period_ns: u64) -> u32 {
    // Truncation is intended: elapsed periods are computed modulo 2^32 (signed, see `leaked`).
    now_ns.checked_div(period_ns).unwrap_or(0) as u32
}
/// The value of counter word `w` (for an entry of `tag`) leaked to period `now_idx`, and the
/// period index to store with it.
///
/// Elapsed periods are the signed 32-bit difference of indices, so a thread whose clock is a
/// little behind another's neither leaks nor moves the index back; the price is that a slot left
/// untouched for more than 2^31 periods (24.8 days at 1 ms, 68 years at 1 s) while its entry
/// stays alive may leak by the wrong amount.
fn leaked(w: u64, tag: u64, now_idx: u32, decrement: u32) -> (u32, u32) {
    if w >> TAG_WORD_SHIFT != tag {
        return (0, now_idx); // written for a previous host of this entry: fresh
    }
    let (v, idx) = (counter_value(w), w as u32);
    let elapsed = now_idx.wrapping_sub(idx) as i32;
    if elapsed <= 0 {
        return (v, idx);
    }
    let loss = u64::from(elapsed as u32) * u64::from(decrement);
    (u64::from(v).saturating_sub(loss) as u32, now_idx)
}
/// Whichever of two period indices is later (signed wrapping comparison).
fn later(a: u32, b: u32) -> u32 {
    if (b.wrapping_sub(a) as i32) > 0 {
        b
    } else {
        a
    }
}

/// Linear-counting estimate from the number of set bits of a 256-bit bitmap:
/// `ln(1 - k/256) / ln(1 - 1/256)`, the number of uniform draws expected to set `k` bits.
fn estimate(k: u32) -> u32 {
    if k == 0 {
        return 0;
    }
    if k >= BITMAP_BITS {
        return DISTINCT_MAX;
    }
    let m = f64::from(BITMAP_BITS);
    let n = (1.0 - f64::from(k) / m).ln() / (1.0 - 1.0 / m).ln();
    (n.round() as u32).min(DISTINCT_MAX)
}

/// Whether the window whose start word is `stored` (start + 1, 0 = no window yet) is over.
fn window_expired(stored: u64, now_ns: u64, window_ns: u64) -> bool {
    stored == 0 || (window_ns != 0 && now_ns >= (stored - 1).saturating_add(window_ns))
}

/// One cache line of entry words; entries are whole lines so that two entries never share one.
#[repr(align(64))]
#[derive(Default)]
struct Line([AtomicU64; WORDS_PER_LINE]);

/// A statistics counter on its own cache line (claims from all engines update them).
#[repr(align(64))]
#[derive(Default)]
struct Stat(AtomicU64);

impl Stat {
    fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Why no entry could be had for a key.
enum Miss {
    /// Every entry of the window holds a live ban.
    Full,
    /// Lost every race for an entry (entries being rewritten by other threads).
    Contended,
}

/// The shared host table: fixed-size, lock-free, exact for bans. See the module docs.
///
/// `Send + Sync`; share it as `Arc<HostTable>`. Times are passed in (ns on any clock, the same
/// for every caller).
pub struct HostTable {
    lines: Box<[Line]>,
    fps: Box<[AtomicU32]>,
    /// Words per entry (a multiple of 8).
    stride: usize,
    mask: usize,
    probe: usize,
    counters: usize,
    distincts: usize,
    k0: u64,
    k1: u64,
    live: AtomicUsize,
    /// Latest time seen (within [`CLOCK_GRAIN_NS`]), for [`HostTable::ban`] and
    /// [`HostTable::unban`], which take no time argument.
    clock: Stat,
    inserted: Stat,
    evicted: Stat,
    full: Stat,
    ban_failures: Stat,
    merged: Stat,
    lost: Stat,
}

impl HostTable {
    /// A table with a random hashing secret (from the OS-seeded std `RandomState`).
    pub fn new(limits: HostLimits) -> HostTable {
        let s = std::collections::hash_map::RandomState::new();
        let mut a = s.build_hasher();
        a.write_u8(1);
        let mut b = s.build_hasher();
        b.write_u8(2);
        HostTable::with_keys(limits, a.finish(), b.finish())
    }

    /// A table with a fixed hashing secret, for reproducible tests and benchmarks.
    pub fn with_keys(limits: HostLimits, k0: u64, k1: u64) -> HostTable {
        let n = limits.max_hosts.clamp(1, 1 << 26).next_power_of_two();
        let counters = limits.counters.min(4096);
        let distincts = limits.distincts.min(1024);
        let words = HEADER_WORDS + counters + distincts * DISTINCT_WORDS;
        let stride = words.div_ceil(WORDS_PER_LINE) * WORDS_PER_LINE;
        let lines = (0..n * stride / WORDS_PER_LINE).map(|_| Line::default()).collect();
        let fps = (0..n).map(|_| AtomicU32::new(0)).collect();
        HostTable {
            lines,
            fps,
            stride,
            mask: n - 1,
            probe: limits.probe.clamp(1, n),
            counters,
            distincts,
            k0,
            k1,
            live: AtomicUsize::new(0),
            clock: Stat::default(),
            inserted: Stat::default(),
            evicted: Stat::default(),
            full: Stat::default(),
            ban_failures: Stat::default(),
            merged: Stat::default(),
            lost: Stat::default(),
        }
    }

    /// Leaky counter `counter[decrement; period]`: the stored value loses `decrement` per elapsed
    /// `period_ns` (floor at 0; `period_ns == 0` or `decrement == 0` never leaks), then `add` is
    /// added; returns the new value (saturating at [`COUNTER_MAX`]).
    ///
    /// Creates the entry if needed, evicting per the module docs; if no entry can be had, returns
    /// the value as if fresh (`add`) and counts `full`. One slot should always be used with the
    /// same `decrement` and `period_ns`. A `slot` beyond the configured counters is a caller bug:
    /// it panics in debug builds and is answered as fresh in release builds.
    pub fn counter_add(
        &self,
        key: HostKey,
        slot: usize,
        now_ns: u64,
        decrement: u32,
        period_ns: u64,
        add: u32,
    ) -> u32 {
        let fresh = add.min(COUNTER_MAX);
        if slot >= self.counters {
            debug_assert!(false, "counter slot {slot} >= {}", self.counters);
            return fresh;
        }
        self.tick(now_ns);
        let (home, fp) = self.hash_key(&key);
        let now_idx = period_index(now_ns, period_ns);
        for _ in 0..ATTEMPTS {
            let (e, s) = match self.find_or_insert(&key, home, fp, now_ns) {
                Ok(x) => x,
                Err(m) => return self.missed(m, fresh),
            };
            self.touch(e, now_ns);
            let (state, word) = (self.w(e, STATE), self.w(e, HEADER_WORDS + slot));
            let tag = tag_of(s);
            loop {
                let cur = word.load(Relaxed);
                fence(Acquire);
                if state.load(Relaxed) != s {
                    break; // the entry changed under us: look it up again
                }
                let (v, idx) = leaked(cur, tag, now_idx, decrement);
                let nv = (u64::from(v) + u64::from(add)).min(u64::from(COUNTER_MAX)) as u32;
                let new = counter_word(tag, nv, idx);
                if word.compare_exchange_weak(cur, new, Relaxed, Relaxed).is_ok() {
                    return nv;
                }
            }
        }
        self.lost.inc();
        fresh
    }

    /// The value of a leaky counter at `now_ns` (see [`HostTable::counter_add`]); 0 if absent.
    pub fn counter_get(
        &self,
        key: HostKey,
        slot: usize,
        now_ns: u64,
        decrement: u32,
        period_ns: u64,
    ) -> u32 {
        if slot >= self.counters {
            debug_assert!(false, "counter slot {slot} >= {}", self.counters);
            return 0;
        }
        self.tick(now_ns);
        let (home, fp) = self.hash_key(&key);
        let now_idx = period_index(now_ns, period_ns);
        for _ in 0..ATTEMPTS {
            let Some((e, s)) = self.find(&key, home, fp) else { return 0 };
            let cur = self.w(e, HEADER_WORDS + slot).load(Relaxed);
            fence(Acquire);
            if self.w(e, STATE).load(Relaxed) == s {
                return leaked(cur, tag_of(s), now_idx, decrement).0;
            }
        }
        0
    }

    /// Adds a value (by its 64-bit hash) to a distinct count and returns the estimate.
    ///
    /// Linear counting over a 256-bit bitmap per slot. The value hash is re-keyed with the table
    /// secret, so chosen values cannot be aimed at one bit. Accuracy for `n` distinct values:
    /// exact or ±1 below ~20, standard error ~3% at 50, ~5% at 100, ~7% at 500, ~11% at 1000;
    /// it saturates at [`DISTINCT_MAX`] (1420) once every bit is set (expected around 1500–2000
    /// values). Repeated values never raise the count; the count never decreases within a window.
    ///
    /// The bitmap resets `window_ns` after the slot's first insert (`window_ns == 0`: never), so
    /// enumeration is counted per window. Entry creation and `full` as for
    /// [`HostTable::counter_add`] (a failed insert answers 1).
    pub fn distinct_add(
        &self,
        key: HostKey,
        slot: usize,
        now_ns: u64,
        window_ns: u64,
        value_hash: u64,
    ) -> u32 {
        if slot >= self.distincts {
            debug_assert!(false, "distinct slot {slot} >= {}", self.distincts);
            return 1;
        }
        self.tick(now_ns);
        let (home, fp) = self.hash_key(&key);
        let bit = self.bit_of(value_hash);
        for _ in 0..ATTEMPTS {
            let (e, s) = match self.find_or_insert(&key, home, fp, now_ns) {
                Ok(x) => x,
                Err(m) => return self.missed(m, 1),
            };
            self.touch(e, now_ns);
            let state = self.w(e, STATE);
            let base = self.distinct_base(slot);
            let win = self.w(e, base);
            let start = win.load(Relaxed);
            fence(Acquire);
            if state.load(Relaxed) != s {
                continue;
            }
            if window_expired(start, now_ns, window_ns)
                && win.compare_exchange(start, now_ns.saturating_add(1), Relaxed, Relaxed).is_ok()
            {
                // We opened the new window: clear the old one's bits, unless the entry was
                // rewritten meanwhile (then they are no longer ours to clear).
                fence(Acquire);
                if state.load(Relaxed) != s {
                    continue;
                }
                for i in 1..DISTINCT_WORDS {
                    self.w(e, base + i).store(0, Relaxed);
                }
            }
            self.w(e, base + 1 + (bit / 64) as usize).fetch_or(1 << (bit % 64), Relaxed);
            let k = self.popcount(e, base);
            fence(Acquire);
            if state.load(Relaxed) == s {
                return estimate(k);
            }
            // Rewritten under us: redo on the current entry (setting a bit twice is harmless).
        }
        self.lost.inc();
        1
    }

    /// The distinct-count estimate of a slot at `now_ns` (0 if absent or its window is over).
    pub fn distinct_get(&self, key: HostKey, slot: usize, now_ns: u64, window_ns: u64) -> u32 {
        if slot >= self.distincts {
            debug_assert!(false, "distinct slot {slot} >= {}", self.distincts);
            return 0;
        }
        self.tick(now_ns);
        let (home, fp) = self.hash_key(&key);
        let base = self.distinct_base(slot);
        for _ in 0..ATTEMPTS {
            let Some((e, s)) = self.find(&key, home, fp) else { return 0 };
            let start = self.w(e, base).load(Relaxed);
            let k = self.popcount(e, base);
            fence(Acquire);
            if self.w(e, STATE).load(Relaxed) == s {
                return if window_expired(start, now_ns, window_ns) { 0 } else { estimate(k) };
            }
        }
        0
    }

    /// Bans exactly `ip` until `until_ns` (a later call for the same address replaces the ban,
    /// shorter or longer); `rule` is an opaque id of who banned.
    ///
    /// Returns `false`, and counts `ban_failures`, if the table could not hold the ban: every
    /// entry of the address's probe window holds a live ban. Liveness of other bans is judged
    /// against the latest time any operation passed in.
    pub fn ban(&self, ip: IpAddr, until_ns: u64, rule: u32) -> bool {
        let key = HostKey::exact(ip);
        let (home, fp) = self.hash_key(&key);
        let now = self.clock.get();
        for _ in 0..ATTEMPTS {
            let Ok((e, s)) = self.find_or_insert(&key, home, fp, now) else { break };
            let state = self.w(e, STATE);
            let locked = s.wrapping_add(SEQ_ONE);
            if state.compare_exchange(s, locked, Acquire, Relaxed).is_err() {
                continue;
            }
            fence(Release);
            self.w(e, BAN_UNTIL).store(until_ns, Relaxed);
            self.w(e, BAN_RULE).store(u64::from(rule), Relaxed);
            state.store(unlocked(locked, tag_of(s), meta_of(s)), Release);
            return true;
        }
        self.ban_failures.inc();
        false
    }

    /// The ban on exactly `ip`, while `now_ns < until_ns`.
    pub fn banned(&self, ip: IpAddr, now_ns: u64) -> Option<Ban> {
        self.tick(now_ns);
        let key = HostKey::exact(ip);
        let (home, fp) = self.hash_key(&key);
        // Every matching entry, not just the first: a duplicate may hold the ban.
        for k in 0..self.probe {
            let e = (home + k) & self.mask;
            if self.fps[e].load(Relaxed) != fp {
                continue;
            }
            if let Some((_, until, rule)) = self.ban_snapshot(e, &key) {
                if now_ns < until {
                    return Some(Ban { until_ns: until, rule });
                }
            }
        }
        None
    }

    /// Lifts the ban on exactly `ip`. Returns whether a ban was live (as of the latest time the
    /// table has seen). The entry and its counters stay.
    pub fn unban(&self, ip: IpAddr) -> bool {
        let key = HostKey::exact(ip);
        let (home, fp) = self.hash_key(&key);
        let now = self.clock.get();
        let mut lifted = false;
        for k in 0..self.probe {
            let e = (home + k) & self.mask;
            if self.fps[e].load(Relaxed) != fp {
                continue;
            }
            for _ in 0..SPIN {
                let Some((s, until, _)) = self.ban_snapshot(e, &key) else { break };
                if until == 0 {
                    break;
                }
                let state = self.w(e, STATE);
                let locked = s.wrapping_add(SEQ_ONE);
                if state.compare_exchange(s, locked, Acquire, Relaxed).is_err() {
                    spin_loop();
                    continue;
                }
                fence(Release);
                self.w(e, BAN_UNTIL).store(0, Relaxed);
                self.w(e, BAN_RULE).store(0, Relaxed);
                state.store(unlocked(locked, tag_of(s), meta_of(s)), Release);
                lifted |= until > now;
                break;
            }
        }
        lifted
    }

    /// Every ban live at `now_ns`, sorted by address (management listing: scans the whole table
    /// and allocates; keep it off the data path).
    pub fn bans(&self, now_ns: u64) -> Vec<(IpAddr, Ban)> {
        let mut out: Vec<(HostKey, Ban)> = Vec::new();
        for e in 0..=self.mask {
            let Some((s, hi, lo, until, rule)) = self.snapshot(e) else { continue };
            let key = HostKey::from_parts(hi, lo, meta_of(s));
            if key.is_exact() && now_ns < until {
                out.push((key, Ban { until_ns: until, rule }));
            }
        }
        out.sort_by_key(|a| (a.0.family, a.0.addr));
        out.dedup_by(|b, a| a.0 == b.0); // a duplicate entry of one address: keep the first
        out.into_iter().map(|(k, b)| (k.addr(), b)).collect()
    }

    /// Zeroes one counter slot in every entry, so an object newly given the slot after a
    /// reload starts fresh instead of reading the values of the object that held it before.
    /// Runs on the management thread (O(capacity)); an engine still finishing a batch under the
    /// previous rule set may add one batch's worth after the sweep passed its entry.
    pub fn reset_counter_slot(&self, slot: usize) {
        if slot < self.counters {
            for e in 0..self.capacity() {
                self.w(e, HEADER_WORDS + slot).store(0, Relaxed);
            }
        }
    }

    /// Zeroes one distinct slot (window and bitmap) in every entry; see
    /// [`HostTable::reset_counter_slot`].
    pub fn reset_distinct_slot(&self, slot: usize) {
        if slot < self.distincts {
            let base = self.distinct_base(slot);
            for e in 0..self.capacity() {
                for i in 0..DISTINCT_WORDS {
                    self.w(e, base + i).store(0, Relaxed);
                }
            }
        }
    }

    /// Entries in use (at most [`HostTable::capacity`]).
    pub fn len(&self) -> usize {
        self.live.load(Relaxed)
    }

    /// Whether no entry is in use.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of entries (fixed at construction).
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Counter slots per entry (fixed at construction).
    pub fn counter_slots(&self) -> usize {
        self.counters
    }

    /// Distinct slots per entry (fixed at construction).
    pub fn distinct_slots(&self) -> usize {
        self.distincts
    }

    /// Bytes held by the table; fixed at construction.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<HostTable>()
            + self.lines.len() * std::mem::size_of::<Line>()
            + self.fps.len() * std::mem::size_of::<AtomicU32>()
    }

    /// Counts since construction.
    pub fn stats(&self) -> HostStats {
        HostStats {
            inserted: self.inserted.get(),
            evicted: self.evicted.get(),
            full: self.full.get(),
            ban_failures: self.ban_failures.get(),
            merged: self.merged.get(),
            lost: self.lost.get(),
        }
    }

    // ---- internals -------------------------------------------------------------------------

    fn w(&self, e: usize, off: usize) -> &AtomicU64 {
        let i = e * self.stride + off;
        &self.lines[i / WORDS_PER_LINE].0[i % WORDS_PER_LINE]
    }

    fn distinct_base(&self, slot: usize) -> usize {
        HEADER_WORDS + self.counters + slot * DISTINCT_WORDS
    }

    fn popcount(&self, e: usize, base: usize) -> u32 {
        (1..DISTINCT_WORDS).map(|i| self.w(e, base + i).load(Relaxed).count_ones()).sum()
    }

    /// Home index and fingerprint (never 0, which marks a free entry) of a key.
    fn hash_key(&self, key: &HostKey) -> (usize, u32) {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        h.write_u128(key.addr);
        h.write_u8(key.family);
        h.write_u8(key.prefix);
        let h = h.finish();
        (h as usize & self.mask, (h >> 32) as u32 | 1)
    }

    /// Bitmap bit of a value hash, under the table secret (distinct from the index key).
    fn bit_of(&self, value_hash: u64) -> u32 {
        let mut h = SipHasher13::new_with_keys(self.k1, self.k0 ^ 0x5ec5_1b0d_d157_1c75);
        h.write_u64(value_hash);
        (h.finish() >> 56) as u32
    }

    fn missed(&self, m: Miss, fresh: u32) -> u32 {
        match m {
            Miss::Full => self.full.inc(),
            Miss::Contended => self.lost.inc(),
        }
        fresh
    }

    /// Advances the table clock (only by steps of at least 1 ms, to keep the line mostly read).
    fn tick(&self, now_ns: u64) {
        if now_ns > self.clock.get().saturating_add(CLOCK_GRAIN_NS) {
            self.clock.0.fetch_max(now_ns, Relaxed);
        }
    }

    fn touch(&self, e: usize, now_ns: u64) {
        let seen = self.w(e, SEEN);
        if now_ns > seen.load(Relaxed).saturating_add(CLOCK_GRAIN_NS) {
            seen.fetch_max(now_ns, Relaxed);
        }
    }

    /// Validated snapshot of an entry: state, address words, ban. `None` if free or busy.
    fn snapshot(&self, e: usize) -> Option<(u64, u64, u64, u64, u32)> {
        let state = self.w(e, STATE);
        for _ in 0..SPIN {
            let s1 = state.load(Acquire);
            if busy(s1) {
                spin_loop();
                continue;
            }
            if family_of(s1) == FAM_EMPTY {
                return None;
            }
            let hi = self.w(e, HI).load(Relaxed);
            let lo = self.w(e, LO).load(Relaxed);
            let until = self.w(e, BAN_UNTIL).load(Relaxed);
            let rule = self.w(e, BAN_RULE).load(Relaxed) as u32;
            fence(Acquire);
            if state.load(Relaxed) == s1 {
                return Some((s1, hi, lo, until, rule));
            }
        }
        None
    }

    /// Validated (state, ban until, ban rule) of entry `e` if it holds exactly `key`.
    fn ban_snapshot(&self, e: usize, key: &HostKey) -> Option<(u64, u64, u32)> {
        let (s, hi, lo, until, rule) = self.snapshot(e)?;
        (meta_of(s) == key.meta() && hi == key.hi() && lo == key.lo()).then_some((s, until, rule))
    }

    /// Validated state of entry `e` if it holds `key`, spinning briefly while it is rewritten.
    fn holds(&self, e: usize, key: &HostKey, s_order: std::sync::atomic::Ordering) -> Option<u64> {
        let state = self.w(e, STATE);
        for _ in 0..SPIN {
            let s1 = state.load(s_order);
            if busy(s1) {
                spin_loop();
                continue;
            }
            if meta_of(s1) != key.meta() {
                return None;
            }
            let hi = self.w(e, HI).load(Relaxed);
            let lo = self.w(e, LO).load(Relaxed);
            fence(Acquire);
            if state.load(Relaxed) == s1 {
                return (hi == key.hi() && lo == key.lo()).then_some(s1);
            }
        }
        None
    }

    /// First entry (in probe order) holding `key`, with its validated state.
    fn find(&self, key: &HostKey, home: usize, fp: u32) -> Option<(usize, u64)> {
        (0..self.probe).find_map(|k| {
            let e = (home + k) & self.mask;
            if self.fps[e].load(Relaxed) != fp {
                return None;
            }
            self.holds(e, key, Acquire).map(|s| (e, s))
        })
    }

    /// The entry of `key`, claiming one if it has none.
    fn find_or_insert(
        &self,
        key: &HostKey,
        home: usize,
        fp: u32,
        now_ns: u64,
    ) -> Result<(usize, u64), Miss> {
        for _ in 0..ATTEMPTS {
            if let Some(found) = self.find(key, home, fp) {
                return Ok(found);
            }
            let Some((e, s)) = self.victim(home, now_ns)? else { continue };
            if let Some(published) = self.claim(e, s, key, fp, now_ns) {
                if self.dedupe(key, home) {
                    continue; // duplicates were merged: the survivor is the first match
                }
                return Ok((e, published));
            }
        }
        Err(Miss::Contended)
    }

    /// The entry to claim in the window of `home`: a free one, else the oldest without a live
    /// ban. `Ok(None)`: only busy entries were candidates (try again).
    fn victim(&self, home: usize, now_ns: u64) -> Result<Option<(usize, u64)>, Miss> {
        let mut best: Option<(usize, u64, u64)> = None;
        let mut saw_busy = false;
        for k in 0..self.probe {
            let e = (home + k) & self.mask;
            let state = self.w(e, STATE);
            let s1 = state.load(Acquire);
            if busy(s1) {
                saw_busy = true;
                continue;
            }
            if family_of(s1) == FAM_EMPTY {
                return Ok(Some((e, s1)));
            }
            let seen = self.w(e, SEEN).load(Relaxed);
            let until = self.w(e, BAN_UNTIL).load(Relaxed);
            fence(Acquire);
            if state.load(Relaxed) != s1 {
                saw_busy = true;
                continue;
            }
            // Pinned while banned. The claim CASes from `s1`, and bans are only written under
            // the seqlock, so the ban we judged here is the ban the claim replaces.
            if now_ns < until {
                continue;
            }
            if best.is_none_or(|b| seen < b.2) {
                best = Some((e, s1, seen));
            }
        }
        match best {
            Some((e, s, _)) => Ok(Some((e, s))),
            None if saw_busy => Ok(None),
            None => Err(Miss::Full),
        }
    }

    /// Rewrites entry `e` (state `s`) for `key`. Returns the published state, or `None` if
    /// another thread changed the entry first.
    fn claim(&self, e: usize, s: u64, key: &HostKey, fp: u32, now_ns: u64) -> Option<u64> {
        let tag = (tag_of(s) + 1) & 0xff;
        let locked = (s.wrapping_add(SEQ_ONE) & !LOW_MASK) | (tag << TAG_SHIFT) | key.meta();
        let state = self.w(e, STATE);
        state.compare_exchange(s, locked, Acquire, Relaxed).ok()?;
        // Seqlock write side: no word below may be seen before the odd state.
        fence(Release);
        self.fps[e].store(fp, Relaxed);
        self.w(e, HI).store(key.hi(), Relaxed);
        self.w(e, LO).store(key.lo(), Relaxed);
        self.w(e, SEEN).store(now_ns, Relaxed);
        self.w(e, BAN_UNTIL).store(0, Relaxed);
        self.w(e, BAN_RULE).store(0, Relaxed);
        // Counter words get the new tag, so that a CAS prepared for the previous host fails
        // (and a slot untouched for 256 generations cannot alias).
        for c in 0..self.counters {
            self.w(e, HEADER_WORDS + c).store(counter_word(tag, 0, 0), Relaxed);
        }
        let base = self.distinct_base(0);
        for i in 0..self.distincts * DISTINCT_WORDS {
            self.w(e, base + i).store(0, Relaxed);
        }
        let published = locked.wrapping_add(SEQ_ONE);
        // SeqCst: one half of the Dekker pair with the rescan in `dedupe`.
        state.store(published, SeqCst);
        self.inserted.inc();
        if family_of(s) == FAM_EMPTY {
            self.live.fetch_add(1, Relaxed);
        } else {
            self.evicted.inc();
        }
        Some(published)
    }

    /// After a claim: merges later duplicates of `key` in the window into the first one.
    /// Returns whether anything was merged.
    fn dedupe(&self, key: &HostKey, home: usize) -> bool {
        let mut first: Option<(usize, u64)> = None;
        let mut merged = false;
        for k in 0..self.probe {
            let e = (home + k) & self.mask;
            // SeqCst load: the other half of the Dekker pair with `claim`'s publish.
            let Some(s) = self.holds(e, key, SeqCst) else { continue };
            match first {
                None => first = Some((e, s)),
                Some((fe, fs)) => merged |= self.merge(fe, fs, e, s),
            }
        }
        merged
    }

    /// Merges entry `j` (state `sj`) into entry `i` (state `si`), both holding the same key,
    /// and frees `j`. Returns `false` if either changed first.
    fn merge(&self, i: usize, si: u64, j: usize, sj: u64) -> bool {
        let state_j = self.w(j, STATE);
        let locked_j = sj.wrapping_add(SEQ_ONE);
        if state_j.compare_exchange(sj, locked_j, Acquire, Relaxed).is_err() {
            return false;
        }
        fence(Release);
        let (tag_i, tag_j) = (tag_of(si), tag_of(sj));
        let mut si = si;
        let until = self.w(j, BAN_UNTIL).load(Relaxed);
        if until != 0 {
            let state_i = self.w(i, STATE);
            let locked_i = si.wrapping_add(SEQ_ONE);
            if state_i.compare_exchange(si, locked_i, Acquire, Relaxed).is_err() {
                state_j.store(unlocked(locked_j, tag_j, meta_of(sj)), Release);
                return false;
            }
            fence(Release);
            if until > self.w(i, BAN_UNTIL).load(Relaxed) {
                self.w(i, BAN_UNTIL).store(until, Relaxed);
                self.w(i, BAN_RULE).store(self.w(j, BAN_RULE).load(Relaxed), Relaxed);
            }
            si = unlocked(locked_i, tag_i, meta_of(si));
            state_i.store(si, Release);
        }
        self.w(i, SEEN).fetch_max(self.w(j, SEEN).load(Relaxed), Relaxed);
        let state_i = self.w(i, STATE);
        let dead = counter_word((tag_j + 1) & 0xff, 0, 0);
        for c in 0..self.counters {
            // The swap makes any CAS still prepared against `j` fail; it then re-validates,
            // sees `j` locked and retries on `i`. What it reads includes every CAS that won.
            let wj = self.w(j, HEADER_WORDS + c).swap(dead, AcqRel);
            if wj >> TAG_WORD_SHIFT != tag_j || counter_value(wj) == 0 {
                continue;
            }
            let word = self.w(i, HEADER_WORDS + c);
            loop {
                let cur = word.load(Relaxed);
                fence(Acquire);
                if state_i.load(Relaxed) != si {
                    self.lost.inc();
                    break;
                }
                let new = if cur >> TAG_WORD_SHIFT != tag_i {
                    counter_word(tag_i, counter_value(wj), wj as u32)
                } else {
                    let v = (counter_value(cur) + counter_value(wj)).min(COUNTER_MAX);
                    counter_word(tag_i, v, later(cur as u32, wj as u32))
                };
                if word.compare_exchange_weak(cur, new, Relaxed, Relaxed).is_ok() {
                    break;
                }
            }
        }
        for d in 0..self.distincts {
            let base = self.distinct_base(d);
            let start = self.w(j, base).swap(0, AcqRel);
            if start != 0 {
                let _ = self.w(i, base).compare_exchange(0, start, Relaxed, Relaxed);
            }
            for b in 1..DISTINCT_WORDS {
                let bits = self.w(j, base + b).swap(0, AcqRel);
                if bits != 0 {
                    self.w(i, base + b).fetch_or(bits, Relaxed);
                }
            }
        }
        self.fps[j].store(0, Relaxed);
        self.w(j, BAN_UNTIL).store(0, Relaxed);
        self.w(j, BAN_RULE).store(0, Relaxed);
        state_j.store(unlocked(locked_j, tag_j, 0), Release);
        self.live.fetch_sub(1, Relaxed);
        self.merged.inc();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SEC: u64 = 1_000_000_000;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }
    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
    }
    fn nth(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
    }
    fn table(max_hosts: usize, probe: usize) -> HostTable {
        HostTable::with_keys(
            HostLimits { max_hosts, probe, counters: 4, distincts: 2 },
            0x1234,
            0x5678,
        )
    }
    fn src(ip: IpAddr) -> HostKey {
        HostKey::source(ip, 32, 64)
    }
    /// A tiny deterministic PRNG for the concurrent tests (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn keys_aggregate_and_render() {
        let a = HostKey::source(v6("2001:db8::1"), 32, 64);
        let b = HostKey::source(v6("2001:db8::2"), 32, 64);
        assert_eq!(a, b);
        assert_eq!(a.addr(), v6("2001:db8::"));
        assert_eq!(a.prefix(), 64);
        assert_ne!(HostKey::exact(v6("2001:db8::1")), HostKey::exact(v6("2001:db8::2")));
        let n = HostKey::source(v4(192, 0, 2, 77), 24, 64);
        assert_eq!((n.addr(), n.prefix()), (v4(192, 0, 2, 0), 24));
        assert_eq!(HostKey::exact(v6("::ffff:192.0.2.1")), HostKey::exact(v4(192, 0, 2, 1)));
        assert_eq!(HostKey::source(v4(1, 2, 3, 4), 99, 0).prefix(), 32);
        assert!(HostKey::GLOBAL.is_global());
        assert_ne!(HostKey::GLOBAL, HostKey::source(v6("::"), 0, 0));
        assert_eq!(HostKey::GLOBAL.prefix(), 0);
        // The same address in the two families is two hosts.
        assert_ne!(HostKey::exact(v4(0, 0, 0, 1)), HostKey::exact(v6("::1")));
    }

    #[test]
    fn limits_serde_defaults() {
        let l: HostLimits = serde_json::from_str(r#"{"max_hosts": 100}"#).unwrap();
        assert_eq!(l, HostLimits { max_hosts: 100, ..HostLimits::default() });
        assert!(serde_json::from_str::<HostLimits>(r#"{"hosts": 1}"#).is_err());
        let t = HostTable::new(l);
        assert_eq!(t.capacity(), 128);
    }

    #[test]
    fn counters_leak_per_period_and_floor_at_zero() {
        let t = table(64, 8);
        let k = src(v4(192, 0, 2, 1));
        let (dec, per) = (2, SEC);
        assert_eq!(t.counter_get(k, 0, 0, dec, per), 0);
        assert_eq!(t.counter_add(k, 0, 0, dec, per, 5), 5);
        assert_eq!(t.counter_add(k, 0, SEC / 2, dec, per, 1), 6);
        assert_eq!(t.counter_get(k, 0, SEC, dec, per), 4);
        assert_eq!(t.counter_get(k, 0, 2 * SEC + 1, dec, per), 2);
        assert_eq!(t.counter_get(k, 0, 3 * SEC, dec, per), 0);
        assert_eq!(t.counter_add(k, 0, 10 * SEC, dec, per, 1), 1);
        // A caller whose clock is slightly behind neither leaks nor rewinds the period.
        assert_eq!(t.counter_add(k, 0, 9 * SEC, dec, per, 1), 2);
        assert_eq!(t.counter_get(k, 0, 10 * SEC, dec, per), 2);
        // Slots are independent; decrement 0 never leaks.
        assert_eq!(t.counter_add(k, 1, 0, 0, per, 3), 3);
        assert_eq!(t.counter_get(k, 1, 1000 * SEC, 0, per), 3);
        // Saturation.
        t.counter_add(k, 2, 0, 0, 0, u32::MAX);
        assert_eq!(t.counter_add(k, 2, 0, 0, 0, 7), COUNTER_MAX);
        // Another host is untouched.
        assert_eq!(t.counter_get(src(v4(192, 0, 2, 2)), 0, 10 * SEC, dec, per), 0);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn distinct_counts() {
        let t = table(64, 8);
        let k = src(v4(192, 0, 2, 1));
        let w = 60 * SEC;
        assert_eq!(t.distinct_get(k, 0, 0, w), 0);
        assert_eq!(t.distinct_add(k, 0, 0, w, 42), 1);
        assert_eq!(t.distinct_add(k, 0, 1, w, 42), 1, "a repeat is not distinct");
        let mut last = 1;
        for n in 2..=2000u64 {
            let est = t.distinct_add(k, 0, n, w, n * 0x9e37_79b9);
            assert!(est >= last, "monotone: {n} -> {est} after {last}");
            last = est;
            let n = n as u32;
            if n <= 50 {
                assert!(est.abs_diff(n) <= 1 + n / 10, "n={n} est={est}");
            } else if n <= 300 {
                assert!(est.abs_diff(n) <= n / 4, "n={n} est={est}");
            }
        }
        assert_eq!(t.distinct_get(k, 0, 2001, w), DISTINCT_MAX.min(last));
        for n in 2001..6000u64 {
            last = t.distinct_add(k, 0, n, w, n * 0x9e37_79b9);
        }
        assert_eq!(last, DISTINCT_MAX);
        // The window started at the first insert (t = 0): over at t = w.
        assert_eq!(t.distinct_get(k, 0, w - 1, w), DISTINCT_MAX);
        assert_eq!(t.distinct_get(k, 0, w, w), 0);
        assert_eq!(t.distinct_add(k, 0, w, w, 42), 1);
        assert_eq!(t.distinct_add(k, 0, w + 1, w, 43), 2);
        // Slot 1 is independent.
        assert_eq!(t.distinct_get(k, 1, w, w), 0);
    }

    #[test]
    fn bans_expire_and_unban() {
        let t = table(64, 8);
        let ip = v4(198, 51, 100, 7);
        assert!(t.ban(ip, 10 * SEC, 7));
        assert_eq!(t.banned(ip, 5 * SEC), Some(Ban { until_ns: 10 * SEC, rule: 7 }));
        assert_eq!(t.banned(v4(198, 51, 100, 8), 5 * SEC), None);
        assert_eq!(t.banned(ip, 10 * SEC), None);
        assert_eq!(t.bans(5 * SEC), vec![(ip, Ban { until_ns: 10 * SEC, rule: 7 })]);
        assert!(t.bans(10 * SEC).is_empty());
        assert!(t.ban(ip, 20 * SEC, 8), "re-ban replaces");
        assert_eq!(t.banned(ip, 15 * SEC).map(|b| b.rule), Some(8));
        assert!(t.unban(ip));
        assert_eq!(t.banned(ip, 15 * SEC), None);
        assert!(!t.unban(ip));
        assert!(!t.unban(v4(1, 1, 1, 1)));
        assert_eq!(t.stats().ban_failures, 0);
    }

    #[test]
    fn bans_are_exact_in_a_crowded_window() {
        // 4 entries, one window: every address collides with every other.
        let t = table(4, 4);
        for i in 0..4 {
            assert!(t.ban(nth(i), u64::MAX, i));
        }
        // Full of live bans: the fifth is refused and counted, nothing is evicted.
        assert!(!t.ban(nth(4), u64::MAX, 4));
        assert_eq!(t.stats().ban_failures, 1);
        assert_eq!(t.counter_add(src(nth(9)), 0, SEC, 0, 0, 3), 3);
        assert_eq!(t.stats().full, 1);
        for i in 0..4 {
            assert_eq!(t.banned(nth(i), SEC).map(|b| b.rule), Some(i));
        }
        for i in 4..5000 {
            assert_eq!(t.banned(nth(i), SEC), None, "{}", nth(i));
            let six = IpAddr::V6(Ipv6Addr::from(u128::from(0x0a00_0000 + i)));
            assert_eq!(t.banned(six, SEC), None);
        }
        assert_eq!(t.bans(SEC).len(), 4);
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn eviction_prefers_oldest_unbanned() {
        let t = table(4, 4);
        for i in 0..4 {
            t.counter_add(src(nth(i)), 0, (1 + u64::from(i)) * SEC, 0, 0, 10 + i);
        }
        // The oldest (nth(0)) is banned: pinned. The next oldest, nth(1), goes.
        assert!(t.ban(nth(0), 100 * SEC, 1));
        t.counter_add(src(nth(8)), 0, 5 * SEC, 0, 0, 1);
        assert_eq!(t.counter_get(src(nth(1)), 0, 5 * SEC, 0, 0), 0);
        assert_eq!(t.counter_get(src(nth(0)), 0, 5 * SEC, 0, 0), 10);
        assert_eq!(t.counter_get(src(nth(2)), 0, 5 * SEC, 0, 0), 12);
        assert_eq!(t.counter_get(src(nth(3)), 0, 5 * SEC, 0, 0), 13);
        assert!(t.banned(nth(0), 5 * SEC).is_some());
        let s = t.stats();
        assert_eq!((s.inserted, s.evicted, s.full), (5, 1, 0));
        // Once the ban has expired the entry is evictable again (and the oldest).
        t.counter_add(src(nth(9)), 0, 200 * SEC, 0, 0, 1);
        assert_eq!(t.counter_get(src(nth(0)), 0, 200 * SEC, 0, 0), 0);
        assert_eq!(t.banned(nth(0), 50 * SEC), None);
    }

    #[test]
    fn ipv6_prefix_aggregates_counters_not_bans() {
        let t = table(64, 8);
        let (a, b) = (v6("2001:db8::1"), v6("2001:db8::2"));
        assert_eq!(t.counter_add(src(a), 0, 0, 0, 0, 1), 1);
        assert_eq!(t.counter_add(src(b), 0, 0, 0, 0, 1), 2);
        assert_eq!(t.len(), 1);
        assert!(t.ban(a, 10 * SEC, 3));
        assert!(t.banned(a, SEC).is_some());
        assert_eq!(t.banned(b, SEC), None);
        assert_eq!(t.banned(v6("2001:db8::"), SEC), None);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn global_entry() {
        let t = table(64, 8);
        assert_eq!(t.counter_add(HostKey::GLOBAL, 3, 0, 1, SEC, 4), 4);
        assert_eq!(t.counter_add(HostKey::GLOBAL, 3, 0, 1, SEC, 4), 8);
        assert_eq!(t.counter_get(HostKey::GLOBAL, 3, 2 * SEC, 1, SEC), 6);
        assert_eq!(t.counter_get(src(v6("::")), 3, 0, 1, SEC), 0);
        assert_eq!(t.distinct_add(HostKey::GLOBAL, 1, 0, SEC, 9), 1);
        assert!(t.bans(0).is_empty(), "the global entry is never a ban");
    }

    #[test]
    fn memory_is_fixed() {
        let t = HostTable::with_keys(HostLimits { max_hosts: 4096, ..HostLimits::default() }, 1, 2);
        let size = t.memory_bytes();
        assert!(size >= 4096 * 512);
        for i in 0..1_000_000u32 {
            let ip = IpAddr::V6(Ipv6Addr::from(u128::from(i) << 64));
            t.counter_add(src(ip), (i % 16) as usize, u64::from(i), 1, SEC, 1);
            if i % 64 == 0 {
                t.distinct_add(src(ip), 0, u64::from(i), SEC, u64::from(i));
            }
        }
        assert_eq!(t.memory_bytes(), size);
        assert!(t.len() <= t.capacity());
        assert_eq!(t.stats().inserted, 1_000_000);
        // Default limits: 512-byte entries.
        let d = HostTable::new(HostLimits::default());
        assert_eq!(d.stride * 8, 512);
        assert_eq!(d.capacity(), 65536);
    }

    #[test]
    fn concurrent_adds_on_one_key_are_exact() {
        let t = HostTable::new(HostLimits { max_hosts: 1024, ..HostLimits::default() });
        let k = src(v4(203, 0, 113, 5));
        const N: u32 = 200_000;
        std::thread::scope(|sc| {
            for th in 0..4u64 {
                let t = &t;
                sc.spawn(move || {
                    for i in 0..N {
                        t.counter_add(k, 0, u64::from(i), 0, SEC, 1);
                        if i % 16 == 0 {
                            t.distinct_add(k, 1, u64::from(i), 0, th * 1_000_000 + u64::from(i));
                            assert_eq!(t.banned(v4(203, 0, 113, 5), u64::from(i)), None);
                        }
                    }
                });
            }
        });
        assert_eq!(t.counter_get(k, 0, u64::from(N), 0, SEC), 4 * N);
        assert_eq!(t.len(), 1);
        assert_eq!(t.stats().lost, 0);
    }

    #[test]
    fn concurrent_first_inserts_lose_nothing() {
        // Every thread creates the same fresh keys at about the same time: duplicate claims
        // happen and must be merged without losing an increment.
        let t = HostTable::with_keys(HostLimits::default(), 7, 8);
        const KEYS: u32 = 4096;
        const ROUNDS: u32 = 8;
        std::thread::scope(|sc| {
            for _ in 0..4 {
                let t = &t;
                sc.spawn(move || {
                    for r in 0..ROUNDS {
                        for i in 0..KEYS {
                            let now = u64::from(r * KEYS + i);
                            t.counter_add(src(nth(i)), 0, now, 0, 0, 1);
                        }
                    }
                });
            }
        });
        for i in 0..KEYS {
            assert_eq!(t.counter_get(src(nth(i)), 0, 0, 0, 0), 4 * ROUNDS, "{}", nth(i));
        }
        let s = t.stats();
        assert_eq!((s.evicted, s.lost, s.full), (0, 0, 0));
        assert_eq!(t.len() as u64, s.inserted - s.merged);
        assert_eq!(t.len(), KEYS as usize);
    }

    #[test]
    fn churn_never_misattributes_a_ban() {
        let t = table(16, 4);
        // Addresses 0..64; those with i % 8 == 0 are the only ones ever banned, with rule i.
        std::thread::scope(|sc| {
            for th in 0..4u64 {
                let t = &t;
                sc.spawn(move || {
                    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (th + 1));
                    for i in 0..200_000u64 {
                        let now = i * 1_000;
                        let r = rng.next();
                        let a = (r % 64) as u32;
                        let ip = if (r >> 8) & 1 == 0 {
                            nth(a)
                        } else {
                            IpAddr::V6(Ipv6Addr::from(u128::from(a)))
                        };
                        match (r >> 16) % 16 {
                            0 if a % 8 == 0 => {
                                t.ban(ip, now + (r >> 40) % 200_000, a);
                            }
                            1 if a % 8 == 0 => {
                                t.unban(ip);
                            }
                            2..=5 => {
                                t.distinct_add(src(ip), (r >> 24) as usize % 2, now, 50_000, r);
                            }
                            6..=10 => {
                                if let Some(b) = t.banned(ip, now) {
                                    assert_eq!(a % 8, 0, "{ip} reported banned");
                                    assert_eq!(b.rule, a, "{ip} has another host's ban");
                                }
                            }
                            _ => {
                                t.counter_add(src(ip), (r >> 24) as usize % 4, now, 1, 10_000, 1);
                            }
                        }
                        assert!(t.len() <= t.capacity());
                    }
                });
            }
        });
        let listed: HashSet<IpAddr> = t.bans(0).into_iter().map(|(ip, _)| ip).collect();
        for ip in listed {
            let i = match ip {
                IpAddr::V4(a) => u32::from(a) - 0x0a00_0000,
                IpAddr::V6(a) => u128::from(a) as u32,
            };
            assert_eq!(i % 8, 0, "{ip} listed as banned");
        }
        assert!(t.len() <= t.capacity());
    }
}
