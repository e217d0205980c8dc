//! Configuration: serde structs, loaded from TOML, with errors that name file, line and column.
//!
//! Every bound the data path enforces is here, with its default and what it costs. Unknown
//! fields are errors (a typo must not silently fall back to a default).

use crate::hosttable::HostLimits;
use crate::rules::objects::ObjectLimits;
use crate::sip::Limits;
use crate::verdict::Policy;
use crate::wire::reasm::ReasmLimits;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The whole configuration file.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The SIP engine: ports, bounds, policies.
    pub engine: EngineConfig,
    /// The rule set.
    pub rules: RulesConfig,
    /// The host table shared by all engines: per-source counters and bans.
    pub hosts: HostLimits,
    /// The data path of `secsip run`: NICs, queues, threads, the XDP program.
    pub appliance: ApplianceConfig,
    /// Security event log and operational files.
    pub log: LogConfig,
    /// The management API (src/mgmt/API.md).
    pub management: ManagementConfig,
}

/// What happens to SIP the engines cannot judge: an engine's queue is full, or the daemon is
/// gone while the XDP program stays attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// Forward uninspected (counted): calls keep working, unprotected.
    #[default]
    FailOpen,
    /// Drop (counted): nothing uninspected crosses.
    FailClosed,
}

/// What the XDP program does with a frame it cannot prove is not SIP (a VLAN stack or
/// extension chain deeper than it walks, a fragment, ESP, an unknown protocol or ethertype).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unclassified {
    /// Send it to the engines, which decode it (counted per cause either way).
    #[default]
    Userspace,
    /// Drop it in the kernel (counted per cause and as `unclassified_dropped`).
    Drop,
}

/// How the XDP program is attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum XdpMode {
    /// Native (driver) mode, falling back to generic where the driver has none.
    #[default]
    Auto,
    /// Native mode only: refuse to start without driver support.
    Native,
    /// Generic (skb) mode: works on any NIC, slower.
    Generic,
}

/// The appliance's data path.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApplianceConfig {
    /// NIC facing the Internet. Required by `secsip run` (or `--outside`).
    pub outside: Option<String>,
    /// NIC facing the SIP network. Required by `secsip run` (or `--inside`).
    pub inside: Option<String>,
    /// Queues used on each NIC (one RX/TX worker per queue pair). Default 1.
    pub queues: u32,
    /// Engine threads. 0 = run-to-completion: each worker judges inline. Default 1.
    pub engines: usize,
    /// Cores the workers are pinned to (worker i on io_cores[i % len]); empty: not pinned.
    pub io_cores: Vec<usize>,
    /// Cores the engines are pinned to (engine i on engine_cores[i % len]); empty: not pinned.
    pub engine_cores: Vec<usize>,
    /// How the XDP program is attached. Default auto.
    pub xdp_mode: XdpMode,
    /// SIP the daemon cannot judge because it is dead or stuck (the XDP program finds no
    /// socket), or because an engine thread is gone. Default fail_open. A full engine queue
    /// is never a reason to forward: see `admission`.
    pub failure: Failure,
    /// Per-source admission before the engines: what is shed under a flood.
    pub admission: AdmissionConfig,
    /// Packet buffers (UMEM frames) per queue pair, shared by both NICs. Power of two. Default 4096.
    pub frames: u32,
    /// Bytes per frame: 2048 or 4096 (jumbo frames need 4096). Default 2048.
    pub frame_size: u32,
    /// Entries of each AF_XDP ring (rx, tx, fill, completion). Power of two. Default 1024.
    pub ring_size: u32,
    /// Frames a worker takes from a ring at once. Default 64.
    pub batch: usize,
    /// Frames waiting for one engine before its queue counts as full. Default 2048.
    pub engine_queue: usize,
    /// Empty polls a worker spins before it sleeps (latency against idle CPU). Default 256.
    pub spin_polls: u32,
    /// Longest a sleeping worker or engine waits before housekeeping, ms. Default 100.
    pub idle_timeout_ms: u64,
    /// Frames the XDP program cannot prove are not SIP (fragments included): `userspace`
    /// (default) or `drop`. Never bridged uninspected.
    pub unclassified: Unclassified,
    /// Drop banned sources' SIP in the XDP program, before userspace. Default true.
    pub xdp_bans: bool,
    /// Entries of the XDP ban map (bans beyond it are still enforced by the engines). Default 65536.
    pub xdp_bans_max: u32,
    /// Directory on a bpf filesystem where the XDP links are pinned, so the program keeps
    /// bridging when the daemon is gone. Default /sys/fs/bpf/secsip.
    pub bpffs: PathBuf,
    /// Directory of the pid file and the control socket (`secsip stats`, `secsip reload`).
    /// Default /run/secsip.
    pub run_dir: PathBuf,
}

