//! The middles a run compares: a plain Linux bridge, and the appliance with the shipped
//! rules, with N generated rules, or in run-to-completion mode. Each step starts its middle
//! fresh, so the appliance's counters and latency histogram are the step's own.

use crate::model::Percentiles;
use crate::sys;
use crate::testbed::{Side, Testbed};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The rules an appliance middle loads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rules {
    /// The repository's `rules/`.
    Shipped,
    /// `secsip::rules::gen::generate(n, 1)`: rules that never match ordinary calls.
    Generated(usize),
}

/// One middle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Middle {
    /// br0 over the two veths.
    Bridge,
    /// `secsip run` with these rules; `rtc` = run-to-completion (`engines = 0`).
    Secsip {
        /// Rules loaded.
        rules: Rules,
        /// Run-to-completion mode.
        rtc: bool,
    },
}

impl Middle {
    /// The appliance with the shipped rules, sharded.
    pub const SECSIP: Middle = Middle::Secsip { rules: Rules::Shipped, rtc: false };

    /// Its name in reports: `bridge`, `secsip`, `secsip-rules=N`, `secsip-rtc`.
    pub fn name(&self) -> String {
        match self {
            Middle::Bridge => "bridge".into(),
            Middle::Secsip { rules: Rules::Shipped, rtc: false } => "secsip".into(),
            Middle::Secsip { rules: Rules::Shipped, rtc: true } => "secsip-rtc".into(),
            Middle::Secsip { rules: Rules::Generated(n), rtc: false } => format!("secsip-rules={n}"),
            Middle::Secsip { rules: Rules::Generated(n), rtc: true } => format!("secsip-rtc-rules={n}"),
        }
    }

    /// Parses a name as [`Middle::name`] writes it.
    pub fn parse(s: &str) -> Result<Middle> {
        Ok(match s {
            "bridge" => Middle::Bridge,
            "secsip" => Middle::SECSIP,
            "secsip-rtc" => Middle::Secsip { rules: Rules::Shipped, rtc: true },
            _ => match s.strip_prefix("secsip-rules=").map(str::parse::<usize>) {
                Some(Ok(n)) if n > 0 => Middle::Secsip { rules: Rules::Generated(n), rtc: false },
                _ => bail!("unknown middle {s:?}: bridge, secsip, secsip-rtc or secsip-rules=N"),
            },
        })
    }

    /// Rules loaded (None for the bridge). `shipped` is the count of the shipped set.
    pub fn rule_count(&self, shipped: usize) -> Option<usize> {
        match self {
            Middle::Bridge => None,
            Middle::Secsip { rules: Rules::Shipped, .. } => Some(shipped),
            Middle::Secsip { rules: Rules::Generated(n), .. } => Some(*n),
        }
    }
}

/// Where the appliance's inputs are.
pub struct Setup {
    /// The `secsip` binary.
    pub secsip: PathBuf,
    /// The shipped configuration file.
    pub config: PathBuf,
    /// The shipped rules directory.
    pub rules: PathBuf,
    /// Scratch directory for generated configurations and rules.
    pub work: PathBuf,
    /// Niceness of the appliance process.
    pub nice: i32,
}

impl Setup {
    /// Writes the configuration for `m` (the shipped file with the rules directory and
    /// engine count set) and returns its path.
    fn config_for(&self, m: &Middle) -> Result<PathBuf> {
        let Middle::Secsip { rules, rtc } = m else { bail!("the bridge has no configuration") };
        let text = std::fs::read_to_string(&self.config).with_context(|| format!("{}", self.config.display()))?;
        let mut t: toml::Table = text.parse().with_context(|| format!("{}", self.config.display()))?;
        let dir = match rules {
            Rules::Shipped => std::path::absolute(&self.rules)?,
            Rules::Generated(n) => {
                let d = self.work.join(format!("rules-{n}"));
                let f = d.join("generated.toml");
                if !f.exists() {
                    std::fs::create_dir_all(&d)?;
                    std::fs::write(&f, secsip::rules::gen::generate(*n, 1))?;
                }
                d
            }
        };
        let table = |t: &mut toml::Table, k: &str| -> Result<toml::Table> {
            match t.remove(k) {
                None => Ok(toml::Table::new()),
                Some(toml::Value::Table(x)) => Ok(x),
                Some(_) => bail!("{}: [{k}] is not a table", self.config.display()),
            }
        };
        let mut r = table(&mut t, "rules")?;
        r.insert("dir".into(), toml::Value::String(dir.display().to_string()));
        t.insert("rules".into(), toml::Value::Table(r));
        let mut a = table(&mut t, "appliance")?;
        a.insert("outside".into(), "outside".into());
        a.insert("inside".into(), "inside".into());
        if *rtc {
            a.insert("engines".into(), 0.into());
        }
        t.insert("appliance".into(), toml::Value::Table(a));
        let path = self.work.join(format!("{}.toml", m.name()));
        std::fs::write(&path, toml::to_string(&t)?)?;
        Ok(path)
    }
}

