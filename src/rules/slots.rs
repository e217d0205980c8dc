//! Host-table slots that follow an object's definition across reloads.
//!
//! The compiler numbers the shared (source, key, global) counters and distincts of one rule
//! set in declaration order. Live values sit in the shared host table under those numbers, so
//! a reload that adds, removes or reorders an object would otherwise have each surviving object
//! read another's counts. [`HostSlots`] lives as long as the host table: every set made running
//! is stamped with it, which keeps a slot with the definition (the object's fingerprint) that
//! owned it, gives new definitions a free slot, and names the slots that changed owner so the
//! caller zeroes them before anyone reads them under their new meaning.

use super::model::{ObjKind, RuleSet};

/// Which array of an entry a slot indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotKind {
    /// Leaky counters.
    Counter,
    /// Distinct-count bitmaps.
    Distinct,
}

/// One array's slots: who owns each and when it was last released.
#[derive(Debug, Default)]
struct Slots {
    /// Fingerprint of the definition owning each slot (`None`: free).
    owner: Vec<Option<u64>>,
    /// Stamp generation at which each slot was last released; never-used slots are 0, so they
    /// are handed out first and a released slot is reused only when nothing older is free.
    released: Vec<u64>,
}

impl Slots {
    fn with_len(n: usize) -> Slots {
        Slots { owner: vec![None; n], released: vec![0; n] }
    }

    /// Assigns `wanted` (fingerprints, in declaration order) to slots; returns the slot of each
    /// and the slots that changed owner. `None` if there are more definitions than slots.
    fn assign(&mut self, wanted: &[u64], generation: u64) -> Option<(Vec<usize>, Vec<usize>)> {
        if wanted.len() > self.owner.len() {
            return None;
        }
        for (i, o) in self.owner.iter_mut().enumerate() {
            if o.is_some_and(|fp| !wanted.contains(&fp)) {
                *o = None;
                self.released[i] = generation;
            }
        }
        let mut out = Vec::with_capacity(wanted.len());
        let mut reset = Vec::new();
        for &fp in wanted {
            let slot = match self.owner.iter().position(|o| *o == Some(fp)) {
                Some(s) => s,
                None => {
                    let s = (0..self.owner.len()).filter(|&i| self.owner[i].is_none()).min_by_key(|&i| self.released[i])?;
                    self.owner[s] = Some(fp);
                    reset.push(s);
                    s
                }
            };
            out.push(slot);
        }
        Some((out, reset))
    }
}

/// The host table's slot owners, kept across rule-set swaps (one per host table).
#[derive(Debug, Default)]
pub struct HostSlots {
    counters: Slots,
    distincts: Slots,
    generation: u64,
}

impl HostSlots {
    /// Owners for a table of `counters` counter and `distincts` distinct slots, all free.
    pub fn new(counters: usize, distincts: usize) -> HostSlots {
        HostSlots { counters: Slots::with_len(counters), distincts: Slots::with_len(distincts), generation: 0 }
    }

    /// Whether `set`'s shared objects fit the table (the host table cannot grow on a reload).
    pub fn check(&self, set: &RuleSet) -> Result<(), String> {
        let (c, d) = (of(set, SlotKind::Counter).len(), of(set, SlotKind::Distinct).len());
        if c > self.counters.owner.len() || d > self.distincts.owner.len() {
            return Err(format!(
                "source/global objects need {c} counter and {d} distinct slots; the running host table has {} and {} (changing [hosts] counters/distincts takes a restart)",
                self.counters.owner.len(),
                self.distincts.owner.len()
            ));
        }
        Ok(())
    }

    /// Rewrites the `host_slot` of every shared counter and distinct of `set` so that a
    /// definition keeps the slot it had under earlier sets. Returns the slots that changed
    /// owner (zero them in the host table), or an error if the set needs more slots than the
    /// table has (the compiler checks the same bound, so this is a caller mixing tables).
    pub fn stamp(&mut self, set: &mut RuleSet) -> Result<Vec<(SlotKind, usize)>, String> {
        self.check(set)?;
        let (counters, distincts) = (of(set, SlotKind::Counter), of(set, SlotKind::Distinct));
        self.generation += 1;
        let mut reset = Vec::new();
        for (kind, slots, idx) in [(SlotKind::Counter, &mut self.counters, counters), (SlotKind::Distinct, &mut self.distincts, distincts)] {
            let fps: Vec<u64> = idx.iter().map(|&i| set.objects[i].fingerprint).collect();
            let (assigned, changed) = slots.assign(&fps, self.generation).expect("sizes checked above");
            for (&i, s) in idx.iter().zip(assigned) {
                set.objects[i].host_slot = s;
            }
            reset.extend(changed.into_iter().map(|s| (kind, s)));
        }
        Ok(reset)
    }
}

/// Indices of `set`'s objects that take a slot of `kind`.
fn of(set: &RuleSet, kind: SlotKind) -> Vec<usize> {
    (0..set.objects.len()).filter(|&i| is_of(&set.objects[i], kind)).collect()
}

fn is_of(o: &super::model::Object, kind: SlotKind) -> bool {
    o.scope.is_shared()
        && match kind {
            SlotKind::Counter => matches!(o.kind, ObjKind::Counter { .. }),
            SlotKind::Distinct => matches!(o.kind, ObjKind::Distinct { .. }),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survivors_keep_their_slot_and_newcomers_prefer_never_used_ones() {
        let mut s = Slots::with_len(4);
        let (a, r) = s.assign(&[10, 20, 30], 1).unwrap();
        assert_eq!((a, r), (vec![0, 1, 2], vec![0, 1, 2]));
        // 20 removed, 40 added, order changed: 30 and 10 stay put; 40 takes the unused slot 3
        // rather than 20's freshly released slot 1.
        let (a, r) = s.assign(&[30, 40, 10], 2).unwrap();
        assert_eq!((a, r), (vec![2, 3, 0], vec![3]));
        // Now only slot 1 is free: it is reused (and reported for zeroing).
        let (a, r) = s.assign(&[30, 40, 10, 50], 3).unwrap();
        assert_eq!((a, r), (vec![2, 3, 0, 1], vec![1]));
        assert!(s.assign(&[1, 2, 3, 4, 5], 4).is_none());
    }

    #[test]
    fn the_oldest_released_slot_is_reused_first() {
        let mut s = Slots::with_len(3);
        s.assign(&[1, 2, 3], 1).unwrap();
        s.assign(&[2, 3], 2).unwrap(); // slot 0 released at 2
        s.assign(&[3], 3).unwrap(); // slot 1 released at 3
        let (a, _) = s.assign(&[3, 9], 4).unwrap();
        assert_eq!(a, vec![2, 0]);
    }
}
