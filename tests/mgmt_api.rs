//! The management API over real HTTP, without NICs: the server on an ephemeral loopback port,
//! a Store over a temp rules directory, a fake report, and an engine fed from the same rule
//! slot the API swaps.

use secsip::config::{EngineConfig, ManagementConfig};
use secsip::engine::{Engine, Outcome};
use secsip::fixtures::{self, CallParams};
use secsip::hash::Keyer;
use secsip::hosttable::{HostLimits, HostTable};
use secsip::mgmt::api::Report;
use secsip::mgmt::server::{start_management, Server};
use secsip::mgmt::store::{Clock, Limits, Store};
use secsip::rules::{CompileOptions, RuleSet};
use secsip::verdict::{Action, Cause};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RULES: &str = r#"[[list]]
id = "block-ip"
kind = "ip"
entries = ["192.0.2.250"]

[[rule]]
id = "block-listed-source"
when = 'ip.src in list.block-ip'
action = "drop"
"#;

const EXTRA: &str = "[[rule]]\nid = \"no-message\"\nwhen = 'sip.method == \"MESSAGE\"'\naction = \"drop\"\n";

struct Fixture {
    server: Option<Server>,
    store: Arc<Mutex<Store>>,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        if let Some(s) = self.server.take() {
            s.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let mut prev = self.dir.clone().into_os_string();
        prev.push(".prev");
        let _ = std::fs::remove_dir_all(prev);
    }
}

fn fixture(name: &str, token: Option<&str>, max_body: usize) -> Fixture {
    let dir = std::env::temp_dir().join(format!("secsip-mgmt-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("10-block.toml"), RULES).unwrap();
    let hosts = Arc::new(HostTable::new(HostLimits::default()));
    let store = Store::open(Some(dir.clone()), CompileOptions::standard(), Limits::default(), hosts, Default::default(), Clock::system()).unwrap();
    let store = Arc::new(Mutex::new(store));
    let mut cfg = ManagementConfig { bind: "127.0.0.1:0".into(), max_body_bytes: max_body, ..Default::default() };
    if let Some(t) = token {
        let f = dir.join("token");
        std::fs::write(&f, format!("{t}\n")).unwrap();
        cfg.token_file = Some(f);
    }
    let report: Report = Box::new(|| json!({"version": "test", "uptime_s": 1.0, "verdicts": {}, "rule_hits": {"block-listed-source": 2}}));
    let server = start_management(&cfg, store.clone(), report).unwrap();
    // The daemon's main loop ticks the store every 100 ms; so does this thread.
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for line in store.lock().unwrap().tick() {
                    eprintln!("{line}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    Fixture { server: Some(server), store, dir, stop, ticker: Some(ticker) }
}

impl Fixture {
    fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().addr()
    }
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.call_h(method, path, body, &[])
    }
    fn call_h(&self, method: &str, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, _, text) = http(self.addr(), method, path, headers, body.as_bytes(), None);
        (status, serde_json::from_slice(&text).unwrap_or(Value::Null))
    }
    fn slot_set(&self) -> Arc<RuleSet> {
        self.store.lock().unwrap().slot().load_full()
    }
}

/// One HTTP/1.1 exchange; `declared` overrides the Content-Length sent.
fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8], declared: Option<usize>) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", declared.unwrap_or(body.len()));
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head");
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, out[split + 4..].to_vec())
}

