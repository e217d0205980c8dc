//! Generated rule sets of any size, for benchmarks and performance tools.
//!
//! [`generate`] writes the TOML text of a rule set with exactly `n` rules that looks like
//! what operators write on top of the shipped protections: signatures of scanners and attack
//! tools, blocked users and destination prefixes, odd header lengths, bad addresses and a few
//! counters. Every test is drawn from a vocabulary that ordinary traffic never contains
//! (attack tool names, premium-rate prefixes, TEST-NET addresses, thresholds far above what
//! a user agent sends), so on well-behaved traffic such as [`crate::fixtures::message_mix`]
//! no rule fires: what a benchmark measures is the cost of looking. [`rule_set`] compiles it.
//!
//! The mix, by share of the `n` rules:
//!
//! | share | kind | examples |
//! |---|---|---|
//! | 55% | literal tests | `sip.ua == "..."`, `sip.ua startswith "..."`, `lower(sip.ua) contains "..."`, `sip.from.user == "..."`, `sip.to.user == "..."`, `sip.ruri.user startswith "+881"`, `sip.call_id contains "..."` |
//! | 20% | regexes | `sip.ua matches "(?i)^sipcli[0-9]+/"`, `sip.from.user matches "^9{3}[0-9]{4}$"` |
//! | 15% | numbers, lengths, addresses | `len(sip.headers.x-custom-3) > 400`, `sip.max_forwards < 2`, `ip.src == "198.51.100.7"`, `count(sip.via) > 12` |
//! | 10% | stateful | counters (`source`, `dialog`, `transaction`) incremented by `count = [...]` rules and read by threshold rules |
//!
//! About 40% of the rules are also restricted to a method (`sip.method == "INVITE" && ...`),
//! actions are a mix of drop, reject, ban, log and none, ids are `gen-0` .. `gen-(n-1)`.
//! At most [`SOURCE_COUNTERS`] source counters are declared, so a generated set fits the
//! default host table next to the shipped rules (which use 6 of its 16 counter slots).
//!
//! The output depends only on `n` and `seed` (a xorshift generator, no outside randomness).

use crate::rules::compile::{compile, CompileErrors, CompileOptions, Source};
use crate::rules::RuleSet;
use std::fmt::Write as _;
use std::path::Path;

/// Source-scoped counters a generated set declares at most.
pub const SOURCE_COUNTERS: usize = 8;
/// Dialog-scoped and transaction-scoped counters a generated set declares at most (each).
pub const STATE_COUNTERS: usize = 8;

/// Shares of the mix, in percent: literal, regex, numeric, stateful.
const SHARES: [usize; 4] = [55, 20, 15, 10];

/// A xorshift64* generator: deterministic, tiny, good enough to pick words.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // SplitMix64 of the seed, so seeds 0, 1, 2... start far apart and never at 0.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len() as u64) as usize]
    }

    /// True with probability `pct`%.
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// User-Agent vendors and tools, as they spell themselves (none is a substring of an
/// ordinary phone's User-Agent; all start with a capital so `startswith` stays specific).
const UA_VENDORS: &[&str] = &[
    "Asterisk PBX", "FPBX", "Cisco-SIPGateway", "Zoiper", "X-Lite", "Linksys", "Grandstream",
    "Yealink", "Polycom", "Aastra", "Sipura", "Bria", "MicroSIP", "PortSIP", "Ozeki", "VaxSIP",
    "Sundayddr", "PPLSIP", "Avaya", "Mitel", "Fanvil", "Htek", "Snom", "Gigaset", "Panasonic",
    "Elastix", "Vicidial", "Kamailio", "OpenSIPS", "FreeSWITCH", "Twinkle", "Ekiga", "Jitsi",
];

/// Lower-case tokens of scanners and attack tools, for `lower(sip.ua) contains`.
const UA_TOKENS: &[&str] = &[
    "sipvicious", "friendly-scanner", "sipcli", "sipsak", "smap", "iwar", "pplsip", "sundayddr",
    "vaxsipuseragent", "sip-scan", "nessus", "voipbuster", "sipscan", "svcrack", "svwar",
    "warvox", "inviteflood", "sipp-attack", "spitter", "enumiax", "voiphopper", "ohrwurm",
];