impl Default for ApplianceConfig {
    fn default() -> Self {
        ApplianceConfig {
            outside: None,
            inside: None,
            queues: 1,
            engines: 1,
            io_cores: Vec::new(),
            engine_cores: Vec::new(),
            xdp_mode: XdpMode::Auto,
            failure: Failure::FailOpen,
            admission: AdmissionConfig::default(),
            frames: 4096,
            frame_size: 2048,
            ring_size: 1024,
            batch: 64,
            engine_queue: 2048,
            spin_polls: 256,
            idle_timeout_ms: 100,
            unclassified: Unclassified::Userspace,
            xdp_bans: true,
            xdp_bans_max: 65536,
            bpffs: PathBuf::from("/sys/fs/bpf/secsip"),
            run_dir: PathBuf::from("/run/secsip"),
        }
    }
}

/// Per-source admission of SIP frames in the workers (src/dataplane/admit.rs): a hard cap
/// per source prefix, and under congestion the heaviest sources shed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdmissionConfig {
    /// IPv4 sources are counted by their first `prefix_v4` bits (0..=32). Default 24.
    pub prefix_v4: u8,
    /// IPv6 sources are counted by their first `prefix_v6` bits (0..=128). Default 64.
    pub prefix_v6: u8,
    /// Hard cap per source prefix and worker, SIP frames/s; beyond it they are shed. Default 10000.
    pub max_rate: u32,
    /// Sources at or below this rate (frames/s) are never shed for congestion. Default 200.
    pub min_shed_rate: u32,
    /// Counting window, ms (rates are measured over a sliding window this long). Default 100.
    pub window_ms: u32,
    /// Cells per row of each worker's count-min sketch of source rates (power of two, two
    /// rows, 12 bytes a cell). Default 4096.
    pub sketch_width: u32,
    /// Fill of the fullest engine queue, percent of `engine_queue`, at which the heaviest
    /// sources start being shed. Default 50.
    pub high_water_pct: u8,
    /// Fill at or below which congestion shedding relaxes. Below `high_water_pct`. Default 25.
    pub low_water_pct: u8,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            prefix_v4: 24,
            prefix_v6: 64,
            max_rate: 10_000,
            min_shed_rate: 200,
            window_ms: 100,
            sketch_width: 4096,
            high_water_pct: 50,
            low_water_pct: 25,
        }
    }
}

