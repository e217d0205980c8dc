//! Country lists against a real (tiny) MaxMind DB: `tests/geoip/test-country.mmdb` maps only
//! documentation and test ranges (192.0.2.0/24 FR, 198.51.100.0/24 US, 203.0.113.0/24 CN,
//! 10.77.0.0/24 NL, 2001:db8:1::/48 DE, 2001:db8:2::/48 JP). `tests/geoip/make-test-mmdb.py`
//! writes it (and `test-country-code.mmdb`, the same in the ip-location-db layout).

use secsip::config::EngineConfig;
use secsip::engine::{Engine, Outcome};
use secsip::fixtures::{self, CallParams};
use secsip::hash::Keyer;
use secsip::hosttable::{HostLimits, HostTable};
use secsip::rules::compile::Source;
use secsip::rules::lists::country_of;
use secsip::rules::{compile, CompileErrors, CompileOptions, RuleSet};
use secsip::verdict::{Action, Cause};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SEC: u64 = 1_000_000_000;

/// GeoIP2-Country layout: `{"country": {"iso_code": "FR"}}`.
fn geoip2_db() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/geoip/test-country.mmdb")
}

/// ip-location-db layout: `{"country_code": "FR"}`.
fn country_code_db() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/geoip/test-country-code.mmdb")
}

fn opts(db: Option<PathBuf>) -> CompileOptions {
    CompileOptions { geoip_db: db, ..CompileOptions::standard() }
}

fn compile_text(text: &str, opts: &CompileOptions) -> Result<RuleSet, CompileErrors> {
    compile(&[Source { path: "geo.toml".into(), text: text.to_string() }], Path::new("."), opts)
}

fn compile_ok(text: &str, db: &Path) -> Arc<RuleSet> {
    Arc::new(compile_text(text, &opts(Some(db.to_path_buf()))).unwrap_or_else(|e| panic!("{e}")))
}

fn compile_err(text: &str, opts: &CompileOptions) -> String {
    match compile_text(text, opts) {
        Ok(_) => panic!("compiled, expected an error"),
        Err(e) => e.to_string(),
    }
}

const BLOCK_CN_RU: &str = r#"
[[list]]
id = "blocked-countries"
kind = "country"
entries = ["CN", "RU"]

[[rule]]
id = "drop-blocked-countries"
when = 'ip.src in list.blocked-countries'
action = "drop"
"#;

const ALLOW_NL: &str = r#"
[[list]]
id = "home"
kind = "country"
entries = ["nl"]

[[rule]]
id = "allow-home"
when = 'ip.src in list.home'
action = "accept"

[[rule]]
id = "drop-rest"
when = 'sip.is_request || sip.is_response'
action = "drop"
"#;

/// What the engine did with one message: its action and the rule that decided, if any.
fn judge(engine: &mut Engine, now: &mut u64, id: &mut u64, src: &str) -> (Action, Option<String>) {
    let src: IpAddr = src.parse().unwrap();
    let dst: IpAddr = if src.is_ipv4() { "10.77.0.2".parse().unwrap() } else { "fd77::2".parse().unwrap() };
    *now += SEC / 100;
    *id += 1;
    let p = CallParams::default()
        .with_client(SocketAddr::new(src, 5060))
        .with_server(SocketAddr::new(dst, 5060))
        .with_call_id(format!("geo-{id}@{src}"));
    let msg = fixtures::options(&p, 1);
    let frame = fixtures::udp_frame(p.client_addr(), p.server_addr(), &msg);
    let rs = engine.rules().clone();
    match engine.handle(*now, &frame, *id) {
        Outcome::Judged(j) => (
            j.verdict.action,
            match j.verdict.cause {
                Cause::Rule(i) => Some(rs.rules[i as usize].id.clone()),
                _ => None,
            },
        ),
        _ => panic!("held"),
    }
}

/// Sends one OPTIONS from each source through a fresh engine with `rules`.
fn run(rules: Arc<RuleSet>, sources: &[&str]) -> Vec<(Action, Option<String>)> {
    let hosts = Arc::new(HostTable::new(HostLimits::default()));
    let mut engine = Engine::with_rules(EngineConfig::default(), Keyer::with_keys(5, 7), rules, hosts);
    let (mut now, mut id) = (100 * SEC, 0);
    sources.iter().map(|s| judge(&mut engine, &mut now, &mut id, s)).collect()
}

fn dropped_by(rule: &str) -> (Action, Option<String>) {
    (Action::Drop, Some(rule.to_string()))
}

