//! SIPp on both ends of the testbed: the server answering for a whole step, the client
//! offering a fixed number of calls at a fixed rate from the population of source addresses,
//! and what their statistics files say.

use crate::model::Percentiles;
use crate::sys::{self, Exit};
use crate::testbed::{Side, Testbed, SERVER_IP};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Socket buffer asked of SIPp: the default 64 KiB overflows in bursts at tens of thousands
/// of messages per second, which would be the generator's loss, not the middle's.
const BUFF_SIZE: &str = "16777216";
/// Sockets SIPp may open (`-t ui` opens one per source address).
const MAX_SOCKET: &str = "2048";

/// The last cumulative row of a SIPp `-trace_stat` file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Calls the client started.
    pub outgoing: u64,
    /// Calls the server saw arrive.
    pub incoming: u64,
    /// Calls that ran to the end of the scenario.
    pub successful: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Messages sent again after a timer.
    pub retransmissions: u64,
}

/// Parses the last row of a `-trace_stat` CSV by column name (the columns vary by version).
pub fn parse_stats(text: &str) -> Result<Stats> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header_line = lines.next().context("empty statistics file")?;
    let header: Vec<&str> = header_line.split(';').collect();
    let last: Vec<&str> = lines.next_back().context("statistics file has no data row")?.split(';').collect();
    let col: HashMap<&str, usize> = header.iter().enumerate().map(|(i, h)| (h.trim(), i)).collect();
    let get = |name: &str| -> Result<u64> {
        let i = *col.get(name).with_context(|| format!("no column {name}"))?;
        let v = last.get(i).with_context(|| format!("short row: no {name}"))?;
        v.trim().parse().with_context(|| format!("{name}: {v:?} is not a count"))
    };
    Ok(Stats {
        outgoing: get("OutgoingCall(C)")?,
        incoming: get("IncomingCall(C)")?,
        successful: get("SuccessfulCall(C)")?,
        failed: get("FailedCall(C)")?,
        retransmissions: get("Retransmissions(C)")?,
    })
}

/// Response times (milliseconds) of response-time distribution `rtd` in a `-trace_rtt` file.
pub fn parse_rtt(text: &str, rtd: u32) -> Vec<f64> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split(';');
            let _date = f.next()?;
            let ms: f64 = f.next()?.trim().parse().ok()?;
            let n: u32 = f.next()?.trim().parse().ok()?;
            (n == rtd).then_some(ms)
        })
        .collect()
}

/// Exact percentiles of samples.
pub fn percentiles(mut v: Vec<f64>) -> Option<Percentiles> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some(Percentiles { count: v.len() as u64, p50: at(0.50), p90: at(0.90), p99: at(0.99), p999: at(0.999), max: v[v.len() - 1] })
}

/// The SIPp server of one step.
pub struct Server {
    child: Child,
    stat: PathBuf,
}

