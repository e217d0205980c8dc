//! `secsip ctl`: the command-line client of the management API (`src/mgmt/API.md`).
//!
//! Each command is one HTTP request. The client is a small HTTP/1.1 implementation over
//! [`std::net::TcpStream`] (`Connection: close`, `Content-Length`, read to EOF): the API is
//! local, plain HTTP and answers small JSON documents, so a client library would only add
//! dependencies. The pieces are pure functions so they can be tested without a socket:
//! [`request_for`] turns a command into a [`Request`], [`encode_request`] and
//! [`parse_response`] are the wire, [`render`] turns an answer into text and an exit code.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use crate::rules::CompileError;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the API is when neither `--url` nor the configuration says.
pub const DEFAULT_URL: &str = "http://127.0.0.1:10000";
/// The environment variable holding the bearer token (the token itself, not a file).
pub const TOKEN_ENV: &str = "SECSIP_TOKEN";
/// Answers larger than this are refused rather than buffered (a datastore is a few MiB at most).
const MAX_ANSWER_BYTES: usize = 64 << 20;

const CTL_EXAMPLES: &str = "Examples:
  secsip ctl datastore list                               versions of running, startup, candidate
  secsip ctl datastore get running --out /tmp/rules       fetch the running rules into a directory
  secsip ctl datastore set candidate /tmp/rules           a directory becomes candidate (a draft)
  secsip ctl datastore validate candidate                 compile it: errors as file:line:col
  secsip ctl datastore diff running candidate             what a commit would change
  secsip ctl datastore copy candidate running --confirm 60   commit; undone in 60 s unless confirmed
  secsip ctl datastore confirm                            keep it
  secsip ctl datastore copy running startup               make it survive a restart
  secsip ctl lists add block-ip 203.0.113.0/24 --ttl 1h --reason scan
  secsip ctl lists show block-ip
  secsip ctl bans add 198.51.100.7 --ttl 10m --reason flood
  secsip ctl rules                                        rules with hit counts, enforce or monitor
  secsip ctl stats --json | jq .verdicts
  secsip ctl metrics                                      Prometheus text

The API address is --url, else `[management] bind` of the configuration given with -c,
else http://127.0.0.1:10000. The token is read from --token-file, else `[management]
token_file` of the configuration, else taken from $SECSIP_TOKEN.
Exit status: 0 on success, 1 on any error (the API's message on stderr; rule errors as
file:line:col: message, like `secsip rules check`; `validate` also when the rules do not
compile), 2 on a usage error.";

/// `secsip ctl`: options common to every command, and the command.
#[derive(Args, Debug)]
#[command(after_help = CTL_EXAMPLES)]
pub struct CtlArgs {
    /// Base URL of the management API, e.g. http://127.0.0.1:10000 (default: `[management]
    /// bind` of the configuration given with -c, else http://127.0.0.1:10000).
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// File whose first line is the bearer token (default: `[management] token_file` of the
    /// configuration, else the token in $SECSIP_TOKEN, else none).
    #[arg(long, global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Print the API's JSON answer as is instead of text tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Give up when connecting or waiting for the answer takes longer than this.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,
    /// What to do.
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// The commands of `secsip ctl`.
#[derive(Subcommand, Debug)]
pub enum CtlCommand {
    /// Rule sets: running (what the engines run), startup (the rules directory on disk,
    /// loaded at start and on reload) and candidate (an in-memory draft to edit and validate).
    #[command(subcommand, visible_alias = "ds")]
    Datastore(DatastoreCommand),
    /// Load startup into running, as SIGHUP does (startup is the rules directory on disk).
    Reload,
    /// Allow and block lists of the running rules: entries from the rule files and entries
    /// added through the API (with an optional TTL and reason; lost at restart).
    #[command(after_help = "Examples:
  secsip ctl lists                                        every list, with entry counts
  secsip ctl lists show block-ip                          its entries, where they come from, when they expire
  secsip ctl lists add block-ip 203.0.113.0/24 --ttl 1h --reason scan
  secsip ctl lists add block-ua 'friendly-scanner'
  secsip ctl lists remove block-ip 203.0.113.0/24")]
    Lists {
        /// show, add or remove; none prints every list.
        #[command(subcommand)]
        command: Option<ListsCommand>,
    },
    /// Bans of the host table (enforced by the XDP program): list, add, remove (unblock).
    #[command(after_help = "Examples:
  secsip ctl bans                                         every ban with its time left
  secsip ctl bans add 198.51.100.7 --ttl 1h --reason flood
  secsip ctl bans remove 198.51.100.7")]
    Bans {
        /// list, add or remove; none lists.
        #[command(subcommand)]
        command: Option<BansCommand>,
    },
    /// Counters of the running daemon (as `secsip stats`), since start or the last reset.
    Stats {
        /// Start a new counting window instead of printing (verdicts, rule hits, top drop
        /// sources). /metrics counters are never reset.
        #[arg(long)]
        reset: bool,
    },
    /// The running rules in evaluation order, with hit counts and enforce/monitor mode.
    Rules,
    /// Print /metrics (Prometheus text format).
    Metrics,
    /// Check that the API answers: version, pid, uptime.
    Health,
}

/// `secsip ctl datastore ...`.
#[derive(Subcommand, Debug)]
pub enum DatastoreCommand {
    /// Every datastore: version, files, size, whether it compiles, rules, last change; and a
    /// pending commit waiting for confirmation.
    #[command(visible_alias = "ls")]
    List,
    /// Fetch a datastore (a summary of its files, or every file with --out) or one of its files
    /// (its text, exactly).
    #[command(after_help = "Examples:
  secsip ctl datastore get running                        its files, sizes and version
  secsip ctl datastore get running 20-scanners.toml       one file's text on stdout
  secsip ctl datastore get running lists/bad-ua           a list file
  secsip ctl datastore get candidate --out /tmp/cand      every file into /tmp/cand (and lists/)")]
    Get {
        /// running, startup or candidate.
        ds: String,
        /// A file of the datastore: NAME.toml or lists/NAME.
        file: Option<String>,
        /// Write the file(s) into this directory (created if needed) instead of printing.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Replace a whole datastore with a directory (its *.toml and lists/*), or set one file.
    ///
    /// running and startup refuse rules that do not compile (422, with file:line:col);
    /// candidate keeps them as a draft and says so.
    #[command(after_help = "Examples:
  secsip ctl datastore set candidate rules/               the directory becomes candidate (whole)
  secsip ctl datastore set candidate rules/20-scanners.toml   this one file
  secsip ctl datastore set candidate rules/lists/bad-ua   the list file lists/bad-ua
  secsip ctl datastore set startup rules/ --version 7-3f2a   409 if startup changed since 7-3f2a")]
    Set {
        /// running, startup or candidate.
        ds: String,
        /// A directory (every *.toml and lists/* in it: the whole datastore) or one file
        /// (NAME.toml, or a file in a lists/ directory).
        path: PathBuf,
        /// The datastore version this change is based on: refused (409) if it changed since.
        #[arg(long, value_name = "V")]
        version: Option<String>,
    },
    /// Remove one file from a datastore.
    #[command(visible_alias = "rm")]
    Delete {
        /// running, startup or candidate.
        ds: String,
        /// NAME.toml or lists/NAME.
        file: String,
        /// The datastore version this change is based on: refused (409) if it changed since.
        #[arg(long, value_name = "V")]
        version: Option<String>,
    },
    /// Copy every file of one datastore to another: to running = commit (compiled and swapped
    /// in), to startup = written to the rules directory on disk.
    #[command(after_help = "Examples:
  secsip ctl datastore copy candidate running --confirm 60   commit; undone in 60 s unless confirmed
  secsip ctl datastore confirm                               keep it
  secsip ctl datastore copy running startup                  save running to disk
  secsip ctl datastore copy running candidate                start a new draft from running")]
    Copy {
        /// The source datastore.
        from: String,
        /// The target datastore.
        to: String,
        /// With `to` running: go back to the previous running set after this long (1s..1h; 60,
        /// 90s, 5m) unless `secsip ctl datastore confirm` is run.
        #[arg(long, value_name = "SECONDS", value_parser = parse_confirm)]
        confirm: Option<u64>,
        /// The target's version this copy is based on: refused (409) if it changed since.
        #[arg(long, value_name = "V")]
        version: Option<String>,
    },
    /// Compile a datastore, optionally with local files replacing or adding to its own;
    /// print errors as file:line:col: message. Exit 0 when it compiles, 1 otherwise.
    #[command(after_help = "Examples:
  secsip ctl datastore validate candidate
  secsip ctl datastore validate running --with rules/20-scanners.toml   would this edit compile?
  secsip ctl datastore validate running --with rules/                   a whole directory over running")]
    Validate {
        /// running, startup or candidate.
        ds: String,
        /// A directory (its *.toml and lists/*) or one file laid over the datastore's files.
        #[arg(long = "with", value_name = "DIR_OR_FILE")]
        with: Option<PathBuf>,
    },
    /// Unified diff of the files of two datastores (from A to B).
    Diff {
        /// The old side.
        a: String,
        /// The new side.
        b: String,
    },
    /// Keep a commit made with `copy ... running --confirm`.
    Confirm,
    /// Put back the running rules in use before the last change of running (cancels a
    /// pending commit).
    Rollback,
}

/// `secsip ctl lists ...`.
#[derive(Subcommand, Debug)]
pub enum ListsCommand {
    /// The entries of one list.
    Show {
        /// The list's id (its `[[list]] id`).
        id: String,
    },
    /// Add an entry (checked by the list's kind: an IP or CIDR for ip lists, ...).
    Add {
        /// The list's id.
        id: String,
        /// The entry: 203.0.113.0/24, a user agent, a user, a domain, ...
        value: String,
        /// Remove it after this long: 30s, 10m, 1h, 2d, 1h30m (default: never).
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        ttl: Option<u64>,
        /// Why (kept with the entry, shown by `lists show`).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Remove an entry added through the API (entries of rule files are refused with 409).
    #[command(visible_alias = "rm")]
    Remove {
        /// The list's id.
        id: String,
        /// The entry, as shown by `lists show`.
        value: String,
    },
}

/// `secsip ctl bans ...`.
#[derive(Subcommand, Debug)]
pub enum BansCommand {
    /// Every ban with its time left, the rule that set it and why.
    #[command(visible_alias = "ls")]
    List,
    /// Ban an address (every packet from it is dropped by the XDP program).
    Add {
        /// The address.
        ip: IpAddr,
        /// For how long: 30s, 10m, 1h, 2d.
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        ttl: u64,
        /// Why.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Lift a ban.
    #[command(visible_alias = "rm")]
    Remove {
        /// The address.
        ip: IpAddr,
    },
}

// ---------------------------------------------------------------------------------------------
// Durations

/// Parses a duration in seconds: `90`, `30s`, `10m`, `1h`, `2d`, `1w`, or a sum like `1h30m`.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration (expected e.g. 30s, 10m, 1h, 2d)".into());
    }
    if let Ok(n) = t.parse::<u64>() {
        return Ok(n);
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit =
            match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 604_800,
                _ => return Err(format!(
                    "{s:?}: unknown unit {c:?} (expected s, m, h, d or w, e.g. 30s, 10m, 1h, 2d)"
                )),
            };
        if digits.is_empty() {
            return Err(format!(
                "{s:?}: a number must come before {c:?} (e.g. 30s, 10m, 1h, 2d)"
            ));
        }
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("{s:?}: number too large"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{s:?}: duration too large"))?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(format!(
            "{s:?}: a unit must follow {digits} (s, m, h, d or w)"
        ));
    }
    Ok(total)
}

