//! Compiler and evaluator tests: errors, schedule, every operator, objects, actions.

use super::compile::{compile, CompileOptions, Source};
use super::model::RuleSet;
use crate::config::EngineConfig;
use crate::engine::{Engine, Outcome};
use crate::fixtures::{self, CallParams, Direction};
use crate::hash::Keyer;
use crate::hosttable::{HostLimits, HostTable};
use crate::verdict::{Action, Cause};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

fn src(text: &str) -> Vec<Source> {
    vec![Source { path: "t.toml".into(), text: text.to_string() }]
}

fn ok(text: &str) -> RuleSet {
    compile(&src(text), Path::new("."), &CompileOptions::standard()).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(text: &str) -> Vec<String> {
    match compile(&src(text), Path::new("."), &CompileOptions::standard()) {
        Ok(_) => panic!("compiled but should not:\n{text}"),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

const SEC: u64 = 1_000_000_000;

struct Harness {
    engine: Engine,
    now: u64,
    id: u64,
}

impl Harness {
    fn new(rules: &str) -> Harness {
        let rs = Arc::new(ok(rules));
        let hosts = Arc::new(HostTable::new(HostLimits::default()));
        Harness { engine: Engine::with_rules(EngineConfig::default(), Keyer::with_keys(1, 2), rs, hosts), now: SEC, id: 0 }
    }

    /// Sends one message; returns (action, deciding rule id, fired ids).
    fn send(&mut self, src: SocketAddr, dst: SocketAddr, msg: &[u8]) -> (Action, Option<String>, Vec<String>) {
        self.now += SEC / 100;
        self.id += 1;
        let frame = fixtures::udp_frame(src, dst, msg);
        let rs = self.engine_rules();
        match self.engine.handle(self.now, &frame, self.id) {
            Outcome::Judged(j) => {
                let rule = match j.verdict.cause {
                    Cause::Rule(i) => Some(rs.rules[i as usize].id.clone()),
                    _ => None,
                };
                let fired = j.fired.iter().map(|f| rs.rules[f.rule as usize].id.clone()).collect();
                (j.verdict.action, rule, fired)
            }
            _ => panic!("held"),
        }
    }

    fn engine_rules(&self) -> Arc<RuleSet> {
        self.engine.rules().clone()
    }

    /// Runs the complete fixture call; returns the actions.
    fn call(&mut self, p: &CallParams) -> Vec<(Action, Option<String>)> {
        let (c, s) = (p.client_addr(), p.server_addr());
        fixtures::complete_call(p)
            .into_iter()
            .map(|(d, m)| {
                let (a, b) = if d == Direction::ClientToServer { (c, s) } else { (s, c) };
                let (act, rule, _) = self.send(a, b, &m);
                (act, rule)
            })
            .collect()
    }
}

fn c2s(p: &CallParams) -> (SocketAddr, SocketAddr) {
    (p.client_addr(), p.server_addr())
}

// ---------------------------------------------------------------- compile errors

#[test]
fn typo_in_a_field_names_file_line_column_rule_and_suggestion() {
    let e = errors("[[rule]]\nid = \"r1\"\nwhen = 'sip.metod == \"INVITE\"'\naction = \"drop\"\n");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0], "t.toml:3:9: 'r1': when: unknown field or object 'sip.metod' (did you mean 'sip.method'?)");
}

#[test]
fn error_columns_follow_the_expression_inside_its_string() {
    let e = errors("[[rule]]\nid = \"r1\"\nwhen = '''\nsip.method == \"INVITE\" && ip.scr == \"10.0.0.1\"'''\n");
    assert_eq!(e[0], "t.toml:4:27: 'r1': when: unknown field or object 'ip.scr' (did you mean 'ip.src'?)");
    let e = errors("[[rule]]\nid = \"r2\"\nwhen = 'sip.method == '\n");
    assert!(e[0].starts_with("t.toml:3:23: 'r2': when: expression ends"), "{}", e[0]);
}

#[test]
fn unknown_keys_actions_and_values_are_refused_with_hints() {
    let e = errors("[[rule]]\nid = \"r1\"\nwhen = 'sip.method == \"BYE\"'\nacton = \"drop\"\n");
    assert!(e[0].starts_with("t.toml:4:1:") && e[0].contains("acton"), "{}", e[0]);
    let e = errors("[[rule]]\nid = \"r1\"\nwhen = 'sip.method == \"BYE\"'\naction = \"dorp\"\n");
    assert!(e[0].contains("t.toml:4:10:") && e[0].contains("did you mean 'drop'"), "{}", e[0]);
    let e = errors("[[rule]]\nid = \"r1\"\nwhen = 'sip.method == \"BYE\"'\naction = \"ban\"\n");
    assert!(e[0].contains("needs ban = "), "{}", e[0]);
    let e = errors("[[rule]]\nid = \"r1\"\nwhen = 'sip.ua matches \"(\"'\n");
    assert!(e[0].contains("invalid regex"), "{}", e[0]);
    let e = errors("[[rule]]\nid = \"r1\"\nwhen = 'sip.ua > 3'\n");
    assert!(e[0].contains("needs a number") || e[0].contains("len(sip.ua)"), "{}", e[0]);
    let e = errors("[[rule]]\nid = \"r1\"\nwhen = 'ip.src == \"10.0.0.0/33\"'\n");
    assert!(e[0].contains("not an address or CIDR"), "{}", e[0]);
    let e = errors("[[rule]]\nid = \"r1\"\nwhen = 'sip.ua in list.nope'\n");
    assert!(e[0].contains("unknown list 'nope'"), "{}", e[0]);
    let e = errors("[[rule]]\nid = \"r1\"\nwhen = 'lower(sip.ua) contains \"Friendly\"'\n");
    assert!(e[0].contains("can never match"), "{}", e[0]);
}

#[test]
fn duplicate_ids_and_all_errors_are_reported() {
    let e = errors("[[rule]]\nid = \"a\"\nwhen = 'sip.x'\n\n[[rule]]\nid = \"a\"\nwhen = 'sip.method == \"BYE\"'\n\n[[rule]]\nid = \"c\"\nwhen = 'sip.y'\n");
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(e.iter().any(|x| x.contains("duplicate id: already used at t.toml:2")));
}

#[test]
fn objects_are_checked() {
    let e = errors("[[object]]\nid = \"s\"\nscope = \"source\"\nkind = \"set\"\nvalue = \"sip.from.uri\"\n");
    assert!(e[0].contains("must be a counter or distinct"), "{}", e[0]);
    let e = errors("[[object]]\nid = \"c\"\nscope = \"global\"\nkind = \"counter\"\n");
    assert!(e[0].contains("needs `period`"), "{}", e[0]);
    let e = errors("[[object]]\nid = \"a.b\"\nscope = \"dialog\"\nkind = \"set\"\nvalue = \"ip.src\"\n");
    assert!(e[0].contains("'a', which is not declared"), "{}", e[0]);
    let e = errors("[[object]]\nid = \"s\"\nscope = \"dialog\"\nkind = \"set\"\nvalue = \"sip.from.uri\"\n[[rule]]\nid = \"r\"\nwhen = 'sip.from.uri in s'\ncount = [\"s\"]\n");
    assert!(e[0].contains("use hold = [\"s\"]"), "{}", e[0]);
}

// ---------------------------------------------------------------- schedule

#[test]
fn writers_run_before_readers_whatever_the_file_order() {
    // SecSip Figure 3, written reader-first.
    let rs = ok(r#"
[[rule]]
id = "R2"
when = 'rate >= 80'
action = "drop"

[[object]]
id = "rate"
scope = "global"
kind = "counter"
decrement = 10
period = "60s"

[[rule]]
id = "R1"
when = 'sip.method == "INVITE"'
count = ["rate"]
"#);
    let order: Vec<&str> = rs.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(order, vec!["R1", "R2"]);
}

#[test]
fn definitions_run_before_the_rules_reading_their_events() {
    let rs = ok(r#"
[[rule]]
id = "veto"
when = 'event.ev && len(sip.headers.date) >= 120'
action = "drop"

[[definition]]
id = "def"
event = "ev"
when = 'sip.method == "OPTIONS"'
"#);
    assert_eq!(rs.rules[0].id, "def");
}

#[test]
fn cycles_are_a_compile_error() {
    let e = errors(r#"
[[object]]
id = "a"
scope = "dialog"
kind = "counter"
period = "1s"
[[object]]
id = "b"
scope = "dialog"
kind = "counter"
period = "1s"
[[rule]]
id = "x"
when = 'a > 1'
count = ["b"]
[[rule]]
id = "y"
when = 'b > 1'
count = ["a"]
"#);
    assert_eq!(e.len(), 1);
    assert!(e[0].contains("cycle") && e[0].contains("'x'") && e[0].contains("'y'"), "{}", e[0]);
}

// ---------------------------------------------------------------- evaluation

#[test]
fn string_operators_and_lower() {
    let mut h = Harness::new(r#"
[[rule]]
id = "eq"
when = 'sip.method == "OPTIONS" && sip.ua == "exact-ua"'
action = "drop"
[[rule]]
id = "prefix"
when = 'lower(sip.ua) startswith "friendly-scanner"'
action = "drop"
[[rule]]
id = "suffix"
when = 'sip.ua endswith "/evil"'
action = "drop"
[[rule]]
id = "contains"
when = 'sip.from.user contains "select"'
action = "reject"
status = 403
[[rule]]
id = "regex"
when = 'sip.to.user matches "^(?i)admin[0-9]*$"'
action = "drop"
"#);
    let p = CallParams::default();
    let (c, s) = c2s(&p);
    let mut opt = |ua: &str, user: &str| {
        let q = p.clone().with_users(user, user);
        let mut m = fixtures::options(&q, 1);
        let at = m.windows(12).position(|w| w == b"User-Agent: ").unwrap() + 12;
        let end = at + m[at..].windows(2).position(|w| w == b"\r\n").unwrap();
        m.splice(at..end, ua.bytes());
        h.send(c, s, &m)
    };
    assert_eq!(opt("exact-ua", "alice").1.as_deref(), Some("eq"));
    assert_eq!(opt("exact-ua2", "alice").1, None);
    assert_eq!(opt("Friendly-Scanner 1.0", "alice").1.as_deref(), Some("prefix"));
    assert_eq!(opt("x friendly-scanner", "alice").1, None);
    assert_eq!(opt("tool/evil", "alice").1.as_deref(), Some("suffix"));
    let r = opt("ok", "xselectx");
    assert_eq!((r.0, r.1.as_deref()), (Action::Reject, Some("contains")));
    assert_eq!(opt("ok", "ADMIN12").1.as_deref(), Some("regex"));
    assert_eq!(opt("ok", "administrator").1, None);
    assert_eq!(opt("ok", "alice").0, Action::Forward);
}

#[test]
fn numbers_lengths_counts_addresses_and_lists() {
    let mut h = Harness::new(r#"
[[list]]
id = "nets"
kind = "ip"
entries = ["192.0.2.0/24"]
[[rule]]
id = "blocked-net"
when = 'ip.src in list.nets'
action = "drop"
[[rule]]
id = "one-host"
when = 'ip.src == "198.51.100.7"'
action = "drop"
[[rule]]
id = "long-call-id"
when = 'len(sip.call_id) > 60'
action = "drop"
[[rule]]
id = "many-vias"
when = 'count(sip.via) >= 3'
action = "drop"
[[rule]]
id = "low-mf"
when = 'sip.max_forwards < 2'
action = "drop"
"#);
    let p = CallParams::default();
    let (c, s) = c2s(&p);
    let m = fixtures::options(&p, 1);
    assert_eq!(h.send(c, s, &m).0, Action::Forward);
    assert_eq!(h.send("192.0.2.9:5060".parse().unwrap(), s, &m).1.as_deref(), Some("blocked-net"));
    assert_eq!(h.send("198.51.100.7:5060".parse().unwrap(), s, &m).1.as_deref(), Some("one-host"));
    let long = fixtures::options(&p.clone().with_call_id("x".repeat(61)), 1);
    assert_eq!(h.send(c, s, &long).1.as_deref(), Some("long-call-id"));
    let vias = String::from_utf8(m.clone()).unwrap().replacen("Via: ", "Via: SIP/2.0/UDP a;branch=z9hG4bKa, SIP/2.0/UDP b;branch=z9hG4bKb\r\nVia: ", 1);
    assert_eq!(h.send(c, s, vias.as_bytes()).1.as_deref(), Some("many-vias"));
    let mf = String::from_utf8(m).unwrap().replace("Max-Forwards: 70", "Max-Forwards: 1");
    assert_eq!(h.send(c, s, mf.as_bytes()).1.as_deref(), Some("low-mf"));
}

#[test]
fn bye_attack_is_stopped_by_dialog_objects_and_the_real_bye_passes() {
    // SecSip Figures 6-7 in this language.
    let rules = r#"
[[object]]
id = "from_list"
scope = "dialog"
kind = "set"
value = "sip.from.uri"
[[object]]
id = "from_list.ip_addr"
scope = "dialog"
kind = "set"
value = "ip.src"

[[rule]]
id = "track-from"
when = 'sip.is_request && sip.method != "BYE"'
hold = ["from_list", "from_list.ip_addr"]

[[rule]]
id = "bye-attack"
when = 'sip.method == "BYE" && !(sip.from.uri in from_list && ip.src in from_list.ip_addr)'
action = "drop"
"#;
    let mut h = Harness::new(rules);
    let p = CallParams::default();
    let call = fixtures::complete_call(&p);
    let (c, s) = c2s(&p);
    for (d, m) in call.iter().take(9) {
        let (a, b) = if *d == Direction::ClientToServer { (c, s) } else { (s, c) };
        assert_eq!(h.send(a, b, m).0, Action::Forward);
    }
    // Spoofed BYE: right dialog, but from another address.
    let bye = &call[9].1;
    let (act, rule, _) = h.send("10.77.0.66:5060".parse().unwrap(), s, bye);
    assert_eq!((act, rule.as_deref()), (Action::Drop, Some("bye-attack")));
    // Spoofed BYE from the right address with another From user.
    let other = String::from_utf8(bye.clone()).unwrap().replace("sip:alice@", "sip:mallory@");
    assert_eq!(h.send(c, s, other.as_bytes()).1.as_deref(), Some("bye-attack"));
    // The real BYE passes.
    assert_eq!(h.send(c, s, bye).0, Action::Forward);
}

#[test]
fn counters_monitor_mode_and_logs() {
    let mut h = Harness::new(r#"
[[object]]
id = "tr"
scope = "transaction"
kind = "set"
value = "sip.via.branch"
[[object]]
id = "tr.count"
scope = "transaction"
kind = "counter"
decrement = 10
period = "60s"
[[rule]]
id = "count-invites"
when = 'sip.method == "INVITE"'
hold = ["tr"]
count = ["tr.count"]
[[rule]]
id = "watch"
when = 'sip.method == "INVITE" && tr.count > 2'
action = "drop"
mode = "monitor"
[[rule]]
id = "flood"
when = 'tr.count > 5'
action = "drop"
"#);
    let p = CallParams::default();
    let (c, s) = c2s(&p);
    let inv = fixtures::invite_with_sdp(&p);
    let mut results = vec![];
    for _ in 0..7 {
        results.push(h.send(c, s, &inv));
    }
    // Copies 1-2 pass silently, 3-5 pass with the monitor rule fired, 6+ are dropped.
    assert_eq!(results[1].0, Action::Forward);
    assert!(!results[1].2.contains(&"watch".to_string()));
    assert_eq!(results[2].0, Action::Forward);
    assert!(results[2].2.contains(&"watch".to_string()));
    assert_eq!(results[5].1.as_deref(), Some("flood"));
    assert_eq!(results[6].1.as_deref(), Some("flood"));
    let rs = h.engine_rules();
    let hits = h.engine.rule_hits();
    assert_eq!(hits[rs.rule_index("watch").unwrap()], 5);
    assert_eq!(hits[rs.rule_index("count-invites").unwrap()], 7);
}

#[test]
fn events_from_definitions_the_options_date_veto() {
    let mut h = Harness::new(r#"
[[definition]]
id = "Options_Def"
event = "ev_Options"
when = 'sip.method matches "^OPTIONS"'
[[rule]]
id = "Date_BufferOverflow"
definition = "Options_Def"
when = 'event.ev_Options && len(sip.headers.date) >= 120'
action = "drop"
"#);
    let p = CallParams::default();
    let (c, s) = c2s(&p);
    let ok_date = fixtures::request(&p, "OPTIONS", "sip:secsip.test", 1, None, &[("Date", "Sat, 13 Nov 2010 23:29:00 GMT")], None);
    assert_eq!(h.send(c, s, &ok_date).0, Action::Forward);
    let long = "A".repeat(130);
    let bad = fixtures::request(&p, "OPTIONS", "sip:secsip.test", 2, None, &[("Date", &long)], None);
    assert_eq!(h.send(c, s, &bad).1.as_deref(), Some("Date_BufferOverflow"));
    // The same Date on an INVITE does not raise the event (it is still a `bad_date`, which
    // the engine's malformed policy drops).
    let inv = fixtures::request(&p, "INVITE", "sip:bob@secsip.test", 3, None, &[("Date", &long)], None);
    let (action, rule, _) = h.send(c, s, &inv);
    assert_eq!((action, rule), (Action::Drop, None));
}

#[test]
fn accept_stops_evaluation_and_a_normal_call_passes_a_strict_set() {
    let mut h = Harness::new(r#"
[[list]]
id = "trusted"
kind = "ip"
entries = ["10.77.0.1"]
[[rule]]
id = "allow-trusted"
when = 'ip.src in list.trusted'
action = "accept"
[[rule]]
id = "no-options"
when = 'sip.method == "OPTIONS"'
action = "drop"
"#);
    let p = CallParams::default();
    let (c, s) = c2s(&p);
    assert_eq!(h.send(c, s, &fixtures::options(&p, 1)).1.as_deref(), Some("allow-trusted"));
    assert_eq!(h.send("10.77.0.5:5060".parse().unwrap(), s, &fixtures::options(&p, 1)).1.as_deref(), Some("no-options"));
    let actions = h.call(&CallParams::default().with_call_id("other-call"));
    assert!(actions.iter().all(|(a, _)| *a == Action::Forward));
}

#[test]
fn reject_carries_a_response() {
    let rs = Arc::new(ok("[[rule]]\nid = \"r\"\nwhen = 'sip.method == \"INVITE\"'\naction = \"reject\"\nstatus = 488\n"));
    let hosts = Arc::new(HostTable::new(HostLimits::default()));
    let mut e = Engine::with_rules(EngineConfig::default(), Keyer::with_keys(1, 2), rs, hosts);
    let p = CallParams::default();
    let f = fixtures::udp_frame(p.client_addr(), p.server_addr(), &fixtures::invite_with_sdp(&p));
    match e.handle(SEC, &f, 1) {
        Outcome::Judged(j) => {
            assert_eq!(j.verdict.action, Action::Reject);
            let resp = std::str::from_utf8(j.response.unwrap()).unwrap();
            assert!(resp.starts_with("SIP/2.0 488 Not Acceptable Here\r\n"), "{resp}");
        }
        _ => panic!(),
    }
    assert_eq!(e.state_stats().dialogs, 0, "a rejected INVITE creates no dialog");
}

#[test]
fn method_index_skips_rules_of_other_methods() {
    let rs = ok(r#"
[[rule]]
id = "reg"
when = 'sip.method == "REGISTER" && sip.expires > 7200'
action = "drop"
[[rule]]
id = "any"
when = 'sip.max_forwards < 2'
action = "drop"
"#);
    let bye = crate::sip::Method::Bye as usize;
    let reg = crate::sip::Method::Register as usize;
    assert_eq!(rs.member[bye][0] & 1, 0, "REGISTER rule is not in the BYE bucket");
    assert_eq!(rs.member[reg][0] & 1, 1);
    assert_eq!(rs.member[bye][0] & 2, 2);
}

#[test]
fn source_counters_and_bans_through_the_host_table() {
    let mut h = Harness::new(r#"
[[object]]
id = "src_invites"
scope = "source"
kind = "counter"
decrement = 5
period = "1s"
[[rule]]
id = "count"
when = 'sip.method == "INVITE"'
count = ["src_invites"]
[[rule]]
id = "ban-flooder"
when = 'src_invites > 10'
action = "ban"
ban = "1m"
"#);
    let p = CallParams::default();
    let (c, s) = c2s(&p);
    let mut results = vec![];
    for i in 0..12 {
        let q = p.clone().with_call_id(format!("flood-{i}"));
        results.push(h.send(c, s, &fixtures::invite_with_sdp(&q)));
    }
    // Ten pass, the eleventh crosses the threshold and bans, the twelfth is dropped unparsed.
    assert!(results[..10].iter().all(|r| r.0 == Action::Forward));
    assert_eq!(results[10].1.as_deref(), Some("ban-flooder"));
    assert_eq!((results[11].0, results[11].1.as_deref()), (Action::Drop, None));
    // Banned: dropped before parsing, even a valid OPTIONS.
    let frame = fixtures::udp_frame(c, s, &fixtures::options(&p, 1));
    h.now += SEC;
    match h.engine.handle(h.now, &frame, 999) {
        Outcome::Judged(j) => assert_eq!(j.verdict.cause, Cause::Banned),
        _ => panic!(),
    }
    // Another source is unaffected.
    assert_eq!(h.send("10.77.0.9:5060".parse().unwrap(), s, &fixtures::options(&p, 1)).0, Action::Forward);
}


// ---------------------------------------------------------------- every occurrence

#[test]
fn any_all_negation_and_counts_over_every_value() {
    let mut h = Harness::new(r#"
[[list]]
id = "ours"
kind = "domain"
entries = ["a.example"]
[[rule]]
id = "any-b"
when = 'sip.contact.host == "b.example"'
action = "log"
[[rule]]
id = "explicit-any-b"
when = 'any(sip.contact.host) == "b.example"'
action = "log"
[[rule]]
id = "no-b"
when = 'sip.method == "OPTIONS" && sip.contact.host != "b.example"'
action = "log"
[[rule]]
id = "all-a"
when = 'all(sip.contact.host) == "a.example"'
action = "log"
[[rule]]
id = "not-all-a"
when = 'sip.method == "OPTIONS" && all(sip.contact.host) != "a.example"'
action = "log"
[[rule]]
id = "all-in-ours"
when = 'all(sip.contact.host) in list.ours'
action = "log"
[[rule]]
id = "all-users-lower"
when = 'all(sip.contact.user) matches "^[a-z]+$"'
action = "log"
[[rule]]
id = "all-lower-startswith"
when = 'all(lower(sip.contact.user)) startswith "al"'
action = "log"
[[rule]]
id = "all-short"
when = 'sip.method == "OPTIONS" && all(len(sip.headers.ANY)) < 200'
action = "log"
[[rule]]
id = "two-contacts"
when = 'count(sip.contact) == 2'
action = "log"
[[rule]]
id = "any-port-5062"
when = 'sip.contact.uri contains ":5062"'
action = "log"
"#);
    let p = CallParams::default();
    let (c, s) = c2s(&p);
    let mut send = |contacts: &[&str]| {
        let extra: Vec<(&str, &str)> = contacts.iter().map(|v| ("Contact", *v)).collect();
        let m = fixtures::request(&p, "OPTIONS", "sip:secsip.test", 1, None, &extra, None);
        let mut f = h.send(c, s, &m).2;
        f.sort();
        f
    };
    let ids = |v: &[&str]| {
        let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    // Both a.example: every test over the two values.
    assert_eq!(send(&["<sip:alice@a.example>", "<sip:Al@A.EXAMPLE>"]), ids(&["no-b", "all-a", "all-in-ours", "all-lower-startswith", "all-short", "two-contacts"]));
    // The second, on its own line or after a comma, is seen like the first.
    let second = ids(&["any-b", "explicit-any-b", "not-all-a", "all-users-lower", "all-short", "two-contacts", "any-port-5062"]);
    assert_eq!(send(&["<sip:alice@a.example>", "<sip:bob@b.example:5062>"]), second);
    assert_eq!(send(&["<sip:alice@a.example>, <sip:bob@b.example:5062>"]), second);
    // No Contact at all: `any` and `all` both fail, so their negations hold.
    assert_eq!(send(&[]), ids(&["no-b", "not-all-a", "all-short"]));
}

#[test]
fn all_is_refused_where_it_means_nothing() {
    let e = errors("[[object]]\nid = \"c\"\nscope = \"dialog\"\nkind = \"counter\"\nperiod = \"1s\"\n[[rule]]\nid = \"r\"\nwhen = 'all(c) > 1'\n");
    assert!(e[0].contains("all(...) is for fields"), "{}", e[0]);
    let e = errors("[[rule]]\nid = \"r\"\nwhen = 'all(count(sip.via)) > 1'\n");
    assert!(e[0].contains("one number per message"), "{}", e[0]);
    let e = errors("[[list]]\nid = \"l\"\nkind = \"user\"\ninternational_prefixes = [\"00\"]\n");
    assert!(e[0].contains("only number and number_prefix"), "{}", e[0]);
}

#[test]
fn normal_forms_by_default_raw_on_request() {
    let mut h = Harness::new(r#"
[[list]]
id = "premium"
kind = "number_prefix"
entries = ["+88216"]
[[list]]
id = "users"
kind = "user"
entries = ["admin"]
[[rule]]
id = "raw-escape"
when = 'sip.ruri.user.raw contains "%"'
action = "log"
[[rule]]
id = "to-premium"
when = 'sip.ruri.user in list.premium'
action = "reject"
status = 403
[[rule]]
id = "user"
when = 'sip.from.user in list.users'
action = "drop"
"#);
    let p = CallParams::default();
    let (c, s) = c2s(&p);
    let mut inv = |ruri: &str, from_user: &str| {
        let q = p.clone().with_users(from_user, "bob");
        let m = fixtures::request(&q, "INVITE", ruri, 1, None, &[], None);
        let (a, rule, fired) = h.send(c, s, &m);
        (a, rule, fired.contains(&"raw-escape".to_string()))
    };
    for ruri in ["sip:%2B88216555@secsip.test", "sip:+882-16-555@secsip.test;user=phone", "tel:+882-16-555", "tel:16-555;phone-context=+882", "sip:0088216555@secsip.test", "sip:011.882.16.555@secsip.test"] {
        let (a, rule, _) = inv(ruri, "alice");
        assert_eq!((a, rule.as_deref()), (Action::Reject, Some("to-premium")), "{ruri}");
    }
    assert!(inv("sip:%2B88216555@secsip.test", "alice").2, "the raw user is its own field");
    for honest in ["sip:+33-1-555@secsip.test;user=phone", "sip:%2B3316555@secsip.test", "sip:88216555@secsip.test"] {
        assert_eq!(inv(honest, "alice").0, Action::Forward, "{honest}");
    }
    assert_eq!(inv("sip:bob@secsip.test", "%61dmin").1.as_deref(), Some("user"));
    assert_eq!(inv("sip:bob@secsip.test", "Admin").0, Action::Forward, "users keep their case");
}
