//! Harness for end-to-end tests of the appliance: the three-namespace testbed
//! (`tests/lib/testbed.sh`), the daemon running in its `fw` namespace, SIPp and the attack
//! tools in the others. Include with `#[path = "common/appliance.rs"] mod appliance;`.
//!
//! Everything is bounded in time, every child is killed on drop, and every artefact (configs,
//! daemon log, events, SIPp statistics) stays under `target/testbed/NAME/` for inspection.
#![allow(dead_code)]

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn testbed_sh() -> PathBuf {
    root().join("tests/lib/testbed.sh")
}

/// The three namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// SIPp UAC and the attackers (10.99.0.1, 10.99.0.3, fd99::1).
    Client,
    /// The appliance (NICs `outside`, `inside`).
    Fw,
    /// SIPp UAS (10.99.0.2, fd99::2).
    Server,
}

/// A testbed, torn down on drop.
pub struct Testbed {
    /// Namespace prefix.
    pub name: String,
    /// Artefacts directory.
    pub work: PathBuf,
}

/// True under `SECSIP_REQUIRE_NETNS=1` (CI; `make test` sets it as root): there a test that
/// cannot run is a failure, not a skip.
pub fn required() -> bool {
    std::env::var_os("SECSIP_REQUIRE_NETNS").is_some_and(|v| v == "1")
}

/// The one decision for a test whose prerequisite (root, namespaces, a tool) is missing: `why`
/// names it. `false` when there is nothing missing; otherwise panics naming `test` and `why`
/// under [`required`], or prints one `SKIPPED` line on stderr and returns `true` (skip).
pub fn skipped(test: &str, why: Option<String>) -> bool {
    let Some(why) = why else { return false };
    assert!(!required(), "{test} cannot run but SECSIP_REQUIRE_NETNS=1: {why}");
    // Past libtest's capture (it only takes `eprintln!`), so a skip shows in a passing run.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    true
}

/// Why the testbed cannot be built here (`tests/lib/testbed.sh check`), or `None` when it can.
pub fn unavailable() -> Option<String> {
    let out = Command::new("bash").arg(testbed_sh()).arg("check").output();
    match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Some(format!("cannot run bash: {e}")),
    }
}

/// [`skipped`] for a test that needs the testbed.
pub fn testbed_skipped(test: &str) -> bool {
    skipped(test, unavailable())
}

/// Exit status of a capture script (`tests/sipp/capture-call.sh`, `tests/attacks/capture-scan.sh`)
/// that could not run for want of a tool or privilege; its stderr says which.
pub const SCRIPT_CANNOT_RUN: i32 = 77;

/// [`skipped`] for a capture script's output: its reason when it exited [`SCRIPT_CANNOT_RUN`].
pub fn script_skipped(test: &str, out: &std::process::Output) -> bool {
    let why = (out.status.code() == Some(SCRIPT_CANNOT_RUN)).then(|| String::from_utf8_lossy(&out.stderr).trim().to_string());
    skipped(test, why)
}

impl Testbed {
    /// Builds the testbed `name` (≤ 12 chars); `None` (after a loud SKIPPED line) when the
    /// machine cannot. `SECSIP_TESTBED_PREFIX` (≤ 8 chars of `[a-z0-9-]`) is put in front of
    /// the name, so that two checkouts can run their end-to-end tests at once.
    pub fn up(name: &str) -> Option<Testbed> {
        Testbed::up_with_queues(name, 1)
    }

    /// [`Testbed::up`] with `queues` RX/TX queues on every veth.
    pub fn up_with_queues(name: &str, queues: u32) -> Option<Testbed> {
        // libtest names each test's thread after the test.
        let test = format!("{} (testbed {name})", std::thread::current().name().unwrap_or("?"));
        if testbed_skipped(&test) {
            return None;
        }
        let name = &format!("{}{name}", std::env::var("SECSIP_TESTBED_PREFIX").unwrap_or_default());
        let work = root().join("target/testbed").join(name);
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        let out = Command::new("bash").arg(testbed_sh()).args(["up", name, "--queues", &queues.to_string()]).output().unwrap();
        assert!(out.status.success(), "testbed up {name}: {}", String::from_utf8_lossy(&out.stderr));
        Some(Testbed { name: name.to_string(), work })
    }

