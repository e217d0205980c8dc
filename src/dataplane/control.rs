//! The control side of a running daemon: the pid file, the control socket that `secsip stats`
//! and `secsip reload` talk to, and rule reloads (SIGHUP) that compile off the data path and
//! swap the rule set in one atomic store.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// File names under `run_dir`.
pub const PID_FILE: &str = "secsip.pid";
/// The control socket's file name under `run_dir`.
pub const SOCKET: &str = "secsip.sock";

/// Outcome of the reloads so far.
#[derive(Clone, Debug, Default)]
pub struct ReloadStatus {
    /// Successful reloads.
    pub ok: u64,
    /// Refused reloads (the running set stayed).
    pub failed: u64,
    /// The last refusal, with file:line:col.
    pub last_error: Option<String>,
    /// Unix time of the last successful load (start counts).
    pub last_success_unix: f64,
    /// Unix time of the last refused reload (`/metrics` tells whether the last attempt failed).
    pub last_failure_unix: Option<f64>,
    /// Rules in the running set.
    pub rules: usize,
}

impl ReloadStatus {
    /// As JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "ok": self.ok, "failed": self.failed, "last_error": self.last_error,
            "last_success_unix": self.last_success_unix, "last_failure_unix": self.last_failure_unix,
            "rules": self.rules,
        })
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Writes the pid file, refusing when another live daemon owns it.
pub fn write_pid_file(run_dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let path = run_dir.join(PID_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Ok(pid) = text.trim().parse::<i32>() {
            // SAFETY: signal 0 only checks that the process exists.
            if pid != std::process::id() as i32 && unsafe { libc::kill(pid, 0) } == 0 {
                bail!("{}: secsip is already running as pid {pid} (stop it, or use another run_dir)", path.display());
            }
        }
    }
    std::fs::write(&path, format!("{}\n", std::process::id())).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Reads the daemon's pid from `run_dir`.
pub fn read_pid(run_dir: &Path) -> Result<i32> {
    let path = run_dir.join(PID_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}: is secsip running with this run_dir?", path.display()))?;
    let pid: i32 = text.trim().parse().with_context(|| format!("{}: not a pid: {:?}", path.display(), text.trim()))?;
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } != 0 {
        bail!("{}: pid {pid} is not running (stale pid file)", path.display());
    }
    Ok(pid)
}

/// Sends `sig` to `pid`.
pub fn signal(pid: i32, sig: libc::c_int) -> Result<()> {
    // SAFETY: plain syscall on integers.
    if unsafe { libc::kill(pid, sig) } != 0 {
        bail!("signalling pid {pid}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// The sections of a reloaded configuration that differ from the running one and only take
/// effect at a restart, as a note for the reload's log line (`; changes to [engine] ...`).
pub fn restart_note(cfg: &Config, running: &Config) -> Option<String> {
    let mut fixed = Vec::new();
    let same = |a: &dyn erased::Ser, b: &dyn erased::Ser| a.value() == b.value();
    if !same(&cfg.engine, &running.engine) {
        fixed.push("[engine]");
    }
    if !same(&cfg.appliance, &running.appliance) {
        fixed.push("[appliance]");
    }
    if !same(&cfg.hosts, &running.hosts) {
        fixed.push("[hosts]");
    }
    if !same(&cfg.log, &running.log) {
        fixed.push("[log]");
    }
    if !same(&cfg.management, &running.management) {
        fixed.push("[management]");
    }
    (!fixed.is_empty()).then(|| format!("; changes to {} take effect at the next restart", fixed.join(", ")))
}

/// Comparing config sections by their serialized form (they have no PartialEq).
mod erased {
    pub trait Ser {
        fn value(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Ser for T {
        fn value(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}

/// Serves the control socket until `stop`: one request line per connection (`stats`, `ping`),
/// answered with one JSON document. `report` builds the stats.
pub fn serve(listener: UnixListener, stop: Arc<AtomicBool>, report: impl Fn() -> Value) {
    let _ = listener.set_nonblocking(true);
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((s, _)) => answer(s, &report),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn answer(s: UnixStream, report: &impl Fn() -> Value) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    // A request is one short line; more is a confused client.
    let _ = BufReader::new((&s).take(256)).read_line(&mut line);
    let reply = match line.trim() {
        "stats" => report(),
        "ping" => json!({"pong": std::process::id()}),
        other => json!({"error": format!("unknown request {other:?}: expected stats or ping")}),
    };
    let mut w = &s;
    let _ = serde_json::to_writer(&mut w, &reply);
    let _ = w.write_all(b"\n");
}

/// Asks a running daemon: sends `request` to the control socket in `run_dir`.
pub fn ask(run_dir: &Path, request: &str) -> Result<Value> {
    let path = run_dir.join(SOCKET);
    let mut s = UnixStream::connect(&path)
        .with_context(|| format!("{}: cannot connect (is secsip running with run_dir {}?)", path.display(), run_dir.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("{request}\n").as_bytes())?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    serde_json::from_str(&text).with_context(|| format!("{}: unreadable answer", path.display()))
}
