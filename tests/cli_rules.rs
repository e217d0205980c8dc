//! `secsip rules check` and `secsip rules test` as an operator runs them: the built binary, its
//! exit status and what it prints (the schedule, errors at `file:line:col: 'rule': key`, hit
//! counts per rule).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `secsip ARGS` run from the repository root.
fn secsip(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_secsip")).args(args).current_dir(repo()).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fresh rules directory holding `files` (name, contents), unique to this test.
fn rules_dir(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let d = std::env::temp_dir().join(format!("secsip-cli-rules-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    for (name, body) in files {
        std::fs::write(d.join(name), body).unwrap();
    }
    d
}

/// `secsip rules check DIR` on a broken directory: exit status 1, nothing on stdout, and the
/// stderr (returned) ends with the error count.
fn check_fails(dir: &Path, errors: usize) -> String {
    let out = secsip(&["rules", "check", dir.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stdout:\n{}\nstderr:\n{err}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "", "a refused rule set printed a schedule");
    assert!(err.trim_end().ends_with(&format!("{}: {errors} error(s)", dir.display())), "{err}");
    std::fs::remove_dir_all(dir).ok();
    err
}

const RULE: &str = "[[rule]]\nid = \"a\"\naction = \"drop\"\nwhen = 'sip.ua == \"x\"'\n";

#[test]
fn check_of_the_shipped_rules_succeeds_and_prints_the_schedule() {
    let out = secsip(&["rules", "check", "rules/", "-c", "config/secsip.toml"]);
    let s = text(&out.stdout);
    assert!(out.status.success(), "{}\n{}", s, text(&out.stderr));
    assert!(s.starts_with("36 rules, 1 definitions, 15 objects, 8 lists from 10 file(s)\n"), "{s}");
    assert!(s.contains("\nschedule (evaluation order):\n"), "{s}");
    // Each scheduled rule: position, id, action, what it runs on, where it is declared.
    let row = |id: &str| s.lines().find(|l| l.split_whitespace().nth(1) == Some(id)).map(|l| l.split_whitespace().collect::<Vec<_>>());
    assert_eq!(row("allow-trusted-source").unwrap(), ["1", "allow-trusted-source", "accept", "on", "all", "00-allow.toml:10"]);
    assert_eq!(row("scanner-user-agent").unwrap(), ["13", "scanner-user-agent", "ban", "on", "all", "20-scanners.toml:13"]);
    assert_eq!(row("auth-bruteforce-user").unwrap(), ["32", "auth-bruteforce-user", "reject", "on", "REGISTER", "50-auth.toml:49"]);
    let scheduled = s.lines().filter(|l| l.starts_with(' ') && l.split_whitespace().next().is_some_and(|n| n.parse::<u32>().is_ok())).count();
    assert_eq!(scheduled, 37, "36 rules and 1 definition in the schedule:\n{s}");
    assert!(s.contains("\nfields parsed: sip.ruri, "), "{s}");
    assert!(s.trim_end().ends_with("rules/: ok"), "{s}");
}

#[test]
fn a_toml_syntax_error_is_refused_at_its_line_and_column() {
    let d = rules_dir("syntax", &[("10-ok.toml", RULE), ("20-bad.toml", "# a comment\n[[rule]\nid = \"b\"\n")]);
    let err = check_fails(&d, 1);
    assert!(err.starts_with(&format!("{}:2:8: ", d.join("20-bad.toml").display())), "{err}");
    assert!(err.contains("unclosed array table, expected `]`"), "{err}");
}

#[test]
fn an_unknown_field_is_refused_naming_it_and_the_known_ones() {
    let d = rules_dir("unknown", &[("10-bad.toml", &format!("{RULE}severty = 1\n"))]);
    let err = check_fails(&d, 1);
    assert!(err.starts_with(&format!("{}:5:1: unknown field `severty`, expected one of ", d.join("10-bad.toml").display())), "{err}");
    assert!(err.contains("`severity`"), "the field meant is not offered: {err}");
}

#[test]
fn an_unknown_field_name_in_a_condition_is_refused_at_its_column() {
    let d = rules_dir("when", &[("10-bad.toml", "[[rule]]\nid = \"a\"\naction = \"drop\"\nwhen = 'sip.nosuch == \"x\"'\n")]);
    let err = check_fails(&d, 1);
    let f = d.join("10-bad.toml");
    assert!(err.starts_with(&format!("{}:4:9: 'a': when: unknown field or object 'sip.nosuch'", f.display())), "{err}");
}

#[test]
fn a_duplicate_id_is_refused_naming_both_places() {
    let d = rules_dir("dup", &[("10-a.toml", RULE), ("20-b.toml", &format!("# again\n\n{RULE}"))]);
    let (a, b) = (d.join("10-a.toml"), d.join("20-b.toml"));
    let err = check_fails(&d, 1);
    assert!(err.starts_with(&format!("{}:4:6: 'a': id: duplicate id: already used at {}:2\n", b.display(), a.display())), "{err}");
}

#[test]
fn every_broken_file_is_reported_in_one_run() {
    let d = rules_dir("many", &[("10-a.toml", "[[rule]\n"), ("20-b.toml", &format!("{RULE}bogus = 1\n"))]);
    let err = check_fails(&d, 2);
    assert!(err.contains("10-a.toml:1:8: unclosed array table"), "{err}");
    assert!(err.contains("20-b.toml:5:1: unknown field `bogus`"), "{err}");
}

#[test]
fn a_missing_rules_directory_is_named() {
    let out = secsip(&["rules", "check", "/nonexistent/rules"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with("/nonexistent/rules:1:1: cannot read rules directory: No such file or directory"), "{err}");
}

#[test]
fn test_of_a_sipvicious_scan_names_the_scanner_rule_and_what_it_stopped() {
    let out = secsip(&["rules", "test", "rules/", "--pcap", "tests/pcaps/sipvicious-scan.pcap", "-c", "config/secsip.toml"]);
    let s = text(&out.stdout);
    assert!(out.status.success(), "{s}\n{}", text(&out.stderr));
    // Only the message a rule fired on gets a line: the first OPTIONS, banned by its User-Agent.
    let fired: Vec<&str> = s.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(fired.len(), 1, "{s}");
    let f: Vec<&str> = fired[0].split_whitespace().collect();
    assert_eq!(f[1..6], ["udp", "10.77.0.1:5060", "->", "10.77.0.2:5060", "OPTIONS"], "{s}");
    assert_eq!(f[6], "drop", "{s}");
    assert!(f.contains(&"rule=scanner-user-agent") && f.contains(&"tags=scanner"), "{s}");
    // The summary: every message dropped (the rest by the ban), and the rule's hit counts.
    let row = |label: &str| s.lines().find_map(|l| l.trim_start().strip_prefix(label)).map(|r| r.split_whitespace().collect::<Vec<_>>());
    assert_eq!(row("message verdicts").unwrap(), ["drop", "294"], "{s}");
    assert_eq!(row("frames by cause").unwrap(), ["banned", "293", "rule:scanner-user-agent", "1"], "{s}");
    assert_eq!(row("rules").unwrap(), ["36", "loaded,", "1", "fired"], "{s}");
    assert_eq!(row("scanner-user-agent").unwrap(), ["fired", "1", "decided", "1"], "{s}");
    assert!(!s.contains("accept"), "a scanner message was accepted:\n{s}");
}

#[test]
fn test_with_a_missing_capture_fails_naming_the_file() {
    let out = secsip(&["rules", "test", "rules/", "--pcap", "tests/pcaps/no-such.pcap", "-c", "config/secsip.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr).trim_end(), "secsip: tests/pcaps/no-such.pcap: No such file or directory (os error 2)");
}

#[test]
fn test_with_broken_rules_fails_before_reading_the_capture() {
    let d = rules_dir("test-broken", &[("10-bad.toml", &format!("{RULE}bogus = 1\n"))]);
    let out = secsip(&["rules", "test", d.to_str().unwrap(), "--pcap", "tests/pcaps/sipvicious-scan.pcap"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("10-bad.toml:5:1: unknown field `bogus`"), "{err}");
    assert_eq!(text(&out.stdout), "", "replayed with a rule set that does not compile");
    std::fs::remove_dir_all(&d).ok();
}
