//! CONTRACT STUB — replaced by the real lock-free host table.
#![allow(missing_docs, unused)]
use std::net::IpAddr;
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
pub struct HostLimits { pub max_hosts: usize, pub counters: usize, pub distincts: usize, pub probe: usize }
impl Default for HostLimits { fn default() -> Self { HostLimits { max_hosts: 65536, counters: 16, distincts: 8, probe: 16 } } }
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HostKey([u8; 18]);
impl HostKey {
    pub fn source(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> HostKey { todo!() }
    pub fn exact(ip: IpAddr) -> HostKey { todo!() }
    pub const GLOBAL: HostKey = HostKey([0; 18]);
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ban { pub until_ns: u64, pub rule: u32 }
pub struct HostTable;
impl HostTable {
    pub fn new(limits: HostLimits) -> HostTable { HostTable }
    pub fn counter_add(&self, key: HostKey, slot: usize, now_ns: u64, decrement: u32, period_ns: u64, add: u32) -> u32 { todo!() }
    pub fn counter_get(&self, key: HostKey, slot: usize, now_ns: u64, decrement: u32, period_ns: u64) -> u32 { todo!() }
    pub fn distinct_add(&self, key: HostKey, slot: usize, now_ns: u64, window_ns: u64, value_hash: u64) -> u32 { todo!() }
    pub fn distinct_get(&self, key: HostKey, slot: usize, now_ns: u64, window_ns: u64) -> u32 { todo!() }
    pub fn ban(&self, ip: IpAddr, until_ns: u64, rule: u32) -> bool { todo!() }
    pub fn banned(&self, ip: IpAddr, now_ns: u64) -> Option<Ban> { None }
    pub fn unban(&self, ip: IpAddr) -> bool { todo!() }
}