const PASSED: (Action, Option<String>) = (Action::Forward, None);

#[test]
fn block_list_drops_listed_countries_only() {
    for db in [geoip2_db(), country_code_db()] {
        let seen = run(compile_ok(BLOCK_CN_RU, &db), &["203.0.113.5", "192.0.2.5", "2001:db8:1::5", "10.77.0.1", "198.51.100.9", "8.8.8.8", "2001:db8:3::1"]);
        assert_eq!(
            seen,
            vec![
                dropped_by("drop-blocked-countries"), // 203.0.113.5: CN
                PASSED,                               // 192.0.2.5: FR
                PASSED,                               // 2001:db8:1::5: DE
                PASSED,                               // 10.77.0.1: NL
                PASSED,                               // 198.51.100.9: US
                PASSED,                               // 8.8.8.8: not in the DB
                PASSED,                               // 2001:db8:3::1: not in the DB
            ],
            "{}",
            db.display()
        );
    }
}

#[test]
fn block_list_matches_v6_countries() {
    let rules = r#"
[[list]]
id = "de"
kind = "country"
entries = ["DE"]

[[rule]]
id = "drop-de"
when = 'ip.src in list.de'
action = "drop"
"#;
    let seen = run(compile_ok(rules, &geoip2_db()), &["2001:db8:1::5", "2001:db8:2::5", "192.0.2.5"]);
    assert_eq!(seen, vec![dropped_by("drop-de"), PASSED, PASSED]);
}

#[test]
fn allow_list_accepts_its_country_and_the_rest_is_dropped() {
    for db in [geoip2_db(), country_code_db()] {
        let rs = compile_ok(ALLOW_NL, &db);
        let seen = run(rs.clone(), &["10.77.0.1", "192.0.2.5", "2001:db8:1::5", "8.8.8.8"]);
        let accepted = seen[0].clone();
        assert_eq!(accepted.0, Action::Forward, "{}: 10.77.0.1 (NL) {accepted:?}", db.display());
        assert_eq!(accepted.1.as_deref(), Some("allow-home"), "{}", db.display());
        for (src, s) in ["192.0.2.5", "2001:db8:1::5", "8.8.8.8"].iter().zip(&seen[1..]) {
            assert_eq!(*s, dropped_by("drop-rest"), "{}: {src}", db.display());
        }
    }
}

#[test]
fn country_of_reads_both_layouts() {
    let cases: &[(&str, Option<&str>)] = &[
        ("192.0.2.5", Some("FR")),
        ("192.0.2.0", Some("FR")),
        ("192.0.2.255", Some("FR")),
        ("198.51.100.1", Some("US")),
        ("203.0.113.5", Some("CN")),
        ("10.77.0.1", Some("NL")),
        ("2001:db8:1::5", Some("DE")),
        ("2001:db8:1:ffff::1", Some("DE")),
        ("2001:db8:2::5", Some("JP")),
        // Outside the DB.
        ("192.0.3.1", None),
        ("10.77.1.1", None),
        ("8.8.8.8", None),
        ("0.0.0.0", None),
        ("255.255.255.255", None),
        ("2001:db8:3::1", None),
        ("2001:db9::1", None),
        ("::1", None),
    ];
    for db in [geoip2_db(), country_code_db()] {
        let reader = maxminddb::Reader::open_readfile(&db).unwrap();
        for &(ip, want) in cases {
            let got = country_of(&reader, ip.parse().unwrap());
            assert_eq!(got.as_ref().map(|c| std::str::from_utf8(c).unwrap()), want, "{}: {ip}", db.display());
        }
    }
}

#[test]
fn ipv4_lives_in_the_v6_trees_v96_subtree() {
    // Both files are IPv6 trees; IPv4 data sits under ::/96 as in GeoLite2, and an IPv4
    // lookup reaches it.
    for db in [geoip2_db(), country_code_db()] {
        let reader = maxminddb::Reader::open_readfile(&db).unwrap();
        assert_eq!(reader.metadata.ip_version, 6, "{}", db.display());
        assert_eq!(country_of(&reader, "::192.0.2.5".parse().unwrap()), Some(*b"FR"), "{}", db.display());
    }
    // The GeoIP2-layout file also holds ::ffff:0:0/96 networks, as MaxMind's own DBs alias
    // that range to the IPv4 subtree.
    let reader = maxminddb::Reader::open_readfile(geoip2_db()).unwrap();
    assert_eq!(country_of(&reader, "::ffff:203.0.113.5".parse().unwrap()), Some(*b"CN"));
}

