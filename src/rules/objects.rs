//! Stateful objects: the containers rules `hold` values into and the counters they `count`.
//!
//! Transaction and dialog objects live in the engine that owns the dialog (no sharing); source
//! and global objects live in the shared [`HostTable`]. Values are kept as keyed 64-bit hashes
//! of their first `normalize` bytes, so a container's size does not depend on what an attacker
//! sends. Containers are bounded three ways: values per container (`max_entries`, further values
//! are not stored and are counted), containers per engine, and bytes per engine (the container
//! idle the longest is evicted first, counted).

use super::fields::Value;
use super::model::{AddrSel, ObjKind, Object, Scope};
use crate::engine::table::{Table, TableLimits, TableStats};
use crate::hash::{Key, Keyer};
use crate::hosttable::{HostKey, HostTable};
use std::net::IpAddr;

/// Bounds of one engine's object store.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectLimits {
    /// Containers per engine. Default 65536.
    pub max_containers: usize,
    /// Bytes of values and container slots per engine. Default 32 MiB.
    pub max_bytes: usize,
}

impl Default for ObjectLimits {
    fn default() -> Self {
        ObjectLimits { max_containers: 65_536, max_bytes: 32 << 20 }
    }
}

/// Values of one container.
#[derive(Debug)]
enum Container {
    /// Set, list or bag: hashes (and counts, for bags).
    Values { vals: Vec<u64>, counts: Vec<u32> },
    /// Leaky counter: value and the period index it was last brought up to date for.
    Counter { value: u32, period: u64 },
}

impl Container {
    fn bytes(&self) -> usize {
        match self {
            Container::Values { vals, counts } => vals.capacity() * 8 + counts.capacity() * 4,
            Container::Counter { .. } => 0,
        }
    }
}

/// Counters of the store.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct ObjectStats {
    /// Values not stored because their container was full.
    pub values_dropped: u64,
    /// Containers evicted to stay within the byte cap.
    pub evicted_for_bytes: u64,
    /// Container table counters.
    pub table: TableStats,
}

/// Scope keys of the current message.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScopeKeys {
    /// The transaction the message belongs to (or would create).
    pub transaction: Option<Key>,
    /// The dialog the message belongs to (or would create).
    pub dialog: Option<Key>,
    /// The message's source address.
    pub src: Option<IpAddr>,
    /// The message's destination address.
    pub dst: Option<IpAddr>,
    /// The message is a request.
    pub is_request: bool,
}

/// One engine's containers.
pub struct ObjectStore {
    table: Table<Container>,
    keyer: Keyer,
    limits: ObjectLimits,
    value_bytes: usize,
    stats: ObjectStats,
    /// Lifetimes of transaction- and dialog-scoped containers after their last use.
    tx_ttl: u64,
    dialog_ttl: u64,
}

/// Leaky counter arithmetic shared with the host table's semantics: the value loses
/// `decrement` per elapsed period, floored at 0.
pub fn leak(value: u32, from_period: u64, to_period: u64, decrement: u32) -> u32 {
    let periods = to_period.saturating_sub(from_period);
    let loss = (decrement as u64).saturating_mul(periods);
    (value as u64).saturating_sub(loss) as u32
}

impl ObjectStore {
    /// A store within `limits`; containers expire `tx_ttl_ns` / `dialog_ttl_ns` after last use.
    pub fn new(limits: ObjectLimits, keyer: Keyer, tx_ttl_ns: u64, dialog_ttl_ns: u64, tick_ns: u64) -> ObjectStore {
        let table = Table::new(TableLimits { max_entries: limits.max_containers, max_bytes: usize::MAX, tick_ns });
        ObjectStore { table, keyer, limits, value_bytes: 0, stats: ObjectStats::default(), tx_ttl: tx_ttl_ns, dialog_ttl: dialog_ttl_ns }
    }

    /// Counters.
    pub fn stats(&self) -> ObjectStats {
        ObjectStats { table: self.table.stats(), ..self.stats }
    }

    /// Live containers.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when no container is live.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Bytes held: container slots plus values.
    pub fn memory_bytes(&self) -> usize {
        self.table.memory_bytes() + self.value_bytes
    }

    /// Expires containers whose scope lifetime ended.
    pub fn expire(&mut self, now: u64) {
        let vb = &mut self.value_bytes;
        self.table.expire(now, |_, c| *vb -= c.bytes());
    }

