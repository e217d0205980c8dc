//! TLS ports (SIPS on 5061, WSS on 443/8443): encrypted, so never inspected. What crosses is
//! decided by policy per port and by a per-source rate of new connections, and every frame
//! let through is counted as uninspected.
//!
//! The client of a segment is the endpoint that is not on the TLS port: the policy and the
//! source lists apply to it in both directions, so a denied client gets no answers either.
//! The rate counts SYNs towards the port (new connections) per client address per second, in
//! a bounded table every engine shares (atomics, no lock): two clients hashed to one slot
//! share a budget; the hash keys are secret, so nobody can aim at another's slot.

use crate::hash::Keyer;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a TLS port lets through.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TlsPolicy {
    /// Every client, within the SYN rate.
    #[default]
    Allow,
    /// Nobody.
    Deny,
    /// Only clients in `sources`, within the SYN rate.
    Sources,
}

/// An address prefix, written `10.0.0.0/8`, `2001:db8::/32` or a bare address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(s: String) -> Result<Cidr, String> {
        let (a, p) = s.split_once('/').unwrap_or((&s, ""));
        let addr: IpAddr = a.trim().parse().map_err(|_| format!("{s:?} is not an address or CIDR prefix"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() { max } else { p.trim().parse::<u8>().map_err(|_| format!("{s:?}: bad prefix length"))? };
        if prefix > max {
            return Err(format!("{s:?}: prefix longer than {max}"));
        }
        Ok(Cidr { addr, prefix })
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        format!("{}/{}", c.addr, c.prefix)
    }
}

impl Cidr {
    /// Whether `ip` lies in the prefix (an IPv4 prefix never holds an IPv6 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |a: IpAddr| match a {
            IpAddr::V4(v) => u128::from(u32::from(v)) << 96,
            IpAddr::V6(v) => u128::from(v),
        };
        if self.addr.is_ipv4() != ip.is_ipv4() {
            return false;
        }
        // An IPv4 address sits in the top 32 bits, so a prefix counts from the top either way.
        let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
        bits(self.addr) & mask == bits(ip) & mask
    }
}

/// The policy of one TLS port.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsPort {
    /// The server's port.
    pub port: u16,
    /// What it lets through. Default `allow`.
    #[serde(default)]
    pub policy: TlsPolicy,
    /// With `policy = "sources"`: the clients allowed.
    #[serde(default)]
    pub sources: Vec<Cidr>,
}

/// `[engine.tls]`: TLS ports and their policies.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The TLS ports (default 5061, allowed; TLS on other ports is not SIP to secsip, bridged
    /// as is).
    pub ports: Vec<TlsPort>,
    /// New connections (SYNs) per second per client address, over all TLS ports; 0 = no
    /// limit. Default 20.
    pub syn_per_second: u32,
    /// Slots of the rate table (default 65536), shared by every engine.
    pub max_sources: usize,
}

impl Default for TlsConfig {
    fn default() -> Self {
        // SIPS's own port (RFC 3261 §26.2) is accounted for out of the box: what cannot be
        // inspected is at least counted and rate-limited.
        let sips = TlsPort { port: 5061, policy: TlsPolicy::default(), sources: Vec::new() };
        TlsConfig { ports: vec![sips], syn_per_second: 20, max_sources: 65536 }
    }
}

impl TlsConfig {
    /// The policy of a segment between these ports, and whether the client is its source.
    pub fn port_of(&self, src: u16, dst: u16) -> Option<(&TlsPort, bool)> {
        self.ports.iter().find_map(|p| if p.port == dst { Some((p, true)) } else if p.port == src { Some((p, false)) } else { None })
    }

    /// Checks the ports make sense; the message names the field.
    pub fn validate(&self, plain: &[u16]) -> Result<(), String> {
        if self.max_sources == 0 || self.max_sources > 1 << 24 {
            return Err(format!("engine.tls.max_sources = {}: must be 1..=16777216", self.max_sources));
        }
        for (i, p) in self.ports.iter().enumerate() {
            if p.port == 0 || plain.contains(&p.port) || self.ports[..i].iter().any(|q| q.port == p.port) {
                return Err(format!("engine.tls.ports: port {} is 0, listed twice, or a plain SIP/WebSocket port", p.port));
            }
            if (p.policy == TlsPolicy::Sources) == p.sources.is_empty() {
                return Err(format!("engine.tls.ports: port {}: `sources` goes with policy = \"sources\", and only with it", p.port));
            }
        }
        Ok(())
    }
}

/// Why a TLS frame was dropped; one counter per variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsDenial {
    /// The port's policy is `deny`.
    Policy,
    /// The client is in none of the port's `sources`.
    NotListed,
    /// The client opened more than `syn_per_second` connections this second.
    Rate,
}

impl TlsDenial {
    /// Every variant, in declaration order (for counter tables).
    pub const ALL: &'static [TlsDenial] = &[TlsDenial::Policy, TlsDenial::NotListed, TlsDenial::Rate];

