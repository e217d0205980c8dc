//! Allow and block lists (Kamailio secfilter's model): addresses, user agents, users, domains,
//! destination numbers, countries.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Anchored, Input, StartKind};
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

/// How a list matches values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// Addresses and CIDRs, v4 and v6.
    Ip,
    /// User-Agent prefixes, case-insensitive.
    UaPrefix,
    /// Exact user parts.
    User,
    /// Host names, case-insensitive; `*.example.com` also matches subdomains.
    Domain,
    /// Exact numbers.
    Number,
    /// Number prefixes.
    NumberPrefix,
    /// ISO 3166 country codes of an address (MaxMind DB).
    Country,
}

impl ListKind {
    /// Parses a kind name.
    pub fn parse(s: &str) -> Option<ListKind> {
        Some(match s {
            "ip" => ListKind::Ip,
            "ua_prefix" => ListKind::UaPrefix,
            "user" => ListKind::User,
            "domain" => ListKind::Domain,
            "number" => ListKind::Number,
            "number_prefix" => ListKind::NumberPrefix,
            "country" => ListKind::Country,
            _ => return None,
        })
    }
    /// All kind names, for error messages.
    pub const NAMES: &'static str = "ip, ua_prefix, user, domain, number, number_prefix, country";
    /// True when the list matches addresses (left side must be an IP field).
    pub fn matches_addresses(&self) -> bool {
        matches!(self, ListKind::Ip | ListKind::Country)
    }
}

/// Sorted, merged address ranges: exact membership for any mix of addresses and CIDRs.
#[derive(Clone, Debug, Default)]
pub struct IpRanges {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

fn merge<T: Ord + Copy>(mut v: Vec<(T, T)>, next: impl Fn(T) -> Option<T>) -> Vec<(T, T)> {
    v.sort();
    let mut out: Vec<(T, T)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        if let Some(last) = out.last_mut() {
            if next(last.1).is_none_or(|n| s <= n) {
                last.1 = last.1.max(e);
                continue;
            }
        }
        out.push((s, e));
    }
    out
}

fn find<T: Ord + Copy>(v: &[(T, T)], x: T) -> bool {
    let i = v.partition_point(|r| r.0 <= x);
    i > 0 && x <= v[i - 1].1
}

impl IpRanges {
    /// Builds from (network, prefix length) pairs; host bits are ignored.
    pub fn new(nets: &[(IpAddr, u8)]) -> IpRanges {
        let mut v4 = vec![];
        let mut v6 = vec![];
        for &(ip, len) in nets {
            match ip {
                IpAddr::V4(a) => {
                    let len = len.min(32) as u32;
                    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                    let s = u32::from(a) & mask;
                    v4.push((s, s | !mask));
                }
                IpAddr::V6(a) => {
                    let len = len.min(128) as u32;
                    let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
                    let s = u128::from(a) & mask;
                    v6.push((s, s | !mask));
                }
            }
        }
        IpRanges { v4: merge(v4, |x: u32| x.checked_add(1)), v6: merge(v6, |x: u128| x.checked_add(1)) }
    }

    /// True when `ip` is in a range. IPv4-mapped IPv6 addresses are looked up as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => find(&self.v4, u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(m) => find(&self.v4, u32::from(m)),
                None => find(&self.v6, u128::from(a)),
            },
        }
    }
}

/// Parses `addr` or `addr/len`.
pub fn parse_net(s: &str) -> Option<(IpAddr, u8)> {
    let s = s.trim();
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (s, None),
    };
    let ip: IpAddr = a.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    (len <= max).then_some((ip, len))
}

/// A compiled list.
#[derive(Clone, Debug)]
pub struct List {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: ListKind,
    /// Entries as written (for listing and editing).
    pub entries: Vec<String>,
    matcher: Matcher,
    /// Number lists: dialling prefixes that mean "international", longest first.
    international: Vec<Vec<u8>>,
}

/// The international dialling prefixes number lists read by default: `00` (ITU-T E.164
/// recommendation, most of the world) and `011` (North America).
pub const DEFAULT_INTERNATIONAL_PREFIXES: &[&str] = &["00", "011"];