#[test]
fn test_db_is_tiny_and_says_what_it_is() {
    for (db, kind) in [(geoip2_db(), "GeoIP2-Country"), (country_code_db(), "ip-location-db-country")] {
        let len = std::fs::metadata(&db).unwrap().len();
        assert!(len < 16 * 1024, "{}: {len} bytes", db.display());
        let reader = maxminddb::Reader::open_readfile(&db).unwrap();
        assert_eq!(reader.metadata.database_type, kind);
    }
}

#[test]
fn without_a_db_country_lists_ask_for_geoip_db() {
    let e = compile_err(BLOCK_CN_RU, &opts(None));
    assert!(e.contains("geoip_db"), "{e}");
    assert!(e.contains("blocked-countries"), "{e}");
    // Other list kinds need no DB.
    compile_text(
        "[[list]]\nid = \"nets\"\nkind = \"ip\"\nentries = [\"192.0.2.0/24\"]\n[[rule]]\nid = \"r\"\nwhen = 'ip.src in list.nets'\naction = \"drop\"\n",
        &opts(None),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn missing_db_file_is_named_in_the_error() {
    let missing = std::env::temp_dir().join(format!("secsip-no-such-geoip-{}.mmdb", std::process::id()));
    let e = compile_err(BLOCK_CN_RU, &opts(Some(missing.clone())));
    assert!(e.contains(&missing.display().to_string()), "{e}");
    assert!(e.contains("cannot open MaxMind DB"), "{e}");
}

#[test]
fn a_file_that_is_not_a_maxmind_db_is_an_error_not_a_panic() {
    let dir = std::env::temp_dir().join(format!("secsip-geoip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: &[(&str, Vec<u8>)] = &[
        ("garbage.mmdb", b"this is not a MaxMind DB\n".repeat(100)),
        ("empty.mmdb", vec![]),
        // The metadata marker with nothing valid after it.
        ("marker-only.mmdb", [b"\x00\x01\x02".as_slice(), b"\xab\xcd\xefMaxMind.com", b"\xff\xff\xff"].concat()),
        // A real DB cut in half: the tree and data are there, the metadata is not.
        ("truncated.mmdb", {
            let b = std::fs::read(geoip2_db()).unwrap();
            b[..b.len() / 2].to_vec()
        }),
    ];
    for (name, bytes) in cases {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = compile_err(BLOCK_CN_RU, &opts(Some(p.clone())));
        assert!(e.contains("cannot open MaxMind DB"), "{name}: {e}");
        assert!(e.contains(&p.display().to_string()), "{name}: {e}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_country_codes_are_refused() {
    for bad in ["FRA", "F", "1A", ""] {
        let text = format!("[[list]]\nid = \"c\"\nkind = \"country\"\nentries = [\"{bad}\"]\n");
        let e = compile_err(&text, &opts(Some(geoip2_db())));
        assert!(e.contains("two-letter country code"), "{bad:?}: {e}");
    }
}

#[test]
fn a_corrupt_tree_or_data_section_gives_no_country_not_a_panic() {
    // Metadata intact (so the DB opens), tree and data overwritten: lookups must fail softly.
    let good = std::fs::read(geoip2_db()).unwrap();
    let meta = good.windows(14).rposition(|w| w == b"\xab\xcd\xefMaxMind.com").unwrap();
    let ips: Vec<IpAddr> = ["192.0.2.5", "203.0.113.5", "10.77.0.1", "8.8.8.8", "2001:db8:1::5", "::ffff:192.0.2.5", "::1"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    for fill in [0x00u8, 0xff, 0x5a] {
        let mut bad = good.clone();
        bad[..meta].fill(fill);
        let reader = maxminddb::Reader::from_source(bad).unwrap();
        for &ip in &ips {
            let _ = country_of(&reader, ip);
        }
    }
    // Every single-byte flip of the tree and data sections.
    for i in 0..meta {
        let mut bad = good.clone();
        bad[i] ^= 0xa5;
        let reader = maxminddb::Reader::from_source(bad).unwrap();
        for &ip in &ips {
            let _ = country_of(&reader, ip);
        }
    }
}

#[test]
fn ipv4_mapped_sources_are_looked_up_as_ipv4_even_where_the_db_does_not_map_them() {
    let db = maxminddb::Reader::open_readfile(country_code_db()).unwrap();
    let mapped: std::net::IpAddr = "::ffff:192.0.2.5".parse().unwrap();
    assert_eq!(secsip::rules::lists::country_of(&db, mapped), Some(*b"FR"));
}
