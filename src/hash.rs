//! Keyed 128-bit hashing of SIP identifiers.
//!
//! The Call-ID is attacker-chosen, so every table keyed by it uses SipHash with a per-process
//! random key: nobody outside can aim collisions at one bucket. The key is 128 bits wide and
//! tables store it instead of the identifier itself, so an entry has a fixed size whatever the
//! attacker sends (a 2^-64 collision chance per pair of live entries is far below any other
//! failure rate of the appliance). The same [`Keyer`] must be shared by every engine and the
//! shard function so that all see the same key for one Call-ID.

use siphasher::sip128::{Hasher128, SipHasher13};
use std::hash::{BuildHasher, Hasher};

/// A 128-bit key derived from SIP identifiers.
pub type Key = u128;

/// Derives table keys from byte strings with one secret SipHash-1-3 key.
#[derive(Clone, Copy, Debug)]
pub struct Keyer {
    k0: u64,
    k1: u64,
}

impl Keyer {
    /// A keyer with a fresh random secret (from the OS-seeded std `RandomState`).
    pub fn random() -> Keyer {
        let s = std::collections::hash_map::RandomState::new();
        let mut a = s.build_hasher();
        a.write_u8(1);
        let mut b = s.build_hasher();
        b.write_u8(2);
        Keyer { k0: a.finish(), k1: b.finish() }
    }

    /// A keyer with a fixed secret, for reproducible tests and benchmarks.
    pub fn with_keys(k0: u64, k1: u64) -> Keyer {
        Keyer { k0, k1 }
    }

    /// Key of a sequence of fields; each is length-prefixed so `("ab","c")` and `("a","bc")` differ.
    pub fn key(&self, fields: &[&[u8]]) -> Key {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        for f in fields {
            h.write_u32(f.len() as u32);
            h.write(f);
        }
        h.finish128().as_u128()
    }

    /// Key of a Call-ID alone: what the shard function and the dialog lookup start from.
    pub fn call_id(&self, call_id: &[u8]) -> Key {
        self.key(&[call_id])
    }
}

/// Index of the engine that owns a Call-ID key, for `n` engines.
pub fn shard_of(key: Key, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    // The high half is independent of the low half that the tables use for bucketing.
    ((key >> 64) as u64 % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_boundaries_matter() {
        let k = Keyer::with_keys(1, 2);
        assert_ne!(k.key(&[b"ab", b"c"]), k.key(&[b"a", b"bc"]));
        assert_eq!(k.key(&[b"ab", b"c"]), k.key(&[b"ab", b"c"]));
    }

    #[test]
    fn secret_changes_keys() {
        let a = Keyer::with_keys(1, 2).call_id(b"abc@host");
        let b = Keyer::with_keys(3, 4).call_id(b"abc@host");
        assert_ne!(a, b);
        let r1 = Keyer::random();
        let r2 = Keyer::random();
        assert_ne!(r1.call_id(b"x"), r2.call_id(b"x"));
    }

    #[test]
    fn shards_spread_and_stay_in_range() {
        let k = Keyer::with_keys(7, 8);
        let mut counts = [0usize; 4];
        for i in 0..4000u32 {
            let s = shard_of(k.call_id(format!("call-{i}@example").as_bytes()), 4);
            counts[s] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "uneven shard spread {counts:?}");
        }
        assert_eq!(shard_of(123, 1), 0);
        assert_eq!(shard_of(123, 0), 0);
    }
}
