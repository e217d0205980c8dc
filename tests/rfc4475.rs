//! RFC 4475 torture messages through the engine as shipped: `config/secsip.toml` and the
//! rules of `rules/`, built the way `secsip check` builds it. Each message is one UDP
//! datagram from its own source; the expected verdicts are the rows of
//! `tests/fixtures/rfc4475/README.md`.

#[path = "common/appliance.rs"]
mod appliance;
#[path = "common/craft.rs"]
mod craft;

use craft::{FrameSpec, Ip, L4};
use secsip::config::Config;
use secsip::engine::{Engine, Outcome};
use secsip::hash::Keyer;
use secsip::hosttable::HostTable;
use secsip::stream::StreamError;
use secsip::verdict::{Action, Cause, Verdict};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `(message, verdict, reasons)` from the README table.
fn rows() -> Vec<(String, String, Vec<String>)> {
    let readme = std::fs::read_to_string(root().join("tests/fixtures/rfc4475/README.md")).unwrap();
    readme
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let [_, name, section, verdict, reasons, _] = cells.as_slice() else { return None };
            section.starts_with('3').then(|| {
                let mut r: Vec<String> =
                    reasons.split(',').map(str::trim).filter(|r| !r.is_empty()).map(String::from).collect();
                r.sort();
                (name.to_string(), verdict.to_string(), r)
            })
        })
        .collect()
}

