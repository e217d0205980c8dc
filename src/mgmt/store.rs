//! The three rule datastores (running, startup, candidate), API list entries and bans: every
//! operation of the management API that changes something, with its checks.
//!
//! Nothing here touches a socket. Time comes from a [`Clock`] that tests can move forward, and
//! the management loop calls [`Store::tick`] to expire list entries and unconfirmed commits.
//! Every change of `running` compiles first and only then stores the new set in the slot the
//! engines read (the same `ArcSwap` as SIGHUP), so an invalid set can never run.

use super::datastore::{self, Files};
use crate::dataplane::control::ReloadStatus;
use crate::hosttable::HostTable;
use crate::rules::compile::CompileError;
use crate::rules::lists::{List, ListKind};
use crate::rules::slots::{HostSlots, SlotKind};
use crate::rules::{CompileOptions, RuleSet};
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The `rule` of a ban set through the API (rule bans carry the rule's [`RuleNames`] id).
pub const API_BAN_RULE: u32 = u32::MAX;

/// Distinct rule ids [`RuleNames`] remembers. Only the operator's rule files feed it (never
/// traffic), so the bound is a guard against a runaway generator rather than an attacker.
pub const MAX_RULE_NAMES: usize = 1 << 18;

/// Ban ids that name a rule whatever set is running now: a ban outlives the set whose rule
/// set it, and an index into that set would name another rule after a swap.
#[derive(Debug, Default)]
pub struct RuleNames {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl RuleNames {
    /// The id reserved for rules past [`MAX_RULE_NAMES`]: their bans show as unknown.
    pub const UNKNOWN: u32 = u32::MAX - 1;

    /// Gives every rule of `set` its stable ban id.
    pub fn stamp(&mut self, set: &mut RuleSet) {
        set.ban_ids = set.rules.iter().map(|r| self.intern(&r.id)).collect();
    }

    fn intern(&mut self, id: &str) -> u32 {
        if let Some(&n) = self.ids.get(id) {
            return n;
        }
        if self.names.len() >= MAX_RULE_NAMES {
            return Self::UNKNOWN;
        }
        let n = self.names.len() as u32;
        self.ids.insert(id.to_string(), n);
        self.names.push(id.to_string());
        n
    }

    /// The rule id behind a ban id.
    pub fn name(&self, n: u32) -> Option<&str> {
        self.names.get(n as usize).map(String::as_str)
    }
}

/// Longest commit-confirmed timeout, seconds.
pub const MAX_CONFIRM_S: u64 = 3600;

/// Longest reason of a list entry or a ban, characters.
pub const MAX_REASON: usize = 256;

fn check_reason(r: &Option<String>) -> Result<()> {
    match r {
        Some(r) if r.chars().count() > MAX_REASON => Err(StoreError::BadRequest(format!("reason: at most {MAX_REASON} characters"))),
        _ => Ok(()),
    }
}

/// Wall and monotonic time, with an offset tests can advance (so a TTL or a confirm deadline
/// can pass without waiting).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ns: Arc<AtomicU64>,
}

impl Clock {
    /// The system clocks.
    pub fn system() -> Clock {
        Clock::default()
    }
    /// Moves this clock (and its clones) forward.
    pub fn advance(&self, d: std::time::Duration) {
        self.offset_ns.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }
    /// Seconds since the Unix epoch.
    pub fn unix(&self) -> f64 {
        crate::dataplane::control::unix_now() + self.offset_ns.load(Ordering::Relaxed) as f64 / 1e9
    }
    /// Monotonic nanoseconds, the host table's clock.
    pub fn mono_ns(&self) -> u64 {
        crate::dataplane::worker::mono_ns() + self.offset_ns.load(Ordering::Relaxed)
    }
}

/// The datastores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ds {
    /// What the engines run.
    Running,
    /// The rules directory on disk.
    Startup,
    /// The in-memory draft.
    Candidate,
}

impl Ds {
    /// All of them, in listing order.
    pub const ALL: [Ds; 3] = [Ds::Running, Ds::Startup, Ds::Candidate];
    /// Parses a name.
    pub fn parse(s: &str) -> Option<Ds> {
        Some(match s {
            "running" => Ds::Running,
            "startup" => Ds::Startup,
            "candidate" => Ds::Candidate,
            _ => return None,
        })
    }
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Ds::Running => "running",
            Ds::Startup => "startup",
            Ds::Candidate => "candidate",
        }
    }
}

/// Why an operation was refused; nothing changed.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreError {
    /// A value is wrong (400 `bad_request`).
    BadRequest(String),
    /// Unknown file, list, entry or ban (404 `not_found`).
    NotFound(String),
    /// Stale version, list full, nothing to confirm or roll back (409 `conflict`).
    Conflict(String),
    /// The rules do not compile (422 `invalid_rules`).
    Invalid(Vec<CompileError>),
    /// The disk refused (500 `internal`).
    Io(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::BadRequest(m) | StoreError::NotFound(m) | StoreError::Conflict(m) | StoreError::Io(m) => f.write_str(m),
            StoreError::Invalid(e) => write!(f, "{}", crate::rules::CompileErrors(e.clone())),
        }
    }
}

/// Result of a store operation.
pub type Result<T> = std::result::Result<T, StoreError>;

/// One datastore's files and what is known of them.
#[derive(Clone, Debug)]
pub struct Datastore {
    /// Relative path -> text.
    pub files: Files,
    /// Changes on every write.
    pub version: String,
    /// Unix time of the last write.
    pub modified_unix: f64,
    /// Compile errors of the files (empty: they compile).
    pub errors: Vec<CompileError>,
    /// Rules (not definitions) when they compile.
    pub rules: Option<usize>,
}

/// Outcome of a validation.
#[derive(Clone, Debug)]
pub struct Validation {
    /// Compiles.
    pub valid: bool,
    /// Rules, when valid.
    pub rules: Option<usize>,
    /// Errors, when not.
    pub errors: Vec<CompileError>,
}

/// A commit to running that rolls back unless confirmed by `deadline_unix`.
#[derive(Clone, Debug)]
pub struct Pending {
    /// When it rolls back.
    pub deadline_unix: f64,
    /// Where the committed set came from.
    pub from: Ds,
    /// The running files before the commit.
    previous: Files,
}

/// A list entry added through the API.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiEntry {
    /// The value.
    pub value: String,
    /// Why.
    pub reason: Option<String>,
    /// When it was added.
    pub added_unix: f64,
    /// When it goes, if ever.
    pub expires_unix: Option<f64>,
}

/// An entry as listed: from a rule file or from the API.
#[derive(Clone, Debug, PartialEq)]
pub struct ListedEntry {
    /// The value.
    pub value: String,
    /// `rules` or `api`.
    pub source: &'static str,
    /// API entries only.
    pub api: Option<ApiEntry>,
}

/// A list of the running set with the origin of its entries.
#[derive(Clone, Debug)]
pub struct ListView {
    /// Its id.
    pub id: String,
    /// Its kind name.
    pub kind: &'static str,
    /// Entries from rule files, then from the API.
    pub entries: Vec<ListedEntry>,
}