/// A TTL: a [`parse_duration`] that is not zero (the API refuses 0).
pub fn parse_ttl(s: &str) -> Result<u64, String> {
    match parse_duration(s)? {
        0 => Err(format!("{s:?}: a TTL must be at least 1s")),
        n => Ok(n),
    }
}

/// A commit-confirm delay: a [`parse_duration`] within 1s..=1h, as the API accepts.
pub fn parse_confirm(s: &str) -> Result<u64, String> {
    match parse_duration(s)? {
        n @ 1..=3600 => Ok(n),
        n => Err(format!(
            "{s:?} = {n} s: --confirm must be between 1 s and 3600 s (1h)"
        )),
    }
}

/// Formats seconds the way [`parse_duration`] reads them: `45s`, `10m`, `1h30m`, `2d3h`.
pub fn format_duration(secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut left = secs;
    // Two units at most: "2d3h" is readable, "2d3h4m5s" is noise.
    let mut parts = 0;
    for (unit, name) in [(86_400, 'd'), (3600, 'h'), (60, 'm'), (1, 's')] {
        if left >= unit && parts < 2 {
            let _ = write!(out, "{}{name}", left / unit);
            left %= unit;
            parts += 1;
        } else if parts > 0 {
            parts = 2;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Where the API is, and the token

/// The API's address, taken apart from a URL like `http://127.0.0.1:10000/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address, without brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// A path prefix put before every route (empty, or `/something` without a trailing slash).
    pub prefix: String,
}

impl Endpoint {
    /// Parses `http://HOST[:PORT][/PREFIX]`; `HOST:PORT` alone is taken as http.
    pub fn parse(url: &str) -> Result<Endpoint> {
        let url = url.trim();
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            bail!("{url}: https is not supported: the management API speaks plain HTTP (reach a remote appliance through an SSH tunnel)");
        } else if url.contains("://") {
            bail!("{url}: only http:// URLs are supported");
        } else {
            url
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            bail!("{url}: no host in the URL (expected e.g. http://127.0.0.1:10000)");
        }
        if authority.contains('@') {
            bail!("{url}: credentials in the URL are not supported (use --token-file)");
        }
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| anyhow!("{url}: missing ']' after the IPv6 address"))?;
            let host = &r[..end];
            match &r[end + 1..] {
                "" => (host, None),
                p => (
                    host,
                    Some(
                        p.strip_prefix(':')
                            .ok_or_else(|| anyhow!("{url}: expected ':PORT' after ']'"))?,
                    ),
                ),
            }
        } else if authority.matches(':').count() > 1 {
            bail!("{url}: put an IPv6 address in brackets, e.g. http://[::1]:10000");
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| anyhow!("{url}: bad port {p:?}"))?,
        };
        let prefix = path.trim_end_matches('/').to_string();
        Ok(Endpoint {
            host: host.to_string(),
            port,
            prefix,
        })
    }

    /// `host:port`, with brackets around an IPv6 address (for messages and the Host header).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The URL to reach a server bound to `bind`: an unspecified address (0.0.0.0, ::) is reached
/// on the loopback of the same family, since that is where this host can always reach it.
pub fn bind_to_url(bind: &str) -> String {
    match bind.trim().parse::<SocketAddr>() {
        Ok(mut sa) => {
            if sa.ip().is_unspecified() {
                sa.set_ip(match sa.ip() {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                });
            }
            format!("http://{sa}")
        }
        Err(_) => format!("http://{}", bind.trim()),
    }
}

/// What `[management]` of a configuration says about reaching the API.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConfigHints {
    /// `[management] bind`.
    pub bind: Option<String>,
    /// `[management] token_file`.
    pub token_file: Option<PathBuf>,
}

/// Reads `[management]` from a configuration's text. Lenient on purpose: only these two keys
/// matter here, and the rest of the configuration may be newer or older than this binary.
pub fn config_hints(text: &str) -> Result<ConfigHints, String> {
    let v: toml::Value = toml::from_str(text).map_err(|e| e.message().to_string())?;
    let m = v.get("management");
    Ok(ConfigHints {
        bind: m
            .and_then(|m| m.get("bind"))
            .and_then(|b| b.as_str())
            .map(str::to_string),
        token_file: m
            .and_then(|m| m.get("token_file"))
            .and_then(|b| b.as_str())
            .map(PathBuf::from),
    })
}

/// Reads a token file: its first line, trimmed.
pub fn read_token_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow!(
            "cannot read the token file {}: {}",
            path.display(),
            io_text(&e)
        )
    })?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        bail!(
            "{}: the token file is empty (the token is its first line)",
            path.display()
        );
    }
    Ok(token)
}

/// The URL and token to use: flags first, then the configuration, then the defaults and env.
pub fn resolve(
    args: &CtlArgs,
    config: Option<&Path>,
    env_token: Option<String>,
) -> Result<(String, Option<String>)> {
    let mut hints = ConfigHints::default();
    if let Some(p) = config {
        // A missing file is fine (the defaults apply); a file that is not TOML is worth a word.
        if let Ok(text) = std::fs::read_to_string(p) {
            match config_hints(&text) {
                Ok(h) => hints = h,
                Err(e) => eprintln!(
                    "secsip ctl: warning: {}: not read as TOML ({e}); using the defaults",
                    p.display()
                ),
            }
        }
    }
    let url = match (&args.url, &hints.bind) {
        (Some(u), _) => u.clone(),
        (None, Some(b)) => bind_to_url(b),
        (None, None) => DEFAULT_URL.to_string(),
    };
    let token = match (&args.token_file, &hints.token_file) {
        (Some(f), _) => Some(read_token_file(f)?),
        (None, Some(f)) => Some(read_token_file(f).with_context(|| {
            format!(
                "[management] token_file of {}",
                config.map(|p| p.display().to_string()).unwrap_or_default()
            )
        })?),
        (None, None) => env_token
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty()),
    };
    Ok((url, token))
}

// ---------------------------------------------------------------------------------------------
// Requests

/// One API call: method, path (routes of API.md, encoded), optional JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// GET, PUT, POST or DELETE.
    pub method: &'static str,
    /// The route with its query, percent-encoded (without the endpoint's prefix).
    pub path: String,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// Datastore path -> local file it was read from, to show errors at the local file.
    pub local: BTreeMap<String, PathBuf>,
}

impl Request {
    fn new(method: &'static str, path: String, body: Option<Value>) -> Request {
        Request {
            method,
            path,
            body,
            local: BTreeMap::new(),
        }
    }
}

/// Percent-encodes `s`, keeping RFC 3986 unreserved characters and those in `keep`.
fn encode(s: &str, keep: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.as_bytes().contains(&b) {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

/// A path segment (a datastore, list id or address): `/` must not split it.
fn seg(s: &str) -> String {
    encode(s, ":@!$'()*,;")
}

/// A datastore file path: `lists/NAME` keeps its slash, as the route expects.
fn file_path(s: &str) -> String {
    encode(s, "/:@!$'()*,;")
}

/// A query value: `/` and `:` may stay (CIDRs and IPv6 read as typed), `&`, `=`, `+`, `#`,
/// `%` and spaces may not.
fn query(s: &str) -> String {
    encode(s, "/:@!$'()*,;")
}

fn with_version(mut body: Map<String, Value>, version: &Option<String>) -> Value {
    if let Some(v) = version {
        body.insert("version".into(), json!(v));
    }
    Value::Object(body)
}

/// The datastore path a local file goes to: `lists/NAME` for a file in a `lists` directory,
/// else its file name.
pub fn datastore_path_of(file: &Path) -> Result<String> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("{}: not a file name in UTF-8", file.display()))?;
    let in_lists = file
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|p| p == "lists");
    if in_lists && !name.ends_with(".toml") {
        Ok(format!("lists/{name}"))
    } else if name.ends_with(".toml") {
        Ok(name.to_string())
    } else {
        bail!(
            "{}: a datastore holds NAME.toml rule files and lists/NAME list files; this is neither",
            file.display()
        )
    }
}

