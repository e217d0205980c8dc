//! The RFC 4475 torture messages (`tests/fixtures/rfc4475/`) against the parser: each valid
//! one without a reason, each invalid one with exactly the reasons its README row names.

use super::{Limits, Parser};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rfc4475")
}

/// `(message, verdict, reasons)` rows of the fixtures' README table.
fn expected() -> Vec<(String, String, Vec<String>)> {
    let readme = std::fs::read_to_string(dir().join("README.md")).unwrap();
    readme
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let [_, name, section, verdict, reasons, _] = cells.as_slice() else { return None };
            if !section.starts_with('3') {
                return None;
            }
            let reasons = reasons.split(',').map(str::trim).filter(|r| !r.is_empty()).map(String::from).collect();
            Some((name.to_string(), verdict.to_string(), reasons))
        })
        .collect()
}

fn reasons(p: &mut Parser, buf: &[u8]) -> Vec<String> {
    let mut r: Vec<String> = p.parse_datagram(buf).reasons().iter().map(|r| r.name().to_string()).collect();
    r.sort();
    r
}

#[test]
fn every_fixture_has_its_named_reasons() {
    let rows = expected();
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".sip").map(String::from))
        .collect();
    files.sort();
    let mut names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    names.sort();
    assert_eq!(files, names, "one README row per fixture");
    assert_eq!(rows.len(), 49);

    let mut p = Parser::new(Limits::default());
    for (name, verdict, mut want) in rows {
        let buf = std::fs::read(dir().join(format!("{name}.sip"))).unwrap();
        want.sort();
        assert_eq!(reasons(&mut p, &buf), want, "{name}");
        assert_eq!(verdict == "accept", want.is_empty(), "{name}: verdict and reasons agree");
    }
}

#[test]
fn dblreq_surplus_is_discarded_on_a_datagram_only() {
    let buf = std::fs::read(dir().join("dblreq.sip")).unwrap();
    let mut p = Parser::new(Limits::default());
    let m = p.parse_datagram(&buf);
    assert!(m.body().is_empty());
    assert!(m.surplus().starts_with(b"INVITE sip:joe@example.com SIP/2.0\r\n"));
    assert_eq!(m.call_id(), Some(&b"dblreq.0ha0isndaksdj99sdfafnl3lk233412"[..]));
    // On a stream the same octets are the next message, not noise.
    let names: Vec<_> = p.parse(&buf).reasons().iter().map(|r| r.name()).collect();
    assert_eq!(names, ["content_length_mismatch", "missing_content_type"]);
    // A body shorter than its Content-Length is truncated on either.
    let clerr = std::fs::read(dir().join("clerr.sip")).unwrap();
    assert_eq!(reasons(&mut p, &clerr), ["content_length_mismatch"]);
}

#[test]
fn rfc2543_requests_need_allow_rfc2543() {
    let strict = Limits { allow_rfc2543: false, ..Limits::default() };
    let mut p = Parser::new(strict);
    let inv = std::fs::read(dir().join("inv2543.sip")).unwrap();
    assert_eq!(reasons(&mut p, &inv), ["missing_from_tag", "missing_via_branch"]);
    let long = std::fs::read(dir().join("longreq.sip")).unwrap();
    assert_eq!(reasons(&mut p, &long), ["missing_via_branch"]);
    // The old hop bound refuses longreq's 34 Vias.
    let mut p = Parser::new(Limits { max_via_hops: 16, ..Limits::default() });
    assert_eq!(reasons(&mut p, &long), ["too_many_via_hops"]);
}