impl AdmissionConfig {
    /// Checks the section; the error names the offending field.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let a = self;
        if a.prefix_v4 > 32 {
            return Err(("prefix_v4", format!("{}: must be 0..=32", a.prefix_v4)));
        }
        if a.prefix_v6 > 128 {
            return Err(("prefix_v6", format!("{}: must be 0..=128", a.prefix_v6)));
        }
        if a.max_rate == 0 {
            return Err(("max_rate", "must be at least 1 frame/s".into()));
        }
        if a.min_shed_rate >= a.max_rate {
            return Err(("min_shed_rate", format!("{}: must be below max_rate ({})", a.min_shed_rate, a.max_rate)));
        }
        if a.window_ms == 0 || a.window_ms > 10_000 {
            return Err(("window_ms", format!("{}: must be 1..=10000", a.window_ms)));
        }
        if !a.sketch_width.is_power_of_two() || !(64..=1 << 22).contains(&a.sketch_width) {
            return Err(("sketch_width", format!("{}: must be a power of two, 64..=4194304", a.sketch_width)));
        }
        if a.high_water_pct == 0 || a.high_water_pct > 100 {
            return Err(("high_water_pct", format!("{}: must be 1..=100", a.high_water_pct)));
        }
        if a.low_water_pct >= a.high_water_pct {
            return Err(("low_water_pct", format!("{}: must be below high_water_pct ({})", a.low_water_pct, a.high_water_pct)));
        }
        Ok(())
    }
}

/// Line (1-based) of `key = ...` inside the table `[section]` of a TOML text, for errors about
/// a value that parsed but is out of range.
pub fn key_line(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            current = h.trim().to_string();
        } else if current == section && t.split('=').next().is_some_and(|k| k.trim() == key) {
            return Some(i + 1);
        }
    }
    None
}

/// Logs.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Security events (drops, rejects, alerts) as EVE JSON lines; `"-"` is stdout; absent: none.
    pub events: Option<PathBuf>,
    /// Events each engine may write per second (a flood must not flood the log). Default 100.
    pub events_per_second: u32,
    /// Events an engine may write at once above the rate. Default 200.
    pub events_burst: u32,
    /// Events queued for the writer thread; beyond it events are counted and lost. Default 8192.
    pub events_queue: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { events: None, events_per_second: 100, events_burst: 200, events_queue: 8192 }
    }
}

/// The management API: datastores, lists, bans, stats, metrics, the web manager.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ManagementConfig {
    /// Serve the API at all. Default true.
    pub enabled: bool,
    /// Address and port. A non-loopback address needs `token_file`. Default 127.0.0.1:10000.
    pub bind: String,
    /// A file whose first line (trimmed, at least 16 characters) is the bearer token every API
    /// request must carry. None: no token (loopback only).
    pub token_file: Option<PathBuf>,
    /// Larger request bodies get 413 and are not read. Default 4 MiB.
    pub max_body_bytes: usize,
    /// List entries added through the API, all lists together. Default 10000.
    pub max_list_entries: usize,
    /// Longest TTL of a list entry or a ban added through the API, seconds. Default one year.
    pub max_ttl_s: u64,
}

impl Default for ManagementConfig {
    fn default() -> Self {
        ManagementConfig {
            enabled: true,
            bind: "127.0.0.1:10000".into(),
            token_file: None,
            max_body_bytes: 4 << 20,
            max_list_entries: 10_000,
            max_ttl_s: 31_536_000,
        }
    }
}

/// Shortest bearer token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

impl ManagementConfig {
    /// The bind address, parsed.
    pub fn bind_addr(&self) -> Result<std::net::SocketAddr, String> {
        self.bind.parse().map_err(|e| format!("management.bind = {:?}: not an address:port ({e})", self.bind))
    }

    /// Reads the token (first line of `token_file`, trimmed); `Ok(None)` without a token file.
    pub fn token(&self) -> Result<Option<String>, String> {
        let Some(f) = &self.token_file else { return Ok(None) };
        let text = std::fs::read_to_string(f).map_err(|e| format!("management.token_file = {}: {e}", f.display()))?;
        let token = text.lines().next().unwrap_or("").trim().to_string();
        if token.chars().count() < MIN_TOKEN_LEN {
            return Err(format!(
                "management.token_file = {}: the token (first line) has {} characters, at least {MIN_TOKEN_LEN} are needed",
                f.display(),
                token.chars().count()
            ));
        }
        Ok(Some(token))
    }