    /// Stable snake_case name, used as a counter / metric label.
    pub fn name(&self) -> &'static str {
        match self {
            TlsDenial::Policy => "policy_deny",
            TlsDenial::NotListed => "source_not_listed",
            TlsDenial::Rate => "syn_rate",
        }
    }

    /// Index in [`TlsDenial::ALL`].
    pub fn index(&self) -> usize {
        TlsDenial::ALL.iter().position(|e| e == self).unwrap_or(0)
    }
}

/// Counters of the TLS ports.
#[derive(Clone, Debug, Serialize)]
pub struct TlsStats {
    /// Frames let through without inspection.
    pub uninspected_frames: u64,
    /// New connections (SYNs) let through without inspection.
    pub uninspected_connections: u64,
    /// Frames dropped, by [`TlsDenial`] (indexed like `TlsDenial::ALL`).
    pub denied: Vec<u64>,
}

impl Default for TlsStats {
    fn default() -> Self {
        TlsStats { uninspected_frames: 0, uninspected_connections: 0, denied: vec![0; TlsDenial::ALL.len()] }
    }
}

/// The per-client SYN rate table, shared by every engine.
#[derive(Debug)]
pub struct TlsGate {
    /// Per slot: the second (high 32 bits) and the SYNs counted in it (low 32 bits).
    slots: Box<[AtomicU64]>,
    keyer: Keyer,
}

impl TlsGate {
    /// A table of `cfg.max_sources` slots hashed with `keyer`.
    pub fn new(cfg: &TlsConfig, keyer: Keyer) -> Arc<TlsGate> {
        let slots = (0..cfg.max_sources.max(1)).map(|_| AtomicU64::new(0)).collect();
        Arc::new(TlsGate { slots, keyer })
    }

    /// Counts a SYN of `client` at `now` (ns); false when over `limit` this second.
    pub fn admit(&self, client: IpAddr, now: u64, limit: u32) -> bool {
        if limit == 0 {
            return true;
        }
        let octets = match client {
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            IpAddr::V6(a) => a.octets(),
        };
        let slot = &self.slots[(self.keyer.key(&[&octets]) % self.slots.len() as u128) as usize];
        let second = (now / 1_000_000_000) as u32;
        let mut cur = slot.load(Ordering::Relaxed);
        loop {
            let count = if (cur >> 32) as u32 == second { cur as u32 } else { 0 };
            if count >= limit {
                return false;
            }
            let new = u64::from(second) << 32 | u64::from(count + 1);
            match slot.compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(c) => cur = c,
            }
        }
    }
}

