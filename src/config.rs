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
    /// TCP ports that carry SIP (either direction). Default `[5060]`. Only segments that start
    /// a SIP message are inspected; the engine does not reassemble TCP streams.
    pub sip_tcp_ports: Vec<u16>,
    /// What to do with a SIP message that fails validation. Default `drop`.
    pub malformed: Policy,
    /// What to do with a frame that claims to be IP but cannot be decoded. Default `drop`.
    pub undecodable: Policy,
    /// Timer wheel resolution in milliseconds: state expires at most this late. Default 100.
    pub timer_tick_ms: u64,
    /// SIP parser and validation limits.
    pub sip: Limits,
    /// IP fragment reassembly bounds.
    pub reassembly: ReasmLimits,
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
            malformed: Policy::Drop,
            undecodable: Policy::Drop,
            timer_tick_ms: 100,
            sip: Limits::default(),
            reassembly: ReasmLimits::default(),
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

    /// True when a TCP segment between these ports is SIP.
    pub fn is_sip_tcp(&self, src: u16, dst: u16) -> bool {
        self.sip_tcp_ports.iter().any(|&p| p == src || p == dst)
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
        if e.sip_udp_ports.contains(&0) || e.sip_tcp_ports.contains(&0) {
            return bad("engine.sip_udp_ports / engine.sip_tcp_ports: port 0 is not a port".into());
        }
        if e.timer_tick_ms == 0 || e.timer_tick_ms > 10_000 {
            return bad(format!("engine.timer_tick_ms = {}: must be 1..=10000", e.timer_tick_ms));
        }
        if e.transactions.max_entries == 0 || e.dialogs.max_entries == 0 {
            return bad("engine.transactions.max_entries and engine.dialogs.max_entries must be at least 1".into());
        }
        if e.transactions.timeout_s == 0 || e.dialogs.early_timeout_s == 0 || e.dialogs.confirmed_timeout_s == 0 {
            return bad("engine timeouts must be at least 1 second".into());
        }
        let h = &self.hosts;
        if h.max_hosts == 0 || h.max_hosts > 1 << 26 {
            return bad(format!("hosts.max_hosts = {}: must be 1..=67108864", h.max_hosts));
        }
        if h.counters > 4096 || h.distincts > 1024 || h.probe == 0 {
            return bad("hosts.counters must be <= 4096, hosts.distincts <= 1024, hosts.probe >= 1".into());
        }
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
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