    /// Checks the section: the address parses, a non-loopback bind has a token file, the
    /// token is long enough, the bounds are sane.
    pub fn check(&self) -> Result<(), String> {
        if self.max_body_bytes < 1024 {
            return Err(format!("management.max_body_bytes = {}: must be at least 1024", self.max_body_bytes));
        }
        if self.max_ttl_s == 0 {
            return Err("management.max_ttl_s must be at least 1".into());
        }
        if !self.enabled {
            return Ok(());
        }
        let addr = self.bind_addr()?;
        if !addr.ip().is_loopback() && self.token_file.is_none() {
            return Err(format!(
                "management.bind = {:?} is not a loopback address: set management.token_file (a bearer token is required beyond loopback)",
                self.bind
            ));
        }
        self.token().map(|_| ())
    }
}

/// Where the rules come from.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// Rules directory (every `*.toml` in it). Relative paths are taken from the working
    /// directory. None: no rules, only validation and the engine's policies.
    pub dir: Option<PathBuf>,
    /// MaxMind DB (GeoLite2/GeoIP2 Country or compatible) for `kind = "country"` lists.
    pub geoip_db: Option<PathBuf>,
}

/// Settings of one engine (every engine of an appliance runs with the same).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// UDP ports that carry SIP (either direction). Default `[5060]`.
    pub sip_udp_ports: Vec<u16>,
    /// TCP ports that carry SIP (either direction). Default `[5060]`. Connections on them are
    /// reassembled and framed; every message is judged before its segments go on.
    pub sip_tcp_ports: Vec<u16>,
    /// TCP ports that carry SIP over WebSocket (RFC 7118), as the server's port. Default `[]`:
    /// a listed port carries nothing but upgrades to the `sip` subprotocol (plain HTTP on it
    /// is reset), so only ports dedicated to SIP over WebSocket belong here.
    pub sip_ws_ports: Vec<u16>,
    /// WebSocket handshake bounds.
    pub websocket: crate::stream::websocket::WsLimits,
    /// TLS ports (SIPS, WSS): per-port policy and per-client connection rate.
    pub tls: crate::engine::tls::TlsConfig,
    /// What to do with a SIP message that fails validation. Default `drop`.
    pub malformed: Policy,
    /// What to do with a frame that claims to be IP but cannot be decoded, or is deeper than
    /// `decode` allows. Default `drop`.
    pub undecodable: Policy,
    /// What to do with ESP (IPsec encryption): its ports and payload cannot be inspected.
    /// Default `drop`; `forward` lets IPsec tunnels cross uninspected (counted as `esp`).
    pub esp: Policy,
    /// How deep the frame decoder walks VLAN stacks and extension-header chains.
    pub decode: crate::wire::DecodeLimits,
    /// Timer wheel resolution in milliseconds: state expires at most this late. Default 100.
    pub timer_tick_ms: u64,
    /// SIP parser and validation limits.
    pub sip: Limits,
    /// IP fragment reassembly bounds.
    pub reassembly: ReasmLimits,
    /// TCP stream reassembly bounds.
    pub tcp: crate::stream::StreamLimits,
    /// Transaction table bounds and lifetime.
    pub transactions: TransactionConfig,
    /// Dialog table bounds and lifetimes.
    pub dialogs: DialogConfig,
    /// Bounds of the rules' stateful objects (transaction and dialog scopes) per engine.
    pub objects: ObjectLimits,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            sip_udp_ports: vec![5060],
            sip_tcp_ports: vec![5060],
            sip_ws_ports: Vec::new(),
            websocket: crate::stream::websocket::WsLimits::default(),
            tls: crate::engine::tls::TlsConfig::default(),
            malformed: Policy::Drop,
            undecodable: Policy::Drop,
            esp: Policy::Drop,
            decode: crate::wire::DecodeLimits::DEFAULT,
            timer_tick_ms: 100,
            sip: Limits::default(),
            reassembly: ReasmLimits::default(),
            tcp: crate::stream::StreamLimits::default(),
            transactions: TransactionConfig::default(),
            dialogs: DialogConfig::default(),
            objects: ObjectLimits::default(),
        }
    }
}