/// Lower-case tool stems for User-Agent regexes.
const UA_STEMS: &[&str] = &[
    "tool", "scan", "sipcli", "sipsak", "pplsip", "smap", "iwar", "vax", "flood", "crack",
    "brute", "enum", "probe", "spit", "fuzz", "hopper", "war", "dial",
];

/// User parts operators block (guessed accounts) or watch.
const USER_STEMS: &[&str] = &[
    "admin", "root", "test", "guest", "operator", "sales", "support", "info", "user", "demo",
    "voip", "pbx", "office", "reception", "fax", "service", "billing", "asterisk",
];

/// Premium-rate and fraud-prone country codes (with the `+`).
const PREMIUM_CC: &[&str] = &[
    "+881", "+882", "+883", "+870", "+252", "+216", "+960", "+371", "+370", "+375", "+234",
    "+225", "+53", "+248", "+1900", "+44870", "+44871", "+3395", "+3289",
];

/// Call-ID tokens of tools and floods.
const CALLID_TOKENS: &[&str] = &[
    "sipvicious", "scanner", "flood", "attack", "svmap", "inviteflood", "spit", "probe",
    "bruteforce", "enumerate", "xyzzy", "zombie",
];

/// Headers whose length operators cap.
const LONG_HEADERS: &[&str] = &[
    "subject", "date", "organization", "p-asserted-identity", "diversion", "history-info",
    "accept-language", "referred-by", "replaces", "alert-info", "call-info", "warning",
    "x-custom-0", "x-custom-1", "x-custom-2", "x-custom-3", "x-custom-4", "x-custom-5",
    "x-custom-6", "x-custom-7", "x-custom-8", "x-custom-9", "x-custom-10", "x-custom-11",
];

const METHODS: &[&str] = &["INVITE", "INVITE", "INVITE", "REGISTER", "REGISTER", "OPTIONS", "SUBSCRIBE", "MESSAGE"];

fn version(r: &mut Rng) -> String {
    format!("{}.{}.{}", r.range(1, 20), r.range(0, 40), r.range(0, 999))
}

/// Between `lo` and `hi` decimal digits.
fn digits(r: &mut Rng, lo: u64, hi: u64) -> String {
    let n = r.range(lo, hi);
    (0..n).map(|_| char::from(b'0' + r.below(10) as u8)).collect()
}

/// A literal test (55% of the mix).
fn literal(r: &mut Rng) -> String {
    match r.below(7) {
        0 => format!("sip.ua == \"{}/{}\"", r.pick(UA_VENDORS), version(r)),
        1 => format!("sip.ua startswith \"{} {}\"", r.pick(UA_VENDORS), r.range(1, 30)),
        2 => format!("lower(sip.ua) contains \"{}/{}\"", r.pick(UA_TOKENS), version(r)),
        3 => {
            if r.chance(50) {
                format!("sip.from.user == \"{}\"", digits(r, 3, 6))
            } else {
                format!("sip.from.user == \"{}{}\"", r.pick(USER_STEMS), r.range(0, 9999))
            }
        }
        4 => {
            if r.chance(50) {
                format!("sip.to.user == \"9{}\"", digits(r, 3, 10))
            } else {
                format!("sip.to.user == \"{}{}\"", r.pick(USER_STEMS), r.range(0, 9999))
            }
        }
        5 => format!("sip.ruri.user startswith \"{}{}\"", r.pick(PREMIUM_CC), digits(r, 0, 4)),
        _ => format!("sip.call_id contains \"{}-{}\"", r.pick(CALLID_TOKENS), r.range(0, 99_999)),
    }
}