/// Reads a rules directory as a datastore: every `*.toml` at its top and every file in
/// `lists/` (dot files skipped: editor droppings), keyed by their datastore path.
pub fn read_dir_files(dir: &Path) -> Result<BTreeMap<String, (PathBuf, String)>> {
    let mut files = BTreeMap::new();
    let mut add = |path: PathBuf, key: String| -> Result<()> {
        let text =
            std::fs::read(&path).map_err(|e| anyhow!("{}: {}", path.display(), io_text(&e)))?;
        let text =
            String::from_utf8(text).map_err(|_| anyhow!("{}: not UTF-8 text", path.display()))?;
        files.insert(key, (path, text));
        Ok(())
    };
    let entries =
        std::fs::read_dir(dir).map_err(|e| anyhow!("{}: {}", dir.display(), io_text(&e)))?;
    for e in entries {
        let e = e?;
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if p.is_file() && name.ends_with(".toml") {
            add(p, name)?;
        } else if p.is_dir() && name == "lists" {
            for l in
                std::fs::read_dir(&p).map_err(|e| anyhow!("{}: {}", p.display(), io_text(&e)))?
            {
                let l = l?;
                let lname = l.file_name().to_string_lossy().into_owned();
                if !lname.starts_with('.') && l.path().is_file() {
                    add(l.path(), format!("lists/{lname}"))?;
                }
            }
        }
    }
    Ok(files)
}

/// Local files for `set` and `validate --with`: a directory's files or one file.
fn read_local(path: &Path) -> Result<BTreeMap<String, (PathBuf, String)>> {
    if path.is_dir() {
        let files = read_dir_files(path)?;
        if files.is_empty() {
            bail!("{}: no *.toml file and no lists/* in this directory (a rules directory was expected)", path.display());
        }
        Ok(files)
    } else {
        let key = datastore_path_of(path)?;
        let text =
            std::fs::read(path).map_err(|e| anyhow!("{}: {}", path.display(), io_text(&e)))?;
        let text =
            String::from_utf8(text).map_err(|_| anyhow!("{}: not UTF-8 text", path.display()))?;
        Ok(BTreeMap::from([(key, (path.to_path_buf(), text))]))
    }
}

fn files_json(files: &BTreeMap<String, (PathBuf, String)>) -> Value {
    Value::Object(
        files
            .iter()
            .map(|(k, (_, t))| (k.clone(), json!(t)))
            .collect(),
    )
}

fn locals(files: &BTreeMap<String, (PathBuf, String)>) -> BTreeMap<String, PathBuf> {
    files
        .iter()
        .map(|(k, (p, _))| (k.clone(), p.clone()))
        .collect()
}

/// The API call for a command (reading local files for `set` and `validate --with`).
pub fn request_for(cmd: &CtlCommand) -> Result<Request> {
    use DatastoreCommand as D;
    Ok(match cmd {
        CtlCommand::Datastore(d) => match d {
            D::List => Request::new("GET", "/api/datastores".into(), None),
            D::Get { ds, file: None, .. } => {
                Request::new("GET", format!("/api/datastores/{}", seg(ds)), None)
            }
            D::Get {
                ds, file: Some(f), ..
            } => Request::new(
                "GET",
                format!("/api/datastores/{}/files/{}", seg(ds), file_path(f)),
                None,
            ),
            D::Set { ds, path, version } => {
                if path.is_dir() {
                    let files = read_local(path)?;
                    let mut body = Map::new();
                    body.insert("files".into(), files_json(&files));
                    let mut r = Request::new(
                        "PUT",
                        format!("/api/datastores/{}", seg(ds)),
                        Some(with_version(body, version)),
                    );
                    r.local = locals(&files);
                    r
                } else {
                    let files = read_local(path)?;
                    let (key, (local, text)) = files.into_iter().next().expect("one file");
                    let mut body = Map::new();
                    body.insert("text".into(), json!(text));
                    let mut r = Request::new(
                        "PUT",
                        format!("/api/datastores/{}/files/{}", seg(ds), file_path(&key)),
                        Some(with_version(body, version)),
                    );
                    r.local.insert(key, local);
                    r
                }
            }
            D::Delete { ds, file, version } => Request::new(
                "DELETE",
                format!("/api/datastores/{}/files/{}", seg(ds), file_path(file)),
                version.as_ref().map(|_| with_version(Map::new(), version)),
            ),
            D::Copy {
                from,
                to,
                confirm,
                version,
            } => {
                let mut body = Map::new();
                body.insert("from".into(), json!(from));
                body.insert("to".into(), json!(to));
                if let Some(c) = confirm {
                    body.insert("confirm_s".into(), json!(c));
                }
                Request::new(
                    "POST",
                    "/api/datastores/copy".into(),
                    Some(with_version(body, version)),
                )
            }
            D::Validate { ds, with } => {
                let path = format!("/api/datastores/{}/validate", seg(ds));
                match with {
                    None => Request::new("POST", path, None),
                    Some(w) => {
                        let files = read_local(w)?;
                        let mut r = Request::new(
                            "POST",
                            path,
                            Some(json!({ "files": files_json(&files) })),
                        );
                        r.local = locals(&files);
                        r
                    }
                }
            }
            D::Diff { a, b } => Request::new(
                "GET",
                format!("/api/datastores/diff?from={}&to={}", query(a), query(b)),
                None,
            ),
            D::Confirm => Request::new("POST", "/api/confirm".into(), None),
            D::Rollback => Request::new("POST", "/api/rollback".into(), None),
        },
        CtlCommand::Reload => Request::new("POST", "/api/reload".into(), None),
        CtlCommand::Lists { command } => match command {
            None => Request::new("GET", "/api/lists".into(), None),
            Some(ListsCommand::Show { id }) => {
                Request::new("GET", format!("/api/lists/{}", seg(id)), None)
            }
            Some(ListsCommand::Add {
                id,
                value,
                ttl,
                reason,
            }) => {
                let mut body = Map::new();
                body.insert("value".into(), json!(value));
                if let Some(t) = ttl {
                    body.insert("ttl_s".into(), json!(t));
                }
                if let Some(r) = reason {
                    body.insert("reason".into(), json!(r));
                }
                Request::new(
                    "POST",
                    format!("/api/lists/{}/entries", seg(id)),
                    Some(Value::Object(body)),
                )
            }
            Some(ListsCommand::Remove { id, value }) => Request::new(
                "DELETE",
                format!("/api/lists/{}/entries?value={}", seg(id), query(value)),
                None,
            ),
        },
        CtlCommand::Bans { command } => match command {
            None | Some(BansCommand::List) => Request::new("GET", "/api/bans".into(), None),
            Some(BansCommand::Add { ip, ttl, reason }) => {
                let mut body = Map::new();
                body.insert("ip".into(), json!(ip.to_string()));
                body.insert("ttl_s".into(), json!(ttl));
                if let Some(r) = reason {
                    body.insert("reason".into(), json!(r));
                }
                Request::new("POST", "/api/bans".into(), Some(Value::Object(body)))
            }
            Some(BansCommand::Remove { ip }) => Request::new(
                "DELETE",
                format!("/api/bans/{}", seg(&ip.to_string())),
                None,
            ),
        },
        CtlCommand::Stats { reset: false } => Request::new("GET", "/api/stats".into(), None),
        CtlCommand::Stats { reset: true } => Request::new("POST", "/api/stats/reset".into(), None),
        CtlCommand::Rules => Request::new("GET", "/api/rules".into(), None),
        CtlCommand::Metrics => Request::new("GET", "/metrics".into(), None),
        CtlCommand::Health => Request::new("GET", "/api/health".into(), None),
    })
}

// ---------------------------------------------------------------------------------------------
// The wire