    /// Keyed 64-bit hash of a value's first `normalize` bytes.
    pub fn value_hash(&self, v: &Value<'_>, normalize: usize) -> Option<u64> {
        let k = match v {
            Value::Absent => return None,
            Value::Str(b) => self.keyer.key(&[b"s", &b[..b.len().min(normalize)]]),
            Value::Num(n) => self.keyer.key(&[b"n", &n.to_le_bytes()]),
            Value::Bool(b) => self.keyer.key(&[b"b", &[*b as u8]]),
            Value::Ip(IpAddr::V4(a)) => self.keyer.key(&[b"4", &a.octets()]),
            Value::Ip(IpAddr::V6(a)) => self.keyer.key(&[b"6", &a.octets()]),
        };
        Some(k as u64)
    }

    fn container_key(&self, obj: &Object, keys: &ScopeKeys, parent_value: Option<u64>) -> Option<(Key, u64)> {
        let (scope_key, ttl) = match obj.scope {
            Scope::Transaction => (keys.transaction?, self.tx_ttl),
            Scope::Dialog => (keys.dialog?, self.dialog_ttl),
            Scope::Source { .. } | Scope::Key { .. } | Scope::Global => return None,
        };
        let pv = match (obj.parent, parent_value) {
            (Some(_), None) => return None,
            (_, p) => p.unwrap_or(0),
        };
        let k = self.keyer.key(&[&obj.fingerprint.to_le_bytes(), &scope_key.to_le_bytes(), &pv.to_le_bytes()]);
        Some((k, ttl))
    }

    /// Stores `value` into the object's container (creating it), honouring its kind and cap.
    pub fn hold(&mut self, obj: &Object, keys: &ScopeKeys, parent_value: Option<u64>, value: u64, now: u64) {
        let Some((key, ttl)) = self.container_key(obj, keys, parent_value) else { return };
        if self.table.get(key).is_none() {
            let cap = obj.max_entries;
            let counts = if obj.kind == ObjKind::Bag { cap } else { 0 };
            let c = Container::Values { vals: Vec::with_capacity(cap), counts: Vec::with_capacity(counts) };
            self.insert(key, c, now + ttl);
        }
        let Some(Container::Values { vals, counts }) = self.table.touch(key, now + ttl) else { return };
        let pos = vals.iter().position(|&v| v == value);
        match (obj.kind, pos) {
            (ObjKind::Set | ObjKind::Distinct { .. }, Some(_)) => {}
            (ObjKind::Bag, Some(i)) => counts[i] = counts[i].saturating_add(1),
            _ if vals.len() >= obj.max_entries => self.stats.values_dropped += 1,
            (ObjKind::Bag, None) => {
                vals.push(value);
                counts.push(1);
            }
            _ => vals.push(value),
        }
    }

    /// True when `value` is in the object's container.
    pub fn contains(&mut self, obj: &Object, keys: &ScopeKeys, parent_value: Option<u64>, value: u64) -> bool {
        let Some((key, _)) = self.container_key(obj, keys, parent_value) else { return false };
        matches!(self.table.get(key), Some(Container::Values { vals, .. }) if vals.contains(&value))
    }

    /// Entries of a container (for bags, the sum of counts).
    pub fn entries(&mut self, obj: &Object, keys: &ScopeKeys, parent_value: Option<u64>) -> i64 {
        let Some((key, _)) = self.container_key(obj, keys, parent_value) else { return 0 };
        match self.table.get(key) {
            Some(Container::Values { vals, counts }) if obj.kind == ObjKind::Bag => {
                let _ = vals;
                counts.iter().map(|&c| c as i64).sum()
            }
            Some(Container::Values { vals, .. }) => vals.len() as i64,
            _ => 0,
        }
    }

    /// Adds one to a counter and returns its new value.
    pub fn count(&mut self, obj: &Object, keys: &ScopeKeys, parent_value: Option<u64>, now: u64) -> u32 {
        let ObjKind::Counter { decrement, period_ns, cap } = obj.kind else { return 0 };
        let Some((key, ttl)) = self.container_key(obj, keys, parent_value) else { return 0 };
        let period = now / period_ns.max(1);
        if self.table.get(key).is_none() {
            self.insert(key, Container::Counter { value: 0, period }, now + ttl);
        }
        match self.table.touch(key, now + ttl) {
            Some(Container::Counter { value, period: p }) => {
                *value = leak(*value, *p, period, decrement).saturating_add(1).min(cap);
                *p = period;
                *value
            }
            _ => 0,
        }
    }