/// A regex test (20% of the mix): short anchored signatures, like real ones.
fn regex(r: &mut Rng) -> String {
    match r.below(7) {
        0 => format!("sip.ua matches \"(?i)^{}{}[0-9]+/\"", r.pick(UA_STEMS), r.range(0, 999)),
        1 => format!("sip.ua matches \"(?i){}[ /-]?v?{}[.][0-9]+\"", r.pick(UA_TOKENS), r.range(0, 99)),
        2 => format!("sip.from.user matches \"^{}{{3}}[0-9]{{{}}}$\"", r.range(1, 9), r.range(2, 7)),
        3 => format!("sip.to.user matches \"^(00|[+]){}[0-9]{{6,}}$\"", &r.pick(PREMIUM_CC)[1..]),
        4 => format!("sip.ruri.user matches \"^(00|[+])?{}[0-9]{{{},12}}$\"", &r.pick(PREMIUM_CC)[1..], r.range(3, 8)),
        5 => format!("sip.call_id matches \"^{}-[0-9]{{{},}}@\"", r.pick(CALLID_TOKENS), r.range(3, 12)),
        _ => format!("sip.contact.user matches \"(?i)^{}[0-9]{{{}}}$\"", r.pick(USER_STEMS), r.range(1, 6)),
    }
}

/// A numeric, length or address test (15% of the mix).
fn numeric(r: &mut Rng) -> String {
    match r.below(8) {
        0 | 1 => format!("len(sip.headers.{}) > {}", r.pick(LONG_HEADERS), r.range(200, 2000)),
        2 => {
            if r.chance(50) {
                format!("sip.max_forwards < {}", r.range(1, 5))
            } else {
                format!("sip.max_forwards <= {}", r.range(0, 3))
            }
        }
        3 => format!("ip.src == \"198.51.100.{}\"", r.range(1, 254)),
        4 => match r.below(3) {
            0 => format!("ip.src == \"203.0.113.{}/{}\"", r.range(0, 15) * 16, r.range(28, 32)),
            1 => format!("ip.src == \"2001:db8:{:x}::/48\"", r.range(1, 0xffff)),
            _ => format!("ip.dst == \"192.0.2.{}\"", r.range(1, 254)),
        },
        5 => format!("count(sip.via) > {}", r.range(8, 20)),
        6 => match r.below(3) {
            0 => format!("len(sip.ua) > {}", r.range(200, 500)),
            1 => format!("len(sip.call_id) > {}", r.range(120, 250)),
            _ => format!("sip.content_length > {}", r.range(20_000, 60_000)),
        },
        _ => match r.below(2) {
            0 => format!("count(sip.contact) > {}", r.range(10, 30)),
            _ => format!("sip.expires > {}", r.range(100_000, 1_000_000)),
        },
    }
}

/// A condition, restricted to a method about 40% of the time.
fn with_method(r: &mut Rng, test: String) -> String {
    if r.chance(40) {
        format!("sip.method == \"{}\" && {test}", r.pick(METHODS))
    } else {
        test
    }
}

/// Writes the action keys of a rule that acts.
fn action(r: &mut Rng, out: &mut String) {
    let a = r.below(100);
    let _ = match a {
        0..35 => writeln!(out, "action = \"drop\""),
        35..50 => writeln!(out, "action = \"reject\"\nstatus = {}", r.pick(&["403", "403", "488", "503", "603"])),
        50..65 => writeln!(out, "action = \"ban\"\nban = \"{}\"", r.pick(&["10m", "1h", "1h", "24h"])),
        65..90 => writeln!(out, "action = \"log\""),
        _ => writeln!(out, "action = \"none\""),
    };
}

#[derive(Clone, Copy)]
enum Kind {
    Literal,
    Regex,
    Numeric,
    Stateful,
}

/// Exact counts of each kind for `n` rules (the remainder of rounding goes to literals).
fn quotas(n: usize) -> [usize; 4] {
    let mut q = SHARES.map(|s| n * s / 100);
    q[0] += n - q.iter().sum::<usize>();
    q
}

/// A counter object of the generated set.
struct Counter {
    id: String,
    scope: &'static str,
}

fn counters(n_stateful: usize) -> Vec<Counter> {
    // A handful: about one counter of each scope per 40 stateful rules, at least one each.
    let per = n_stateful.div_ceil(40).max(1);
    let mut v = Vec::new();
    for i in 0..per.min(SOURCE_COUNTERS) {
        v.push(Counter { id: format!("gen-src-counter-{i}"), scope: "source" });
    }
    for i in 0..per.min(STATE_COUNTERS) {
        v.push(Counter { id: format!("gen-dialog-counter-{i}"), scope: "dialog" });
        v.push(Counter { id: format!("gen-tx-counter-{i}"), scope: "transaction" });
    }
    v
}

