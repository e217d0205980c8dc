//! The testbed of DESIGN §8 for measurements: `tests/lib/testbed.sh` (the same script as
//! `make run` and the end-to-end tests) plus a population of client addresses, and the two
//! ways to fill the middle: a Linux bridge or nothing (for the appliance's XDP programs).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The server's address in the perf subnet.
pub const SERVER_IP: &str = "10.100.0.2";

/// One side of the testbed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// SIPp client.
    Client,
    /// The middle: bridge or appliance.
    Fw,
    /// SIPp server.
    Server,
}

/// A running testbed; torn down on drop.
pub struct Testbed {
    name: String,
    script: PathBuf,
    /// Client source addresses, one per /24 of 10.100.0.0/16.
    pub sources: Vec<String>,
}

/// Runs `cmd`, failing with its stderr when it fails.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Testbed {
    /// Checks the machine can build the testbed; the reason when it cannot.
    pub fn check(repo: &Path) -> Result<()> {
        let out = Command::new("bash").arg(repo.join("tests/lib/testbed.sh")).arg("check").output()?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// Builds testbed `name` with `sources` client addresses (10.100.K.1/16, K = 1..) next
    /// to the script's own, and a server address in the same /16.
    pub fn up(repo: &Path, name: &str, sources: usize) -> Result<Testbed> {
        if !(1..=250).contains(&sources) {
            bail!("sources must be 1..250, not {sources}");
        }
        let script = repo.join("tests/lib/testbed.sh");
        run(Command::new("bash").arg(&script).args(["up", name]))?;
        let tb = Testbed { name: name.to_string(), script, sources: (1..=sources).map(|k| format!("10.100.{k}.1")).collect() };
        for s in &tb.sources {
            run(Command::new("ip").args(["-n", &tb.ns(Side::Client), "addr", "add", &format!("{s}/16"), "dev", "eth0"]))?;
        }
        run(Command::new("ip").args(["-n", &tb.ns(Side::Server), "addr", "add", &format!("{SERVER_IP}/16"), "dev", "eth0"]))?;
        Ok(tb)
    }

    /// The namespace of a side.
    pub fn ns(&self, side: Side) -> String {
        let s = match side {
            Side::Client => "client",
            Side::Fw => "fw",
            Side::Server => "server",
        };
        format!("{}-{s}", self.name)
    }

    /// A command that runs `program` inside a side's namespace.
    pub fn cmd(&self, side: Side, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.arg("netns").arg("exec").arg(self.ns(side)).arg(program);
        c
    }

    /// The bpf filesystem the script mounted for the appliance's pinned links.
    pub fn bpffs(&self) -> PathBuf {
        PathBuf::from("/run/secsip-testbed").join(&self.name).join("bpffs")
    }

    /// Puts a Linux bridge between the two NICs of the middle.
    pub fn bridge_up(&self) -> Result<()> {
        let ns = self.ns(Side::Fw);
        run(Command::new("ip").args(["-n", &ns, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"]))?;
        for nic in ["outside", "inside"] {
            run(Command::new("ip").args(["-n", &ns, "link", "set", nic, "master", "br0"]))?;
        }
        run(Command::new("ip").args(["-n", &ns, "link", "set", "br0", "up"]))?;
        Ok(())
    }

    /// Removes the bridge.
    pub fn bridge_down(&self) -> Result<()> {
        run(Command::new("ip").args(["-n", &self.ns(Side::Fw), "link", "del", "br0"]))?;
        Ok(())
    }

    /// Leaves the middle empty after an appliance: a fail-open appliance leaves its XDP
    /// bypass pinned on exit, which would carry the next middle's traffic instead.
    pub fn clear_xdp(&self) -> Result<()> {
        remove_pinned_links(&self.bpffs())?;
        let ns = self.ns(Side::Fw);
        for nic in ["outside", "inside"] {
            let _ = run(Command::new("ip").args(["-n", &ns, "link", "set", "dev", nic, "xdp", "off"]));
            let shown = run(Command::new("ip").args(["-n", &ns, "-d", "link", "show", nic]))?;
            if shown.contains("prog/xdp") {
                bail!("{nic}: an XDP program is still attached after the appliance stopped:\n{shown}");
            }
        }
        Ok(())
    }
}

/// Unlinks the appliance's pinned links (`link_*`) below `dir`; bpffs keeps files of its own
/// (`progs.debug`, `maps.debug`) that cannot be removed.
fn remove_pinned_links(dir: &Path) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Ok(()) };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_pinned_links(&p)?;
        } else if e.file_name().to_string_lossy().starts_with("link_") {
            std::fs::remove_file(&p).with_context(|| format!("rm {}", p.display()))?;
        }
    }
    Ok(())
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(&self.script).args(["down", &self.name]).output();
    }
}
