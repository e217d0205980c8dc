//! A bounded, expiring table keyed by 128-bit keys.
//!
//! Every stateful scope (transaction, dialog) lives in one of these. Its bounds are hard:
//!
//! - the slot storage and the index are allocated once, at the capacity derived from the
//!   configured entry and byte caps, so a flood of fresh keys cannot grow memory at all;
//! - when full, the entry idle the longest is evicted (oldest-first by last activity, so a
//!   flood of fresh Call-IDs pushes out other fresh junk before the live calls that keep
//!   sending), and the eviction is counted;
//! - each entry has a deadline; a hashed timer wheel threaded through the slots expires them.
//!
//! Both the LRU order and the wheel buckets are intrusive doubly linked lists through the slot
//! array, so touching, rescheduling and removing an entry are O(1) and allocate nothing.

use crate::hash::Key;
use hashbrown::HashTable;

const NIL: u32 = u32::MAX;

/// Number of buckets of the timer wheel; one revolution covers `WHEEL * tick_ns`.
const WHEEL: usize = 1024;

/// Caps and timing of one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableLimits {
    /// Maximum number of live entries.
    pub max_entries: usize,
    /// Maximum bytes of slot storage plus index; lowers the entry cap when tighter.
    pub max_bytes: usize,
    /// Timer wheel resolution in nanoseconds: entries expire at most this late.
    pub tick_ns: u64,
}

/// Counters of one table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TableStats {
    /// Entries created.
    pub inserted: u64,
    /// Entries evicted because the table was full.
    pub evicted: u64,
    /// Entries removed because their deadline passed.
    pub expired: u64,
    /// Entries removed explicitly.
    pub removed: u64,
}

struct Slot<V> {
    key: Key,
    deadline: u64,
    /// LRU list: `prev` is older, `next` is newer.
    lprev: u32,
    lnext: u32,
    /// Wheel bucket list.
    wprev: u32,
    wnext: u32,
    wbucket: u32,
    value: V,
}

/// A fixed-capacity map from [`Key`] to `V` with LRU eviction and deadline expiry.
pub struct Table<V> {
    index: HashTable<u32>,
    slots: Vec<Slot<V>>,
    oldest: u32,
    newest: u32,
    buckets: Box<[u32]>,
    /// The wheel has processed every tick before this one.
    tick_done: u64,
    tick_ns: u64,
    cap: usize,
    len: usize,
    stats: TableStats,
}

/// Index hash: keys are already keyed SipHash output, so their low bits are uniform.
fn ih(k: Key) -> u64 {
    k as u64
}

impl<V> Table<V> {
    /// Bytes one entry may cost: its slot plus, at worst, its share of the index (a u32 and a
    /// control byte per bucket; hashbrown keeps at most 7/8 of the buckets full and rounds the
    /// bucket count up to a power of two, so up to 2 * 8/7 buckets per entry).
    pub const ENTRY_BYTES: usize = std::mem::size_of::<Slot<V>>() + 12;

    /// Fixed bytes of a table whatever its size: the wheel buckets and the index's tail group.
    const FIXED_BYTES: usize = WHEEL * 4 + 64;