/// The bytes of a request: HTTP/1.1, `Connection: close`, a `Content-Length` whenever the
/// method may carry a body (so the server never waits for one), the token if any.
pub fn encode_request(req: &Request, ep: &Endpoint, token: Option<&str>) -> Vec<u8> {
    let body = req.body.as_ref().map(|b| b.to_string()).unwrap_or_default();
    let mut h = format!(
        "{} {}{} HTTP/1.1\r\nHost: {}\r\nUser-Agent: secsip-ctl/{}\r\nAccept: application/json\r\nConnection: close\r\n",
        req.method,
        ep.prefix,
        req.path,
        ep.authority(),
        env!("CARGO_PKG_VERSION")
    );
    if let Some(t) = token {
        let _ = write!(h, "Authorization: Bearer {t}\r\n");
    }
    if req.body.is_some() {
        h.push_str("Content-Type: application/json\r\n");
    }
    if req.body.is_some() || req.method != "GET" {
        let _ = write!(h, "Content-Length: {}\r\n", body.len());
    }
    h.push_str("\r\n");
    let mut out = h.into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lowercased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a complete answer read to EOF: status line, headers, then a body delimited by
/// `Content-Length`, chunked encoding, or the end of the connection.
pub fn parse_response(raw: &[u8]) -> Result<Response> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            anyhow!(
                "the answer ended before its headers did ({} bytes): not an HTTP server?",
                raw.len()
            )
        })?;
    let head = std::str::from_utf8(&raw[..end])
        .map_err(|_| anyhow!("the answer's headers are not text"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !version.starts_with("HTTP/1.") {
        bail!("not an HTTP/1.x answer: {status_line:?}");
    }
    let status: u16 = code
        .parse()
        .map_err(|_| anyhow!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for l in lines {
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let rest = &raw[end + 4..];
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    resp.body = if chunked {
        dechunk(rest)?
    } else if let Some(cl) = resp.header("content-length") {
        let n: usize = cl
            .parse()
            .map_err(|_| anyhow!("bad Content-Length {cl:?}"))?;
        if rest.len() < n {
            bail!("the answer was cut short: {} of {n} body bytes", rest.len());
        }
        rest[..n].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(resp)
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let nl = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow!("the chunked answer was cut short"))?;
        let size_text = std::str::from_utf8(&b[..nl]).unwrap_or("");
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| anyhow!("bad chunk size {size_text:?}"))?;
        b = &b[nl + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size {
            bail!("the chunked answer was cut short");
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or(&[]);
    }
}

/// Plain words for the socket errors an operator meets.
fn io_text(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::TimedOut | K::WouldBlock => "timed out".into(),
        K::ConnectionReset => "connection reset by the server".into(),
        K::NotFound => "no such file or directory".into(),
        K::PermissionDenied => "permission denied".into(),
        _ => {
            // Drop the "(os error N)" suffix: it tells an operator nothing.
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

/// Sends a request and reads the whole answer.
pub fn send(
    ep: &Endpoint,
    token: Option<&str>,
    req: &Request,
    timeout: Duration,
) -> Result<Response> {
    let target = ep.authority();
    let addrs: Vec<SocketAddr> = (ep.host.as_str(), ep.port)
        .to_socket_addrs()
        .map_err(|e| anyhow!("cannot resolve {}: {}", ep.host, io_text(&e)))?
        .collect();
    let mut last = None;
    let mut stream = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let mut s = match (stream, last) {
        (Some(s), _) => s,
        (None, Some(e)) => {
            let hint = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    " (is secsip running with [management] enabled?)"
                }
                std::io::ErrorKind::TimedOut => " (a firewall in the way, or the wrong address?)",
                _ => "",
            };
            bail!("cannot connect to {target}: {}{hint}", io_text(&e));
        }
        (None, None) => bail!("cannot resolve {}: no address", ep.host),
    };
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(&encode_request(req, ep, token))
        .map_err(|e| anyhow!("sending to {target}: {}", io_text(&e)))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.len() > MAX_ANSWER_BYTES {
                    bail!(
                        "the answer from {target} is over {} MiB; refused",
                        MAX_ANSWER_BYTES >> 20
                    );
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                bail!(
                    "no answer from {target} within {} s ({} {})",
                    timeout.as_secs(),
                    req.method,
                    req.path
                )
            }
            // A server that answers and resets (e.g. after refusing a large body) still answered.
            Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => bail!("reading the answer from {target}: {}", io_text(&e)),
        }
    }
    parse_response(&raw).with_context(|| format!("{} {} at {target}", req.method, req.path))
}

// ---------------------------------------------------------------------------------------------
// Errors of the API

/// Reads `errors: [...]` as the compiler's own errors (printed `file:line:col: 'id': key:
/// message`), showing files that came from local paths at those paths.
pub fn rule_errors(v: &Value, local: &BTreeMap<String, PathBuf>) -> Vec<CompileError> {
    let s = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
    v.get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            let file = s(e, "file").unwrap_or_else(|| "?".into());
            let file = local.get(&file).cloned().unwrap_or_else(|| PathBuf::from(file));
            let num = |k: &str| e.get(k).and_then(Value::as_u64).unwrap_or(0) as usize;
            CompileError {
                file,
                line: num("line"),
                col: num("col"),
                id: s(e, "id"),
                key: s(e, "key"),
                message: s(e, "message").unwrap_or_default(),
            }
        })
        .collect()
}

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// `error.code` (`conflict`, `invalid_rules`, ...), or `http_<status>` if the body had none.
    pub code: String,
    /// `error.message`, or the body's text.
    pub message: String,
    /// Rule errors (for `invalid_rules`).
    pub errors: Vec<CompileError>,
}