/// A ban of the host table.
#[derive(Clone, Debug, PartialEq)]
pub struct BanView {
    /// The address.
    pub ip: IpAddr,
    /// Seconds left.
    pub remaining_s: f64,
    /// The rule id that set it, or `api`.
    pub rule: String,
    /// Why (API bans).
    pub reason: Option<String>,
}

/// Bounds of what the API may add.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// API list entries, all lists together.
    pub max_list_entries: usize,
    /// Longest TTL, seconds.
    pub max_ttl_s: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_list_entries: 10_000, max_ttl_s: 31_536_000 }
    }
}

/// Where a reload takes the rules from, as the configuration says now.
pub struct ReloadSource {
    /// The rules directory (None: no rules).
    pub dir: Option<PathBuf>,
    /// Compile options.
    pub opts: CompileOptions,
    /// What the log line names (the configuration file).
    pub label: String,
    /// Appended to the log line (settings that wait for a restart), if any.
    pub note: Option<String>,
}

/// Reads the configuration again for a reload; `Err` refuses the reload with that message.
pub type Reloader = Box<dyn FnMut() -> std::result::Result<ReloadSource, String> + Send>;

/// The management state: datastores, API list entries, API ban reasons.
pub struct Store {
    ds: [Datastore; 3],
    dir: Option<PathBuf>,
    opts: CompileOptions,
    slot: Arc<ArcSwap<RuleSet>>,
    running_set: Arc<RuleSet>,
    reloads: Arc<Mutex<ReloadStatus>>,
    previous_running: Option<Files>,
    pending: Option<Pending>,
    api_lists: BTreeMap<String, (ListKind, Vec<ApiEntry>)>,
    hosts: Arc<HostTable>,
    ban_reasons: HashMap<IpAddr, String>,
    /// Stable ban ids of every rule id that has run.
    names: RuleNames,
    /// Host-table slot owners, so shared counters keep their values across swaps.
    host_slots: HostSlots,
    limits: Limits,
    clock: Clock,
    counter: u64,
    reloader: Option<Reloader>,
}

fn reset_slot(hosts: &HostTable, kind: SlotKind, slot: usize) {
    match kind {
        SlotKind::Counter => hosts.reset_counter_slot(slot),
        SlotKind::Distinct => hosts.reset_distinct_slot(slot),
    }
}

fn rule_count(rs: &RuleSet) -> usize {
    rs.rules.iter().filter(|r| !r.is_definition).count()
}

fn kind_name(k: ListKind) -> &'static str {
    match k {
        ListKind::Ip => "ip",
        ListKind::UaPrefix => "ua_prefix",
        ListKind::User => "user",
        ListKind::Domain => "domain",
        ListKind::Number => "number",
        ListKind::NumberPrefix => "number_prefix",
        ListKind::Country => "country",
    }
}