    /// A table whose memory is allocated now, at the capacity the limits allow.
    pub fn new(limits: TableLimits) -> Table<V> {
        let by_bytes = limits.max_bytes.saturating_sub(Self::FIXED_BYTES) / Self::ENTRY_BYTES;
        let cap = limits.max_entries.min(by_bytes).clamp(1, (u32::MAX - 1) as usize);
        Table {
            index: HashTable::with_capacity(cap),
            slots: Vec::with_capacity(cap),
            oldest: NIL,
            newest: NIL,
            buckets: vec![NIL; WHEEL].into_boxed_slice(),
            tick_done: 0,
            tick_ns: limits.tick_ns.max(1),
            cap,
            len: 0,
            stats: TableStats::default(),
        }
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no entry is live.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The effective entry cap (the tighter of the entry and byte limits).
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Bytes held by slot storage and index (allocated capacity, not just used).
    pub fn memory_bytes(&self) -> usize {
        // hashbrown reports capacity as 7/8 of its buckets.
        let index_buckets = (self.index.capacity() * 8).div_ceil(7);
        self.slots.capacity() * std::mem::size_of::<Slot<V>>()
            + index_buckets * 5
            + 16
            + self.buckets.len() * 4
    }

    /// Counters since creation.
    pub fn stats(&self) -> TableStats {
        self.stats
    }

    fn find(&self, key: Key) -> Option<u32> {
        let slots = &self.slots;
        self.index.find(ih(key), |&i| slots[i as usize].key == key).copied()
    }

    /// The value under `key`, if live.
    pub fn get(&self, key: Key) -> Option<&V> {
        self.find(key).map(|i| &self.slots[i as usize].value)
    }

    /// The value under `key`, if live, for update; does not touch its age or deadline.
    pub fn get_mut(&mut self, key: Key) -> Option<&mut V> {
        self.find(key).map(|i| &mut self.slots[i as usize].value)
    }

    /// Marks `key` active now and moves its deadline; returns its value.
    pub fn touch(&mut self, key: Key, deadline: u64) -> Option<&mut V> {
        let i = self.find(key)?;
        self.lru_unlink(i);
        self.lru_push_newest(i);
        self.reschedule(i, deadline);
        Some(&mut self.slots[i as usize].value)
    }

    /// Inserts a new entry (or replaces the value of a live one), evicting the entry idle the
    /// longest when full. Returns the evicted entry's key and value, if any.
    pub fn insert(&mut self, key: Key, value: V, deadline: u64) -> (&mut V, Option<(Key, V)>) {
        if let Some(i) = self.find(key) {
            self.slots[i as usize].value = value;
            self.lru_unlink(i);
            self.lru_push_newest(i);
            self.reschedule(i, deadline);
            return (&mut self.slots[i as usize].value, None);
        }
        let mut evicted = None;
        if self.len >= self.cap {
            let victim = self.oldest;
            let k = self.slots[victim as usize].key;
            self.stats.evicted += 1;
            evicted = self.take(victim).map(|v| (k, v));
        }
        let slot = Slot {
            key,
            deadline,
            lprev: NIL,
            lnext: NIL,
            wprev: NIL,
            wnext: NIL,
            wbucket: 0,
            value,
        };
        // Never past `cap`: the vector was sized for it and an entry left above when full.
        self.slots.push(slot);
        let i = (self.slots.len() - 1) as u32;
        let slots = &self.slots;
        self.index.insert_unique(ih(key), i, |&j| ih(slots[j as usize].key));
        self.len += 1;
        self.stats.inserted += 1;
        self.lru_push_newest(i);
        self.wheel_link(i, deadline);
        (&mut self.slots[i as usize].value, evicted)
    }

    /// Evicts the entry idle the longest (counted as an eviction), for callers that bound
    /// something besides the entry count (bytes held by values).
    pub fn evict_oldest(&mut self) -> Option<(Key, V)> {
        if self.oldest == NIL {
            return None;
        }
        let i = self.oldest;
        let k = self.slots[i as usize].key;
        self.stats.evicted += 1;
        self.take(i).map(|v| (k, v))
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: Key) -> Option<V> {
        let i = self.find(key)?;
        self.stats.removed += 1;
        self.take(i)
    }

    /// Expires every entry whose deadline lies in a wheel tick that has fully passed, handing
    /// each to `on_expire`: an entry goes at most one tick after its deadline. Each bucket is
    /// walked once per tick that passes (not once per call), and at most one revolution is
    /// walked however far time jumped.
    pub fn expire(&mut self, now: u64, mut on_expire: impl FnMut(Key, V)) {
        let now_tick = now / self.tick_ns;
        if now_tick <= self.tick_done {
            return;
        }
        if self.len == 0 {
            self.tick_done = now_tick;
            return;
        }
        let first = self.tick_done.max(now_tick.saturating_sub(WHEEL as u64));
        for t in first..now_tick {
            let b = (t % WHEEL as u64) as usize;
            let mut i = self.buckets[b];
            while i != NIL {
                let next = self.slots[i as usize].wnext;
                if self.slots[i as usize].deadline < now_tick * self.tick_ns {
                    let k = self.slots[i as usize].key;
                    self.stats.expired += 1;
                    // `take` may move the last slot into `i`; if that slot was `next`, follow it.
                    let last = (self.slots.len() - 1) as u32;
                    if let Some(v) = self.take(i) {
                        on_expire(k, v);
                    }
                    i = if next == last { i } else { next };
                    continue;
                }
                i = next;
            }
        }
        self.tick_done = now_tick;
    }

    /// Iterates live entries from the oldest activity to the newest.
    pub fn iter_oldest_first(&self) -> impl Iterator<Item = (Key, &V)> {
        let mut i = self.oldest;
        std::iter::from_fn(move || {
            if i == NIL {
                return None;
            }
            let s = &self.slots[i as usize];
            i = s.lnext;
            Some((s.key, &s.value))
        })
    }

    fn take(&mut self, i: u32) -> Option<V> {
        let key = self.slots[i as usize].key;
        let slots = &self.slots;
        match self.index.find_entry(ih(key), |&j| slots[j as usize].key == key) {
            Ok(e) => {
                e.remove();
            }
            Err(_) => return None,
        }
        self.lru_unlink(i);
        self.wheel_unlink(i);
        self.len -= 1;
        // Keep the slot vector dense: the last slot moves into the hole and its neighbours,
        // its bucket head and its index entry are repointed.
        let last = (self.slots.len() - 1) as u32;
        let removed = self.slots.swap_remove(i as usize);
        if i != last {
            self.relink_moved(last, i);
        }
        Some(removed.value)
    }

    fn relink_moved(&mut self, from: u32, to: u32) {
        let (lp, ln, wp, wn, wb, key) = {
            let s = &self.slots[to as usize];
            (s.lprev, s.lnext, s.wprev, s.wnext, s.wbucket, s.key)
        };
        if lp != NIL {
            self.slots[lp as usize].lnext = to;
        } else {
            self.oldest = to;
        }
        if ln != NIL {
            self.slots[ln as usize].lprev = to;
        } else {
            self.newest = to;
        }
        if wp != NIL {
            self.slots[wp as usize].wnext = to;
        } else {
            self.buckets[wb as usize] = to;
        }
        if wn != NIL {
            self.slots[wn as usize].wprev = to;
        }
        if let Some(slot) = self.index.find_mut(ih(key), |&j| j == from) {
            *slot = to;
        }
    }

    fn lru_unlink(&mut self, i: u32) {
        let (p, n) = (self.slots[i as usize].lprev, self.slots[i as usize].lnext);
        if p != NIL {
            self.slots[p as usize].lnext = n;
        } else if self.oldest == i {
            self.oldest = n;
        }
        if n != NIL {
            self.slots[n as usize].lprev = p;
        } else if self.newest == i {
            self.newest = p;
        }
        self.slots[i as usize].lprev = NIL;
        self.slots[i as usize].lnext = NIL;
    }

    fn lru_push_newest(&mut self, i: u32) {
        let old_newest = self.newest;
        self.slots[i as usize].lprev = old_newest;
        self.slots[i as usize].lnext = NIL;
        if old_newest != NIL {
            self.slots[old_newest as usize].lnext = i;
        } else {
            self.oldest = i;
        }
        self.newest = i;
    }

    fn bucket_of(&self, deadline: u64) -> u32 {
        // A deadline already in the past goes to the next tick to be processed.
        let t = (deadline / self.tick_ns).max(self.tick_done);
        (t % WHEEL as u64) as u32
    }

    fn wheel_link(&mut self, i: u32, deadline: u64) {
        let b = self.bucket_of(deadline);
        let head = self.buckets[b as usize];
        let s = &mut self.slots[i as usize];
        s.deadline = deadline;
        s.wbucket = b;
        s.wprev = NIL;
        s.wnext = head;
        if head != NIL {
            self.slots[head as usize].wprev = i;
        }
        self.buckets[b as usize] = i;
    }

    fn wheel_unlink(&mut self, i: u32) {
        let (p, n, b) = {
            let s = &self.slots[i as usize];
            (s.wprev, s.wnext, s.wbucket)
        };
        if p != NIL {
            self.slots[p as usize].wnext = n;
        } else if self.buckets[b as usize] == i {
            self.buckets[b as usize] = n;
        }
        if n != NIL {
            self.slots[n as usize].wprev = p;
        }
        self.slots[i as usize].wprev = NIL;
        self.slots[i as usize].wnext = NIL;
    }

    fn reschedule(&mut self, i: u32, deadline: u64) {
        if self.bucket_of(deadline) == self.slots[i as usize].wbucket {
            self.slots[i as usize].deadline = deadline;
            return;
        }
        self.wheel_unlink(i);
        self.wheel_link(i, deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn limits(n: usize) -> TableLimits {
        TableLimits { max_entries: n, max_bytes: usize::MAX, tick_ns: SEC / 10 }
    }

    /// Walks both intrusive lists and the index and checks they agree with `len`.
    fn check_invariants<V>(t: &Table<V>) {
        assert_eq!(t.slots.len(), t.len);
        assert_eq!(t.index.len(), t.len);
        assert_eq!(t.iter_oldest_first().count(), t.len);
        let mut in_wheel = 0;
        for (b, &head) in t.buckets.iter().enumerate() {
            let mut i = head;
            let mut prev = NIL;
            while i != NIL {
                let s = &t.slots[i as usize];
                assert_eq!(s.wbucket as usize, b);
                assert_eq!(s.wprev, prev);
                prev = i;
                i = s.wnext;
                in_wheel += 1;
            }
        }
        assert_eq!(in_wheel, t.len);
        for (i, s) in t.slots.iter().enumerate() {
            assert_eq!(t.find(s.key), Some(i as u32));
        }
    }

    #[test]
    fn insert_get_remove() {
        let mut t = Table::new(limits(8));
        t.insert(1, "a", 10 * SEC);
        t.insert(2, "b", 10 * SEC);
        assert_eq!(t.get(1), Some(&"a"));
        assert_eq!(t.remove(1), Some("a"));
        assert_eq!(t.get(1), None);
        assert_eq!(t.get(2), Some(&"b"));
        assert_eq!(t.len(), 1);
        check_invariants(&t);
    }

    #[test]
    fn full_table_evicts_least_recently_active() {
        let mut t = Table::new(limits(3));
        t.insert(1, 1, 100 * SEC);
        t.insert(2, 2, 100 * SEC);
        t.insert(3, 3, 100 * SEC);
        t.touch(1, 100 * SEC); // 2 is now the idlest
        let (_, ev) = t.insert(4, 4, 100 * SEC);
        assert_eq!(ev, Some((2, 2)));
        assert_eq!(t.len(), 3);
        assert_eq!(t.stats().evicted, 1);
        let order: Vec<_> = t.iter_oldest_first().map(|(k, _)| k).collect();
        assert_eq!(order, vec![3, 1, 4]);
        check_invariants(&t);
    }

    #[test]
    fn evict_oldest_takes_the_idlest() {
        let mut t = Table::new(limits(4));
        t.insert(1, 'a', SEC);
        t.insert(2, 'b', SEC);
        t.touch(1, SEC);
        assert_eq!(t.evict_oldest(), Some((2, 'b')));
        assert_eq!(t.evict_oldest(), Some((1, 'a')));
        assert_eq!(t.evict_oldest(), None);
        check_invariants(&t);
    }

    #[test]
    fn entries_expire_at_their_deadline_not_before() {
        let mut t = Table::new(limits(16));
        t.expire(0, |_, _| {});
        t.insert(1, (), 5 * SEC);
        t.insert(2, (), 50 * SEC);
        let mut gone = vec![];
        t.expire(5 * SEC, |k, _| gone.push(k));
        assert!(gone.is_empty());
        // One tick (0.1 s) after the deadline's tick ends it is gone.
        t.expire(5 * SEC + SEC / 10, |k, _| gone.push(k));
        assert_eq!(gone, vec![1]);
        // A touch moves the deadline out.
        t.touch(2, 500 * SEC);
        t.expire(60 * SEC, |k, _| gone.push(k));
        assert_eq!(gone, vec![1]);
        // Past a whole revolution of the wheel the far deadline is still honoured.
        t.expire(499 * SEC, |k, _| gone.push(k));
        assert_eq!(gone, vec![1]);
        t.expire(501 * SEC, |k, _| gone.push(k));
        assert_eq!(gone, vec![1, 2]);
        assert_eq!(t.stats().expired, 2);
        check_invariants(&t);
    }

    #[test]
    fn byte_cap_bounds_capacity_and_memory() {
        for max_bytes in [10_000usize, 100_000, 1_000_000, 7_777_777] {
            let t: Table<[u64; 8]> =
                Table::new(TableLimits { max_entries: usize::MAX, max_bytes, tick_ns: SEC });
            assert!(t.memory_bytes() <= max_bytes, "{} > {max_bytes}", t.memory_bytes());
            assert!(t.capacity() >= 1);
        }
    }

    #[test]
    fn random_operations_keep_lists_consistent() {
        use proptest::prelude::*;
        proptest!(ProptestConfig::with_cases(64), |(ops in proptest::collection::vec((0u8..4, 0u128..40, 0u64..300), 1..300))| {
            let mut t = Table::new(limits(16));
            let mut now = 0;
            for (op, k, d) in ops {
                match op {
                    0 => { t.insert(k, k, now + d * SEC / 10); }
                    1 => { t.touch(k, now + d * SEC / 10); }
                    2 => { t.remove(k); }
                    _ => { now += d * SEC / 20; t.expire(now, |_, _| {}); }
                }
                prop_assert!(t.len() <= 16);
                check_invariants(&t);
                for (k, v) in t.iter_oldest_first() { prop_assert_eq!(k, *v); }
            }
        });
    }
}