/// Longest canonical number handled; longer values are canonicalised up to this length.
const MAX_NUMBER: usize = 128;

/// The canonical form number lists compare: up to the first `;`, without visual separators
/// (`-` `.` `(` `)` and space, RFC 3966), and with a leading international prefix (one of
/// `international`, or `+`) written `+`. So `+882 16`, `0088216`, `011-882-16` and
/// `+882(16)` are all `+88216`.
fn canonical_number<'o>(v: &[u8], international: &[Vec<u8>], out: &'o mut [u8; MAX_NUMBER]) -> &'o [u8] {
    let end = v.iter().position(|&b| b == b';').unwrap_or(v.len());
    let mut n = 0;
    for &b in &v[..end] {
        if matches!(b, b'-' | b'.' | b'(' | b')' | b' ') {
            continue;
        }
        if n == MAX_NUMBER {
            break;
        }
        out[n] = b;
        n += 1;
    }
    if out[0] != b'+' || n == 0 {
        if let Some(p) = international.iter().find(|p| out[..n].starts_with(p)) {
            let p = p.len();
            out[0] = b'+';
            out.copy_within(p..n, 1);
            n = n - p + 1;
        }
    }
    &out[..n]
}

#[derive(Clone, Debug)]
enum Matcher {
    Ip(IpRanges),
    Prefix(Option<AhoCorasick>),
    Exact(HashSet<Vec<u8>>),
    Domain { exact: HashSet<Vec<u8>>, suffixes: Vec<Vec<u8>> },
    Country { codes: HashSet<[u8; 2]>, db: Option<Arc<maxminddb::Reader<Vec<u8>>>> },
}

/// Why a list entry is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    /// Index of the entry.
    pub index: usize,
    /// What is wrong.
    pub message: String,
}

impl List {
    /// Compiles entries of `kind`. Country lists need the MaxMind DB to match anything.
    pub fn new(
        id: &str,
        kind: ListKind,
        entries: Vec<String>,
        geoip: Option<Arc<maxminddb::Reader<Vec<u8>>>>,
    ) -> Result<List, EntryError> {
        let intl: Vec<String> = DEFAULT_INTERNATIONAL_PREFIXES.iter().map(|s| s.to_string()).collect();
        List::with_prefixes(id, kind, entries, geoip, &intl)
    }

    /// As [`List::new`], with the international dialling prefixes of a number list.
    pub fn with_prefixes(
        id: &str,
        kind: ListKind,
        entries: Vec<String>,
        geoip: Option<Arc<maxminddb::Reader<Vec<u8>>>>,
        international: &[String],
    ) -> Result<List, EntryError> {
        let mut international: Vec<Vec<u8>> = international.iter().map(|p| p.as_bytes().to_vec()).collect();
        if let Some(p) = international.iter().position(|p| p.is_empty() || !p.iter().all(u8::is_ascii_digit)) {
            return Err(EntryError { index: p, message: "an international prefix is one or more digits".into() });
        }
        international.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let mut buf = [0u8; MAX_NUMBER];
        let canon: Vec<Vec<u8>> = match kind {
            ListKind::Number | ListKind::NumberPrefix => {
                entries.iter().map(|e| canonical_number(e.trim().as_bytes(), &international, &mut buf).to_vec()).collect()
            }
            _ => entries.iter().map(|e| e.as_bytes().to_vec()).collect(),
        };
        let bad = |index: usize, message: String| Err(EntryError { index, message });
        let matcher = match kind {
            ListKind::Ip => {
                let mut nets = vec![];
                for (i, e) in entries.iter().enumerate() {
                    match parse_net(e) {
                        Some(n) => nets.push(n),
                        None => return bad(i, format!("'{e}' is not an address or CIDR")),
                    }
                }
                Matcher::Ip(IpRanges::new(&nets))
            }
            ListKind::UaPrefix | ListKind::NumberPrefix => {
                if let Some(i) = canon.iter().position(|e| e.is_empty()) {
                    return bad(i, "an empty prefix would match everything".into());
                }
                let ac = (!entries.is_empty())
                    .then(|| {
                        AhoCorasickBuilder::new()
                            .ascii_case_insensitive(kind == ListKind::UaPrefix)
                            .start_kind(StartKind::Anchored)
                            .build(&canon)
                    })
                    .transpose()
                    .map_err(|e| EntryError { index: 0, message: e.to_string() })?;
                Matcher::Prefix(ac)
            }
            ListKind::User | ListKind::Number => Matcher::Exact(canon.into_iter().collect()),
            ListKind::Domain => {
                let mut exact = HashSet::new();
                let mut suffixes = vec![];
                for e in &entries {
                    let e = e.to_ascii_lowercase();
                    match e.strip_prefix("*.") {
                        Some(s) => suffixes.push(format!(".{s}").into_bytes()),
                        None => {
                            exact.insert(e.into_bytes());
                        }
                    }
                }
                Matcher::Domain { exact, suffixes }
            }
            ListKind::Country => {
                let mut codes = HashSet::new();
                for (i, e) in entries.iter().enumerate() {
                    let b = e.trim().to_ascii_uppercase().into_bytes();
                    match <[u8; 2]>::try_from(b.as_slice()) {
                        Ok(c) if c.iter().all(u8::is_ascii_alphabetic) => {
                            codes.insert(c);
                        }
                        _ => return bad(i, format!("'{e}' is not a two-letter country code")),
                    }
                }
                Matcher::Country { codes, db: geoip }
            }
        };
        Ok(List { id: id.to_string(), kind, entries, matcher, international })
    }