/// Errors as text, paths joined to `dir` (what the daemon's log and `reloads.last_error` show).
pub fn errors_text(dir: Option<&Path>, errors: &[CompileError]) -> String {
    errors
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if let Some(d) = dir {
                if e.file.is_relative() && !e.file.as_os_str().is_empty() {
                    e.file = d.join(&e.file);
                }
            }
            e.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why a reload was refused: the line the log gets, and the compiler's errors when the rules
/// did not compile (paths relative to the rules directory, as in the startup datastore).
#[derive(Debug, Clone)]
pub struct ReloadError {
    /// One line (or one per compile error) naming full paths, for the log and the API message.
    pub message: String,
    /// The compiler's errors; empty when the configuration or the directory could not be read.
    pub errors: Vec<CompileError>,
}

impl ReloadError {
    fn other(message: String) -> Self {
        ReloadError { message, errors: vec![] }
    }
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Store {
    /// Loads the rules directory (none: an empty set), compiles it and makes it running,
    /// startup and candidate. The slot the engines read is created here: take it with
    /// [`Store::slot`]. An error is the compiler's, paths joined to `dir`.
    pub fn open(
        dir: Option<PathBuf>,
        opts: CompileOptions,
        limits: Limits,
        hosts: Arc<HostTable>,
        reloads: Arc<Mutex<ReloadStatus>>,
        clock: Clock,
    ) -> std::result::Result<Store, String> {
        let files = match &dir {
            Some(d) => datastore::load_dir(d).map_err(|e| format!("{}: cannot read rules directory: {e}", d.display()))?,
            None => Files::new(),
        };
        let mut set = datastore::compile(&files, &opts).map_err(|e| errors_text(dir.as_deref(), &e.0))?;
        let mut names = RuleNames::default();
        names.stamp(&mut set);
        let mut host_slots = HostSlots::new(hosts.counter_slots(), hosts.distinct_slots());
        for (kind, slot) in host_slots.stamp(&mut set)? {
            reset_slot(&hosts, kind, slot);
        }
        let now = clock.unix();
        let n = rule_count(&set);
        let mk = |counter: u64| Datastore {
            version: datastore::version(counter, &files),
            files: files.clone(),
            modified_unix: now,
            errors: vec![],
            rules: Some(n),
        };
        let ds = [mk(1), mk(2), mk(3)];
        let set = Arc::new(set);
        {
            let mut st = reloads.lock().unwrap_or_else(|p| p.into_inner());
            st.rules = set.rules.len();
            st.last_success_unix = now;
        }
        Ok(Store {
            ds,
            dir,
            opts,
            slot: Arc::new(ArcSwap::new(set.clone())),
            running_set: set,
            reloads,
            previous_running: None,
            pending: None,
            api_lists: BTreeMap::new(),
            hosts,
            ban_reasons: HashMap::new(),
            names,
            host_slots,
            limits,
            clock,
            counter: 3,
            reloader: None,
        })
    }

    /// Sets how a reload reads the configuration again (the daemon's SIGHUP path). Without
    /// one, a reload reads the rules directory given at open.
    pub fn set_reloader(&mut self, r: Reloader) {
        self.reloader = Some(r);
    }

    /// The slot the engines read the rule set from.
    pub fn slot(&self) -> Arc<ArcSwap<RuleSet>> {
        self.slot.clone()
    }

    /// The running rule set.
    pub fn running_set(&self) -> Arc<RuleSet> {
        self.running_set.clone()
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A datastore.
    pub fn get(&self, ds: Ds) -> &Datastore {
        &self.ds[ds as usize]
    }

    /// The pending commit, if any.
    pub fn pending(&self) -> Option<&Pending> {
        self.pending.as_ref()
    }

    /// True when there is a set to roll back to.
    pub fn has_previous_running(&self) -> bool {
        self.previous_running.is_some()
    }

    fn opts_with_entries(&self) -> CompileOptions {
        let mut o = self.opts.clone();
        o.extra_entries =
            self.api_lists.iter().map(|(id, (k, e))| (id.clone(), (*k, e.iter().map(|e| e.value.clone()).collect()))).collect();
        o
    }

    fn check_version(&self, ds: Ds, version: Option<&str>) -> Result<()> {
        match version {
            Some(v) if v != self.get(ds).version => Err(StoreError::Conflict(format!(
                "{} changed since version {v} (now {}): reload it and apply your edit again",
                ds.name(),
                self.get(ds).version
            ))),
            _ => Ok(()),
        }
    }

    fn next_version(&mut self, files: &Files) -> String {
        self.counter += 1;
        datastore::version(self.counter, files)
    }

    fn store_ds(&mut self, ds: Ds, files: Files, v: &Validation) {
        let version = self.next_version(&files);
        let now = self.clock.unix();
        self.ds[ds as usize] = Datastore { files, version, modified_unix: now, errors: v.errors.clone(), rules: v.rules };
    }

    /// Compiles files with the API entries on top.
    fn compile(&self, files: &Files) -> std::result::Result<RuleSet, Vec<CompileError>> {
        let set = datastore::compile(files, &self.opts_with_entries()).map_err(|e| e.0)?;
        self.host_slots.check(&set).map_err(|message| {
            vec![CompileError { file: PathBuf::new(), line: 1, col: 1, id: None, key: None, message }]
        })?;
        Ok(set)
    }

    /// Compiles `files` without changing anything.
    pub fn check(&self, files: &Files) -> Validation {
        match self.compile(files) {
            Ok(rs) => Validation { valid: true, rules: Some(rule_count(&rs)), errors: vec![] },
            Err(errors) => Validation { valid: false, rules: None, errors },
        }
    }

    /// Makes `set` (compiled from `files`) running: one store into the engines' slot. Counts
    /// in `reloads` when `count` (datastore changes; list entry edits are not reloads).
    fn swap_running(&mut self, files: Files, mut set: RuleSet, count: bool) {
        self.names.stamp(&mut set);
        // Zeroed before the store: a slot released by this very swap is handed out only when
        // nothing else is free, so no engine still reads the old set's meaning of a reset slot.
        let resets = self.host_slots.stamp(&mut set).expect("Store::compile checked the slots");
        for (kind, slot) in resets {
            reset_slot(&self.hosts, kind, slot);
        }
        let set = Arc::new(set);
        let v = Validation { valid: true, rules: Some(rule_count(&set)), errors: vec![] };
        self.slot.store(set.clone());
        self.running_set = set;
        if files != self.get(Ds::Running).files || count {
            self.store_ds(Ds::Running, files, &v);
        }
        let mut st = self.reloads.lock().unwrap_or_else(|p| p.into_inner());
        st.rules = self.running_set.rules.len();
        if count {
            st.ok += 1;
            st.last_success_unix = self.clock.unix();
        }
        drop(st);
        self.prune_api_lists();
    }

    /// Drops API entries whose list left the running set or changed kind: they apply only
    /// while their list exists as they were checked for.
    fn prune_api_lists(&mut self) {
        let set = self.running_set.clone();
        self.api_lists.retain(|id, (k, _)| set.lists.iter().any(|l| &l.id == id && l.kind == *k));
    }

    /// Writes a whole datastore. running: compiled and swapped in; startup: compiled, then
    /// written to disk; candidate: kept even when it does not compile. `version`, when given,
    /// must be current.
    pub fn set(&mut self, ds: Ds, files: Files, version: Option<&str>) -> Result<Validation> {
        datastore::check_paths(&files).map_err(StoreError::BadRequest)?;
        self.check_version(ds, version)?;
        self.write(ds, files)
    }

    fn write(&mut self, ds: Ds, files: Files) -> Result<Validation> {
        match ds {
            Ds::Candidate => {
                let v = self.check(&files);
                self.store_ds(ds, files, &v);
                Ok(v)
            }
            Ds::Running => {
                let set = self.compile(&files).map_err(StoreError::Invalid)?;
                let old = self.get(Ds::Running).files.clone();
                self.swap_running(files, set, true);
                self.previous_running = Some(old);
                // A new commit replaces what a pending one would roll back to.
                self.pending = None;
                Ok(self.validation_of(Ds::Running))
            }
            Ds::Startup => {
                let v = self.check(&files);
                if !v.valid {
                    return Err(StoreError::Invalid(v.errors));
                }
                let Some(dir) = self.dir.clone() else {
                    return Err(StoreError::BadRequest("no rules directory is configured ([rules] dir): startup cannot be written".into()));
                };
                datastore::write_dir(&dir, &files).map_err(|e| StoreError::Io(format!("writing {}: {e}", dir.display())))?;
                self.store_ds(ds, files, &v);
                Ok(v)
            }
        }
    }

    fn validation_of(&self, ds: Ds) -> Validation {
        let d = self.get(ds);
        Validation { valid: d.errors.is_empty(), rules: d.rules, errors: d.errors.clone() }
    }

    /// Sets one file.
    pub fn set_file(&mut self, ds: Ds, path: &str, text: String, version: Option<&str>) -> Result<Validation> {
        datastore::check_path(path).map_err(StoreError::BadRequest)?;
        self.check_version(ds, version)?;
        let mut files = self.get(ds).files.clone();
        files.insert(path.to_string(), text);
        self.write(ds, files)
    }

    /// Removes one file.
    pub fn delete_file(&mut self, ds: Ds, path: &str, version: Option<&str>) -> Result<Validation> {
        datastore::check_path(path).map_err(StoreError::BadRequest)?;
        self.check_version(ds, version)?;
        let mut files = self.get(ds).files.clone();
        if files.remove(path).is_none() {
            return Err(StoreError::NotFound(format!("{} has no file {path}", ds.name())));
        }
        self.write(ds, files)
    }

    /// Compiles a datastore with `overlay` replacing or adding files; changes nothing.
    pub fn validate(&self, ds: Ds, overlay: Option<Files>) -> Result<Validation> {
        let mut files = self.get(ds).files.clone();
        if let Some(o) = overlay {
            datastore::check_paths(&o).map_err(StoreError::BadRequest)?;
            files.extend(o);
        }
        Ok(self.check(&files))
    }

    /// Copies every file of `from` to `to`. With `confirm_s` (running only, 1..=3600), running
    /// goes back to its previous set after that many seconds unless [`Store::confirm`]ed.
    pub fn copy(&mut self, from: Ds, to: Ds, version: Option<&str>, confirm_s: Option<u64>) -> Result<Validation> {
        if from == to {
            return Err(StoreError::BadRequest(format!("copy from {} to itself", from.name())));
        }
        if let Some(s) = confirm_s {
            if to != Ds::Running {
                return Err(StoreError::BadRequest("confirm_s applies to a copy to running only".into()));
            }
            if !(1..=MAX_CONFIRM_S).contains(&s) {
                return Err(StoreError::BadRequest(format!("confirm_s = {s}: must be 1..={MAX_CONFIRM_S}")));
            }
        }
        self.check_version(to, version)?;
        let files = self.get(from).files.clone();
        let before = self.get(Ds::Running).files.clone();
        // A pending commit being superseded rolls back to what it replaced, not to itself.
        let base = self.pending.as_ref().map(|p| p.previous.clone()).unwrap_or(before);
        let v = self.write(to, files)?;
        if let Some(s) = confirm_s {
            self.pending = Some(Pending { deadline_unix: self.clock.unix() + s as f64, from, previous: base });
        }
        Ok(v)
    }

    /// Confirms the pending commit; returns running's version.
    pub fn confirm(&mut self) -> Result<String> {
        match self.pending.take() {
            Some(_) => Ok(self.get(Ds::Running).version.clone()),
            None => Err(StoreError::Conflict("no commit is waiting for confirmation".into())),
        }
    }

    /// Running goes back to the set before its last change; a pending commit is cancelled.
    pub fn rollback(&mut self) -> Result<Validation> {
        let target = match (&self.pending, &self.previous_running) {
            (Some(p), _) => p.previous.clone(),
            (None, Some(f)) => f.clone(),
            (None, None) => return Err(StoreError::Conflict("running has no previous set to go back to".into())),
        };
        let v = self.write(Ds::Running, target)?;
        Ok(v)
    }

    /// What SIGHUP does: the configuration (through the reloader) and the startup directory
    /// are read again, compiled, and made running; startup is what was read. Returns the log
    /// line; a refusal counts in `reloads.failed` and keeps everything.
    pub fn reload(&mut self) -> std::result::Result<String, ReloadError> {
        let res = self.try_reload();
        let mut st = self.reloads.lock().unwrap_or_else(|p| p.into_inner());
        match res {
            Ok(line) => Ok(line),
            Err(mut e) => {
                st.failed += 1;
                st.last_error = Some(e.message.clone());
                // secsip_config_last_reload_success reads this against last_success_unix.
                st.last_failure_unix = Some(self.clock.unix());
                e.message = format!("reload refused, the running rules stay: {}", e.message);
                Err(e)
            }
        }
    }

    fn try_reload(&mut self) -> std::result::Result<String, ReloadError> {
        let src = match &mut self.reloader {
            Some(r) => r().map_err(ReloadError::other)?,
            None => ReloadSource {
                dir: self.dir.clone(),
                opts: self.opts.clone(),
                label: self.dir.as_ref().map_or("(no rules directory)".into(), |d| d.display().to_string()),
                note: None,
            },
        };
        let files = match &src.dir {
            Some(d) => datastore::load_dir(d)
                .map_err(|e| ReloadError::other(format!("{}: cannot read rules directory: {e}", d.display())))?,
            None => Files::new(),
        };
        let saved = std::mem::replace(&mut self.opts, src.opts.clone());
        let set = match self.compile(&files) {
            Ok(s) => s,
            Err(e) => {
                self.opts = saved;
                return Err(ReloadError { message: errors_text(src.dir.as_deref(), &e), errors: e });
            }
        };
        self.dir = src.dir.clone();
        let n = rule_count(&set);
        let v = Validation { valid: true, rules: Some(n), errors: vec![] };
        if files != self.get(Ds::Startup).files {
            self.store_ds(Ds::Startup, files.clone(), &v);
        }
        let old = self.get(Ds::Running).files.clone();
        if old != files {
            self.previous_running = Some(old);
        }
        self.pending = None;
        self.swap_running(files, set, true);
        let mut line = format!("reload: {} rules loaded from {}", self.running_set.rules.len(), src.label);
        if let Some(n) = src.note {
            line.push_str(&n);
        }
        Ok(line)
    }

    /// Housekeeping, called by the management loop (at least once a second): an unconfirmed
    /// commit past its deadline rolls back, expired API list entries go. Returns log lines.
    pub fn tick(&mut self) -> Vec<String> {
        let now = self.clock.unix();
        let mut out = Vec::new();
        if let Some(p) = self.pending.clone().filter(|p| now >= p.deadline_unix) {
            self.pending = None;
            match self.write(Ds::Running, p.previous) {
                Ok(_) => out.push(format!(
                    "mgmt: commit from {} not confirmed in time: running rolled back to version {}",
                    p.from.name(),
                    self.get(Ds::Running).version
                )),
                Err(e) => out.push(format!("mgmt: commit not confirmed, but the previous set does not compile any more; it stays: {e}")),
            }
        }
        let mut expired = 0;
        for (_, entries) in self.api_lists.values_mut() {
            let before = entries.len();
            entries.retain(|e| e.expires_unix.is_none_or(|t| now < t));
            expired += before - entries.len();
        }
        if expired > 0 {
            self.api_lists.retain(|_, (_, e)| !e.is_empty());
            match self.recompile_running() {
                Ok(()) => out.push(format!("mgmt: {expired} list entr{} expired", if expired == 1 { "y" } else { "ies" })),
                Err(e) => out.push(format!("mgmt: expired list entries could not be applied: {e}")),
            }
        }
        // Reasons of bans that ended: one lookup per reason, not a scan of the host table.
        let now_ns = self.clock.mono_ns();
        let hosts = &self.hosts;
        self.ban_reasons.retain(|ip, _| hosts.banned(*ip, now_ns).is_some());
        out
    }

    fn recompile_running(&mut self) -> Result<()> {
        let files = self.get(Ds::Running).files.clone();
        let set = self.compile(&files).map_err(StoreError::Invalid)?;
        self.swap_running(files, set, false);
        Ok(())
    }

    fn api_count(&self) -> usize {
        self.api_lists.values().map(|(_, e)| e.len()).sum()
    }

    fn list_of(&self, id: &str) -> Result<&List> {
        self.running_set.lists.iter().find(|l| l.id == id).ok_or_else(|| StoreError::NotFound(format!("no list {id:?} in the running rules")))
    }

    /// Every list of the running set: id, kind, entries from rule files, entries from the API.
    pub fn lists(&self) -> Vec<(String, &'static str, usize, usize)> {
        self.running_set
            .lists
            .iter()
            .map(|l| {
                let api = self.api_lists.get(&l.id).filter(|(k, _)| *k == l.kind).map_or(0, |(_, e)| e.len());
                (l.id.clone(), kind_name(l.kind), l.entries.len() - api, api)
            })
            .collect()
    }

    /// One list with every entry and where it comes from.
    pub fn list(&self, id: &str) -> Result<ListView> {
        let l = self.list_of(id)?;
        let api: &[ApiEntry] = self.api_lists.get(id).filter(|(k, _)| *k == l.kind).map_or(&[], |(_, e)| e.as_slice());
        let n_rules = l.entries.len() - api.len();
        let mut entries: Vec<ListedEntry> =
            l.entries[..n_rules].iter().map(|v| ListedEntry { value: v.clone(), source: "rules", api: None }).collect();
        entries.extend(api.iter().map(|e| ListedEntry { value: e.value.clone(), source: "api", api: Some(e.clone()) }));
        Ok(ListView { id: l.id.clone(), kind: kind_name(l.kind), entries })
    }

    /// Adds (or renews) an API entry, checked by the list's kind, and swaps the recompiled set.
    pub fn add_entry(&mut self, id: &str, value: &str, ttl_s: Option<u64>, reason: Option<String>) -> Result<ListedEntry> {
        let kind = self.list_of(id)?.kind;
        let value = value.trim();
        if value.is_empty() || value.chars().any(char::is_control) {
            return Err(StoreError::BadRequest("value must be non-empty, without control characters".into()));
        }
        if value.contains('#') {
            // List files treat # as a comment; an entry that cannot be written to one would
            // behave differently once saved.
            return Err(StoreError::BadRequest("value must not contain '#'".into()));
        }
        self.check_ttl(ttl_s)?;
        check_reason(&reason)?;
        List::new(id, kind, vec![value.to_string()], None)
            .map_err(|e| StoreError::BadRequest(format!("not a valid {} entry: {}", kind_name(kind), e.message)))?;
        let now = self.clock.unix();
        let entry = ApiEntry { value: value.to_string(), reason, added_unix: now, expires_unix: ttl_s.map(|t| now + t as f64) };
        let saved = self.api_lists.clone();
        let (_, entries) = self.api_lists.entry(id.to_string()).or_insert_with(|| (kind, vec![]));
        if let Some(e) = entries.iter_mut().find(|e| e.value == entry.value) {
            *e = entry.clone();
        } else {
            if saved.values().map(|(_, e)| e.len()).sum::<usize>() >= self.limits.max_list_entries {
                self.api_lists = saved;
                return Err(StoreError::Conflict(format!(
                    "the lists hold {} API entries, the most allowed (management.max_list_entries)",
                    self.limits.max_list_entries
                )));
            }
            entries.push(entry.clone());
        }
        if let Err(e) = self.recompile_running() {
            self.api_lists = saved;
            return Err(e);
        }
        Ok(ListedEntry { value: entry.value.clone(), source: "api", api: Some(entry) })
    }

    /// Removes an API entry and swaps the recompiled set. An entry of a rule file cannot be
    /// removed here (409): edit the datastore.
    pub fn remove_entry(&mut self, id: &str, value: &str) -> Result<ListedEntry> {
        let view = self.list(id)?;
        let saved = self.api_lists.clone();
        let pos = self.api_lists.get(id).and_then(|(_, e)| e.iter().position(|e| e.value == value));
        let Some(pos) = pos else {
            if view.entries.iter().any(|e| e.value == value) {
                return Err(StoreError::Conflict(format!("{value:?} comes from a rule file of list {id}: edit the datastore to remove it")));
            }
            return Err(StoreError::NotFound(format!("list {id} has no entry {value:?}")));
        };
        let removed = match self.api_lists.get_mut(id) {
            Some((_, e)) => e.remove(pos),
            None => unreachable!("position found above"),
        };
        self.api_lists.retain(|_, (_, e)| !e.is_empty());
        if let Err(e) = self.recompile_running() {
            self.api_lists = saved;
            return Err(e);
        }
        Ok(ListedEntry { value: removed.value.clone(), source: "api", api: Some(removed) })
    }

    fn check_ttl(&self, ttl_s: Option<u64>) -> Result<()> {
        match ttl_s {
            Some(t) if t == 0 || t > self.limits.max_ttl_s => {
                Err(StoreError::BadRequest(format!("ttl_s = {t}: must be 1..={} (management.max_ttl_s)", self.limits.max_ttl_s)))
            }
            _ => Ok(()),
        }
    }

    /// API list entries in all (for metrics and tests).
    pub fn api_entries(&self) -> usize {
        self.api_count()
    }

    /// The host table's live bans.
    pub fn bans(&self) -> Vec<BanView> {
        let now = self.clock.mono_ns();
        self.hosts.bans(now).into_iter().map(|(ip, b)| self.ban_view(ip, b.until_ns, b.rule, now)).collect()
    }

    fn ban_view(&self, ip: IpAddr, until_ns: u64, rule: u32, now: u64) -> BanView {
        let rule = match rule {
            API_BAN_RULE => "api".to_string(),
            n => self.names.name(n).map_or_else(|| "(unknown rule)".to_string(), str::to_string),
        };
        BanView { ip, remaining_s: until_ns.saturating_sub(now) as f64 / 1e9, rule, reason: self.ban_reasons.get(&ip).cloned() }
    }

    /// Bans an address for `ttl_s` seconds (the XDP ban map follows within the main loop's
    /// period).
    pub fn ban(&mut self, ip: &str, ttl_s: u64, reason: Option<String>) -> Result<BanView> {
        let ip: IpAddr = ip.trim().parse().map_err(|_| StoreError::BadRequest(format!("{ip:?} is not an IP address")))?;
        self.check_ttl(Some(ttl_s))?;
        check_reason(&reason)?;
        let now = self.clock.mono_ns();
        let until = now.saturating_add(ttl_s.saturating_mul(1_000_000_000));
        if !self.hosts.ban(ip, until, API_BAN_RULE) {
            return Err(StoreError::Conflict("the host table has no room for this ban (every probed entry holds a live ban)".into()));
        }
        match reason {
            Some(r) => self.ban_reasons.insert(ip, r),
            None => self.ban_reasons.remove(&ip),
        };
        Ok(self.ban_view(ip, until, API_BAN_RULE, now))
    }

    /// Lifts a ban.
    pub fn unban(&mut self, ip: &str) -> Result<IpAddr> {
        let ip: IpAddr = ip.trim().parse().map_err(|_| StoreError::BadRequest(format!("{ip:?} is not an IP address")))?;
        if self.hosts.banned(ip, self.clock.mono_ns()).is_none() || !self.hosts.unban(ip) {
            return Err(StoreError::NotFound(format!("{ip} is not banned")));
        }
        self.ban_reasons.remove(&ip);
        Ok(ip)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    pub(crate) const RULES: &str = "[[list]]\nid = \"bad-ua\"\nkind = \"ua_prefix\"\nfile = \"lists/bad-ua.txt\"\n\n[[list]]\nid = \"block-ip\"\nkind = \"ip\"\nentries = [\"192.0.2.1\"]\n\n[[rule]]\nid = \"ua-block\"\nwhen = 'sip.ua in list.bad-ua'\naction = \"drop\"\n\n[[rule]]\nid = \"ip-block\"\nwhen = 'ip.src in list.block-ip'\naction = \"drop\"\n";

    pub(crate) fn rules_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("secsip-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(datastore::prev_dir(&d));
        std::fs::create_dir_all(d.join("lists")).unwrap();
        std::fs::write(d.join("10-base.toml"), RULES).unwrap();
        std::fs::write(d.join("lists/bad-ua.txt"), "friendly-scanner\n").unwrap();
        d
    }

    pub(crate) fn store(name: &str) -> (Store, PathBuf) {
        let d = rules_dir(name);
        let hosts = Arc::new(HostTable::new(Default::default()));
        let s = Store::open(Some(d.clone()), CompileOptions::standard(), Limits { max_list_entries: 3, max_ttl_s: 3600 }, hosts, Default::default(), Clock::system())
            .unwrap();
        (s, d)
    }

    fn with(files: &Files, path: &str, text: &str) -> Files {
        let mut f = files.clone();
        f.insert(path.into(), text.into());
        f
    }

    const BROKEN: &str = "[[rule]]\nid = \"x\"\nwhen = 'sip.method == '\n";
    const EXTRA: &str = "[[rule]]\nid = \"extra\"\nwhen = 'sip.method == \"MESSAGE\"'\naction = \"drop\"\n";

    #[test]
    fn open_loads_running_startup_candidate_alike() {
        let (s, d) = store("open");
        for ds in Ds::ALL {
            assert_eq!(s.get(ds).files.len(), 2);
            assert_eq!(s.get(ds).rules, Some(2));
        }
        assert_ne!(s.get(Ds::Running).version, s.get(Ds::Candidate).version, "versions are per write, unique");
        assert_eq!(s.slot().load().rules.len(), 2);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn an_invalid_candidate_cannot_become_running_or_startup_and_nothing_changes() {
        let (mut s, d) = store("invalid");
        let cand = with(&s.get(Ds::Candidate).files, "20-bad.toml", BROKEN);
        let v = s.set(Ds::Candidate, cand, None).unwrap();
        assert!(!v.valid && v.errors[0].file == Path::new("20-bad.toml") && v.errors[0].line == 3, "{:?}", v.errors);
        assert!(!s.get(Ds::Candidate).errors.is_empty(), "a draft may be invalid");
        let (rv, sv) = (s.get(Ds::Running).version.clone(), s.get(Ds::Startup).version.clone());
        let slot_before = s.slot().load_full();
        let reloads_before = s.reloads.lock().unwrap().ok;
        for to in [Ds::Running, Ds::Startup] {
            match s.copy(Ds::Candidate, to, None, None) {
                Err(StoreError::Invalid(e)) => assert!(e[0].to_string().starts_with("20-bad.toml:3:"), "{}", e[0]),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(s.copy(Ds::Candidate, Ds::Running, None, Some(30)), Err(StoreError::Invalid(_))));
        assert!(s.pending().is_none());
        assert_eq!((s.get(Ds::Running).version.clone(), s.get(Ds::Startup).version.clone()), (rv, sv));
        assert!(Arc::ptr_eq(&slot_before, &s.slot().load_full()), "the engines' set was not touched");
        assert_eq!(s.reloads.lock().unwrap().ok, reloads_before);
        assert!(!d.join("20-bad.toml").exists(), "nothing written to disk");
        assert!(!s.has_previous_running());
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn copy_to_running_swaps_and_counts_and_to_startup_writes_disk_with_prev() {
        let (mut s, d) = store("copy");
        s.set_file(Ds::Candidate, "30-extra.toml", EXTRA.into(), None).unwrap();
        let v = s.copy(Ds::Candidate, Ds::Running, None, None).unwrap();
        assert_eq!(v.rules, Some(3));
        assert_eq!(s.slot().load().rules.len(), 3);
        assert!(s.slot().load().rule_index("extra").is_some());
        assert_eq!(s.reloads.lock().unwrap().ok, 1);
        assert!(s.has_previous_running());
        s.copy(Ds::Running, Ds::Startup, None, None).unwrap();
        assert_eq!(std::fs::read_to_string(d.join("30-extra.toml")).unwrap(), EXTRA);
        assert!(datastore::prev_dir(&d).join("10-base.toml").exists() && !datastore::prev_dir(&d).join("30-extra.toml").exists());
        assert!(matches!(s.copy(Ds::Running, Ds::Running, None, None), Err(StoreError::BadRequest(_))));
        assert!(matches!(s.copy(Ds::Running, Ds::Startup, None, Some(5)), Err(StoreError::BadRequest(_))));
        assert!(matches!(s.copy(Ds::Candidate, Ds::Running, None, Some(0)), Err(StoreError::BadRequest(_))));
        assert!(matches!(s.copy(Ds::Candidate, Ds::Running, None, Some(3601)), Err(StoreError::BadRequest(_))));
        let _ = std::fs::remove_dir_all(datastore::prev_dir(&d));
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn stale_version_is_a_conflict_and_changes_nothing() {
        let (mut s, d) = store("stale");
        let v0 = s.get(Ds::Candidate).version.clone();
        s.set_file(Ds::Candidate, "30-extra.toml", EXTRA.into(), Some(&v0)).unwrap();
        let v1 = s.get(Ds::Candidate).version.clone();
        assert_ne!(v0, v1);
        let before = s.get(Ds::Candidate).files.clone();
        assert!(matches!(s.set_file(Ds::Candidate, "40.toml", EXTRA.into(), Some(&v0)), Err(StoreError::Conflict(_))));
        assert!(matches!(s.delete_file(Ds::Candidate, "30-extra.toml", Some(&v0)), Err(StoreError::Conflict(_))));
        assert!(matches!(s.set(Ds::Candidate, Files::new(), Some(&v0)), Err(StoreError::Conflict(_))));
        let rv = s.get(Ds::Running).version.clone();
        assert!(matches!(s.copy(Ds::Candidate, Ds::Running, Some(&v0), None), Err(StoreError::Conflict(_))));
        assert_eq!(s.get(Ds::Candidate).files, before);
        assert_eq!(s.get(Ds::Candidate).version, v1);
        assert_eq!(s.get(Ds::Running).version, rv);
        s.copy(Ds::Candidate, Ds::Running, Some(&rv), None).unwrap();
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn files_set_delete_paths_and_validate_overlay() {
        let (mut s, d) = store("files");
        assert!(matches!(s.set_file(Ds::Candidate, "../x.toml", "".into(), None), Err(StoreError::BadRequest(_))));
        assert!(matches!(s.delete_file(Ds::Candidate, "nope.toml", None), Err(StoreError::NotFound(_))));
        // Removing the list file the rules read makes running invalid: refused.
        assert!(matches!(s.delete_file(Ds::Running, "lists/bad-ua.txt", None), Err(StoreError::Invalid(_))));
        s.delete_file(Ds::Candidate, "lists/bad-ua.txt", None).unwrap();
        assert!(!s.get(Ds::Candidate).errors.is_empty());
        let v = s.validate(Ds::Running, Some(with(&Files::new(), "30-extra.toml", EXTRA))).unwrap();
        assert_eq!((v.valid, v.rules), (true, Some(3)));
        assert_eq!(s.get(Ds::Running).files.len(), 2, "validate changes nothing");
        let v = s.validate(Ds::Running, Some(with(&Files::new(), "30-x.toml", BROKEN))).unwrap();
        assert!(!v.valid && v.errors[0].file == Path::new("30-x.toml"));
        assert!(matches!(s.validate(Ds::Running, Some(with(&Files::new(), "a/b.toml", ""))), Err(StoreError::BadRequest(_))));
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn confirm_timeout_rolls_running_back_and_confirm_keeps_it() {
        let (mut s, d) = store("confirm");
        let original = s.get(Ds::Running).files.clone();
        s.set_file(Ds::Candidate, "30-extra.toml", EXTRA.into(), None).unwrap();
        assert!(matches!(s.confirm(), Err(StoreError::Conflict(_))), "nothing pending");
        s.copy(Ds::Candidate, Ds::Running, None, Some(60)).unwrap();
        assert_eq!(s.pending().unwrap().from, Ds::Candidate);
        assert!(s.slot().load().rule_index("extra").is_some());
        s.clock().advance(Duration::from_secs(59));
        assert!(s.tick().is_empty());
        assert!(s.slot().load().rule_index("extra").is_some(), "not yet");
        s.clock().advance(Duration::from_secs(2));
        let log = s.tick();
        assert!(log[0].contains("rolled back"), "{log:?}");
        assert!(s.pending().is_none());
        assert_eq!(s.get(Ds::Running).files, original);
        assert!(s.slot().load().rule_index("extra").is_none(), "the engines run the previous set again");
        assert_eq!(s.reloads.lock().unwrap().ok, 2, "commit and rollback both count");
        // Confirmed in time: stays.
        s.copy(Ds::Candidate, Ds::Running, None, Some(60)).unwrap();
        let v = s.confirm().unwrap();
        assert_eq!(v, s.get(Ds::Running).version);
        s.clock().advance(Duration::from_secs(120));
        assert!(s.tick().is_empty());
        assert!(s.slot().load().rule_index("extra").is_some());
        // Two commits in a row while pending: the rollback goes to the set before the first.
        s.set(Ds::Running, original.clone(), None).unwrap();
        s.copy(Ds::Candidate, Ds::Running, None, Some(10)).unwrap();
        let third = with(&s.get(Ds::Candidate).files, "40-more.toml", &EXTRA.replace("extra", "more"));
        s.set(Ds::Candidate, third, None).unwrap();
        s.copy(Ds::Candidate, Ds::Running, None, Some(10)).unwrap();
        s.clock().advance(Duration::from_secs(11));
        s.tick();
        assert_eq!(s.get(Ds::Running).files, original);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn rollback_goes_to_the_previous_running_set() {
        let (mut s, d) = store("rollback");
        assert!(matches!(s.rollback(), Err(StoreError::Conflict(_))));
        let original = s.get(Ds::Running).files.clone();
        s.set_file(Ds::Running, "30-extra.toml", EXTRA.into(), None).unwrap();
        s.rollback().unwrap();
        assert_eq!(s.get(Ds::Running).files, original);
        assert!(s.slot().load().rule_index("extra").is_none());
        // Pending commit: rollback cancels it.
        s.set_file(Ds::Candidate, "30-extra.toml", EXTRA.into(), None).unwrap();
        s.copy(Ds::Candidate, Ds::Running, None, Some(100)).unwrap();
        s.rollback().unwrap();
        assert!(s.pending().is_none());
        assert_eq!(s.get(Ds::Running).files, original);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn reload_reads_startup_from_disk_and_a_broken_file_changes_nothing() {
        let (mut s, d) = store("reload");
        std::fs::write(d.join("30-extra.toml"), EXTRA).unwrap();
        let line = s.reload().unwrap();
        assert!(line.starts_with("reload: 3 rules loaded from "), "{line}");
        assert!(s.get(Ds::Startup).files.contains_key("30-extra.toml"));
        assert!(s.get(Ds::Running).files.contains_key("30-extra.toml"));
        assert!(!s.get(Ds::Candidate).files.contains_key("30-extra.toml"), "the draft is left alone");
        std::fs::write(d.join("40-bad.toml"), BROKEN).unwrap();
        let before = s.slot().load_full();
        let e = s.reload().unwrap_err();
        assert!(e.message.starts_with("reload refused, the running rules stay: ") && e.message.contains("40-bad.toml:3:"), "{e}");
        assert_eq!(e.errors.len(), 1, "{e:?}");
        assert_eq!((e.errors[0].file.to_str(), e.errors[0].line), (Some("40-bad.toml"), 3), "relative to the rules directory");
        let st = s.reloads.lock().unwrap().clone();
        assert_eq!((st.ok, st.failed), (1, 1));
        assert!(st.last_failure_unix.is_some_and(|f| f >= st.last_success_unix), "the failure is dated after the last success: {st:?}");
        assert!(st.last_error.unwrap().contains(&d.join("40-bad.toml").display().to_string()), "the log names the full path");
        assert!(Arc::ptr_eq(&before, &s.slot().load_full()));
        let _ = std::fs::remove_dir_all(d);
    }

    fn obj(id: &str, scope: &str, kind: &str) -> String {
        let extra = match (scope, kind) {
            ("key", _) => "key = \"sip.to.user\"\n",
            _ => "",
        };
        let body = if kind == "counter" { "decrement = 0\nperiod = \"1h\"\n" } else { "value = \"sip.from.user\"\nwindow = \"1h\"\n" };
        format!("[[object]]\nid = \"{id}\"\nscope = \"{scope}\"\n{extra}kind = \"{kind}\"\n{body}\n")
    }

    #[test]
    fn shared_counters_keep_their_values_across_a_reload_that_adds_removes_and_reorders() {
        use crate::hosttable::HostLimits;
        use crate::rules::objects::{host_count, host_distinct_add, host_value, ScopeKeys};
        let d = std::env::temp_dir().join(format!("secsip-store-slots-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        // A rule that reads fields first, so field numbering shifts when the files change.
        let lead = "[[rule]]\nid = \"r\"\nwhen = 'sip.ua == \"x\"'\naction = \"drop\"\n\n";
        let a = [obj("src-a", "source", "counter"), obj("global-b", "global", "counter"), obj("user-d", "key", "counter"), obj("src-c", "source", "distinct")];
        std::fs::write(d.join("10.toml"), a.concat()).unwrap();
        // Exactly the slots set A needs: the new object of set B must reuse the removed one's.
        let hosts = Arc::new(HostTable::new(HostLimits { counters: 3, distincts: 1, ..Default::default() }));
        let opts = CompileOptions { host_counters: 3, host_distincts: 1, ..CompileOptions::standard() };
        let mut s = Store::open(Some(d.clone()), opts, Limits::default(), hosts.clone(), Default::default(), Clock::system()).unwrap();
        let keys = ScopeKeys { src: Some("192.0.2.5".parse().unwrap()), is_request: true, ..Default::default() };
        let now = s.clock().mono_ns();
        let find = |s: &Store, id: &str| s.running_set().objects.iter().find(|o| o.id == id).cloned().unwrap();
        let bump = |s: &Store, id: &str, n: u32| (0..n).for_each(|_| {
            host_count(&hosts, &find(s, id), &keys, Some(42), now);
        });
        bump(&s, "src-a", 3);
        bump(&s, "global-b", 5);
        bump(&s, "user-d", 7);
        for v in 0..4u64 {
            host_distinct_add(&hosts, &find(&s, "src-c"), &keys, None, now, v.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        let read = |s: &Store, id: &str| host_value(&hosts, &find(s, id), &keys, Some(42), now);
        let before = [read(&s, "src-a"), read(&s, "user-d"), read(&s, "src-c")];
        assert_eq!(before[..2], [3, 7]);
        // Set B: a new counter first, global-b gone, the rest reordered behind other fields.
        let lead_b = "[[rule]]\nid = \"q\"\nwhen = 'sip.from.host == \"y\" || sip.call_id == \"z\"'\naction = \"drop\"\n\n";
        let b = [lead_b.to_string(), obj("new-e", "source", "counter"), obj("src-c", "source", "distinct"), obj("user-d", "key", "counter"), obj("src-a", "source", "counter"), lead.to_string()];
        std::fs::write(d.join("10.toml"), b.concat()).unwrap();
        s.reload().unwrap();
        assert_eq!([read(&s, "src-a"), read(&s, "user-d"), read(&s, "src-c")], before, "survivors keep their state");
        assert_eq!(read(&s, "new-e"), 0, "the newcomer took global-b's slot and starts fresh, not at 5");
        bump(&s, "new-e", 2);
        assert_eq!((read(&s, "new-e"), read(&s, "src-a")), (2, 3));
        // A set that needs more slots than the running table has is refused, naming why.
        std::fs::write(d.join("20.toml"), obj("one-too-many", "global", "counter")).unwrap();
        let e = s.reload().unwrap_err();
        assert!(e.message.contains("counter") && e.message.contains("slots"), "{e}");
        assert_eq!(read(&s, "src-a"), 3);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn list_entries_by_kind_ttl_and_bound() {
        let (mut s, d) = store("lists");
        let l = s.lists();
        assert_eq!(l, vec![("bad-ua".into(), "ua_prefix", 1, 0), ("block-ip".into(), "ip", 1, 0)]);
        assert!(matches!(s.add_entry("block-ip", "not-an-ip", None, None), Err(StoreError::BadRequest(m)) if m.contains("not an address")));
        assert!(matches!(s.add_entry("block-ip", "203.0.113.0/24", Some(0), None), Err(StoreError::BadRequest(_))));
        assert!(matches!(s.add_entry("block-ip", "203.0.113.0/24", Some(3601), None), Err(StoreError::BadRequest(_))));
        assert!(matches!(s.add_entry("nope", "1.2.3.4", None, None), Err(StoreError::NotFound(_))));
        assert!(matches!(s.add_entry("bad-ua", "", None, None), Err(StoreError::BadRequest(_))));
        let e = s.add_entry("block-ip", "203.0.113.0/24", Some(60), Some("scan".into())).unwrap();
        assert_eq!((e.source, e.api.as_ref().unwrap().reason.as_deref()), ("api", Some("scan")));
        let set = s.slot().load_full();
        let list = set.lists.iter().find(|l| l.id == "block-ip").unwrap();
        assert!(list.contains_ip("203.0.113.9".parse().unwrap()), "the running set matches the new entry");
        s.add_entry("bad-ua", "evil-agent", None, None).unwrap();
        s.add_entry("bad-ua", "evil-agent", None, Some("renewed".into())).unwrap();
        assert_eq!(s.api_entries(), 2, "re-adding renews, does not count twice");
        s.add_entry("bad-ua", "other", None, None).unwrap();
        assert!(matches!(s.add_entry("bad-ua", "fourth", None, None), Err(StoreError::Conflict(_))), "bound of 3");
        let v = s.list("block-ip").unwrap();
        assert_eq!(v.entries.iter().map(|e| (e.value.as_str(), e.source)).collect::<Vec<_>>(), vec![("192.0.2.1", "rules"), ("203.0.113.0/24", "api")]);
        assert!(matches!(s.remove_entry("block-ip", "192.0.2.1"), Err(StoreError::Conflict(_))), "from a rule file");
        assert!(matches!(s.remove_entry("block-ip", "198.51.100.1"), Err(StoreError::NotFound(_))));
        // Entries survive a commit while their list exists.
        s.set_file(Ds::Running, "30-extra.toml", EXTRA.into(), None).unwrap();
        assert_eq!(s.api_entries(), 3);
        // TTL expiry.
        s.clock().advance(Duration::from_secs(61));
        let log = s.tick();
        assert!(log.iter().any(|l| l.contains("1 list entry expired")), "{log:?}");
        assert_eq!(s.list("block-ip").unwrap().entries.len(), 1);
        assert!(!s.slot().load().lists.iter().find(|l| l.id == "block-ip").unwrap().contains_ip("203.0.113.9".parse().unwrap()));
        let r = s.remove_entry("bad-ua", "other").unwrap();
        assert_eq!(r.value, "other");
        assert_eq!(s.api_entries(), 1);
        // A list that leaves the running set takes its API entries with it.
        let files: Files = s.get(Ds::Running).files.iter().filter(|(p, _)| p.as_str() != "10-base.toml").map(|(a, b)| (a.clone(), b.clone())).collect();
        s.set(Ds::Running, files, None).unwrap();
        assert_eq!(s.api_entries(), 0);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_rule_ban_names_its_rule_after_the_set_changes() {
        let (mut s, d) = store("ban-names");
        let set = s.slot().load_full();
        let i = set.rule_index("ip-block").unwrap();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        // What the engine does when a ban rule fires.
        assert!(s.hosts.ban(ip, s.clock.mono_ns() + 60_000_000_000, set.ban_ids[i]));
        assert_eq!(s.bans()[0].rule, "ip-block");
        // A set without that rule, with other rules at its index: the ban keeps its name.
        let two = "[[rule]]\nid = \"aaa\"\nwhen = 'sip.method == \"MESSAGE\"'\naction = \"drop\"\n\n\
                   [[rule]]\nid = \"bbb\"\nwhen = 'sip.method == \"INFO\"'\naction = \"drop\"\n";
        let files = Files::from([("10-base.toml".to_string(), two.to_string())]);
        s.set(Ds::Running, files, None).unwrap();
        let mut ids = s.slot().load().ban_ids.clone();
        ids.sort();
        assert_eq!(ids, vec![2, 3], "new rule ids get new ban ids, not their indexes");
        assert_eq!(s.bans()[0].rule, "ip-block");
        // Back to the first set: the same rule id gets the same ban id.
        s.rollback().unwrap();
        assert_eq!(s.slot().load().ban_ids[i], set.ban_ids[i]);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn rule_names_are_bounded() {
        let mut n = RuleNames { names: (0..MAX_RULE_NAMES).map(|i| i.to_string()).collect(), ..Default::default() };
        assert_eq!(n.intern("one-more"), RuleNames::UNKNOWN);
        assert_eq!(n.name(RuleNames::UNKNOWN), None);
    }

    #[test]
    fn bans_through_the_host_table() {
        let (mut s, d) = store("bans");
        assert!(matches!(s.ban("nope", 60, None), Err(StoreError::BadRequest(_))));
        assert!(matches!(s.ban("192.0.2.7", 0, None), Err(StoreError::BadRequest(_))));
        assert!(matches!(s.ban("192.0.2.7", 3601, None), Err(StoreError::BadRequest(_))));
        let b = s.ban("192.0.2.7", 60, Some("manual".into())).unwrap();
        assert_eq!((b.rule.as_str(), b.reason.as_deref()), ("api", Some("manual")));
        assert!(s.hosts.banned("192.0.2.7".parse().unwrap(), s.clock.mono_ns()).is_some());
        let l = s.bans();
        assert_eq!(l.len(), 1);
        assert!(l[0].remaining_s > 59.0 && l[0].remaining_s <= 60.0, "{l:?}");
        assert_eq!(s.unban("192.0.2.7").unwrap().to_string(), "192.0.2.7");
        assert!(matches!(s.unban("192.0.2.7"), Err(StoreError::NotFound(_))));
        assert!(s.bans().is_empty());
        assert!(matches!(s.ban("192.0.2.8", 10, Some("x".repeat(MAX_REASON + 1))), Err(StoreError::BadRequest(_))));
        assert!(matches!(s.add_entry("block-ip", "192.0.2.8", None, Some("x".repeat(MAX_REASON + 1))), Err(StoreError::BadRequest(_))));
        s.ban("2001:db8::1", 10, Some("why".into())).unwrap();
        s.clock().advance(Duration::from_secs(11));
        assert!(s.bans().is_empty(), "expired");
        s.tick();
        assert!(s.ban_reasons.is_empty(), "reasons of ended bans are dropped");
        assert!(matches!(s.unban("2001:db8::1"), Err(StoreError::NotFound(_))));
        let _ = std::fs::remove_dir_all(d);
    }
}