#[test]
fn commit_confirmed_with_a_1s_timeout_rolls_back() {
    let f = fixture("confirm", None, 1 << 20);
    let (st, v) = f.call("PUT", "/api/datastores/candidate/files/20-extra.toml", Some(&json!({"text": EXTRA})));
    assert_eq!((st, v["valid"].as_bool()), (200, Some(true)), "{v}");
    let (st, v) = f.call("POST", "/api/datastores/copy", Some(&json!({"from": "candidate", "to": "running", "confirm_s": 1})));
    assert_eq!((st, v["rules"].as_u64()), (200, Some(2)), "{v}");
    assert!(v["pending_confirm"]["deadline_unix"].as_f64().is_some(), "{v}");
    assert!(f.slot_set().rule_index("no-message").is_some(), "committed: the engines' slot holds the new set");
    let t0 = Instant::now();
    loop {
        let (_, d) = f.call("GET", "/api/datastores", None);
        if d["pending_confirm"].is_null() {
            assert_eq!(d["datastores"][0]["rules"], 1, "{d}");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "never rolled back: {d}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(t0.elapsed() >= Duration::from_millis(700), "rolled back too early");
    assert!(f.slot_set().rule_index("no-message").is_none(), "the engines run the previous set again");
    let (st, v) = f.call("POST", "/api/confirm", None);
    assert_eq!((st, v["error"]["code"].as_str()), (409, Some("conflict")), "nothing left to confirm");
    // Confirmed in time, it stays.
    f.call("POST", "/api/datastores/copy", Some(&json!({"from": "candidate", "to": "running", "confirm_s": 1})));
    let (st, v) = f.call("POST", "/api/confirm", None);
    assert_eq!((st, v["confirmed"].as_bool()), (200, Some(true)));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(f.slot_set().rule_index("no-message").is_some());
}

#[test]
fn stale_write_is_409_and_changes_nothing() {
    let f = fixture("stale", None, 1 << 20);
    let (_, v) = f.call("GET", "/api/datastores/running", None);
    let v0 = v["version"].as_str().unwrap().to_string();
    let (st, v) = f.call("PUT", "/api/datastores/running/files/20-extra.toml", Some(&json!({"text": EXTRA, "version": v0})));
    assert_eq!(st, 200, "{v}");
    let v1 = v["version"].as_str().unwrap().to_string();
    let (st, v) = f.call("PUT", "/api/datastores/running/files/30-other.toml", Some(&json!({"text": EXTRA.replace("no-message", "x"), "version": v0})));
    assert_eq!((st, v["error"]["code"].as_str()), (409, Some("conflict")), "{v}");
    let (st, v) = f.call_h("DELETE", "/api/datastores/running/files/20-extra.toml", None, &[("If-Match", &format!("\"{v0}\""))]);
    assert_eq!((st, v["error"]["code"].as_str()), (409, Some("conflict")), "{v}");
    let (_, v) = f.call("GET", "/api/datastores/running", None);
    assert_eq!(v["version"].as_str(), Some(v1.as_str()));
    assert_eq!(v["files"].as_object().unwrap().len(), 2);
}

#[test]
fn oversized_body_is_413_before_it_is_read() {
    let f = fixture("large", None, 4096);
    // Declared far larger than what is sent: the answer comes without waiting for the body.
    let t0 = Instant::now();
    let (st, _, body) = http(f.addr(), "PUT", "/api/datastores/candidate", &[], b"{\"files\":", Some(1 << 30));
    assert_eq!(st, 413);
    assert!(t0.elapsed() < Duration::from_secs(3), "the server waited for the body");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "too_large");
    // Really sent, one byte over.
    let text = "#".repeat(4097);
    let (st, _, _) = http(f.addr(), "PUT", "/api/datastores/candidate/files/a.toml", &[], text.as_bytes(), None);
    assert_eq!(st, 413);
    let (_, v) = f.call("GET", "/api/datastores/candidate", None);
    assert!(v["files"].get("a.toml").is_none());
    // Malformed requests get 400, and the server keeps serving.
    let mut s = TcpStream::connect(f.addr()).unwrap();
    s.write_all(b"NOT HTTP\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
    let (st, v) = f.call("PUT", "/api/datastores/candidate", Some(&json!({"files": 5})));
    assert_eq!((st, v["error"]["code"].as_str()), (400, Some("bad_json")));
    assert_eq!(f.call("GET", "/api/health", None).0, 200);
}

#[test]
fn token_is_required_when_configured_and_beyond_loopback() {
    let f = fixture("token", Some("s3cret-token-0123456789"), 1 << 20);
    let (st, v) = f.call("GET", "/api/datastores", None);
    assert_eq!((st, v["error"]["code"].as_str()), (401, Some("unauthorized")));
    let (st, _) = f.call_h("GET", "/api/datastores", None, &[("Authorization", "Bearer wrong-token-0123456789")]);
    assert_eq!(st, 401);
    // 401 comes before the body is read, whatever its declared size.
    let (st, _, _) = http(f.addr(), "PUT", "/api/datastores/candidate", &[], b"{", Some(1 << 30));
    assert_eq!(st, 401);
    let (st, _) = f.call_h("GET", "/api/datastores", None, &[("Authorization", "Bearer s3cret-token-0123456789")]);
    assert_eq!(st, 200);
    let (st, head, _) = http(f.addr(), "GET", "/", &[], b"", None);
    assert_eq!(st, 200, "the page itself loads without the token");
    assert!(head.contains("text/html"));
    // Beyond loopback without a token: refused.
    let cfg = ManagementConfig { bind: "0.0.0.0:0".into(), ..Default::default() };
    let report: Report = Box::new(|| json!({}));
    let e = start_management(&cfg, f.store.clone(), report).err().expect("refused");
    assert!(e.contains("loopback") && e.contains("token_file"), "{e}");
}

/// An OPTIONS from `src` through an engine running the slot's current set.
fn judge(set: Arc<RuleSet>, src: SocketAddr) -> (Action, Option<String>) {
    let hosts = Arc::new(HostTable::new(HostLimits::default()));
    let mut engine = Engine::with_rules(EngineConfig::default(), Keyer::with_keys(5, 7), set.clone(), hosts);
    let p = CallParams::default().with_client(src);
    let frame = fixtures::udp_frame(src, p.server_addr(), &fixtures::options(&p, 1));
    match engine.handle(100_000_000_000, &frame, 1) {
        Outcome::Judged(j) => (
            j.verdict.action,
            match j.verdict.cause {
                Cause::Rule(i) => Some(set.rules[i as usize].id.clone()),
                _ => None,
            },
        ),
        _ => panic!("held"),
    }
}

#[test]
fn a_list_entry_added_through_the_api_changes_what_the_rule_matches() {
    let f = fixture("lists", None, 1 << 20);
    let src: SocketAddr = "203.0.113.45:5060".parse().unwrap();
    let (action, rule) = judge(f.slot_set(), src);
    assert_eq!((action, rule), (Action::Forward, None), "not listed yet");
    let (st, v) = f.call("POST", "/api/lists/block-ip/entries", Some(&json!({"value": "203.0.113.0/24", "ttl_s": 2, "reason": "scan"})));
    assert_eq!((st, v["source"].as_str()), (201, Some("api")), "{v}");
    let (action, rule) = judge(f.slot_set(), src);
    assert_eq!((action, rule.as_deref()), (Action::Drop, Some("block-listed-source")), "the swapped set drops it");
    let (_, l) = f.call("GET", "/api/lists", None);
    assert_eq!(l["lists"][0], json!({"id": "block-ip", "kind": "ip", "rules_entries": 1, "api_entries": 1}));
    let (st, v) = f.call("POST", "/api/lists/block-ip/entries", Some(&json!({"value": "example.com"})));
    assert_eq!((st, v["error"]["code"].as_str()), (400, Some("bad_request")), "checked by the list's kind");
    // The TTL runs out: the management tick removes it and the source passes again.
    let t0 = Instant::now();
    while judge(f.slot_set(), src).0 != Action::Forward {
        assert!(t0.elapsed() < Duration::from_secs(5), "the entry never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, l) = f.call("GET", "/api/lists/block-ip", None);
    assert_eq!(l["entries"].as_array().unwrap().len(), 1, "{l}");
    // Removal through the API, too.
    f.call("POST", "/api/lists/block-ip/entries", Some(&json!({"value": "203.0.113.45"})));
    assert_eq!(judge(f.slot_set(), src).0, Action::Drop);
    let (st, _) = f.call("DELETE", "/api/lists/block-ip/entries?value=203.0.113.45", None);
    assert_eq!(st, 200);
    assert_eq!(judge(f.slot_set(), src).0, Action::Forward);
    let (_, r) = f.call("GET", "/api/rules", None);
    assert_eq!((r["rules"][0]["id"].as_str(), r["rules"][0]["hits"].as_u64()), (Some("block-listed-source"), Some(2)));
}

/// Runs `secsip ctl --url ... --token-file ... ARGS`; returns (exit code, stdout, stderr).
fn ctl(f: &Fixture, token_file: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_secsip"))
        .arg("ctl")
        .arg("--url")
        .arg(format!("http://{}", f.addr()))
        .arg("--token-file")
        .arg(token_file)
        .args(args)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn secsip_ctl_drives_the_real_server() {
    let token = "ctl-test-token-0123456789";
    let f = fixture("ctl", Some(token), 1 << 20);
    let tf = f.dir.join("token");
    let auth = format!("Bearer {token}");
    let get = |path: &str| f.call_h("GET", path, None, &[("Authorization", &auth)]).1;

    // The issue's own examples, verbatim after the connection options.
    let (code, _, err) = ctl(&f, &tf, &["lists", "add", "block-ip", "203.0.113.0/24", "--ttl", "1h", "--reason", "scan"]);
    assert_eq!(code, 0, "{err}");
    let list = get("/api/lists/block-ip");
    let e = list["entries"].as_array().unwrap().iter().find(|e| e["value"] == "203.0.113.0/24").cloned().unwrap_or_default();
    assert_eq!((e["source"].as_str(), e["reason"].as_str()), (Some("api"), Some("scan")), "{list}");
    let ttl = e["expires_unix"].as_f64().unwrap() - e["added_unix"].as_f64().unwrap();
    assert!((ttl - 3600.0).abs() < 2.0, "ttl {ttl}");
    assert!(judge(f.slot_set(), "203.0.113.9:5060".parse().unwrap()).0 == Action::Drop, "the listed network is dropped");

    let extra = f.dir.join("20-extra.toml");
    std::fs::write(&extra, EXTRA).unwrap();
    let (code, _, err) = ctl(&f, &tf, &["datastore", "set", "candidate", extra.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = ctl(&f, &tf, &["datastore", "copy", "candidate", "running", "--confirm", "60"]);
    assert_eq!(code, 0, "{err}");
    let d = get("/api/datastores");
    assert!(d["pending_confirm"]["remaining_s"].as_f64().unwrap() > 50.0, "{d}");
    assert!(f.slot_set().rule_index("no-message").is_some());
    let (code, _, err) = ctl(&f, &tf, &["datastore", "confirm"]);
    assert_eq!(code, 0, "{err}");
    assert!(get("/api/datastores")["pending_confirm"].is_null());
    // Nothing left to confirm: a 409 the operator can read, exit 1.
    let (code, _, err) = ctl(&f, &tf, &["datastore", "confirm"]);
    assert_eq!(code, 1);
    assert!(err.contains("409"), "{err}");

    // A broken candidate file: validate names file:line:col and fails; running is unchanged.
    std::fs::write(&extra, "[[rule]]\nid = \"broken\"\nwhen = 'sip.method == '\n").unwrap();
    let (code, _, err) = ctl(&f, &tf, &["datastore", "set", "candidate", extra.to_str().unwrap()]);
    assert_eq!(code, 0, "a draft is saved: {err}");
    let (code, out, err) = ctl(&f, &tf, &["datastore", "validate", "candidate"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(format!("{out}{err}").contains("20-extra.toml:3:"), "{out}{err}");
    let (code, _, err) = ctl(&f, &tf, &["datastore", "copy", "candidate", "running"]);
    assert_eq!(code, 1);
    assert!(err.contains("20-extra.toml:3:"), "{err}");
    assert!(f.slot_set().rule_index("no-message").is_some(), "running kept the confirmed set");
    // The broken file is in the rules directory too: a reload is refused, each error printed once
    // with its place, and the engines keep what they run.
    let (code, _, err) = ctl(&f, &tf, &["reload"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("reload refused, the running rules stay: 1 error(s)"), "{err}");
    assert_eq!(err.matches("20-extra.toml:3:").count(), 1, "{err}");
    assert!(f.slot_set().rule_index("no-message").is_some(), "running kept the confirmed set");

    // Bans: add, list, remove.
    let (code, _, err) = ctl(&f, &tf, &["bans", "add", "198.51.100.7", "--ttl", "10m", "--reason", "test"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = ctl(&f, &tf, &["bans"]);
    assert!(code == 0 && out.contains("198.51.100.7"), "{out}");
    let (code, _, err) = ctl(&f, &tf, &["bans", "remove", "198.51.100.7"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(get("/api/bans")["bans"].as_array().map(Vec::len), Some(0));

    // Without the token: refused, and the message says where a token comes from.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_secsip"))
        .args(["ctl", "--url", &format!("http://{}", f.addr()), "lists"])
        .env_remove("SECSIP_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"), "{}", String::from_utf8_lossy(&out.stderr));
}
