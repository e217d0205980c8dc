//! What the kernel says about CPU time, memory and the machine: `/proc` readers and a child
//! wait that returns the child's own CPU time.

use crate::model::Machine;
use anyhow::{bail, Context, Result};
use std::process::Child;
use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc` CPU times.
fn ticks_per_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Machine-wide CPU time counters at one instant (`/proc/stat`, all CPUs), in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MachineCpu {
    /// Everything but idle and iowait.
    pub busy_s: f64,
    /// Softirq time.
    pub softirq_s: f64,
}

impl MachineCpu {
    /// Reads `/proc/stat` now.
    pub fn now() -> Result<MachineCpu> {
        let text = std::fs::read_to_string("/proc/stat").context("/proc/stat")?;
        parse_proc_stat(&text, ticks_per_s())
    }

    /// What was spent since `earlier`.
    pub fn since(&self, earlier: &MachineCpu) -> MachineCpu {
        MachineCpu { busy_s: self.busy_s - earlier.busy_s, softirq_s: self.softirq_s - earlier.softirq_s }
    }
}

fn parse_proc_stat(text: &str, hz: f64) -> Result<MachineCpu> {
    let line = text.lines().find(|l| l.starts_with("cpu ")).context("/proc/stat: no cpu line")?;
    let v: Vec<u64> = line.split_whitespace().skip(1).map(|f| f.parse().unwrap_or(0)).collect();
    if v.len() < 7 {
        bail!("/proc/stat: short cpu line {line:?}");
    }
    // user nice system idle iowait irq softirq steal: guest time is already inside user.
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v[4];
    Ok(MachineCpu { busy_s: (total - idle) as f64 / hz, softirq_s: v[6] as f64 / hz })
}

/// User + system CPU seconds of a running process (`/proc/PID/stat`).
pub fn process_cpu_s(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_pid_stat(&text, ticks_per_s())
}

fn parse_pid_stat(text: &str, hz: f64) -> Option<f64> {
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ... utime is field 14 of the line, index 11 here.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / hz)
}

/// Peak resident set size of a running process, KiB (`VmHWM`).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_kib(&text, "VmHWM:")
}

fn status_field_kib(text: &str, key: &str) -> Option<u64> {
    text.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

/// How a child ended: its exit code (or 128 + signal) and its own CPU time.
#[derive(Clone, Copy, Debug)]
pub struct Exit {
    /// Exit code, or 128 + the signal that killed it.
    pub code: i32,
    /// User + system CPU seconds of the child and its reaped descendants.
    pub cpu_s: f64,
}

/// Waits for `child` at most `timeout` (then kills it), returning its CPU time from wait4(2):
/// `/proc` is gone once a process has exited, and SIPp exits when its run is over.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Result<Exit> {
    let pid = child.id() as libc::pid_t;
    let deadline = Instant::now() + timeout;
    let mut killed = false;
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain data; wait4 fills it and the status for our own child.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
            return Ok(Exit { code, cpu_s: tv(ru.ru_utime) + tv(ru.ru_stime) });
        }
        if r < 0 {
            bail!("wait4({pid}): {}", std::io::Error::last_os_error());
        }
        if Instant::now() >= deadline {
            if killed {
                bail!("process {pid} did not die after SIGKILL");
            }
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `sig` to a process.
pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with a pid we started; a stale pid at worst gets ESRCH.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// The machine's description.
pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default();
    Machine {
        hostname: std::fs::read_to_string("/etc/hostname").unwrap_or_default().trim().to_string(),
        cpu_model,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_kib: status_field_kib(&meminfo, "MemTotal:").unwrap_or(0),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string(),
        os,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_busy_excludes_idle_and_iowait() {
        let t = "cpu  100 5 50 1000 20 3 7 0 0 0\ncpu0 1 1 1 1 1 1 1 0 0 0\n";
        let c = parse_proc_stat(t, 100.0).unwrap();
        assert_eq!(c.busy_s, (100 + 5 + 50 + 3 + 7) as f64 / 100.0);
        assert_eq!(c.softirq_s, 0.07);
        assert!(parse_proc_stat("intr 1 2\n", 100.0).is_err());
    }

    #[test]
    fn pid_stat_survives_a_name_with_spaces_and_parens() {
        let t = "4242 (we (ird) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 4 0 100 0 0";
        assert_eq!(parse_pid_stat(t, 100.0), Some(3.0));
        assert_eq!(parse_pid_stat("garbage", 100.0), None);
    }

    #[test]
    fn own_process_has_cpu_and_memory() {
        let pid = std::process::id();
        assert!(process_cpu_s(pid).is_some());
        assert!(peak_rss_kib(pid).unwrap() > 0);
        assert!(MachineCpu::now().unwrap().busy_s > 0.0);
    }

    #[test]
    fn wait_child_reports_exit_code_and_cpu() {
        let mut c = std::process::Command::new("sh").args(["-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 3"]).spawn().unwrap();
        let e = wait_child(&mut c, Duration::from_secs(20)).unwrap();
        assert_eq!(e.code, 3);
        assert!(e.cpu_s > 0.0, "a busy loop used no CPU: {e:?}");
        let mut c = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let e = wait_child(&mut c, Duration::from_millis(100)).unwrap();
        assert_eq!(e.code, 128 + libc::SIGKILL);
    }
}
