//! What a `secsip-perf` run measured: the data behind `report.json`, `report.md` and the
//! plots. Every number the reports print comes from these structures, so they carry units
//! in their field names.

use serde::{Deserialize, Serialize};

/// One whole network run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    /// `secsip-perf <version>`.
    pub tool: String,
    /// Start of the run, RFC 3339 UTC.
    pub started: String,
    /// Wall time of the whole run.
    pub duration_s: f64,
    /// `--quick` was given.
    pub quick: bool,
    /// The machine the run measured.
    pub machine: Machine,
    /// Versions of what took part.
    pub versions: Versions,
    /// How the run was set up.
    pub config: RunConfig,
    /// Every step, in the order it ran.
    pub steps: Vec<Step>,
    /// What the steps add up to.
    pub summary: Summary,
}

/// The machine.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Machine {
    /// `/etc/hostname`.
    pub hostname: String,
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Online CPUs.
    pub cpus: usize,
    /// `MemTotal` in KiB.
    pub memory_kib: u64,
    /// `uname -r`.
    pub kernel: String,
    /// `PRETTY_NAME` of `/etc/os-release`.
    pub os: String,
}

/// Versions of the programs in the run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Versions {
    /// `secsip --version`.
    pub secsip: String,
    /// First line of `sipp -v`.
    pub sipp: String,
    /// `secsip-perf` itself.
    pub perf: String,
}

/// The settings of the run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunConfig {
    /// Seconds of traffic per step.
    pub step_s: f64,
    /// Distinct client source addresses the SIPp client spreads its traffic over (one /24
    /// each), so per-address and per-prefix flood limits of the shipped rules see what a
    /// population of callers would send.
    pub sources: usize,
    /// Middles measured, by name.
    pub middles: Vec<String>,
    /// Call rates of the call ladder (calls/s).
    pub call_ladder: Vec<f64>,
    /// Transaction rates of the flood ladder (OPTIONS/s).
    pub flood_ladder: Vec<f64>,
    /// Rule counts of the rule sweep.
    pub rule_counts: Vec<usize>,
    /// Message rate of the rule sweep (SecSip scenario 2), messages/s.
    pub sweep_msgs_per_s: f64,
    /// The appliance configuration file used (path as given).
    pub appliance_config: String,
    /// The rules directory of the `secsip` middle.
    pub shipped_rules: String,
    /// Scheduling niceness of the appliance (SIPp runs at 0).
    pub appliance_nice: i32,
}

/// Which workload a step belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// (a) SIPp call ladder: INVITE, 100, 180, 200, ACK, BYE, 200 (7 messages a call).
    Calls,
    /// (b) OPTIONS flood ladder: each request answered by 200 (2 messages a transaction).
    Flood,
    /// Latency at fixed fractions of the bridge's highest flood rate.
    Latency,
    /// (c) SecSip scenario 2: a fixed message rate, the rule count swept.
    RuleSweep,
}

/// Latency percentiles of one distribution, in the unit its field name says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
}

/// CPU time spent during a step, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    /// Wall time of the step (traffic and drain).
    pub wall_s: f64,
    /// User + system time of the middle's process (the appliance); `None` for the Linux
    /// bridge, whose work is kernel softirq time counted in `softirq_s`.
    pub middle_s: Option<f64>,
    /// User + system time of the SIPp client.
    pub sipp_client_s: f64,
    /// User + system time of the SIPp server.
    pub sipp_server_s: f64,
    /// Softirq time of the whole machine (packet processing of veths, bridge, XDP).
    pub softirq_s: f64,
    /// Busy time of the whole machine (all CPUs, everything but idle and iowait).
    pub machine_busy_s: f64,
}