/// The TOML text of a generated rule set with exactly `n` `[[rule]]` tables (plus the
/// `[[object]]` tables its counters need), the same for the same `(n, seed)`.
///
/// See the [module documentation](self) for the mix. No rule matches ordinary traffic such
/// as [`crate::fixtures::message_mix`]. Compile it like any rule file:
///
/// ```
/// use secsip::rules::{compile, compile::Source, CompileOptions};
/// let text = secsip::rules::gen::generate(100, 1);
/// let src = [Source { path: "gen.toml".into(), text }];
/// let rs = compile(&src, std::path::Path::new("."), &CompileOptions::standard()).unwrap();
/// assert_eq!(rs.rules.len(), 100);
/// ```
pub fn generate(n: usize, seed: u64) -> String {
    let mut r = Rng::new(seed);
    let mut out = String::with_capacity(n * 120 + 256);
    let _ = writeln!(out, "# Generated by secsip::rules::gen::generate({n}, {seed}).\n");
    let mut left = quotas(n);
    let ctrs = counters(left[3]);
    if left[3] > 0 {
        for (i, c) in ctrs.iter().enumerate() {
            let (dec, period) = match c.scope {
                "source" => (r.range(10, 200), ["1s", "10s", "60s"][i % 3]),
                _ => (r.range(1, 10), ["10s", "60s"][i % 2]),
            };
            let _ = writeln!(out, "[[object]]\nid = \"{}\"\nscope = \"{}\"\nkind = \"counter\"\ndecrement = {dec}\nperiod = \"{period}\"\n", c.id, c.scope);
        }
    }
    let kinds = [Kind::Literal, Kind::Regex, Kind::Numeric, Kind::Stateful];
    for i in 0..n {
        // Draw a kind with probability proportional to what is left of its quota, so the
        // kinds interleave and the counts are exact.
        let total: usize = left.iter().sum();
        let mut x = r.below(total as u64) as usize;
        let mut k = 0;
        while x >= left[k] {
            x -= left[k];
            k += 1;
        }
        left[k] -= 1;
        let _ = writeln!(out, "[[rule]]\nid = \"gen-{i}\"");
        match kinds[k] {
            Kind::Literal => {
                let test = literal(&mut r);
                let when = with_method(&mut r, test);
                let _ = writeln!(out, "when = '{when}'");
                action(&mut r, &mut out);
            }
            Kind::Regex => {
                let test = regex(&mut r);
                let when = with_method(&mut r, test);
                let _ = writeln!(out, "when = '{when}'");
                action(&mut r, &mut out);
            }
            Kind::Numeric => {
                let test = numeric(&mut r);
                let when = with_method(&mut r, test);
                let _ = writeln!(out, "when = '{when}'");
                action(&mut r, &mut out);
            }
            Kind::Stateful => {
                let c = &ctrs[r.below(ctrs.len() as u64) as usize];
                if r.chance(50) {
                    // A counting rule: what to count is a signature, as for the literals.
                    let guard = if r.chance(75) { literal(&mut r) } else { regex(&mut r) };
                    let when = format!("sip.method == \"{}\" && {guard}", r.pick(METHODS));
                    let _ = writeln!(out, "when = '{when}'\ncount = [\"{}\"]", c.id);
                } else {
                    // A threshold far above anything ordinary traffic reaches.
                    let t = match c.scope {
                        "source" => r.range(500, 5000),
                        _ => r.range(20, 200),
                    };
                    let test = format!("{} > {t}", c.id);
                    let when = if r.chance(40) { format!("{} && {test}", literal(&mut r)) } else { with_method(&mut r, test) };
                    let _ = writeln!(out, "when = '{when}'");
                    action(&mut r, &mut out);
                }
            }
        }
        out.push('\n');
    }
    out
}

/// How many rules of each kind [`generate`] writes for `n`: (literal, regex, numeric, stateful).
pub fn mix(n: usize) -> (usize, usize, usize, usize) {
    let q = quotas(n);
    (q[0], q[1], q[2], q[3])
}