impl EngineConfig {
    /// True when a UDP datagram between these ports is SIP.
    pub fn is_sip_udp(&self, src: u16, dst: u16) -> bool {
        self.sip_udp_ports.iter().any(|&p| p == src || p == dst)
    }

    /// True when a TCP segment between these ports is SIP (plain or over WebSocket).
    pub fn is_sip_tcp(&self, src: u16, dst: u16) -> bool {
        self.sip_tcp_ports.iter().chain(&self.sip_ws_ports).any(|&p| p == src || p == dst)
    }
}

/// Transaction table bounds.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransactionConfig {
    /// Maximum live transactions per engine. Default 262144.
    pub max_entries: usize,
    /// Maximum bytes of the table per engine (allocated up front). Default 32 MiB.
    pub max_bytes: usize,
    /// Seconds a transaction lives after its last message (64*T1 = 32 s, RFC 3261 Timer B/F).
    pub timeout_s: u64,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        TransactionConfig { max_entries: 262_144, max_bytes: 32 << 20, timeout_s: 32 }
    }
}

/// Dialog table bounds.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialogConfig {
    /// Maximum live dialogs per engine. Default 131072.
    pub max_entries: usize,
    /// Maximum bytes of the table per engine (allocated up front). Default 16 MiB.
    pub max_bytes: usize,
    /// Seconds an unanswered (early) dialog lives after its last message. Default 180
    /// (RFC 3261 Timer C).
    pub early_timeout_s: u64,
    /// Seconds a confirmed dialog lives after its last message. Default 7200: long calls
    /// without re-INVITEs or session timers send nothing for their whole length.
    pub confirmed_timeout_s: u64,
    /// Seconds an ended dialog is kept for late retransmissions. Default 32.
    pub terminated_linger_s: u64,
}

impl Default for DialogConfig {
    fn default() -> Self {
        DialogConfig { max_entries: 131_072, max_bytes: 16 << 20, early_timeout_s: 180, confirmed_timeout_s: 7200, terminated_linger_s: 32 }
    }
}

/// A configuration that could not be loaded: the message names file, line, column and field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {err}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// The file is not valid TOML or has wrong or unknown fields.
    #[error("{path}:{line}:{col}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What is wrong, as the TOML decoder says it.
        message: String,
    },
    /// Values that parse but cannot work together.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

impl Config {
    /// Compile options for the rules this configuration names.
    pub fn compile_options(&self) -> crate::rules::CompileOptions {
        crate::rules::CompileOptions {
            geoip_db: self.rules.geoip_db.clone(),
            host_counters: self.hosts.counters,
            host_distincts: self.hosts.distincts,
            extra_entries: Default::default(),
        }
    }

    /// Compiles the configured rules directory; `Ok(None)` when none is configured.
    pub fn compile_rules(&self) -> Result<Option<crate::rules::RuleSet>, crate::rules::CompileErrors> {
        match &self.rules.dir {
            Some(d) => crate::rules::compile_dir(d, &self.compile_options()).map(Some),
            None => Ok(None),
        }
    }