/// Judges a segment on a TLS port: `Ok` to forward uninspected, or why it is dropped.
pub fn judge(cfg: &TlsConfig, gate: &TlsGate, port: &TlsPort, client: IpAddr, new_connection: bool, now: u64) -> Result<(), TlsDenial> {
    match port.policy {
        TlsPolicy::Deny => return Err(TlsDenial::Policy),
        TlsPolicy::Sources if !port.sources.iter().any(|c| c.contains(client)) => return Err(TlsDenial::NotListed),
        _ => {}
    }
    if new_connection && !gate.admit(client, now, cfg.syn_per_second) {
        return Err(TlsDenial::Rate);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn cidr(s: &str) -> Cidr {
        Cidr::try_from(s.to_string()).unwrap()
    }

    #[test]
    fn prefixes_hold_what_they_should() {
        assert!(cidr("10.0.0.0/8").contains("10.200.1.1".parse().unwrap()));
        assert!(!cidr("10.0.0.0/8").contains("11.0.0.1".parse().unwrap()));
        assert!(cidr("192.0.2.7").contains("192.0.2.7".parse().unwrap()));
        assert!(!cidr("192.0.2.7").contains("192.0.2.8".parse().unwrap()));
        assert!(cidr("0.0.0.0/0").contains("1.2.3.4".parse().unwrap()));
        assert!(!cidr("0.0.0.0/0").contains("::1".parse().unwrap()));
        assert!(cidr("2001:db8::/32").contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!cidr("2001:db8::/32").contains("2001:db9::1".parse().unwrap()));
        assert!(Cidr::try_from("10.0.0.0/33".to_string()).is_err());
        assert!(Cidr::try_from("nowhere".to_string()).is_err());
    }

    #[test]
    fn policies_and_the_syn_rate_decide() {
        let cfg = TlsConfig { syn_per_second: 3, max_sources: 1024, ..TlsConfig::default() };
        let gate = TlsGate::new(&cfg, Keyer::with_keys(1, 2));
        let (a, b): (IpAddr, IpAddr) = ("10.1.1.1".parse().unwrap(), "10.1.1.2".parse().unwrap());
        let allow = TlsPort { port: 5061, policy: TlsPolicy::Allow, sources: vec![] };
        let deny = TlsPort { port: 443, policy: TlsPolicy::Deny, sources: vec![] };
        let listed = TlsPort { port: 8443, policy: TlsPolicy::Sources, sources: vec![cidr("10.1.1.1")] };
        assert_eq!(judge(&cfg, &gate, &deny, a, false, SEC), Err(TlsDenial::Policy));
        assert_eq!(judge(&cfg, &gate, &listed, b, false, SEC), Err(TlsDenial::NotListed));
        assert_eq!(judge(&cfg, &gate, &listed, a, false, SEC), Ok(()));
        for _ in 0..3 {
            assert_eq!(judge(&cfg, &gate, &allow, a, true, SEC), Ok(()));
        }
        assert_eq!(judge(&cfg, &gate, &allow, a, true, SEC + 1), Err(TlsDenial::Rate));
        assert_eq!(judge(&cfg, &gate, &allow, a, false, SEC + 2), Ok(()), "established connections are not counted");
        assert_eq!(judge(&cfg, &gate, &allow, b, true, SEC + 3), Ok(()), "another client has its own budget");
        assert_eq!(judge(&cfg, &gate, &allow, a, true, 2 * SEC), Ok(()), "a new second, a new budget");
    }

    #[test]
    fn the_config_is_checked() {
        let p = |port, policy, sources: Vec<Cidr>| TlsPort { port, policy, sources };
        let ok = TlsConfig { ports: vec![p(5061, TlsPolicy::Allow, vec![]), p(443, TlsPolicy::Sources, vec![cidr("10.0.0.0/8")])], ..TlsConfig::default() };
        assert!(ok.validate(&[5060]).is_ok());
        assert!(ok.validate(&[5061]).unwrap_err().contains("5061"));
        let bad = TlsConfig { ports: vec![p(443, TlsPolicy::Sources, vec![])], ..TlsConfig::default() };
        assert!(bad.validate(&[]).unwrap_err().contains("sources"));
        let bad = TlsConfig { ports: vec![p(443, TlsPolicy::Allow, vec![cidr("10.0.0.1")])], ..TlsConfig::default() };
        assert!(bad.validate(&[]).is_err());
    }

    #[test]
    fn the_engine_forwards_counts_and_refuses_tls_frames() {
        use crate::engine::{Engine, Outcome};
        use crate::fixtures::{tcp_flags::*, tcp_frame};
        use crate::verdict::{Cause, Verdict};
        let tls = TlsConfig {
            ports: vec![
                TlsPort { port: 5061, policy: TlsPolicy::Allow, sources: vec![] },
                TlsPort { port: 443, policy: TlsPolicy::Deny, sources: vec![] },
                TlsPort { port: 8443, policy: TlsPolicy::Sources, sources: vec![cidr("10.9.0.0/16")] },
            ],
            syn_per_second: 2,
            max_sources: 64,
        };
        let cfg = crate::config::EngineConfig { tls, ..Default::default() };
        let mut e = Engine::new(cfg, Keyer::with_keys(5, 6));
        let mut verdict = |src: &str, dst: &str, flags: u8| {
            let f = tcp_frame(src.parse().unwrap(), dst.parse().unwrap(), 1, 1, flags, b"\x16\x03\x01");
            match e.handle(SEC, &f, 1) {
                Outcome::Judged(j) => j.verdict,
                Outcome::Held | Outcome::Consult(_) => panic!("TLS frames are never held"),
            }
        };
        let fwd = Verdict::forward(Cause::TlsUninspected);
        assert_eq!(verdict("10.1.0.1:40000", "10.2.0.1:5061", SYN), fwd);
        assert_eq!(verdict("10.2.0.1:5061", "10.1.0.1:40000", SYN | ACK), fwd);
        assert_eq!(verdict("10.1.0.1:40001", "10.2.0.1:5061", SYN), fwd);
        assert_eq!(verdict("10.1.0.1:40002", "10.2.0.1:5061", SYN), Verdict::drop(Cause::Tls(TlsDenial::Rate)));
        assert_eq!(verdict("10.1.0.1:40000", "10.2.0.1:5061", ACK), fwd, "open connections go on");
        assert_eq!(verdict("10.1.0.1:40003", "10.2.0.1:443", SYN), Verdict::drop(Cause::Tls(TlsDenial::Policy)));
        assert_eq!(verdict("10.1.0.1:40004", "10.2.0.1:8443", ACK), Verdict::drop(Cause::Tls(TlsDenial::NotListed)));
        assert_eq!(verdict("10.2.0.1:8443", "10.9.3.3:40004", ACK), fwd, "answers to a listed client");
        let t = &e.stats().tls;
        assert_eq!((t.uninspected_frames, t.uninspected_connections, t.denied.clone()), (5, 2, vec![1, 1, 1]));
        assert_eq!(e.stats().not_sip, 0, "TLS frames are not counted as not SIP");
    }
}