impl ApiError {
    /// Reads an error answer (any body: a proxy's HTML page is reported as text).
    pub fn from_response(r: &Response, local: &BTreeMap<String, PathBuf>) -> ApiError {
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let e = &v["error"];
        let code = e["code"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("http_{}", r.status));
        let message = e["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| {
                let t = String::from_utf8_lossy(&r.body).trim().to_string();
                if t.is_empty() {
                    "(no message)".into()
                } else {
                    t.chars().take(400).collect()
                }
            });
        ApiError {
            status: r.status,
            code,
            message,
            errors: rule_errors(&v, local),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.status {
            400 => "bad request",
            401 => "unauthorized",
            404 => "not found",
            405 => "method not allowed",
            409 => "conflict",
            413 => "too large",
            422 => "the rules do not compile",
            _ => "error",
        };
        write!(
            f,
            "{what}: {} (HTTP {} {})",
            self.message, self.status, self.code
        )?;
        match self.status {
            401 => f.write_str(
                "\n  give the token with --token-file FILE, [management] token_file in the configuration (-c), or $SECSIP_TOKEN",
            )?,
            409 if self.message.contains("version") => {
                f.write_str("\n  someone changed it since; fetch it again (secsip ctl datastore list) and retry")?
            }
            _ => {}
        }
        for e in &self.errors {
            write!(f, "\n{e}")?;
        }
        if !self.errors.is_empty() {
            write!(f, "\n{} error(s)", self.errors.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

// ---------------------------------------------------------------------------------------------
// Output

/// What a command prints and its exit status.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// Standard output.
    pub out: String,
    /// Standard error.
    pub err: String,
    /// Exit status.
    pub code: u8,
}

/// Aligned text columns; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let n = header.len();
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut o = String::new();
    let line = |o: &mut String, cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 < cells.len() {
                let _ = write!(l, "{c:<width$}  ", width = w[i]);
            } else {
                l.push_str(c);
            }
        }
        o.push_str(l.trim_end());
        o.push('\n');
    };
    line(&mut o, header.to_vec());
    for r in rows {
        line(&mut o, r.iter().map(String::as_str).collect());
    }
    o
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `5m ago`, from a unix time; `-` when absent.
fn ago(v: &Value, now: f64) -> String {
    match v.as_f64() {
        Some(t) => format!("{} ago", format_duration((now - t).max(0.0).round() as u64)),
        None => "-".into(),
    }
}

/// `in 59m`, from a unix time; `never` when absent.
fn until(v: &Value, now: f64) -> String {
    match v.as_f64() {
        Some(t) => format!("in {}", format_duration((t - now).max(0.0).round() as u64)),
        None => "never".into(),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn secs(v: &Value) -> String {
    v.as_f64()
        .map(|s| format_duration(s.max(0.0).round() as u64))
        .unwrap_or_else(|| "-".into())
}

/// Turns a successful answer into text (or the JSON itself with `json`).
pub fn render(
    cmd: &CtlCommand,
    req: &Request,
    resp: &Response,
    json: bool,
    now: f64,
) -> Result<Outcome> {
    if let CtlCommand::Metrics = cmd {
        return Ok(Outcome {
            out: String::from_utf8_lossy(&resp.body).into_owned(),
            ..Default::default()
        });
    }
    let v: Value = serde_json::from_slice(&resp.body).map_err(|e| {
        anyhow!(
            "the answer to {} {} is not JSON ({e}): {:?}",
            req.method,
            req.path,
            String::from_utf8_lossy(&resp.body)
        )
    })?;
    let mut o = Outcome::default();
    // A 200 validate answer may still say "invalid": that is a failure for the exit status.
    if let CtlCommand::Datastore(DatastoreCommand::Validate { .. }) = cmd {
        if v["valid"] == Value::Bool(false) {
            o.code = 1;
        }
    }
    if json {
        o.out = serde_json::to_string_pretty(&v)? + "\n";
        return Ok(o);
    }
    let out = &mut o.out;
    use DatastoreCommand as D;
    match cmd {
        CtlCommand::Datastore(D::List) => {
            let rows: Vec<Vec<String>> = v["datastores"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    vec![
                        text(&d["name"]),
                        text(&d["version"]),
                        text(&d["files"]),
                        text(&d["bytes"]),
                        match d["valid"].as_bool() {
                            Some(true) => "yes".into(),
                            Some(false) => "NO".into(),
                            None => "-".into(),
                        },
                        text(&d["rules"]),
                        ago(&d["modified_unix"], now),
                    ]
                })
                .collect();
            out.push_str(&table(
                &[
                    "NAME", "VERSION", "FILES", "BYTES", "VALID", "RULES", "MODIFIED",
                ],
                &rows,
            ));
            let p = &v["pending_confirm"];
            if p.is_object() {
                let _ = writeln!(
                    out,
                    "\npending commit from {}: {} left; `secsip ctl datastore confirm` keeps it, else running goes back",
                    p["from"].as_str().unwrap_or("?"),
                    secs(&p["remaining_s"])
                );
            }
            if v["previous_running"] == Value::Bool(true) {
                let _ = writeln!(
                    out,
                    "the previous running set is kept: `secsip ctl datastore rollback` restores it"
                );
            }
        }
        CtlCommand::Datastore(D::Get { ds, file, out: dir }) => {
            let version = text(&v["version"]);
            match (file, dir) {
                (Some(_), None) => out.push_str(v["text"].as_str().unwrap_or("")),
                (Some(f), Some(d)) => {
                    let n = write_files(d, &BTreeMap::from([(f.clone(), v["text"].clone())]))?;
                    let _ = writeln!(
                        out,
                        "{ds}: wrote {n} file(s) of version {version} to {}",
                        d.display()
                    );
                }
                (None, Some(d)) => {
                    let files: BTreeMap<String, Value> = v["files"]
                        .as_object()
                        .map(|m| m.clone().into_iter().collect())
                        .unwrap_or_default();
                    let n = write_files(d, &files)?;
                    let _ = writeln!(
                        out,
                        "{ds}: wrote {n} file(s) of version {version} to {}",
                        d.display()
                    );
                }
                (None, None) => {
                    let files = v["files"].as_object().cloned().unwrap_or_default();
                    let _ = writeln!(out, "{ds}: version {version}, {} file(s)", files.len());
                    let mut rows: Vec<Vec<String>> = files
                        .iter()
                        .map(|(p, t)| {
                            let t = t.as_str().unwrap_or("");
                            vec![
                                p.clone(),
                                t.len().to_string(),
                                t.lines().count().to_string(),
                            ]
                        })
                        .collect();
                    rows.sort();
                    out.push_str(&table(&["PATH", "BYTES", "LINES"], &rows));
                    let _ = writeln!(
                        out,
                        "(one file: secsip ctl datastore get {ds} PATH; all: --out DIR)"
                    );
                }
            }
        }
        CtlCommand::Datastore(D::Set { ds, path, .. }) => {
            let what = if path.is_dir() {
                format!("{} file(s) from {}", req.local.len(), path.display())
            } else {
                format!(
                    "{} from {}",
                    req.local.keys().next().map(String::as_str).unwrap_or("?"),
                    path.display()
                )
            };
            let _ = writeln!(out, "{ds}: set {what}, version {}", text(&v["version"]));
            match v["valid"].as_bool() {
                Some(false) => {
                    for e in rule_errors(&v, &req.local) {
                        let _ = writeln!(o.err, "{e}");
                    }
                    let _ = writeln!(
                        o.err,
                        "{ds} is saved as a draft but does not compile: it cannot become running or startup until fixed"
                    );
                }
                _ => {
                    if !v["rules"].is_null() {
                        let _ = writeln!(out, "it compiles: {} rule(s)", text(&v["rules"]));
                    }
                }
            }
        }
        CtlCommand::Datastore(D::Delete { ds, file, .. }) => {
            let _ = writeln!(out, "{ds}: removed {file}, version {}", text(&v["version"]));
        }
        CtlCommand::Datastore(D::Copy {
            from, to, confirm, ..
        }) => {
            let _ = write!(
                out,
                "{to}: copied from {from}, version {}",
                text(&v["version"])
            );
            if !v["rules"].is_null() {
                let _ = write!(out, ", {} rule(s)", text(&v["rules"]));
            }
            out.push('\n');
            let p = &v["pending_confirm"];
            if p.is_object() || confirm.is_some() {
                let left = if p.is_object() {
                    secs(&p["remaining_s"])
                } else {
                    format_duration(confirm.unwrap_or(0))
                };
                let _ = writeln!(
                    out,
                    "confirm within {left} with `secsip ctl datastore confirm`, or running goes back to the previous set"
                );
            }
        }
        CtlCommand::Datastore(D::Validate { ds, with }) => {
            let base = match with {
                Some(w) => format!("{ds} with {}", w.display()),
                None => ds.clone(),
            };
            if v["valid"] == Value::Bool(false) {
                let errs = rule_errors(&v, &req.local);
                for e in &errs {
                    let _ = writeln!(o.err, "{e}");
                }
                let _ = writeln!(o.err, "{base}: {} error(s)", errs.len());
            } else {
                let _ = writeln!(out, "{base}: ok, {} rule(s)", text(&v["rules"]));
            }
        }
        CtlCommand::Datastore(D::Diff { a, b }) => {
            let files = v["files"].as_array().cloned().unwrap_or_default();
            if files.is_empty() {
                let _ = writeln!(out, "{a} and {b} hold the same files");
            }
            for f in &files {
                let _ = writeln!(out, "# {}: {}", text(&f["status"]), text(&f["path"]));
                let d = f["diff"].as_str().unwrap_or("");
                out.push_str(d);
                if !d.is_empty() && !d.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
        CtlCommand::Datastore(D::Confirm) => {
            let _ = writeln!(
                out,
                "confirmed: running stays at version {}",
                text(&v["version"])
            );
        }
        CtlCommand::Datastore(D::Rollback) => {
            let _ = write!(
                out,
                "running rolled back to version {}",
                text(&v["version"])
            );
            if !v["rules"].is_null() {
                let _ = write!(out, ", {} rule(s)", text(&v["rules"]));
            }
            out.push('\n');
        }
        CtlCommand::Reload => {
            let _ = write!(out, "reloaded: startup is now running");
            if !v["version"].is_null() {
                let _ = write!(out, ", version {}", text(&v["version"]));
            }
            if !v["rules"].is_null() {
                let _ = write!(out, ", {} rule(s)", text(&v["rules"]));
            }
            out.push('\n');
        }
        CtlCommand::Lists { command: None } => {
            let rows: Vec<Vec<String>> = v["lists"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| {
                    vec![
                        text(&l["id"]),
                        text(&l["kind"]),
                        text(&l["rules_entries"]),
                        text(&l["api_entries"]),
                    ]
                })
                .collect();
            if rows.is_empty() {
                let _ = writeln!(out, "the running rules have no lists");
            } else {
                out.push_str(&table(&["ID", "KIND", "FROM RULES", "FROM API"], &rows));
            }
        }
        CtlCommand::Lists {
            command: Some(ListsCommand::Show { id }),
        } => {
            let entries = v["entries"].as_array().cloned().unwrap_or_default();
            let _ = writeln!(
                out,
                "{id} ({}): {} entr{}",
                text(&v["kind"]),
                entries.len(),
                if entries.len() == 1 { "y" } else { "ies" }
            );
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    vec![
                        text(&e["value"]),
                        text(&e["source"]),
                        if e["source"] == "api" {
                            ago(&e["added_unix"], now)
                        } else {
                            "-".into()
                        },
                        until(&e["expires_unix"], now),
                        text(&e["reason"]),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                out.push_str(&table(
                    &["VALUE", "SOURCE", "ADDED", "EXPIRES", "REASON"],
                    &rows,
                ));
            }
        }
        CtlCommand::Lists {
            command: Some(ListsCommand::Add { id, value, .. }),
        } => {
            let e = if v.get("entry").is_some() {
                &v["entry"]
            } else {
                &v
            };
            let value = e["value"].as_str().unwrap_or(value);
            let _ = write!(
                out,
                "added {value} to {id}, expires {}",
                until(&e["expires_unix"], now)
            );
            if let Some(r) = e["reason"].as_str() {
                let _ = write!(out, ", reason: {r}");
            }
            out.push('\n');
        }
        CtlCommand::Lists {
            command: Some(ListsCommand::Remove { id, value }),
        } => {
            let _ = writeln!(out, "removed {value} from {id}");
        }
        CtlCommand::Bans {
            command: None | Some(BansCommand::List),
        } => {
            let rows: Vec<Vec<String>> = v["bans"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| {
                    vec![
                        text(&b["ip"]),
                        secs(&b["remaining_s"]),
                        text(&b["rule"]),
                        text(&b["reason"]),
                    ]
                })
                .collect();
            if rows.is_empty() {
                let _ = writeln!(out, "no bans");
            } else {
                out.push_str(&table(&["IP", "REMAINING", "RULE", "REASON"], &rows));
            }
        }
        CtlCommand::Bans {
            command: Some(BansCommand::Add { ip, ttl, .. }),
        } => {
            let left = if v["remaining_s"].is_number() {
                secs(&v["remaining_s"])
            } else {
                format_duration(*ttl)
            };
            let _ = write!(out, "banned {ip} for {left}");
            if let Some(r) = v["reason"].as_str() {
                let _ = write!(out, ", reason: {r}");
            }
            out.push('\n');
        }
        CtlCommand::Bans {
            command: Some(BansCommand::Remove { ip }),
        } => {
            let _ = writeln!(out, "unbanned {ip}");
        }
        CtlCommand::Stats { reset: true } => {
            let _ = writeln!(
                out,
                "counters reset: verdicts, rule hits and top drop sources count from now (/metrics is never reset)"
            );
        }
        CtlCommand::Stats { reset: false } => {
            out.push_str(&crate::dataplane::stats::render(&v));
            if v["since_unix"].is_number() {
                let _ = writeln!(
                    out,
                    "\n(verdicts, rule hits and top sources since {})",
                    ago(&v["since_unix"], now)
                );
            }
        }
        CtlCommand::Rules => {
            let rows: Vec<Vec<String>> = v["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, r)| {
                    vec![
                        (i + 1).to_string(),
                        text(&r["id"]),
                        text(&r["action"]),
                        text(&r["mode"]),
                        text(&r["hits"]),
                        format!("{}:{}", text(&r["file"]), text(&r["line"])),
                        r["description"].as_str().unwrap_or("").to_string(),
                    ]
                })
                .collect();
            let _ = writeln!(
                out,
                "running version {}, {} rule(s)",
                text(&v["version"]),
                rows.len()
            );
            out.push_str(&table(
                &[
                    "#",
                    "ID",
                    "ACTION",
                    "MODE",
                    "HITS",
                    "FILE:LINE",
                    "DESCRIPTION",
                ],
                &rows,
            ));
        }
        CtlCommand::Health => {
            let _ = writeln!(
                out,
                "ok: secsip {}, pid {}, up {}",
                text(&v["version"]),
                text(&v["pid"]),
                secs(&v["uptime_s"])
            );
        }
        CtlCommand::Metrics => unreachable!("handled above"),
    }
    Ok(o)
}

/// Writes datastore files under `dir`; refuses paths that would leave it (a server is trusted
/// with rules, not with the operator's filesystem).
pub fn write_files(dir: &Path, files: &BTreeMap<String, Value>) -> Result<usize> {
    for (p, t) in files {
        let ok_toml = !p.contains('/') && p.ends_with(".toml");
        let ok_list = p
            .strip_prefix("lists/")
            .is_some_and(|n| !n.is_empty() && !n.contains('/') && n != "." && n != "..");
        if !(ok_toml || ok_list) || p.starts_with('.') {
            bail!("refusing to write {p:?}: not NAME.toml or lists/NAME");
        }
        let target = dir.join(p);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| anyhow!("{}: {}", parent.display(), io_text(&e)))?;
        }
        std::fs::write(&target, t.as_str().unwrap_or(""))
            .map_err(|e| anyhow!("{}: {}", target.display(), io_text(&e)))?;
    }
    Ok(files.len())
}

/// Runs `secsip ctl`: resolves the URL and token, sends the request, prints the answer.
/// API errors are returned as [`ApiError`] (exit 1); with `--json` their body is printed too.
pub fn run(args: CtlArgs, config: Option<&Path>) -> Result<std::process::ExitCode> {
    let (url, token) = resolve(&args, config, std::env::var(TOKEN_ENV).ok())?;
    let ep = Endpoint::parse(&url)?;
    let req = request_for(&args.command)?;
    let resp = send(
        &ep,
        token.as_deref(),
        &req,
        Duration::from_secs(args.timeout.max(1)),
    )?;
    if !(200..300).contains(&resp.status) {
        if args.json {
            println!("{}", String::from_utf8_lossy(&resp.body).trim_end());
        }
        return Err(ApiError::from_response(&resp, &req.local).into());
    }
    let o = render(&args.command, &req, &resp, args.json, now_unix())?;
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    lock.write_all(o.out.as_bytes())?;
    lock.flush()?;
    eprint!("{}", o.err);
    Ok(std::process::ExitCode::from(o.code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct T {
        #[command(flatten)]
        ctl: CtlArgs,
    }

    fn args(line: &str) -> CtlArgs {
        let argv = std::iter::once("ctl").chain(line.split_whitespace());
        T::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .ctl
    }

    fn req(line: &str) -> Request {
        request_for(&args(line).command).unwrap()
    }

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("secsip-ctl-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn resp(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(parse_duration("1w"), Ok(604_800));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration(" 5m "), Ok(300));
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("1x")
            .unwrap_err()
            .contains("unknown unit 'x'"));
        assert!(parse_duration("h")
            .unwrap_err()
            .contains("a number must come before"));
        assert!(parse_duration("1h30")
            .unwrap_err()
            .contains("a unit must follow 30"));
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_ttl("0s").unwrap_err().contains("at least 1s"));
        assert_eq!(parse_ttl("1h"), Ok(3600));
        assert_eq!(parse_confirm("60"), Ok(60));
        assert_eq!(parse_confirm("1h"), Ok(3600));
        assert!(parse_confirm("0").is_err());
        assert!(parse_confirm("61m").unwrap_err().contains("3600"));
    }

    #[test]
    fn formatted_durations_read_back() {
        for (n, s) in [
            (0, "0s"),
            (45, "45s"),
            (600, "10m"),
            (3600, "1h"),
            (5400, "1h30m"),
            (90061, "1d1h"),
            (86_400 * 2, "2d"),
        ] {
            assert_eq!(format_duration(n), s);
        }
        // Two units at most, and what is printed parses (rounded down).
        assert_eq!(format_duration(3661), "1h1m");
        assert_eq!(parse_duration(&format_duration(5400)), Ok(5400));
    }

    #[test]
    fn urls() {
        let e = Endpoint::parse("http://127.0.0.1:10000").unwrap();
        assert_eq!(
            e,
            Endpoint {
                host: "127.0.0.1".into(),
                port: 10000,
                prefix: String::new()
            }
        );
        assert_eq!(Endpoint::parse("127.0.0.1:9000").unwrap().port, 9000);
        assert_eq!(
            Endpoint::parse("http://fw.example/").unwrap(),
            Endpoint {
                host: "fw.example".into(),
                port: 80,
                prefix: String::new()
            }
        );
        let v6 = Endpoint::parse("http://[::1]:10000/mgmt/").unwrap();
        assert_eq!(
            v6,
            Endpoint {
                host: "::1".into(),
                port: 10000,
                prefix: "/mgmt".into()
            }
        );
        assert_eq!(v6.authority(), "[::1]:10000");
        assert!(Endpoint::parse("https://x:1")
            .unwrap_err()
            .to_string()
            .contains("https is not supported"));
        assert!(Endpoint::parse("ftp://x")
            .unwrap_err()
            .to_string()
            .contains("only http://"));
        assert!(Endpoint::parse("http://::1:80")
            .unwrap_err()
            .to_string()
            .contains("brackets"));
        assert!(Endpoint::parse("http://x:99999")
            .unwrap_err()
            .to_string()
            .contains("bad port"));
        assert!(Endpoint::parse("http://u:p@x:1")
            .unwrap_err()
            .to_string()
            .contains("--token-file"));
        assert!(Endpoint::parse("http:///api")
            .unwrap_err()
            .to_string()
            .contains("no host"));
    }

    #[test]
    fn bind_derivation() {
        assert_eq!(bind_to_url("127.0.0.1:10000"), "http://127.0.0.1:10000");
        assert_eq!(bind_to_url("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(bind_to_url("[::]:10000"), "http://[::1]:10000");
        assert_eq!(bind_to_url("192.0.2.1:10000"), "http://192.0.2.1:10000");
        assert_eq!(bind_to_url("localhost:10000"), "http://localhost:10000");
    }

    #[test]
    fn config_hints_are_lenient() {
        let h = config_hints(
            "[engine]\nunknown_key = 1\n[management]\nbind = \"0.0.0.0:10001\"\ntoken_file = \"/etc/secsip/token\"\nnew_thing = true\n",
        )
        .unwrap();
        assert_eq!(h.bind.as_deref(), Some("0.0.0.0:10001"));
        assert_eq!(h.token_file, Some(PathBuf::from("/etc/secsip/token")));
        assert_eq!(
            config_hints("[engine]\nx = 1\n").unwrap(),
            ConfigHints::default()
        );
        assert!(config_hints("[management\n").is_err());
    }

    #[test]
    fn resolution_order() {
        let d = tmpdir("resolve");
        let tok = d.join("token");
        std::fs::write(&tok, "  from-config-file-0123456789  \nsecond line\n").unwrap();
        let cfg = d.join("secsip.toml");
        std::fs::write(
            &cfg,
            format!(
                "[management]\nbind = \"0.0.0.0:10005\"\ntoken_file = {:?}\n",
                tok.display().to_string()
            ),
        )
        .unwrap();
        // The configuration wins over the defaults and the environment.
        let (u, t) = resolve(&args("stats"), Some(&cfg), Some("env".into())).unwrap();
        assert_eq!(u, "http://127.0.0.1:10005");
        assert_eq!(t.as_deref(), Some("from-config-file-0123456789"));
        // Flags win over the configuration.
        let other = d.join("other");
        std::fs::write(&other, "flag-token\n").unwrap();
        let a = args(&format!(
            "--url http://10.0.0.1:1 --token-file {} stats",
            other.display()
        ));
        assert_eq!(
            resolve(&a, Some(&cfg), None).unwrap(),
            ("http://10.0.0.1:1".into(), Some("flag-token".into()))
        );
        // No configuration file: defaults and the environment.
        let (u, t) = resolve(
            &args("stats"),
            Some(&d.join("missing.toml")),
            Some(" env-token \n".into()),
        )
        .unwrap();
        assert_eq!((u.as_str(), t.as_deref()), (DEFAULT_URL, Some("env-token")));
        assert_eq!(
            resolve(&args("stats"), None, Some(String::new()))
                .unwrap()
                .1,
            None
        );
        // Unreadable and empty token files are errors that name the file.
        let e = resolve(
            &args(&format!("--token-file {} stats", d.join("nope").display())),
            None,
            None,
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("cannot read the token file"),
            "{e:#}"
        );
        std::fs::write(&other, "\n").unwrap();
        let e = resolve(
            &args(&format!("--token-file {} stats", other.display())),
            None,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }

    #[test]
    fn requests() {
        let r = req("lists add block-ip 203.0.113.0/24 --ttl 1h --reason scan");
        assert_eq!(
            (r.method, r.path.as_str()),
            ("POST", "/api/lists/block-ip/entries")
        );
        assert_eq!(
            r.body,
            Some(json!({"value": "203.0.113.0/24", "ttl_s": 3600, "reason": "scan"}))
        );
        let r = req("lists add block-ua friendly-scanner");
        assert_eq!(r.body, Some(json!({"value": "friendly-scanner"})));
        let r = req("datastore copy candidate running --confirm 60");
        assert_eq!(
            (r.method, r.path.as_str()),
            ("POST", "/api/datastores/copy")
        );
        assert_eq!(
            r.body,
            Some(json!({"from": "candidate", "to": "running", "confirm_s": 60}))
        );
        let r = req("ds copy running startup --version 3-ab");
        assert_eq!(
            r.body,
            Some(json!({"from": "running", "to": "startup", "version": "3-ab"}))
        );
        let r = req("lists remove block-ua a+b&c=d");
        assert_eq!(
            (r.method, r.path.as_str()),
            ("DELETE", "/api/lists/block-ua/entries?value=a%2Bb%26c%3Dd")
        );
        assert_eq!(
            req("lists remove block-ip 2001:db8::/32").path,
            "/api/lists/block-ip/entries?value=2001:db8::/32"
        );
        assert_eq!(req("lists").path, "/api/lists");
        assert_eq!(req("lists show block-ip").path, "/api/lists/block-ip");
        assert_eq!(req("bans").path, "/api/bans");
        assert_eq!(req("bans list").path, "/api/bans");
        let r = req("bans add 198.51.100.7 --ttl 10m");
        assert_eq!(r.body, Some(json!({"ip": "198.51.100.7", "ttl_s": 600})));
        assert_eq!(req("bans remove 2001:db8::1").path, "/api/bans/2001:db8::1");
        assert_eq!(
            req("datastore get running lists/bad-ua").path,
            "/api/datastores/running/files/lists/bad-ua"
        );
        assert_eq!(
            req("datastore diff running candidate").path,
            "/api/datastores/diff?from=running&to=candidate"
        );
        let r = req("datastore delete candidate 20-x.toml --version 4-cd");
        assert_eq!(
            (r.method, r.body),
            ("DELETE", Some(json!({"version": "4-cd"})))
        );
        assert_eq!(req("datastore rm candidate 20-x.toml").body, None);
        for (line, m, p) in [
            ("datastore list", "GET", "/api/datastores"),
            ("datastore get startup", "GET", "/api/datastores/startup"),
            (
                "datastore validate candidate",
                "POST",
                "/api/datastores/candidate/validate",
            ),
            ("datastore confirm", "POST", "/api/confirm"),
            ("datastore rollback", "POST", "/api/rollback"),
            ("reload", "POST", "/api/reload"),
            ("stats", "GET", "/api/stats"),
            ("stats --reset", "POST", "/api/stats/reset"),
            ("rules", "GET", "/api/rules"),
            ("metrics", "GET", "/metrics"),
            ("health", "GET", "/api/health"),
        ] {
            let r = req(line);
            assert_eq!((r.method, r.path.as_str(), r.body), (m, p, None), "{line}");
        }
    }

    #[test]
    fn bad_arguments_are_refused_by_the_parser() {
        let e = |line: &str| {
            T::try_parse_from(std::iter::once("ctl").chain(line.split_whitespace()))
                .unwrap_err()
                .to_string()
        };
        assert!(e("lists add block-ip 1.2.3.4 --ttl 1y").contains("unknown unit 'y'"));
        assert!(e("bans add 1.2.3.4").contains("--ttl"));
        assert!(e("bans add not-an-ip --ttl 1h").contains("not-an-ip"));
        assert!(e("datastore copy candidate running --confirm 2h").contains("3600"));
    }

    #[test]
    fn directory_to_files() {
        let d = tmpdir("dir");
        std::fs::write(d.join("10-base.toml"), "# base\n").unwrap();
        std::fs::write(d.join("20-scan.toml"), "# scan\n").unwrap();
        std::fs::write(d.join("README.md"), "not a rule file").unwrap();
        std::fs::write(d.join(".10-base.toml.swp"), "x").unwrap();
        std::fs::create_dir_all(d.join("lists")).unwrap();
        std::fs::write(d.join("lists/bad-ua"), "friendly-scanner\n").unwrap();
        std::fs::write(d.join("lists/.hidden"), "x").unwrap();
        std::fs::create_dir_all(d.join("lists/nested")).unwrap();
        std::fs::create_dir_all(d.join("other")).unwrap();
        std::fs::write(d.join("other/x.toml"), "x").unwrap();
        let files = read_dir_files(&d).unwrap();
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            ["10-base.toml", "20-scan.toml", "lists/bad-ua"]
        );
        assert_eq!(
            files["lists/bad-ua"],
            (d.join("lists/bad-ua"), "friendly-scanner\n".to_string())
        );

        let r = req(&format!(
            "datastore set candidate {} --version 2-x",
            d.display()
        ));
        assert_eq!(
            (r.method, r.path.as_str()),
            ("PUT", "/api/datastores/candidate")
        );
        assert_eq!(
            r.body,
            Some(
                json!({"files": {"10-base.toml": "# base\n", "20-scan.toml": "# scan\n", "lists/bad-ua": "friendly-scanner\n"}, "version": "2-x"})
            )
        );
        assert_eq!(r.local["20-scan.toml"], d.join("20-scan.toml"));

        let r = req(&format!(
            "datastore set running {}",
            d.join("lists/bad-ua").display()
        ));
        assert_eq!(
            (r.method, r.path.as_str()),
            ("PUT", "/api/datastores/running/files/lists/bad-ua")
        );
        assert_eq!(r.body, Some(json!({"text": "friendly-scanner\n"})));
        let r = req(&format!(
            "datastore validate running --with {}",
            d.join("20-scan.toml").display()
        ));
        assert_eq!(r.body, Some(json!({"files": {"20-scan.toml": "# scan\n"}})));

        let e = request_for(
            &args(&format!(
                "datastore set candidate {}",
                d.join("README.md").display()
            ))
            .command,
        );
        assert!(e.unwrap_err().to_string().contains("neither"));
        let empty = tmpdir("empty");
        let e = request_for(&args(&format!("datastore set candidate {}", empty.display())).command);
        assert!(e.unwrap_err().to_string().contains("no *.toml file"));
        let e = request_for(
            &args(&format!(
                "datastore set candidate {}",
                d.join("missing").display()
            ))
            .command,
        );
        assert!(e.unwrap_err().to_string().contains("missing"));
    }

    #[test]
    fn writing_files_stays_in_the_directory() {
        let d = tmpdir("out");
        let files = BTreeMap::from([
            ("a.toml".to_string(), json!("A")),
            ("lists/l".to_string(), json!("L\n")),
        ]);
        assert_eq!(write_files(&d, &files).unwrap(), 2);
        assert_eq!(std::fs::read_to_string(d.join("lists/l")).unwrap(), "L\n");
        for bad in [
            "../x.toml",
            "lists/../../x",
            "/etc/passwd",
            "sub/x.toml",
            "lists/",
            "x.txt",
        ] {
            let f = BTreeMap::from([(bad.to_string(), json!("x"))]);
            assert!(write_files(&d, &f).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_bytes() {
        let ep = Endpoint::parse("http://127.0.0.1:10000/p").unwrap();
        let r = req("lists add block-ip 203.0.113.0/24 --ttl 1h");
        let b = String::from_utf8(encode_request(&r, &ep, Some("tok"))).unwrap();
        let body = r#"{"ttl_s":3600,"value":"203.0.113.0/24"}"#;
        assert!(
            b.starts_with(
                "POST /p/api/lists/block-ip/entries HTTP/1.1\r\nHost: 127.0.0.1:10000\r\n"
            ),
            "{b}"
        );
        for h in [
            "Connection: close\r\n",
            "Authorization: Bearer tok\r\n",
            "Content-Type: application/json\r\n",
        ] {
            assert!(b.contains(h), "{h} in {b}");
        }
        assert!(
            b.ends_with(&format!("Content-Length: {}\r\n\r\n{body}", body.len())),
            "{b}"
        );
        let g = String::from_utf8(encode_request(&req("stats"), &ep, None)).unwrap();
        assert!(
            !g.contains("Content-Length")
                && !g.contains("Authorization")
                && g.ends_with("\r\n\r\n"),
            "{g}"
        );
        // A bodiless POST still says Content-Length: 0, so the server does not wait for a body.
        let p = String::from_utf8(encode_request(&req("datastore confirm"), &ep, None)).unwrap();
        assert!(p.ends_with("Content-Length: 0\r\n\r\n"), "{p}");
    }

    #[test]
    fn response_parsing() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: \"3-ab\"\r\nContent-Length: 2\r\n\r\n{}trailing").unwrap();
        assert_eq!(
            (r.status, r.body.as_slice(), r.header("etag")),
            (200, &b"{}"[..], Some("\"3-ab\""))
        );
        let r = parse_response(b"HTTP/1.1 409 Conflict\r\n\r\nto the end").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (409, &b"to the end"[..]));
        let r = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n6;x=y\r\npedia \r\n0\r\n\r\n").unwrap();
        assert_eq!(r.body, b"Wikipedia ");
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
                .unwrap_err()
                .to_string()
                .contains("cut short")
        );
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n")
            .unwrap_err()
            .to_string()
            .contains("not an HTTP server"));
        assert!(parse_response(b"FOO 200\r\n\r\n")
            .unwrap_err()
            .to_string()
            .contains("not an HTTP/1.x"));
        assert!(parse_response(b"HTTP/1.1 2x0 OK\r\n\r\n").is_err());
    }

    #[test]
    fn error_rendering() {
        let body = r#"{"error": {"code": "invalid_rules", "message": "the rules do not compile"},
            "errors": [{"file": "20-scanners.toml", "line": 12, "col": 5, "id": "ua-block", "key": "match", "message": "unknown field 'sip.ua'"},
                       {"file": "10-base.toml", "line": 1, "col": 1, "id": null, "key": null, "message": "expected a table"}]}"#;
        let local = BTreeMap::from([(
            "20-scanners.toml".to_string(),
            PathBuf::from("rules/20-scanners.toml"),
        )]);
        let e = ApiError::from_response(&resp(422, body), &local);
        assert_eq!(
            e.to_string(),
            "the rules do not compile: the rules do not compile (HTTP 422 invalid_rules)\n\
             rules/20-scanners.toml:12:5: 'ua-block': match: unknown field 'sip.ua'\n\
             10-base.toml:1:1: expected a table\n2 error(s)"
        );
        let e = ApiError::from_response(
            &resp(
                409,
                r#"{"error":{"code":"conflict","message":"version 3-ab is not current (4-cd)"}}"#,
            ),
            &BTreeMap::new(),
        );
        let s = e.to_string();
        assert!(
            s.starts_with("conflict: version 3-ab is not current (4-cd) (HTTP 409 conflict)\n"),
            "{s}"
        );
        assert!(s.contains("fetch it again"), "{s}");
        let e = ApiError::from_response(
            &resp(
                409,
                r#"{"error":{"code":"conflict","message":"nothing to confirm"}}"#,
            ),
            &BTreeMap::new(),
        );
        assert_eq!(
            e.to_string(),
            "conflict: nothing to confirm (HTTP 409 conflict)"
        );
        let e = ApiError::from_response(
            &resp(
                401,
                r#"{"error":{"code":"unauthorized","message":"token required"}}"#,
            ),
            &BTreeMap::new(),
        );
        assert!(e.to_string().contains("--token-file"));
        let e = ApiError::from_response(&resp(502, "<html>Bad Gateway</html>"), &BTreeMap::new());
        assert_eq!(
            e.to_string(),
            "error: <html>Bad Gateway</html> (HTTP 502 http_502)"
        );
    }