    /// Parses configuration text; `path` is used in error messages only.
    pub fn from_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            ConfigError::Parse { path: path.to_owned(), line, col, message: e.message().trim().to_string() }
        })?;
        cfg.validate(path)?;
        if let Err((field, message)) = cfg.appliance.admission.check() {
            let section = "appliance.admission";
            let line = key_line(text, section, field).unwrap_or(1);
            return Err(ConfigError::Parse { path: path.to_owned(), line, col: 1, message: format!("{section}.{field} = {message}") });
        }
        Ok(cfg)
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read { path: path.to_owned(), err })?;
        Config::from_str(&text, path)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let e = &self.engine;
        let bad = |message: String| Err(ConfigError::Invalid { path: path.to_owned(), message });
        if e.sip_udp_ports.is_empty() && e.sip_tcp_ports.is_empty() {
            return bad("engine.sip_udp_ports and engine.sip_tcp_ports are both empty: nothing would be inspected".into());
        }
        if e.sip_udp_ports.contains(&0) || e.sip_tcp_ports.contains(&0) || e.sip_ws_ports.contains(&0) {
            return bad("engine.sip_udp_ports / sip_tcp_ports / sip_ws_ports: port 0 is not a port".into());
        }
        if let Some(p) = e.sip_ws_ports.iter().find(|p| e.sip_tcp_ports.contains(p)) {
            return bad(format!("engine.sip_ws_ports: port {p} is in sip_tcp_ports too; a port is framed one way"));
        }
        let plain: Vec<u16> = e.sip_tcp_ports.iter().chain(&e.sip_ws_ports).copied().collect();
        if let Err(m) = e.tls.validate(&plain) {
            return bad(m);
        }
        if e.websocket.max_handshake_bytes < 256 || e.websocket.max_handshake_bytes > e.tcp.max_flow_bytes {
            return bad(format!(
                "engine.websocket.max_handshake_bytes = {}: must be 256..=engine.tcp.max_flow_bytes ({})",
                e.websocket.max_handshake_bytes, e.tcp.max_flow_bytes
            ));
        }
        if e.timer_tick_ms == 0 || e.timer_tick_ms > 10_000 {
            return bad(format!("engine.timer_tick_ms = {}: must be 1..=10000", e.timer_tick_ms));
        }
        if let Err(m) = e.tcp.validate() {
            return bad(m);
        }
        if e.transactions.max_entries == 0 || e.dialogs.max_entries == 0 {
            return bad("engine.transactions.max_entries and engine.dialogs.max_entries must be at least 1".into());
        }
        if e.transactions.timeout_s == 0 || e.dialogs.early_timeout_s == 0 || e.dialogs.confirmed_timeout_s == 0 {
            return bad("engine timeouts must be at least 1 second".into());
        }
        let a = &self.appliance;
        if a.queues == 0 || a.queues > 64 {
            return bad(format!("appliance.queues = {}: must be 1..=64", a.queues));
        }
        if a.engines > 256 {
            return bad(format!("appliance.engines = {}: must be 0..=256 (0 = run-to-completion)", a.engines));
        }
        if !a.frames.is_power_of_two() || a.frames < 2 * a.ring_size {
            return bad(format!(
                "appliance.frames = {}: must be a power of two and at least twice ring_size ({})",
                a.frames, a.ring_size
            ));
        }
        if !a.ring_size.is_power_of_two() || a.ring_size < 64 {
            return bad(format!("appliance.ring_size = {}: must be a power of two >= 64", a.ring_size));
        }
        if a.frame_size != 2048 && a.frame_size != 4096 {
            return bad(format!("appliance.frame_size = {}: must be 2048 or 4096", a.frame_size));
        }
        if a.batch == 0 || a.batch as u32 > a.ring_size || a.batch > 512 {
            return bad(format!("appliance.batch = {}: must be 1..=512 and at most ring_size", a.batch));
        }
        if a.engine_queue == 0 {
            return bad("appliance.engine_queue must be at least 1".into());
        }
        if a.idle_timeout_ms == 0 || a.idle_timeout_ms > 1000 {
            return bad(format!("appliance.idle_timeout_ms = {}: must be 1..=1000", a.idle_timeout_ms));
        }
        if let (Some(o), Some(i)) = (&a.outside, &a.inside) {
            if o == i {
                return bad(format!("appliance.outside and appliance.inside are both {o:?}: a bridge needs two NICs"));
            }
        }
        let l = &self.log;
        if l.events_per_second == 0 || l.events_burst == 0 || l.events_queue == 0 {
            return bad("log.events_per_second, log.events_burst and log.events_queue must be at least 1".into());
        }
        let h = &self.hosts;
        if h.max_hosts == 0 || h.max_hosts > 1 << 26 {
            return bad(format!("hosts.max_hosts = {}: must be 1..=67108864", h.max_hosts));
        }
        if h.counters > 4096 || h.distincts > 1024 || h.probe == 0 {
            return bad("hosts.counters must be <= 4096, hosts.distincts <= 1024, hosts.probe >= 1".into());
        }
        self.management.check().or_else(bad)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_from_empty_file() {
        let c = Config::from_str("", Path::new("x.toml")).unwrap();
        assert_eq!(c.engine.sip_udp_ports, vec![5060]);
        assert_eq!(c.engine.malformed, Policy::Drop);
    }

    #[test]
    fn unknown_field_names_file_line_and_column() {
        let text = "[engine]\nsip_udp_ports = [5060]\nmalformd = \"drop\"\n";
        let e = Config::from_str(text, Path::new("conf/secsip.toml")).unwrap_err().to_string();
        assert!(e.starts_with("conf/secsip.toml:3:1: "), "{e}");
        assert!(e.contains("malformd"), "{e}");
    }

    #[test]
    fn wrong_type_is_located() {
        let text = "[engine.dialogs]\nmax_entries = \"many\"\n";
        let e = Config::from_str(text, Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:2:15: "), "{e}");
    }

    #[test]
    fn inconsistent_values_are_refused() {
        let e = Config::from_str("[engine]\ntimer_tick_ms = 0\n", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.contains("timer_tick_ms"), "{e}");
    }

    #[test]
    fn management_beyond_loopback_needs_a_long_enough_token() {
        let c = Config::from_str("", Path::new("c.toml")).unwrap();
        assert_eq!((c.management.enabled, c.management.bind.as_str()), (true, "127.0.0.1:10000"));
        let e = Config::from_str("[management]\nbind = \"0.0.0.0:10000\"\n", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.starts_with("c.toml: ") && e.contains("management.bind") && e.contains("token_file"), "{e}");
        assert!(Config::from_str("[management]\nenabled = false\nbind = \"0.0.0.0:1\"\n", Path::new("c.toml")).is_ok());
        let dir = std::env::temp_dir().join(format!("secsip-cfg-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (short, long) = (dir.join("short"), dir.join("long"));
        std::fs::write(&short, "tooshort\n").unwrap();
        std::fs::write(&long, "  0123456789abcdef  \nignored\n").unwrap();
        let text = |f: &Path| format!("[management]\nbind = \"[::]:10000\"\ntoken_file = {:?}\n", f.display().to_string());
        let e = Config::from_str(&text(&short), Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.starts_with("c.toml: ") && e.contains("management.token_file") && e.contains("short") && e.contains("16"), "{e}");
        let c = Config::from_str(&text(&long), Path::new("c.toml")).unwrap();
        assert_eq!(c.management.token().unwrap().as_deref(), Some("0123456789abcdef"));
        let e = Config::from_str("[management]\nbind = \"nowhere\"\n", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.contains("management.bind"), "{e}");
        let e = Config::from_str("[management]\nport = 1\n", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:2:1"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn decode_limits_default_and_are_bounded_with_file_line_and_field() {
        let c = Config::from_str("", Path::new("c.toml")).unwrap();
        assert_eq!((c.engine.decode.max_vlan_tags, c.engine.decode.max_ext_headers, c.engine.esp), (4, 8, Policy::Drop));
        let c = Config::from_str("[engine]\nesp = \"forward\"\n[engine.decode]\nmax_vlan_tags = 16\nmax_ext_headers = 64\n", Path::new("c.toml")).unwrap();
        assert_eq!((c.engine.decode.max_vlan_tags, c.engine.decode.max_ext_headers, c.engine.esp), (16, 64, Policy::Forward));
        let e = Config::from_str("[engine.decode]\nmax_vlan_tags = 17\n", Path::new("conf/s.toml")).unwrap_err().to_string();
        assert!(e.starts_with("conf/s.toml:2:") && e.contains("engine.decode.max_vlan_tags = 17") && e.contains("16"), "{e}");
        let e = Config::from_str("[engine.decode]\nmax_vlan_tags = 2\nmax_ext_headers = 300\n", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:3:") && e.contains("engine.decode.max_ext_headers = 300") && e.contains("64"), "{e}");
        let e = Config::from_str("[engine]\nesp = \"allow\"\n", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:2:"), "{e}");
    }

    #[test]
    fn the_shipped_file_states_the_admission_defaults() {
        let c = Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/secsip.toml")).unwrap();
        assert_eq!(c.appliance.admission, AdmissionConfig::default());
    }

    #[test]
    fn admission_bounds_are_checked_with_file_line_and_field() {
        let c = Config::from_str("", Path::new("c.toml")).unwrap();
        assert_eq!(c.appliance.admission.prefix_v4, 24);
        let text = "[appliance]\nqueues = 1\n\n[appliance.admission]\nmax_rate = 500\nprefix_v4 = 33\n";
        let e = Config::from_str(text, Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:6:1: appliance.admission.prefix_v4 = 33"), "{e}");
        let text = "[appliance.admission]\nhigh_water_pct = 40\nlow_water_pct = 40\n";
        let e = Config::from_str(text, Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:3:1: appliance.admission.low_water_pct"), "{e}");
        let e = Config::from_str("[appliance.admission]\nmax_rate = 100\n", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.contains("min_shed_rate") && e.contains("below max_rate"), "{e}");
        let e = Config::from_str("[appliance.admission]\nsketch_width = 1000\n", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:2:1: ") && e.contains("power of two"), "{e}");
        let e = Config::from_str("[appliance.admission]\nwindow = 1\n", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:2:1: ") && e.contains("window"), "{e}");
    }

    #[test]
    fn tcp_bounds_are_read_and_checked() {
        let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/secsip.toml")).unwrap();
        let c = Config::from_str(&shipped, Path::new("secsip.toml")).unwrap();
        assert_eq!(c.engine.tcp, crate::stream::StreamLimits::default(), "the shipped file states the defaults");
        let text = "[engine.tcp]\nmax_flow_bytes = 1000\nmax_message_bytes = 4000\n";
        let e = Config::from_str(text, Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.starts_with("c.toml: ") && e.contains("engine.tcp.max_flow_bytes"), "{e}");
        let e = Config::from_str("[engine.tcp]\ntimeout_ms = 0\n", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.contains("engine.tcp"), "{e}");
    }

    #[test]
    fn websocket_and_tls_ports_are_read_and_checked() {
        let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/secsip.toml")).unwrap();
        let c = Config::from_str(&shipped, Path::new("secsip.toml")).unwrap();
        assert_eq!((c.engine.sip_ws_ports.len(), &c.engine.websocket, &c.engine.tls), (0, &Default::default(), &Default::default()));
        let text = "[engine]\nsip_ws_ports = [8080]\n[engine.tls]\nports = [{ port = 5061, policy = \"sources\", sources = [\"10.0.0.0/8\"] }]\n";
        let c = Config::from_str(text, Path::new("c.toml")).unwrap();
        assert!(c.engine.is_sip_tcp(40000, 8080) && c.engine.tls.port_of(40000, 5061).is_some());
        let e = Config::from_str("[engine.tls]\nports = [{ port = 5061, policy = \"sources\", sources = [\"10.0.0.0/40\"] }]\n", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:2:") && e.contains("10.0.0.0/40"), "{e}");
        let e = Config::from_str("[engine]\nsip_ws_ports = [5060]\n", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.contains("engine.sip_ws_ports"), "{e}");
        let e = Config::from_str("[engine.tls]\nports = [{ port = 5060 }]\n", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.contains("engine.tls.ports") && e.contains("5060"), "{e}");
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