    /// A counter's current value.
    pub fn counter(&mut self, obj: &Object, keys: &ScopeKeys, parent_value: Option<u64>, now: u64) -> u32 {
        let ObjKind::Counter { decrement, period_ns, .. } = obj.kind else { return 0 };
        let Some((key, _)) = self.container_key(obj, keys, parent_value) else { return 0 };
        match self.table.get(key) {
            Some(Container::Counter { value, period }) => leak(*value, *period, now / period_ns.max(1), decrement),
            _ => 0,
        }
    }

    fn insert(&mut self, key: Key, c: Container, deadline: u64) {
        let need = c.bytes();
        while self.value_bytes + need > self.limits.max_bytes.saturating_sub(self.table.memory_bytes()) {
            match self.table.evict_oldest() {
                Some((_, old)) => {
                    self.value_bytes -= old.bytes();
                    self.stats.evicted_for_bytes += 1;
                }
                None => return,
            }
        }
        self.value_bytes += need;
        if let (_, Some((_, old))) = self.table.insert(key, c, deadline) {
            self.value_bytes -= old.bytes();
        }
    }
}

/// Host-table keys of `key`-scoped objects live in 0100::/64, the IPv6 discard-only prefix
/// (RFC 6666): no real source has such an address, so they never meet a source entry or a ban.
fn synthetic_key(h: u64) -> HostKey {
    HostKey::exact(IpAddr::V6(std::net::Ipv6Addr::from((0x0100u128 << 112) | h as u128)))
}

/// The host-table entry of a shared-scope object for this message; `keyval` is the hash of the
/// key field's value for `key` scopes.
pub fn host_key(obj: &Object, keys: &ScopeKeys, keyval: Option<u64>) -> Option<HostKey> {
    match obj.scope {
        Scope::Source { v4, v6, addr } => {
            let ip = match (addr, keys.is_request) {
                (AddrSel::Src, _) | (AddrSel::Client, true) | (AddrSel::Server, false) => keys.src,
                (AddrSel::Dst, _) | (AddrSel::Client, false) | (AddrSel::Server, true) => keys.dst,
            };
            ip.map(|ip| HostKey::source(ip, v4, v6))
        }
        Scope::Key { .. } => keyval.map(synthetic_key),
        Scope::Global => Some(HostKey::GLOBAL),
        _ => None,
    }
}

/// Adds one to a shared counter; returns its new value.
pub fn host_count(hosts: &HostTable, obj: &Object, keys: &ScopeKeys, keyval: Option<u64>, now: u64) -> u32 {
    let (Some(k), ObjKind::Counter { decrement, period_ns, cap }) = (host_key(obj, keys, keyval), obj.kind) else { return 0 };
    // Read-then-add: engines racing at the cap may overshoot it by one each, which only
    // delays the leak by a message or two.
    let now_value = hosts.counter_get(k, obj.host_slot, now, decrement, period_ns);
    let add = (now_value < cap) as u32;
    hosts.counter_add(k, obj.host_slot, now, decrement, period_ns, add)
}

/// A shared counter's value, or a distinct object's estimate.
pub fn host_value(hosts: &HostTable, obj: &Object, keys: &ScopeKeys, keyval: Option<u64>, now: u64) -> u32 {
    let Some(k) = host_key(obj, keys, keyval) else { return 0 };
    match obj.kind {
        ObjKind::Counter { decrement, period_ns, .. } => hosts.counter_get(k, obj.host_slot, now, decrement, period_ns),
        ObjKind::Distinct { window_ns } => hosts.distinct_get(k, obj.host_slot, now, window_ns),
        _ => 0,
    }
}

/// Adds a value hash to a shared distinct object.
pub fn host_distinct_add(hosts: &HostTable, obj: &Object, keys: &ScopeKeys, keyval: Option<u64>, now: u64, value: u64) {
    if let (Some(k), ObjKind::Distinct { window_ns }) = (host_key(obj, keys, keyval), obj.kind) {
        hosts.distinct_add(k, obj.host_slot, now, window_ns, value);
    }
}