    /// Namespace of a side.
    pub fn ns(&self, side: Side) -> String {
        let s = match side {
            Side::Client => "client",
            Side::Fw => "fw",
            Side::Server => "server",
        };
        format!("{}-{s}", self.name)
    }

    /// `ip netns exec NS program`.
    pub fn cmd(&self, side: Side, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(side), program]);
        c.current_dir(&self.work);
        c
    }

    /// The bpffs directory for the appliance's pins.
    pub fn bpffs(&self) -> PathBuf {
        PathBuf::from(format!("/run/secsip-testbed/{}/bpffs/secsip", self.name))
    }

    /// Pings `to` from the client `count` times; true when every reply came.
    pub fn ping(&self, to: &str, count: u32) -> bool {
        let out = self.cmd(Side::Client, "ping").args(["-c", &count.to_string(), "-i", "0.05", "-W", "1", to]).output().unwrap();
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains(&format!("{count} received"))
    }

    /// True when the client has a resolved neighbour entry for the server.
    pub fn arp_resolved(&self) -> bool {
        let out = self.cmd(Side::Client, "ip").args(["neigh", "show", "10.99.0.2"]).output().unwrap();
        let s = String::from_utf8_lossy(&out.stdout);
        s.contains("lladdr 02:00:00:00:00:02")
    }

    /// Sends `count` UDP datagrams (an "RTP" stream) client -> server port 40000 at `rate`
    /// per second; returns how many arrived.
    pub fn udp_stream(&self, count: u32, rate: u32) -> u64 {
        let script = r#"
import socket, sys, time
role, count, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if role == "recv":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.99.0.2", 40000)); s.settimeout(0.5)
    n, end = 0, time.monotonic() + count / rate + 3
    print("ready", flush=True)
    while n < count and time.monotonic() < end:
        try: s.recv(2048); n += 1
        except socket.timeout: pass
    print(n)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); pkt = b"\x80\x00" + b"\x00" * 170
    for i in range(count):
        s.sendto(pkt, ("10.99.0.2", 40000)); time.sleep(1 / rate)
"#;
        let mut rx = self
            .cmd(Side::Server, "python3")
            .args(["-c", script, "recv", &count.to_string(), &rate.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = rx.stdout.take().unwrap();
        let mut first = [0u8; 6];
        use std::io::Read;
        out.read_exact(&mut first).unwrap();
        let st = self.cmd(Side::Client, "python3").args(["-c", script, "send", &count.to_string(), &rate.to_string()]).status().unwrap();
        assert!(st.success());
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        let _ = rx.wait();
        rest.trim().parse().unwrap_or(0)
    }

    /// Starts SIPp's built-in UAS on the server (answers OPTIONS and the like with -aa).
    pub fn uas(&self, tag: &str) -> ChildGuard {
        self.uas_on(tag, "10.99.0.2")
    }

    /// [`Testbed::uas`] on another server address (`fd99::2` for IPv6).
    pub fn uas_on(&self, tag: &str, addr: &str) -> ChildGuard {
        let child = self
            .cmd(Side::Server, "timeout")
            .args(["120", "sipp", "-sn", "uas", "-i", addr, "-p", "5060", "-nostdin", "-aa"])
            .args(["-trace_stat", "-stf"])
            .arg(self.work.join(format!("uas-{tag}.csv")))
            .args(["-fd", "1"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.work.join(format!("uas-{tag}.log"))).unwrap())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        ChildGuard(Some(child))
    }

    /// Places `calls` calls at `rate` per second from `src` (an address of the client) with
    /// SIPp's built-in UAC scenario (INVITE, 100, 180, 200, ACK, BYE, 200), bounded by
    /// `max_seconds`; returns SIPp's final statistics.
    pub fn uac(&self, tag: &str, src: &str, port: u16, calls: u32, rate: u32, max_seconds: u32) -> SippResult {
        let stf = self.work.join(format!("uac-{tag}.csv"));
        let st = self.uac_cmd(tag, src, port, calls, rate, max_seconds).status().unwrap();
        SippResult::read(&stf, st)
    }

    /// The UAC command line of [`Testbed::uac`], to spawn it in the background.
    pub fn uac_cmd(&self, tag: &str, src: &str, port: u16, calls: u32, rate: u32, max_seconds: u32) -> Command {
        // An IPv6 source calls the server's IPv6 address.
        let dst = if src.contains(':') { "[fd99::2]:5060" } else { "10.99.0.2:5060" };
        let stf = self.work.join(format!("uac-{tag}.csv"));
        let _ = std::fs::remove_file(&stf);
        let mut c = self.cmd(Side::Client, "timeout");
        c.args(["--kill-after=2", &(max_seconds + 5).to_string(), "sipp", "-sn", "uac", dst])
            .args(["-i", src, "-p", &port.to_string(), "-m", &calls.to_string(), "-r", &rate.to_string()])
            .args(["-l", &(rate * 2).max(10).to_string(), "-nostdin", "-timeout", &format!("{max_seconds}s")])
            .args(["-trace_stat", "-fd", "1", "-stf"])
            .arg(&stf)
            .args(["-trace_err", "-error_file"])
            .arg(self.work.join(format!("uac-{tag}-errors.log")))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.work.join(format!("uac-{tag}.log"))).unwrap());
        c
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(testbed_sh()).args(["down", &self.name]).status();
    }
}