/// [`generate`]`(n, seed)` compiled (standard options, as if read from `gen-<n>.toml`): the
/// rule set benchmarks load.
pub fn rule_set(n: usize, seed: u64) -> Result<RuleSet, CompileErrors> {
    let src = [Source { path: format!("gen-{n}.toml").into(), text: generate(n, seed) }];
    compile(&src, Path::new("."), &CompileOptions::standard())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EngineConfig;
    use crate::engine::{Engine, Outcome};
    use crate::fixtures;
    use crate::hash::Keyer;
    use crate::hosttable::{HostLimits, HostTable};
    use crate::verdict::{Action, Cause};
    use std::sync::Arc;

    fn build(text: &str) -> RuleSet {
        let src = [Source { path: "gen.toml".into(), text: text.to_string() }];
        compile(&src, Path::new("."), &CompileOptions::standard()).unwrap_or_else(|e| panic!("{e}"))
    }

    const SIZES: [usize; 6] = [0, 1, 10, 100, 1000, 10000];

    #[test]
    fn compiles_to_exactly_n_rules_with_the_mix() {
        for n in SIZES {
            let text = generate(n, 7);
            let rs = build(&text);
            assert_eq!(rs.rules.len(), n, "n = {n}");
            assert!(rs.host_counters <= SOURCE_COUNTERS, "n = {n}: {} source counters", rs.host_counters);
            let (l, x, u, s) = mix(n);
            assert_eq!(l + x + u + s, n);
            assert_eq!(text.matches("[[rule]]").count(), n);
            if n >= 1000 {
                let matches = text.matches(" matches \"").count();
                // Stateful rules guard some counts with a regex too.
                assert!(matches >= x && matches <= x + s, "n = {n}: {matches} regexes");
                assert!(rs.regex_matchers.len() >= 5 && rs.literal_matchers.len() >= 6);
                let objects = rs.objects.len();
                assert!((3..=SOURCE_COUNTERS + 2 * STATE_COUNTERS).contains(&objects), "{objects} objects");
            }
        }
        assert_eq!(mix(10000), (5500, 2000, 1500, 1000));
    }

    #[test]
    fn deterministic_per_seed_and_distinct_across_seeds() {
        for n in SIZES {
            assert_eq!(generate(n, 42), generate(n, 42), "n = {n}");
        }
        assert_ne!(generate(100, 1), generate(100, 2));
        let ids: std::collections::HashSet<String> = build(&generate(1000, 3)).rules.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.contains("gen-0") && ids.contains("gen-999"));
    }

    #[test]
    fn never_blocks_or_fires_on_the_message_mix() {
        let frames = fixtures::mix_variant(0);
        for n in SIZES {
            for seed in [1, 2, 3] {
                let rs = Arc::new(rule_set(n, seed).unwrap_or_else(|e| panic!("{e}")));
                assert_eq!(rs.rules.len(), n);
                let hosts = Arc::new(HostTable::new(HostLimits::default()));
                let mut engine = Engine::with_rules(EngineConfig::default(), Keyer::with_keys(1, 2), rs.clone(), hosts);
                let mut now = 1_000_000_000u64;
                for (i, f) in frames.iter().enumerate() {
                    now += 1_000_000;
                    match engine.handle(now, f, i as u64) {
                        Outcome::Judged(j) => {
                            assert_eq!(j.verdict.action, Action::Forward, "n = {n}, seed {seed}, message {i}: {:?}", j.verdict.cause);
                            assert_eq!(j.verdict.cause, Cause::Valid, "n = {n}, seed {seed}, message {i}");
                            let fired: Vec<&str> = j.fired.iter().map(|f| rs.rules[f.rule as usize].id.as_str()).collect();
                            assert!(fired.is_empty(), "n = {n}, seed {seed}, message {i}: fired {fired:?}");
                        }
                        _ => panic!("held"),
                    }
                }
            }
        }
    }

    #[test]
    fn fits_next_to_the_shipped_rules() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let mut sources = crate::rules::compile::read_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
        let shipped = compile(&sources, &dir, &CompileOptions::standard()).unwrap_or_else(|e| panic!("{e}")).rules.len();
        sources.push(Source { path: dir.join("99-generated.toml"), text: generate(1000, 5) });
        let rs = compile(&sources, &dir, &CompileOptions::standard()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rs.rules.len(), shipped + 1000);
    }
}