    /// True when `value` (bytes) is in the list.
    pub fn contains_bytes(&self, value: &[u8]) -> bool {
        let mut buf = [0u8; MAX_NUMBER];
        let value = match self.kind {
            ListKind::Number | ListKind::NumberPrefix => canonical_number(value, &self.international, &mut buf),
            _ => value,
        };
        match &self.matcher {
            Matcher::Prefix(Some(ac)) => ac.find(Input::new(value).anchored(Anchored::Yes)).is_some(),
            Matcher::Prefix(None) => false,
            Matcher::Exact(set) => set.contains(value),
            Matcher::Domain { exact, suffixes } => {
                let mut buf = [0u8; 256];
                let Some(lower) = buf.get_mut(..value.len()) else { return false };
                for (d, s) in lower.iter_mut().zip(value) {
                    *d = s.to_ascii_lowercase();
                }
                let lower = &*lower;
                exact.contains(lower) || suffixes.iter().any(|s| lower.ends_with(s))
            }
            // Address-like strings (a Contact or Via host): `[v6]` or a dotted quad.
            Matcher::Ip(r) => {
                let v = value.strip_prefix(b"[").and_then(|v| v.strip_suffix(b"]")).unwrap_or(value);
                std::str::from_utf8(v).ok().and_then(|s| s.parse::<IpAddr>().ok()).is_some_and(|ip| r.contains(ip))
            }
            Matcher::Country { .. } => false,
        }
    }

    /// True when `ip` is in the list (ip and country lists).
    pub fn contains_ip(&self, ip: IpAddr) -> bool {
        match &self.matcher {
            Matcher::Ip(r) => r.contains(ip),
            Matcher::Country { codes, db: Some(db) } => country_of(db, ip).is_some_and(|c| codes.contains(&c)),
            _ => false,
        }
    }
}

/// Country code of an address in a MaxMind DB (GeoLite2/GeoIP2 `country.iso_code`, or the
/// `country_code` field of the ip-location-db files).
pub fn country_of(db: &maxminddb::Reader<Vec<u8>>, ip: IpAddr) -> Option<[u8; 2]> {
    #[derive(serde::Deserialize)]
    struct Country<'a> {
        #[serde(borrow)]
        iso_code: Option<&'a str>,
    }
    #[derive(serde::Deserialize)]
    struct Rec<'a> {
        #[serde(borrow)]
        country: Option<Country<'a>>,
        #[serde(borrow)]
        country_code: Option<&'a str>,
    }
    // IPv4-mapped IPv6 sources are IPv4 hosts, as for address lists; not every DB maps them.
    let ip = match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let rec: Rec = db.lookup(ip).ok()?.decode().ok()??;
    let code = rec.country.and_then(|c| c.iso_code).or(rec.country_code)?;
    <[u8; 2]>::try_from(code.as_bytes()).ok().map(|c| c.map(|b| b.to_ascii_uppercase()))
}