/// For a request inside a dialog (a To tag), the INVITE, 200 and ACK that set the dialog up
/// between the same two addresses: the shipped rules drop in-dialog requests for dialogs
/// they never saw (`dialog-unknown`), and the torture test is about the message, not that.
fn dialog_setup(msg: &[u8]) -> Vec<(bool, String)> {
    let mut p = secsip::sip::Parser::new(secsip::sip::Limits::default());
    let m = p.parse_datagram(msg);
    let (Some(from), Some(to)) = (m.from(), m.to()) else { return vec![] };
    let (Some(to_tag), true) = (to.tag(), m.is_request()) else { return vec![] };
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (call_id, from_uri, from_tag, to_uri, to_tag) =
        (s(m.call_id().unwrap_or_default()), s(from.uri), s(from.tag().unwrap_or_default()), s(to.uri), s(to_tag));
    let msg = |start: &str, to_tag: &str, cseq: &str, branch: &str| {
        format!(
            "{start}\r\nVia: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK{branch}\r\nFrom: <{from_uri}>;tag={from_tag}\r\n\
             To: <{to_uri}>{to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\nMax-Forwards: 70\r\n\
             Contact: <sip:c@198.51.100.1>\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let tagged = format!(";tag={to_tag}");
    vec![
        (true, msg(&format!("INVITE {to_uri} SIP/2.0"), "", "1 INVITE", "setup1")),
        (false, msg("SIP/2.0 200 OK", &tagged, "1 INVITE", "setup1")),
        (true, msg(&format!("ACK {to_uri} SIP/2.0"), &tagged, "1 ACK", "setup2")),
    ]
}

fn shipped_engine() -> (Engine, Arc<secsip::rules::RuleSet>) {
    let cfg = Config::load(&root().join("config/secsip.toml")).expect("shipped config");
    let rules = Arc::new(secsip::rules::compile_dir(&root().join("rules"), &cfg.compile_options()).expect("shipped rules"));
    let hosts = Arc::new(HostTable::new(cfg.hosts.clone()));
    (Engine::with_rules(cfg.engine.clone(), Keyer::random(), rules.clone(), hosts), rules)
}

#[test]
fn dblreq_surplus_is_noise_in_a_datagram_and_the_next_message_on_tcp() {
    // The honest twin is dblreq over UDP, accepted above. The same octets in one TCP segment
    // are a stream: the REGISTER and the INVITE are each framed and judged, and the 3 octets
    // past the INVITE's body begin a third message, so the segment is held until that one is
    // complete and judged; never finished, it is dropped when the stream times out.
    let (mut engine, _rules) = shipped_engine();
    let msg = std::fs::read(root().join("tests/fixtures/rfc4475/dblreq.sip")).unwrap();
    let frame = FrameSpec::client_to_server(Ip::v4("198.51.100.7", "192.0.2.200"), L4::tcp_data(40000, 5060, 1, 1, &msg)).build();
    let t0 = 1_700_000_000_000_000_000u64;
    assert!(matches!(engine.handle(t0, &frame, 1), Outcome::Held), "forwarded with an unfinished message in it");
    assert_eq!(engine.stats().tcp.messages, 2, "REGISTER and INVITE framed");
    assert_eq!(engine.stats().sip_messages, 2, "and each judged");
    engine.tick(t0 + 10_000_000_000);
    let mut out = Vec::new();
    engine.drain_dropped(&mut out);
    assert_eq!(out, vec![(1, Verdict::drop(Cause::Stream(StreamError::Timeout)))]);
}

#[test]
fn shipped_config_and_rules_accept_the_valid_and_name_the_invalid() {
    let (mut engine, rules) = shipped_engine();
    let rows = rows();
    assert_eq!(rows.len(), 49);
    let server: SocketAddr = "192.0.2.200:5060".parse().unwrap();
    let mut ts = 1_700_000_000_000_000_000u64;
    let (mut accepted, mut dropped) = (0, 0);
    for (n, (name, verdict, want)) in rows.iter().enumerate() {
        let msg = std::fs::read(root().join(format!("tests/fixtures/rfc4475/{name}.sip"))).unwrap();
        let client: SocketAddr = format!("198.51.100.{}:5060", n + 1).parse().unwrap();
        for (outbound, setup) in dialog_setup(&msg) {
            let (a, b) = if outbound { (client, server) } else { (server, client) };
            ts += 10_000_000;
            let frame = secsip::fixtures::udp_frame(a, b, setup.as_bytes());
            let Outcome::Judged(j) = engine.handle(ts, &frame, 0) else {
                panic!("{name}: setup held")
            };
            assert_eq!(j.verdict.action, Action::Forward, "{name}: dialog setup {:?}:\n{setup}", j.verdict.cause);
        }
        let frame = secsip::fixtures::udp_frame(client, server, &msg);
        ts += 10_000_000;
        let Outcome::Judged(j) = engine.handle(ts, &frame, n as u64 + 1) else { panic!("{name}: held") };
        let sip = j.sip.as_ref().unwrap_or_else(|| panic!("{name}: not judged as SIP"));
        let mut got: Vec<String> = sip.reasons.iter().map(|r| r.name().to_string()).collect();
        got.sort();
        assert_eq!(&got, want, "{name}: reasons");
        let rule = match j.verdict.cause {
            Cause::Rule(i) => rules.rules.get(i as usize).map(|r| r.id.clone()),
            _ => None,
        };
        if verdict == "accept" {
            assert_eq!(j.verdict.action, Action::Forward, "{name}: {:?} by {rule:?}", j.verdict.cause);
            accepted += 1;
        } else {
            assert_eq!(j.verdict.action, Action::Drop, "{name}: {:?}", j.verdict.cause);
            assert!(rule.as_deref().is_some_and(|r| r.starts_with("malformed-")), "{name}: dropped by {rule:?}");
            dropped += 1;
        }
    }
    assert_eq!((accepted, dropped), (27, 22));
    // The stats count every named reason, as the metrics export them.
    let st = engine.stats();
    assert_eq!(st.malformed, 22);
    assert_eq!(st.sip_messages, 49 + 2 * 3, "wsinv and lwsruri are the in-dialog requests");
    for r in [secsip::sip::Reason::BadDate, secsip::sip::Reason::RequestUriHeaders] {
        let i = secsip::sip::Reason::ALL.iter().position(|x| *x == r).unwrap();
        assert_eq!(st.malformed_by_reason[i], 1, "{}", r.name());
    }
}