/// A middle in place for one step.
pub enum Running {
    /// The bridge is up.
    Bridge,
    /// The appliance runs.
    Appliance(Appliance),
}

/// A running appliance.
pub struct Appliance {
    child: Child,
    run_dir: PathBuf,
    log: PathBuf,
}

/// What the middle reports after a step.
#[derive(Clone, Debug, Default)]
pub struct MiddleMeasure {
    /// Its peak RSS, KiB.
    pub peak_rss_kib: Option<u64>,
    /// Its rx-to-tx latency, µs.
    pub latency_us: Option<Percentiles>,
    /// Messages its rules dropped or rejected, and sources banned in XDP.
    pub rule_drops: Option<u64>,
    /// SIP forwarded uninspected (an engine thread gone under fail_open; never under load).
    pub uninspected: u64,
    /// SIP dropped for lack of room: shed before the engines (every cause), TX backlog, AF_XDP
    /// ring drops.
    pub overload_drops: u64,
}

/// Puts `m` in the middle of `tb`.
pub fn start(tb: &Testbed, m: &Middle, setup: &Setup) -> Result<Running> {
    match m {
        Middle::Bridge => {
            tb.bridge_up()?;
            Ok(Running::Bridge)
        }
        Middle::Secsip { .. } => {
            let cfg = setup.config_for(m)?;
            let run_dir = setup.work.join(format!("run-{}", m.name()));
            let _ = std::fs::remove_dir_all(&run_dir);
            let log = setup.work.join(format!("{}.log", m.name()));
            let events = setup.work.join(format!("events-{}.json", m.name()));
            let child = tb
                .cmd(Side::Fw, "nice")
                .arg(format!("--adjustment={}", setup.nice))
                .arg(&setup.secsip)
                .arg("run")
                .arg("-c")
                .arg(&cfg)
                .arg("--run-dir")
                .arg(&run_dir)
                .arg("--bpffs")
                .arg(tb.bpffs())
                .arg("--events")
                .arg(&events)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?)
                .spawn()
                .with_context(|| format!("cannot start {}", setup.secsip.display()))?;
            let mut a = Appliance { child, run_dir, log };
            // Ten thousand rules take a while to compile in a debug build.
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if a.stats().is_ok() {
                    return Ok(Running::Appliance(a));
                }
                if let Some(st) = a.child.try_wait()? {
                    bail!("secsip exited at start ({st}):\n{}", std::fs::read_to_string(&a.log).unwrap_or_default());
                }
                if Instant::now() > deadline {
                    let _ = a.child.kill();
                    bail!("secsip was not ready in 60 s: see {}", a.log.display());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Appliance {
    fn stats(&self) -> Result<Value> {
        secsip::dataplane::control::ask(&self.run_dir, "stats")
    }
}

impl Running {
    /// CPU seconds the middle's process has used so far (None for the bridge).
    pub fn cpu_s(&self) -> Option<f64> {
        match self {
            Running::Bridge => None,
            Running::Appliance(a) => sys::process_cpu_s(a.child.id()),
        }
    }

    /// Reads what the middle measured, then takes it out of the testbed.
    pub fn finish(self, tb: &Testbed) -> Result<MiddleMeasure> {
        match self {
            Running::Bridge => {
                tb.bridge_down()?;
                Ok(MiddleMeasure::default())
            }
            Running::Appliance(mut a) => {
                let stats = a.stats().context("the appliance stopped answering during the step")?;
                let pid = a.child.id();
                let mut m = measure(&stats);
                m.peak_rss_kib = sys::peak_rss_kib(pid);
                sys::signal(pid, libc::SIGTERM);
                let exit = sys::wait_child(&mut a.child, Duration::from_secs(15))?;
                if exit.code != 0 {
                    bail!("secsip exited with {} after SIGTERM (1 = frames unaccounted for): see {}", exit.code, a.log.display());
                }
                tb.clear_xdp()?;
                Ok(m)
            }
        }
    }
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The step's numbers from a `secsip stats` report.
pub fn measure(stats: &Value) -> MiddleMeasure {
    let mut m = MiddleMeasure::default();
    let all = stats["latency"].as_array().and_then(|l| l.iter().find(|e| e["engine"] == "all"));
    if let Some(l) = all.filter(|l| n(&l["count"]) > 0) {
        let f = |k: &str| l[k].as_f64().unwrap_or(0.0);
        m.latency_us = Some(Percentiles { count: n(&l["count"]), p50: f("p50_us"), p90: f("p90_us"), p99: f("p99_us"), p999: f("p999_us"), max: f("max_us") });
    }
    let verdict_drops: u64 = stats["verdicts"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.ends_with(".drop") || k.ends_with(".reject"))
        .map(|(_, v)| n(v))
        .sum();
    let xdp_banned: u64 = stats["nics"].as_array().into_iter().flatten().map(|nic| n(&nic["xdp"]["banned"])).sum();
    m.rule_drops = Some(verdict_drops + xdp_banned);
    for q in stats["queues"].as_array().into_iter().flatten() {
        let c = &q["counters"];
        m.uninspected += n(&c["uninspected_forwarded"]);
        m.overload_drops += c["shed"].as_object().into_iter().flatten().map(|(_, v)| n(v)).sum::<u64>() + n(&c["tx_backlog_dropped"]);
        for x in q["xsk"].as_array().into_iter().flatten() {
            m.overload_drops += n(&x["rx_dropped"]) + n(&x["rx_ring_full"]);
        }
    }
    m
}

/// The shipped rule count (compiled the way the appliance does).
pub fn shipped_rule_count(dir: &Path) -> Result<usize> {
    let rs = secsip::rules::compile_dir(dir, &secsip::rules::CompileOptions::standard()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(rs.rules.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_round_trip() {
        for s in ["bridge", "secsip", "secsip-rtc", "secsip-rules=10000"] {
            assert_eq!(Middle::parse(s).unwrap().name(), s);
        }
        assert!(Middle::parse("secsip-rules=0").is_err());
        assert!(Middle::parse("nginx").is_err());
    }

    #[test]
    fn measure_reads_latency_drops_and_overload() {
        let s = json!({
            "latency": [{"engine": 0, "count": 5}, {"engine": "all", "count": 10, "p50_us": 5.5, "p90_us": 9.0, "p99_us": 20.0, "p999_us": 30.0, "max_us": 31.0}],
            "verdicts": {"rule.drop": 3, "valid.accept": 100, "rule.reject": 2, "malformed.drop": 1},
            "nics": [{"xdp": {"banned": 4}}, {"xdp": {"banned": 0}}],
            "queues": [{"counters": {"uninspected_forwarded": 7, "shed": {"rate": 0, "queue_full": 1}, "tx_backlog_dropped": 2},
                        "xsk": [{"rx_dropped": 1, "rx_ring_full": 0}, {"rx_dropped": 0, "rx_ring_full": 3}]}],
        });
        let m = measure(&s);
        assert_eq!(m.latency_us.unwrap().p99, 20.0);
        assert_eq!(m.rule_drops, Some(3 + 2 + 1 + 4));
        assert_eq!(m.uninspected, 7);
        assert_eq!(m.overload_drops, 1 + 2 + 1 + 3);
        assert!(measure(&json!({})).latency_us.is_none());
    }
}