/// Reads list entries from a file: one per line, `#` starts a comment, blank lines skipped.
pub fn read_entries(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(kind: ListKind, e: &[&str]) -> List {
        List::new("t", kind, e.iter().map(|s| s.to_string()).collect(), None).unwrap()
    }

    #[test]
    fn ip_ranges_v4_v6_cidr_and_mapped() {
        let l = list(ListKind::Ip, &["192.0.2.0/24", "198.51.100.7", "2001:db8::/32", "10.0.0.0/8", "10.1.0.0/16"]);
        for yes in ["192.0.2.0", "192.0.2.255", "198.51.100.7", "2001:db8:ffff::1", "10.200.1.1", "::ffff:192.0.2.9"] {
            assert!(l.contains_ip(yes.parse().unwrap()), "{yes}");
        }
        for no in ["192.0.3.0", "198.51.100.8", "2001:db9::1", "11.0.0.0", "::1"] {
            assert!(!l.contains_ip(no.parse().unwrap()), "{no}");
        }
        let all = list(ListKind::Ip, &["0.0.0.0/0"]);
        assert!(all.contains_ip("255.255.255.255".parse().unwrap()));
        assert!(List::new("t", ListKind::Ip, vec!["10.0.0.0/33".into()], None).is_err());
        assert!(List::new("t", ListKind::Ip, vec!["nope".into()], None).is_err());
    }

    #[test]
    fn prefixes_exact_and_domains() {
        let ua = list(ListKind::UaPrefix, &["friendly-scanner", "sipcli"]);
        assert!(ua.contains_bytes(b"Friendly-Scanner 1.0"));
        assert!(ua.contains_bytes(b"sipcli/v1.8"));
        assert!(!ua.contains_bytes(b"my friendly-scanner"));
        let num = list(ListKind::NumberPrefix, &["+88", "00881"]);
        assert!(num.contains_bytes(b"+8821234"));
        assert!(!num.contains_bytes(b"+4921234"));
        let irsf = list(ListKind::NumberPrefix, &["+88216"]);
        for yes in ["+88216555", "0088216555", "01188216555", "011 882 16 555", "+882-16-555", "(+882) 16.555", "+88216555;ext=1"] {
            assert!(irsf.contains_bytes(yes.as_bytes()), "{yes}");
        }
        for no in ["88216555", "+88215555", "0188216555", "+4988216", ""] {
            assert!(!irsf.contains_bytes(no.as_bytes()), "{no}");
        }
        let eu = List::with_prefixes("t", ListKind::NumberPrefix, vec!["+882".into()], None, &["00".into()]).unwrap();
        assert!(eu.contains_bytes(b"0088216") && !eu.contains_bytes(b"01188216"), "011 is a national prefix here");
        let exact = list(ListKind::Number, &["0088216555"]);
        assert!(exact.contains_bytes(b"+882-16-555") && !exact.contains_bytes(b"+8821655"));
        assert!(List::with_prefixes("t", ListKind::Number, vec![], None, &["x".into()]).is_err());
        let users = list(ListKind::User, &["admin"]);
        assert!(users.contains_bytes(b"admin") && !users.contains_bytes(b"Admin"));
        let d = list(ListKind::Domain, &["Example.com", "*.evil.test"]);
        assert!(d.contains_bytes(b"EXAMPLE.com"));
        assert!(d.contains_bytes(b"a.b.evil.test"));
        assert!(!d.contains_bytes(b"evil.test") && !d.contains_bytes(b"notexample.com"));
        assert!(List::new("t", ListKind::UaPrefix, vec!["".into()], None).is_err());
    }

    #[test]
    fn entries_file_format() {
        assert_eq!(read_entries("# c\n a \n\nb # tail\n"), vec!["a", "b"]);
    }
}