impl Server {
    /// Starts SIPp with `scenario` on the server, answering on `SERVER_IP:5060`.
    pub fn start(tb: &Testbed, scenario: &Path, work: &Path) -> Result<Server> {
        let stat = work.join("server-stat.csv");
        let _ = std::fs::remove_file(&stat);
        let log = std::fs::File::create(work.join("server.log"))?;
        let child = tb
            .cmd(Side::Server, "sipp")
            .arg("-sf")
            .arg(scenario)
            .args(["-i", SERVER_IP, "-p", "5060", "-t", "u1", "-nostdin", "-buff_size", BUFF_SIZE, "-max_socket", MAX_SOCKET])
            .args(["-trace_stat", "-fd", "1", "-stf"])
            .arg(&stat)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start sipp (make deps installs sip-tester)")?;
        let mut s = Server { child, stat };
        // SIPp binds at once; a short wait saves the first calls from an unbound port.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !port_bound(tb, Side::Server)? {
            if let Some(st) = s.child.try_wait()? {
                bail!("the SIPp server exited at start ({st}): see {}", work.join("server.log").display());
            }
            if Instant::now() > deadline {
                bail!("the SIPp server did not bind 5060 in 5 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(s)
    }

    /// Stops the server once the client is done (SIGUSR1: finish the calls in progress, then
    /// exit and write the final statistics); its statistics and CPU time.
    pub fn stop(mut self) -> Result<(Stats, Exit)> {
        sys::signal(self.child.id(), libc::SIGUSR1);
        let exit = sys::wait_child(&mut self.child, Duration::from_secs(15))?;
        let text = std::fs::read_to_string(&self.stat).with_context(|| format!("{}", self.stat.display()))?;
        Ok((parse_stats(&text).with_context(|| format!("{}", self.stat.display()))?, exit))
    }
}

fn port_bound(tb: &Testbed, side: Side) -> Result<bool> {
    let out = crate::testbed::run(tb.cmd(side, "ss").args(["-Huln", "sport", "=", ":5060"]))?;
    Ok(!out.trim().is_empty())
}

/// What one client run did.
#[derive(Clone, Debug)]
pub struct ClientRun {
    /// Its statistics.
    pub stats: Stats,
    /// Its exit and CPU time.
    pub exit: Exit,
    /// Wall time from start to exit.
    pub wall: Duration,
    /// Response times (ms) of RTD 1.
    pub rtt_ms: Vec<f64>,
}

/// One client run: `calls` calls at `rate` per second, spread over the testbed's sources.
pub struct Client<'a> {
    /// The testbed.
    pub tb: &'a Testbed,
    /// Scenario file.
    pub scenario: &'a Path,
    /// Where its files go.
    pub work: &'a Path,
    /// Calls (or transactions) per second.
    pub rate: f64,
    /// Calls in all.
    pub calls: u64,
    /// A call waiting longer than this for a message fails.
    pub recv_timeout: Duration,
    /// Retransmit (calls) or not (flood: a lost request is loss, not a copy).
    pub retransmit: bool,
}

impl Client<'_> {
    /// Runs the client to its end (bounded by the time the calls need plus a margin).
    pub fn run(&self) -> Result<ClientRun> {
        let inf = self.work.join("sources.csv");
        let mut text = String::from("SEQUENTIAL\n");
        for s in &self.tb.sources {
            text.push_str(s);
            text.push_str(";\n");
        }
        std::fs::write(&inf, text)?;
        let stat = self.work.join("client-stat.csv");
        let _ = std::fs::remove_file(&stat);
        let rtt_dir = self.work.join("rtt");
        let _ = std::fs::remove_dir_all(&rtt_dir);
        std::fs::create_dir_all(&rtt_dir)?;
        let expected = Duration::from_secs_f64(self.calls as f64 / self.rate.max(0.001));
        let budget = expected * 3 + self.recv_timeout * 2 + Duration::from_secs(10);
        // Rates below one call a second go in as calls per period.
        let (r, rp) = if self.rate >= 1.0 { (format!("{:.3}", self.rate), "1000".to_string()) } else { ("1".into(), format!("{:.0}", 1000.0 / self.rate)) };
        let log = std::fs::File::create(self.work.join("client.log"))?;
        let mut cmd = self.tb.cmd(Side::Client, "sipp");
        cmd.current_dir(&rtt_dir)
            .arg(format!("{SERVER_IP}:5060"))
            .arg("-sf")
            .arg(self.scenario)
            .args(["-t", "ui", "-ip_field", "0", "-p", "5060", "-nostdin", "-buff_size", BUFF_SIZE, "-max_socket", MAX_SOCKET])
            .arg("-inf")
            .arg(&inf)
            .args(["-r", &r, "-rp", &rp, "-m", &self.calls.to_string()])
            .args(["-recv_timeout", &self.recv_timeout.as_millis().to_string()])
            .args(["-timeout", &format!("{}s", budget.as_secs())])
            .args(["-trace_stat", "-fd", "1", "-stf"])
            .arg(&stat)
            .args(["-trace_rtt", "-rtt_freq", "1000"])
            .stdout(Stdio::null())
            .stderr(log);
        if !self.retransmit {
            cmd.arg("-nr");
        }
        let start = Instant::now();
        let mut child = cmd.spawn().context("cannot start sipp")?;
        let exit = sys::wait_child(&mut child, budget + Duration::from_secs(5))?;
        let wall = start.elapsed();
        let text = std::fs::read_to_string(&stat).with_context(|| format!("SIPp client wrote no statistics ({}): see {}", stat.display(), self.work.join("client.log").display()))?;
        let stats = parse_stats(&text).with_context(|| format!("{}", stat.display()))?;
        let mut rtt_ms = Vec::new();
        for e in std::fs::read_dir(&rtt_dir)?.flatten() {
            if e.file_name().to_string_lossy().ends_with("_rtt.csv") {
                rtt_ms.extend(parse_rtt(&std::fs::read_to_string(e.path())?, 1));
            }
        }
        Ok(ClientRun { stats, exit, wall, rtt_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_come_from_the_last_row_by_column_name() {
        let t = "StartTime;OutgoingCall(C);IncomingCall(C);SuccessfulCall(C);FailedCall(C);Retransmissions(C);\n\
                 x;10;0;9;1;0;\n\
                 y;20;0;18;2;3;\n";
        let s = parse_stats(t).unwrap();
        assert_eq!(s, Stats { outgoing: 20, incoming: 0, successful: 18, failed: 2, retransmissions: 3 });
        assert!(parse_stats("StartTime;OutgoingCall(C)\nx;1\n").is_err(), "missing columns must be an error");
        assert!(parse_stats("").is_err());
    }

    #[test]
    fn rtt_keeps_one_distribution() {
        let t = "Date_ms;response_time_ms;rtd_no\n4.0;1;1\n4.1;7;2\n4.2;0;1\n";
        assert_eq!(parse_rtt(t, 1), vec![1.0, 0.0]);
        assert_eq!(parse_rtt(t, 2), vec![7.0]);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let p = percentiles((1..=1000).map(f64::from).collect()).unwrap();
        assert_eq!((p.count, p.p50, p.p90, p.p99, p.p999, p.max), (1000, 500.0, 900.0, 990.0, 999.0, 1000.0));
        assert_eq!(percentiles(vec![]), None);
        assert_eq!(percentiles(vec![3.0]).unwrap().p99, 3.0);
    }
}