    fn show(line: &str, body: &str) -> Outcome {
        let a = args(line);
        let r = request_for(&a.command).unwrap();
        render(&a.command, &r, &resp(200, body), a.json, 1_000_000.0).unwrap()
    }

    #[test]
    fn rendering() {
        let o = show(
            "datastore list",
            r#"{"datastores": [{"name": "running", "version": "3-ab", "files": 2, "bytes": 900, "valid": true, "rules": 7, "modified_unix": 999700.0},
                {"name": "candidate", "version": "5-ef", "files": 2, "bytes": 950, "valid": false, "rules": null, "modified_unix": 999990.0}],
                "pending_confirm": {"deadline_unix": 1000042.0, "remaining_s": 42.0, "from": "candidate"}, "previous_running": true}"#,
        );
        assert_eq!(
            o.out,
            "NAME       VERSION  FILES  BYTES  VALID  RULES  MODIFIED\n\
             running    3-ab     2      900    yes    7      5m ago\n\
             candidate  5-ef     2      950    NO     -      10s ago\n\n\
             pending commit from candidate: 42s left; `secsip ctl datastore confirm` keeps it, else running goes back\n\
             the previous running set is kept: `secsip ctl datastore rollback` restores it\n"
        );
        let o = show(
            "lists show block-ip",
            r#"{"id": "block-ip", "kind": "ip", "entries": [
                {"value": "192.0.2.0/24", "source": "rules", "reason": null, "added_unix": null, "expires_unix": null},
                {"value": "203.0.113.0/24", "source": "api", "reason": "scan", "added_unix": 999940.0, "expires_unix": 1003540.0}]}"#,
        );
        assert_eq!(
            o.out,
            "block-ip (ip): 2 entries\n\
             VALUE           SOURCE  ADDED   EXPIRES  REASON\n\
             192.0.2.0/24    rules   -       never    -\n\
             203.0.113.0/24  api     1m ago  in 59m   scan\n"
        );
        let o = show(
            "lists add block-ip 203.0.113.0/24 --ttl 1h --reason scan",
            r#"{"value": "203.0.113.0/24", "source": "api", "reason": "scan", "added_unix": 1000000.0, "expires_unix": 1003600.0}"#,
        );
        assert_eq!(
            o.out,
            "added 203.0.113.0/24 to block-ip, expires in 1h, reason: scan\n"
        );
        let o = show(
            "datastore copy candidate running --confirm 60",
            r#"{"name": "running", "version": "6-aa", "valid": true, "rules": 8, "pending_confirm": {"remaining_s": 60.0, "deadline_unix": 1000060.0, "from": "candidate"}}"#,
        );
        assert_eq!(o.out, "running: copied from candidate, version 6-aa, 8 rule(s)\nconfirm within 1m with `secsip ctl datastore confirm`, or running goes back to the previous set\n");
        let o = show(
            "bans",
            r#"{"bans": [{"ip": "198.51.100.7", "remaining_s": 3599.4, "rule": "api", "reason": "flood"}, {"ip": "2001:db8::1", "remaining_s": 20, "rule": "ban-scanners", "reason": null}]}"#,
        );
        assert_eq!(o.out, "IP            REMAINING  RULE          REASON\n198.51.100.7  59m59s     api           flood\n2001:db8::1   20s        ban-scanners  -\n");
        assert_eq!(show("bans", r#"{"bans": []}"#).out, "no bans\n");
        let o = show(
            "rules",
            r#"{"version": "3-ab", "rules": [{"id": "block-ua", "description": "scanners", "action": "drop", "mode": "monitor", "file": "20-scan.toml", "line": 4, "hits": 12}]}"#,
        );
        assert_eq!(o.out, "running version 3-ab, 1 rule(s)\n#  ID        ACTION  MODE     HITS  FILE:LINE       DESCRIPTION\n1  block-ua  drop    monitor  12    20-scan.toml:4  scanners\n");
        let o = show(
            "datastore diff running candidate",
            r#"{"from": "running", "to": "candidate", "files": [{"path": "20-scan.toml", "status": "modified", "diff": "--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y"}]}"#,
        );
        assert_eq!(
            o.out,
            "# modified: 20-scan.toml\n--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n"
        );
        assert_eq!(
            show("datastore diff running candidate", r#"{"files": []}"#).out,
            "running and candidate hold the same files\n"
        );
        assert_eq!(
            show(
                "datastore get running 20-scan.toml",
                r#"{"name": "running", "version": "1", "path": "20-scan.toml", "text": "a = 1"}"#
            )
            .out,
            "a = 1"
        );
        let o = show("lists --json", r#"{"lists": []}"#);
        assert_eq!(o.out, "{\n  \"lists\": []\n}\n");
        // --json re-prints the answer; a timestamp must come out as the daemon wrote it.
        let o = show("stats --json", r#"{"since_unix": 1796490865.6153579}"#);
        assert_eq!(o.out, "{\n  \"since_unix\": 1796490865.6153579\n}\n");
        assert_eq!(
            show(
                "health",
                r#"{"ok": true, "version": "0.1.0", "pid": 42, "uptime_s": 3700.2}"#
            )
            .out,
            "ok: secsip 0.1.0, pid 42, up 1h1m\n"
        );
        let a = args("metrics");
        let r = request_for(&a.command).unwrap();
        assert_eq!(
            render(&a.command, &r, &resp(200, "# HELP x\nx 1\n"), false, 0.0)
                .unwrap()
                .out,
            "# HELP x\nx 1\n"
        );
    }

    #[test]
    fn invalid_validation_fails_and_prints_like_the_compiler() {
        let body = r#"{"valid": false, "rules": null, "errors": [{"file": "20-scan.toml", "line": 3, "col": 9, "id": "block-ua", "key": "match", "message": "expected an expression"}]}"#;
        let o = show("datastore validate candidate", body);
        assert_eq!((o.code, o.out.as_str()), (1, ""));
        assert_eq!(
            o.err,
            "20-scan.toml:3:9: 'block-ua': match: expected an expression\ncandidate: 1 error(s)\n"
        );
        let o = show(
            "datastore validate candidate",
            r#"{"valid": true, "rules": 4, "errors": []}"#,
        );
        assert_eq!((o.code, o.out.as_str()), (0, "candidate: ok, 4 rule(s)\n"));
        // A candidate may be saved as a draft that does not compile: success, with a warning.
        let d = tmpdir("draft");
        std::fs::write(d.join("20-scan.toml"), "x").unwrap();
        let o = show(&format!("datastore set candidate {}", d.display()), body);
        assert_eq!(o.code, 0);
        assert!(
            o.err.starts_with(&format!(
                "{}:3:9: 'block-ua'",
                d.join("20-scan.toml").display()
            )),
            "{}",
            o.err
        );
        assert!(o.err.contains("saved as a draft"), "{}", o.err);
    }

    #[test]
    fn get_out_writes_the_datastore() {
        let d = tmpdir("get-out");
        let o = show(
            &format!("datastore get candidate --out {}", d.display()),
            r#"{"name": "candidate", "version": "9-zz", "files": {"a.toml": "A\n", "lists/ua": "x\n"}}"#,
        );
        assert_eq!(
            o.out,
            format!(
                "candidate: wrote 2 file(s) of version 9-zz to {}\n",
                d.display()
            )
        );
        assert_eq!(std::fs::read_to_string(d.join("lists/ua")).unwrap(), "x\n");
        let a = args(&format!("datastore get candidate --out {}", d.display()));
        let r = request_for(&a.command).unwrap();
        let bad = resp(200, r#"{"files": {"../evil.toml": "x"}}"#);
        assert!(render(&a.command, &r, &bad, false, 0.0).is_err());
    }

    #[test]
    fn connection_refused_is_explained() {
        // Bind then drop: the port is (almost certainly) closed for the next instant.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let e = send(&ep, None, &req("stats"), Duration::from_secs(2))
            .unwrap_err()
            .to_string();
        assert_eq!(e, format!("cannot connect to 127.0.0.1:{port}: connection refused (is secsip running with [management] enabled?)"));
    }
}
