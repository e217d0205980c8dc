//! `secsip ctl` end to end: the real binary against a fake management API that records each
//! request and answers canned JSON, so the wire format of every command is pinned down here
//! (the real server is checked against ctl separately).

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }
}

struct Fake {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A server answering `(METHOD, path-with-query) -> (status, body)`; anything else gets 404.
fn fake(routes: Vec<(&str, &str, u16, String)>) -> Fake {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let routes: Vec<(String, String, u16, String)> =
        routes.into_iter().map(|(m, p, s, b)| (m.to_string(), p.to_string(), s, b)).collect();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(c) = conn else { continue };
            serve(c, &routes, &log);
        }
    });
    Fake { url, seen }
}

fn serve(mut c: TcpStream, routes: &[(String, String, u16, String)], log: &Mutex<Vec<Seen>>) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut rl = lines.next().unwrap_or("").split(' ');
    let (method, path) = (rl.next().unwrap_or("").to_string(), rl.next().unwrap_or("").to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':').map(|(n, v)| (n.trim().to_string(), v.trim().to_string())))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = raw[head_end + 4..].to_vec();
    while body.len() < len {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    let (status, answer) = routes
        .iter()
        .find(|(m, p, _, _)| *m == method && *p == path)
        .map(|(_, _, s, b)| (*s, b.clone()))
        .unwrap_or((404, r#"{"error": {"code": "not_found", "message": "no such route in the fake"}}"#.into()));
    log.lock().unwrap().push(Seen { method, path, headers, body: String::from_utf8(body).unwrap() });
    let _ = write!(
        c,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn secsip(args: &[&str], env_token: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_secsip"));
    cmd.args(args).env_remove("SECSIP_TOKEN");
    if let Some(t) = env_token {
        cmd.env("SECSIP_TOKEN", t);
    }
    let o = cmd.output().expect("run secsip");
    Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Runs `secsip ctl --url FAKE ARGS...` against a server with one route; returns what the
/// server saw (exactly one request) and what the command printed.
fn one(method: &str, path: &str, status: u16, answer: Value, args: &[&str]) -> (Seen, Run) {
    one_env(method, path, status, answer, args, None)
}

fn one_env(method: &str, path: &str, status: u16, answer: Value, args: &[&str], token: Option<&str>) -> (Seen, Run) {
    let f = fake(vec![(method, path, status, answer.to_string())]);
    let mut full = vec!["ctl", "--url", f.url.as_str()];
    full.extend_from_slice(args);
    let r = secsip(&full, token);
    let seen = f.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one request for {args:?}: {seen:?}\nstderr: {}", r.err);
    let s = seen.into_iter().next().unwrap();
    assert_eq!((s.method.as_str(), s.path.as_str()), (method, path), "request line of {args:?}");
    (s, r)
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("secsip-ctl-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

// Times in the fake answers sit mid-unit (2h 15s, 3h 15s) so the printed "2h ago" does not
// change with how long the secsip process takes to start on a loaded machine.
fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

fn err_conflict(msg: &str) -> Value {
    json!({"error": {"code": "conflict", "message": msg}})
}

fn write_token(dir: &Path) -> PathBuf {
    let p = dir.join("token");
    std::fs::write(&p, "s3cret-token-0123456789\n").unwrap();
    p
}

#[test]
fn issue_example_lists_add_with_ttl_and_reason() {
    let d = tmpdir("lists-add");
    let tok = write_token(&d);
    let entry = json!({"value": "203.0.113.0/24", "source": "api", "reason": "scan",
                       "added_unix": now(), "expires_unix": now() + 3600.5});
    let (s, r) = one(
        "POST",
        "/api/lists/block-ip/entries",
        201,
        entry,
        &["--token-file", tok.to_str().unwrap(), "lists", "add", "block-ip", "203.0.113.0/24", "--ttl", "1h", "--reason", "scan"],
    );
    assert_eq!(s.json(), json!({"value": "203.0.113.0/24", "ttl_s": 3600, "reason": "scan"}));
    assert_eq!(s.header("Authorization"), Some("Bearer s3cret-token-0123456789"));
    assert_eq!(s.header("Content-Type"), Some("application/json"));
    assert_eq!(s.header("Connection"), Some("close"));
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    assert!(r.out.starts_with("added 203.0.113.0/24 to block-ip, expires in "), "{}", r.out);
    assert!(r.out.ends_with(", reason: scan\n"), "{}", r.out);
}

#[test]
fn issue_example_commit_confirmed() {
    let answer = json!({"name": "running", "version": "7-c0ffee", "valid": true, "rules": 12,
                        "pending_confirm": {"deadline_unix": now() + 60.0, "remaining_s": 60.0, "from": "candidate"}});
    let (s, r) = one("POST", "/api/datastores/copy", 200, answer, &["datastore", "copy", "candidate", "running", "--confirm", "60"]);
    assert_eq!(s.json(), json!({"from": "candidate", "to": "running", "confirm_s": 60}));
    assert_eq!(s.header("Authorization"), None, "no token configured, none sent");
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        r.out,
        "running: copied from candidate, version 7-c0ffee, 12 rule(s)\n\
         confirm within 1m with `secsip ctl datastore confirm`, or running goes back to the previous set\n"
    );
}

#[test]
fn confirm_rollback_reload() {
    let (s, r) = one("POST", "/api/confirm", 200, json!({"confirmed": true, "version": "7-c0ffee"}), &["datastore", "confirm"]);
    assert_eq!((s.body.as_str(), s.header("Content-Length")), ("", Some("0")));
    assert_eq!((r.code, r.out.as_str()), (0, "confirmed: running stays at version 7-c0ffee\n"));

    let (_, r) = one("POST", "/api/confirm", 409, err_conflict("no commit is waiting for confirmation"), &["datastore", "confirm"]);
    assert_eq!((r.code, r.out.as_str()), (1, ""));
    assert!(r.err.contains("conflict: no commit is waiting for confirmation (HTTP 409 conflict)"), "{}", r.err);

    let (_, r) = one("POST", "/api/rollback", 200, json!({"name": "running", "version": "6-aa", "rules": 9}), &["ds", "rollback"]);
    assert_eq!(r.out, "running rolled back to version 6-aa, 9 rule(s)\n");

    let (s, r) = one("POST", "/api/reload", 200, json!({"name": "running", "version": "8-bb", "rules": 10}), &["reload"]);
    assert_eq!(s.method, "POST");
    assert_eq!(r.out, "reloaded: startup is now running, version 8-bb, 10 rule(s)\n");
}

#[test]
fn set_a_directory_stale_version_is_a_plain_conflict() {
    let d = tmpdir("set-dir");
    std::fs::write(d.join("10-base.toml"), "[[rule]]\nid = \"a\"\n").unwrap();
    std::fs::create_dir_all(d.join("lists")).unwrap();
    std::fs::write(d.join("lists/bad-ua"), "friendly-scanner\n").unwrap();
    std::fs::write(d.join("notes.txt"), "ignored").unwrap();
    let (s, r) = one(
        "PUT",
        "/api/datastores/startup",
        409,
        err_conflict("version 3-old is not current (4-new)"),
        &["datastore", "set", "startup", d.to_str().unwrap(), "--version", "3-old"],
    );
    assert_eq!(
        s.json(),
        json!({"files": {"10-base.toml": "[[rule]]\nid = \"a\"\n", "lists/bad-ua": "friendly-scanner\n"}, "version": "3-old"})
    );
    assert_eq!(r.code, 1);
    assert_eq!(r.out, "");
    assert!(r.err.contains("conflict: version 3-old is not current (4-new) (HTTP 409 conflict)"), "{}", r.err);
    assert!(r.err.contains("someone changed it since"), "{}", r.err);
}

#[test]
fn set_one_file_and_invalid_rules_print_like_the_compiler() {
    let d = tmpdir("set-file");
    let f = d.join("20-scanners.toml");
    std::fs::write(&f, "[[rule]]\nid = \"ua-block\"\nmatch = \"sip.ua ~ \"\n").unwrap();
    let answer = json!({
        "error": {"code": "invalid_rules", "message": "1 error in the rules"},
        "errors": [{"file": "20-scanners.toml", "line": 3, "col": 9, "id": "ua-block", "key": "match", "message": "expected a value after '~'"}]
    });
    let (s, r) = one("PUT", "/api/datastores/running/files/20-scanners.toml", 422, answer, &["datastore", "set", "running", f.to_str().unwrap()]);
    assert_eq!(s.json(), json!({"text": "[[rule]]\nid = \"ua-block\"\nmatch = \"sip.ua ~ \"\n"}));
    assert_eq!(r.code, 1);
    // The error is shown at the local file the operator edits.
    let line = format!("{}:3:9: 'ua-block': match: expected a value after '~'", f.display());
    assert!(r.err.lines().any(|l| l == line), "{line} in:\n{}", r.err);
    assert!(r.err.contains("the rules do not compile: 1 error in the rules (HTTP 422 invalid_rules)"), "{}", r.err);
    assert!(r.err.contains("1 error(s)"), "{}", r.err);
}

#[test]
fn copy_of_an_invalid_candidate_is_refused_with_its_errors() {
    let answer = json!({
        "error": {"code": "invalid_rules", "message": "candidate does not compile"},
        "errors": [{"file": "20-scanners.toml", "line": 12, "col": 5, "id": "ua-block", "key": "match", "message": "unknown field 'sip.uaa'"},
                   {"file": "lists/bad-ua", "line": 2, "col": 1, "id": null, "key": null, "message": "empty entry"}]
    });
    let (_, r) = one("POST", "/api/datastores/copy", 422, answer, &["datastore", "copy", "candidate", "running"]);
    assert_eq!(r.code, 1);
    let lines: Vec<&str> = r.err.lines().collect();
    assert!(lines.contains(&"20-scanners.toml:12:5: 'ua-block': match: unknown field 'sip.uaa'"), "{}", r.err);
    assert!(lines.contains(&"lists/bad-ua:2:1: empty entry"), "{}", r.err);
}

#[test]
fn validate_exit_status_follows_validity() {
    let bad = json!({"valid": false, "rules": null, "errors": [{"file": "20-scanners.toml", "line": 4, "col": 1, "id": "x", "key": null, "message": "unknown key 'actoin'"}]});
    let (s, r) = one("POST", "/api/datastores/candidate/validate", 200, bad, &["datastore", "validate", "candidate"]);
    assert_eq!(s.body, "");
    assert_eq!(r.code, 1);
    assert_eq!(r.err, "20-scanners.toml:4:1: 'x': unknown key 'actoin'\ncandidate: 1 error(s)\n");

    let d = tmpdir("validate");
    std::fs::write(d.join("20-scanners.toml"), "# fixed\n").unwrap();
    let good = json!({"valid": true, "rules": 5, "errors": []});
    let (s, r) = one(
        "POST",
        "/api/datastores/running/validate",
        200,
        good,
        &["datastore", "validate", "running", "--with", d.to_str().unwrap()],
    );
    assert_eq!(s.json(), json!({"files": {"20-scanners.toml": "# fixed\n"}}));
    assert_eq!((r.code, r.out.clone()), (0, format!("running with {}: ok, 5 rule(s)\n", d.display())));
}

#[test]
fn unauthorized_explains_where_the_token_comes_from() {
    let (s, r) = one("GET", "/api/stats", 401, json!({"error": {"code": "unauthorized", "message": "a bearer token is required"}}), &["stats"]);
    assert_eq!(s.header("Authorization"), None);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("unauthorized: a bearer token is required (HTTP 401 unauthorized)"), "{}", r.err);
    assert!(r.err.contains("--token-file") && r.err.contains("SECSIP_TOKEN"), "{}", r.err);
    // With --json the error body is printed on stdout as well, for scripts.
    let (_, r) = one("GET", "/api/rules", 401, json!({"error": {"code": "unauthorized", "message": "m"}}), &["rules", "--json"]);
    assert_eq!(serde_json::from_str::<Value>(&r.out).unwrap()["error"]["code"], "unauthorized");
}

#[test]
fn token_from_the_environment() {
    let (s, r) = one_env("GET", "/api/bans", 200, json!({"bans": []}), &["bans"], Some("env-token-0123456789"));
    assert_eq!(s.header("Authorization"), Some("Bearer env-token-0123456789"));
    assert_eq!(r.out, "no bans\n");
}

#[test]
fn url_and_token_from_the_configuration() {
    let f = fake(vec![("GET", "/api/health", 200, json!({"ok": true, "version": "0.1.0", "pid": 7, "uptime_s": 61}).to_string())]);
    let d = tmpdir("config");
    let tok = write_token(&d);
    let bind = f.url.trim_start_matches("http://");
    let cfg = d.join("secsip.toml");
    // Keys this binary does not know are fine: only [management] bind and token_file are read.
    std::fs::write(
        &cfg,
        format!("[management]\nbind = \"{bind}\"\ntoken_file = \"{}\"\nfuture_key = 1\n[future_section]\nx = 2\n", tok.display()),
    )
    .unwrap();
    let r = secsip(&["-c", cfg.to_str().unwrap(), "ctl", "health"], Some("ignored-env-token"));
    assert_eq!((r.code, r.out.as_str()), (0, "ok: secsip 0.1.0, pid 7, up 1m1s\n"), "{}", r.err);
    let seen = f.seen.lock().unwrap().clone();
    assert_eq!(seen[0].header("Authorization"), Some("Bearer s3cret-token-0123456789"));
    assert_eq!(seen[0].header("Host"), Some(bind));
}

#[test]
fn lists_and_bans() {
    let (s, r) = one(
        "GET",
        "/api/lists",
        200,
        json!({"lists": [{"id": "block-ip", "kind": "ip", "rules_entries": 3, "api_entries": 1}]}),
        &["lists"],
    );
    assert_eq!(s.method, "GET");
    assert_eq!(r.out, "ID        KIND  FROM RULES  FROM API\nblock-ip  ip    3           1\n");

    let (_, r) = one(
        "GET",
        "/api/lists/block-ua",
        200,
        json!({"id": "block-ua", "kind": "user_agent", "entries": [{"value": "friendly-scanner", "source": "rules", "reason": null, "added_unix": null, "expires_unix": null}]}),
        &["lists", "show", "block-ua"],
    );
    assert_eq!(r.out, "block-ua (user_agent): 1 entry\nVALUE             SOURCE  ADDED  EXPIRES  REASON\nfriendly-scanner  rules   -      never    -\n");

    let (s, r) = one(
        "DELETE",
        "/api/lists/block-ip/entries?value=203.0.113.0/24",
        200,
        json!({"removed": {"value": "203.0.113.0/24"}}),
        &["lists", "remove", "block-ip", "203.0.113.0/24"],
    );
    assert_eq!(s.header("Content-Length"), Some("0"));
    assert_eq!(r.out, "removed 203.0.113.0/24 from block-ip\n");

    let (_, r) = one(
        "DELETE",
        "/api/lists/block-ip/entries?value=192.0.2.0/24",
        409,
        err_conflict("192.0.2.0/24 comes from a rule file (10-base.toml); edit the rules to remove it"),
        &["lists", "remove", "block-ip", "192.0.2.0/24"],
    );
    assert_eq!(r.code, 1);
    assert!(r.err.contains("conflict: 192.0.2.0/24 comes from a rule file"), "{}", r.err);

    let (s, r) = one(
        "POST",
        "/api/bans",
        201,
        json!({"ip": "198.51.100.7", "remaining_s": 600, "rule": "api", "reason": "flood"}),
        &["bans", "add", "198.51.100.7", "--ttl", "10m", "--reason", "flood"],
    );
    assert_eq!(s.json(), json!({"ip": "198.51.100.7", "ttl_s": 600, "reason": "flood"}));
    assert_eq!(r.out, "banned 198.51.100.7 for 10m, reason: flood\n");

    let (s, r) = one("DELETE", "/api/bans/2001:db8::7", 200, json!({"removed": "2001:db8::7"}), &["bans", "remove", "2001:db8::7"]);
    assert_eq!(s.body, "");
    assert_eq!(r.out, "unbanned 2001:db8::7\n");

    let (_, r) = one("DELETE", "/api/bans/192.0.2.9", 404, json!({"error": {"code": "not_found", "message": "192.0.2.9 is not banned"}}), &["bans", "rm", "192.0.2.9"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("not found: 192.0.2.9 is not banned (HTTP 404 not_found)"), "{}", r.err);
}

#[test]
fn datastores_list_get_diff() {
    let (_, r) = one(
        "GET",
        "/api/datastores",
        200,
        json!({"datastores": [{"name": "running", "version": "3-ab", "files": 2, "bytes": 900, "valid": true, "rules": 7, "modified_unix": now() - 7215.0}],
               "pending_confirm": null, "previous_running": false}),
        &["datastore", "list"],
    );
    assert_eq!(r.out, "NAME     VERSION  FILES  BYTES  VALID  RULES  MODIFIED\nrunning  3-ab     2      900    yes    7      2h ago\n");

    let files = json!({"name": "candidate", "version": "5-ef", "files": {"10-base.toml": "a = 1\n", "lists/bad-ua": "x\ny\n"}});
    let (_, r) = one("GET", "/api/datastores/candidate", 200, files.clone(), &["datastore", "get", "candidate"]);
    assert!(r.out.starts_with("candidate: version 5-ef, 2 file(s)\nPATH          BYTES  LINES\n10-base.toml  6      1\nlists/bad-ua  4      2\n"), "{}", r.out);

    let out = tmpdir("get-out").join("cand");
    let (_, r) = one("GET", "/api/datastores/candidate", 200, files, &["datastore", "get", "candidate", "--out", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(std::fs::read_to_string(out.join("10-base.toml")).unwrap(), "a = 1\n");
    assert_eq!(std::fs::read_to_string(out.join("lists/bad-ua")).unwrap(), "x\ny\n");

    let (_, r) = one(
        "GET",
        "/api/datastores/running/files/lists/bad-ua",
        200,
        json!({"name": "running", "version": "3-ab", "path": "lists/bad-ua", "text": "friendly-scanner\nsipvicious\n"}),
        &["datastore", "get", "running", "lists/bad-ua"],
    );
    assert_eq!(r.out, "friendly-scanner\nsipvicious\n");

    let (_, r) = one(
        "GET",
        "/api/datastores/diff?from=running&to=candidate",
        200,
        json!({"from": "running", "to": "candidate", "files": [{"path": "20-scanners.toml", "status": "added", "diff": "--- /dev/null\n+++ 20-scanners.toml\n@@ -0,0 +1 @@\n+a = 1\n"}]}),
        &["datastore", "diff", "running", "candidate"],
    );
    assert_eq!(r.out, "# added: 20-scanners.toml\n--- /dev/null\n+++ 20-scanners.toml\n@@ -0,0 +1 @@\n+a = 1\n");
}

#[test]
fn stats_rules_metrics() {
    let (s, r) = one("POST", "/api/stats/reset", 200, json!({"since_unix": now()}), &["stats", "--reset"]);
    assert_eq!(s.header("Content-Length"), Some("0"));
    assert!(r.out.starts_with("counters reset"), "{}", r.out);

    let report = json!({"version": "0.1.0", "pid": 9, "uptime_s": 10.0, "mode": "bridge", "since_unix": now() - 10815.0});
    let (_, r) = one("GET", "/api/stats", 200, report.clone(), &["stats"]);
    assert!(r.out.starts_with("secsip 0.1.0 — pid 9"), "{}", r.out);
    assert!(r.out.contains("since 3h ago"), "{}", r.out);
    let (_, r) = one("GET", "/api/stats", 200, report.clone(), &["stats", "--json"]);
    assert_eq!(serde_json::from_str::<Value>(&r.out).unwrap(), report);

    let (_, r) = one(
        "GET",
        "/api/rules",
        200,
        json!({"version": "3-ab", "rules": [
            {"id": "block-ua", "description": "scanners by user agent", "action": "drop", "mode": "enforce", "file": "20-scanners.toml", "line": 4, "hits": 17},
            {"id": "watch-options", "description": "", "action": "drop", "mode": "monitor", "file": "30-watch.toml", "line": 1, "hits": 0}]}),
        &["rules"],
    );
    assert_eq!(
        r.out,
        "running version 3-ab, 2 rule(s)\n\
         #  ID             ACTION  MODE     HITS  FILE:LINE           DESCRIPTION\n\
         1  block-ua       drop    enforce  17    20-scanners.toml:4  scanners by user agent\n\
         2  watch-options  drop    monitor  0     30-watch.toml:1\n"
    );

    let f = fake(vec![("GET", "/metrics", 200, "# TYPE secsip_frames_total counter\nsecsip_frames_total{nic=\"outside\"} 5\n".into())]);
    let r = secsip(&["ctl", "--url", &f.url, "metrics"], None);
    assert_eq!((r.code, r.out.as_str()), (0, "# TYPE secsip_frames_total counter\nsecsip_frames_total{nic=\"outside\"} 5\n"));
}

#[test]
fn connection_refused_and_bad_arguments() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let r = secsip(&["ctl", "--url", &format!("http://127.0.0.1:{port}"), "bans"], None);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.err,
        format!("secsip: cannot connect to 127.0.0.1:{port}: connection refused (is secsip running with [management] enabled?)\n")
    );
    let r = secsip(&["ctl", "lists", "add", "block-ip", "1.2.3.4", "--ttl", "1y"], None);
    assert_eq!(r.code, 2, "a usage error, as clap reports them");
    assert!(r.err.contains("unknown unit 'y'"), "{}", r.err);
    let r = secsip(&["ctl", "--url", "https://127.0.0.1:1", "bans"], None);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("https is not supported"), "{}", r.err);
}

#[test]
fn help_teaches_with_examples() {
    let r = secsip(&["ctl", "--help"], None);
    assert_eq!(r.code, 0);
    for s in [
        "secsip ctl lists add block-ip 203.0.113.0/24 --ttl 1h --reason scan",
        "secsip ctl datastore copy candidate running --confirm 60",
        "--token-file",
        "SECSIP_TOKEN",
    ] {
        assert!(r.out.contains(s), "{s} in ctl --help");
    }
    let r = secsip(&["--help"], None);
    assert!(r.out.contains("ctl"), "{}", r.out);
}