/// One step: one middle carrying one workload at one target rate.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Step {
    /// Workload.
    pub workload: Option<Workload>,
    /// Middle name: `bridge`, `secsip`, `secsip-rules=N`, `secsip-rtc`.
    pub middle: String,
    /// Rules loaded in the middle (`None` for the bridge).
    pub rules: Option<usize>,
    /// The rate asked of SIPp, in the workload's unit (calls/s or transactions/s).
    pub target_rate: f64,
    /// Messages per call or transaction (7 or 2), to turn rates into messages/s.
    pub msgs_per_unit: u32,
    /// Rate SIPp actually started (units/s).
    pub offered_rate: f64,
    /// Messages per second offered to the middle (both directions, as the scenario would
    /// send them with nothing lost).
    pub offered_msgs_per_s: f64,
    /// Messages per second the middle delivered (both directions, counted by the receiving
    /// SIPp).
    pub delivered_msgs_per_s: f64,
    /// Fraction of requests sent by the client that never reached the server (0..1).
    pub loss: f64,
    /// Calls or transactions started.
    pub attempted: u64,
    /// Completed successfully.
    pub successful: u64,
    /// Failed (timeouts, unexpected messages).
    pub failed: u64,
    /// Retransmissions by both SIPp sides.
    pub retransmissions: u64,
    /// Messages the middle's rules dropped or rejected (appliance only).
    pub rule_drops: Option<u64>,
    /// SIPp response times (request to final response as the client saw it), milliseconds
    /// at SIPp's 1 ms resolution.
    pub sipp_rt_ms: Option<Percentiles>,
    /// One-way time through the middle, microseconds: the client veth's transmit timestamp
    /// to the server veth's receive timestamp of the same message (packet captures).
    pub wire_latency_us: Option<Percentiles>,
    /// The appliance's own rx-to-tx histogram, microseconds.
    pub appliance_latency_us: Option<Percentiles>,
    /// CPU time.
    pub cpu: Cpu,
    /// Peak resident memory of the middle's process, KiB.
    pub middle_peak_rss_kib: Option<u64>,
    /// SIP the appliance forwarded uninspected (an engine thread gone under `fail_open`); a
    /// step with any is not passed: the firewall did not carry that load.
    pub uninspected: Option<u64>,
    /// The step met its workload's criterion (no failed call, retransmissions ≤ 1%, loss
    /// < 0.1%, offered rate reached).
    pub passed: bool,
    /// Why it did not pass, or what is worth knowing; empty when there is nothing to say.
    pub note: String,
}

/// Per-middle results.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MiddleSummary {
    /// Middle name.
    pub middle: String,
    /// Rules loaded.
    pub rules: Option<usize>,
    /// Highest passing call rate (calls/s), if the call ladder ran for this middle.
    pub max_call_rate: Option<f64>,
    /// Highest passing flood rate, messages/s through the middle.
    pub max_flood_msgs_per_s: Option<f64>,
    /// What stopped the ladder above the maximum (the first failing step's note).
    pub limited_by: String,
}

/// Latency of one middle at one fraction of the bridge's highest flood rate.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LatencyAt {
    /// Fraction of the bridge's maximum (0.25, 0.5, 0.75).
    pub fraction: f64,
    /// Messages per second offered.
    pub msgs_per_s: f64,
    /// Middle.
    pub middle: String,
    /// Through-the-middle latency, µs.
    pub wire_latency_us: Option<Percentiles>,
    /// SIPp response time, ms.
    pub sipp_rt_ms: Option<Percentiles>,
    /// The appliance's rx-to-tx latency, µs.
    pub appliance_latency_us: Option<Percentiles>,
    /// Loss at that rate (0..1).
    pub loss: f64,
}

/// One target of the issue, judged.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Target {
    /// What is asked, in words.
    pub name: String,
    /// Met, not met, or `None` when the run could not judge it (say why in `detail`).
    pub met: Option<bool>,
    /// The numbers behind the verdict.
    pub detail: String,
}

/// What the steps add up to.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    /// One row per middle.
    pub middles: Vec<MiddleSummary>,
    /// Latency at 25/50/75% of the bridge's maximum, per middle.
    pub latency_at: Vec<LatencyAt>,
    /// The targets.
    pub targets: Vec<Target>,
    /// Observations on what limited the top rate (CPU shares, drops, SIPp saturation).
    pub limits: Vec<String>,
}