/// Kills and reaps a child on drop.
pub struct ChildGuard(pub Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// SIPp's counters at the end of a run.
#[derive(Debug, Default)]
pub struct SippResult {
    /// SuccessfulCall(C).
    pub successful: u64,
    /// FailedCall(C).
    pub failed: u64,
    /// FailedUnexpectedMessage(C).
    pub unexpected: u64,
    /// Retransmissions(C).
    pub retransmissions: u64,
    /// IncomingCall(C) (UAS) or OutgoingCall(C) (UAC).
    pub calls: u64,
    /// SIPp's exit status.
    pub status: Option<ExitStatus>,
    /// The last statistics line.
    pub raw: String,
}

impl SippResult {
    /// Reads SIPp's `-trace_stat` file (columns found by name).
    pub fn read(stf: &Path, status: ExitStatus) -> SippResult {
        let mut r = SippResult::from_file(stf);
        r.status = Some(status);
        r
    }

    /// Reads a statistics file without an exit status (a UAS still running or killed).
    pub fn from_file(stf: &Path) -> SippResult {
        let text = std::fs::read_to_string(stf).unwrap_or_default();
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let Some(header) = lines.next() else { return SippResult::default() };
        let Some(last) = lines.next_back() else { return SippResult::default() };
        let names: Vec<&str> = header.split(';').collect();
        let vals: Vec<&str> = last.split(';').collect();
        let get = |n: &str| names.iter().position(|h| *h == n).and_then(|i| vals.get(i)).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        SippResult {
            successful: get("SuccessfulCall(C)"),
            failed: get("FailedCall(C)"),
            unexpected: get("FailedUnexpectedMessage(C)"),
            retransmissions: get("Retransmissions(C)"),
            calls: get("IncomingCall(C)").max(get("OutgoingCall(C)")),
            status: None,
            raw: last.to_string(),
        }
    }
}

/// The appliance running in the testbed's `fw` namespace.
pub struct Daemon {
    child: Option<Child>,
    /// Its run directory (pid file, control socket).
    pub run_dir: PathBuf,
    /// Its stderr.
    pub log: PathBuf,
    /// Its EVE event log.
    pub events: PathBuf,
    /// Its configuration file.
    pub config: PathBuf,
}

/// A configuration for the testbed: the shipped rules (or `rules_dir`), `extra` TOML appended.
pub fn config_text(rules_dir: &Path, extra: &str) -> String {
    format!(
        "[appliance]\noutside = \"outside\"\ninside = \"inside\"\n{extra}\n[rules]\ndir = \"{}\"\n",
        rules_dir.display()
    )
}

impl Daemon {
    /// Starts `secsip run` with `config` (TOML text) and `args`, and waits until it answers
    /// on its control socket (at most 15 s).
    pub fn start(tb: &Testbed, tag: &str, config: &str, args: &[&str]) -> Daemon {
        let cfg = tb.work.join(format!("secsip-{tag}.toml"));
        std::fs::write(&cfg, config).unwrap();
        let run_dir = tb.work.join(format!("run-{tag}"));
        let log = tb.work.join(format!("secsip-{tag}.log"));
        let events = tb.work.join(format!("events-{tag}.json"));
        let child = tb
            .cmd(Side::Fw, env!("CARGO_BIN_EXE_secsip"))
            .arg("run")
            .arg("-c")
            .arg(&cfg)
            .arg("--run-dir")
            .arg(&run_dir)
            .arg("--bpffs")
            .arg(tb.bpffs())
            .arg("--events")
            .arg(&events)
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut d = Daemon { child: Some(child), run_dir, log, events, config: cfg };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if d.try_stats().is_some() {
                return d;
            }
            if let Some(Ok(Some(st))) = d.child.as_mut().map(|c| c.try_wait()) {
                panic!("secsip exited at start ({st}):\n{}", d.log_text());
            }
            assert!(Instant::now() < deadline, "secsip did not become ready in 15 s:\n{}", d.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn try_stats(&self) -> Option<Value> {
        let out = Command::new(env!("CARGO_BIN_EXE_secsip")).args(["stats", "--json", "--run-dir"]).arg(&self.run_dir).output().ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The daemon's JSON report (`secsip stats --json`).
    pub fn stats(&self) -> Value {
        self.try_stats().unwrap_or_else(|| panic!("secsip stats failed:\n{}", self.log_text()))
    }

    /// `secsip reload`.
    pub fn reload(&self) {
        let st = Command::new(env!("CARGO_BIN_EXE_secsip")).args(["reload", "--run-dir"]).arg(&self.run_dir).stdout(Stdio::null()).status().unwrap();
        assert!(st.success(), "secsip reload failed");
    }

    /// Waits (≤ 5 s) until no frame is in an engine, a TX ring or a backlog, then checks
    /// that every UMEM frame is free or in a fill ring. Returns the report.
    pub fn assert_frames_home(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = self.stats();
            let settled = r["queues"].as_array().unwrap().iter().all(|q| {
                let f = &q["frames"];
                f["in_engines"] == 0 && f["in_tx"] == 0 && f["backlog"] == 0
            });
            if settled {
                for q in r["queues"].as_array().unwrap() {
                    let f = &q["frames"];
                    assert_eq!(f["lost"], 0, "frames unaccounted for: {f}");
                    assert_eq!(
                        f["free"].as_u64().unwrap() + f["in_fill"].as_u64().unwrap(),
                        f["total"].as_u64().unwrap(),
                        "frames not home: {f}"
                    );
                }
                return r;
            }
            assert!(Instant::now() < deadline, "frames still in flight after 5 s: {}", r["queues"]);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then waits (≤ 15 s). Returns the exit status and the log.
    pub fn stop(mut self) -> (ExitStatus, String) {
        let mut c = self.child.take().unwrap();
        let pid = std::fs::read_to_string(self.run_dir.join("secsip.pid")).ok().and_then(|s| s.trim().parse::<i32>().ok());
        match pid {
            Some(p) => {
                let _ = Command::new("kill").args(["-TERM", &p.to_string()]).status();
            }
            None => {
                let _ = c.kill();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return (st, self.log_text());
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("secsip did not stop in 15 s:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: the daemon dies without cleaning up (the XDP program stays pinned).
    pub fn kill(mut self) {
        let pid = std::fs::read_to_string(self.run_dir.join("secsip.pid")).ok().and_then(|s| s.trim().parse::<i32>().ok());
        if let Some(p) = pid {
            let _ = Command::new("kill").args(["-KILL", &p.to_string()]).status();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits (≤ 3 s) for an event whose `alert.signature` is `rule`; returns it.
    pub fn wait_event(&self, rule: &str) -> Option<Value> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            if let Some(e) = self.events().into_iter().find(|e| e["alert"]["signature"] == rule) {
                return Some(e);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Lines of the event log parsed as JSON.
    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The sipvicious command for `tool` (svmap, svwar): the console script if it runs, else the
/// module through python3.
pub fn sipvicious(tool: &str) -> Vec<String> {
    let script = format!("sipvicious_{tool}");
    if Command::new(&script).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success()) {
        return vec![script];
    }
    vec!["python3".into(), "-m".into(), format!("sipvicious.{tool}")]
}
