//! `secsip run`: builds the data path, runs it, and takes it down.
//!
//! Start order matters: rules compile first (a bad file must stop us before we touch a NIC),
//! then the XDP programs attach (before any AF_XDP socket, so libbpf puts the sockets in our
//! `xsks_map`), then the sockets, engines and workers; READY is sent to systemd last.
//! Stop order is the reverse, and frames are counted before the sockets close.

use super::control::{self, ReloadStatus};
use super::engines::{self, EngineLoop};
use super::judge::{EngineSnapshot, EventSink, Judge, ACTIONS, CAUSES};
use crate::eve::{EventLog, RateLimiter, Sink};
use super::stats::{latency_json, render, Freshness, ShedLog, WorkerCounters};
use super::worker::{self, mono_ns, new_histogram, Judging, WorkerConfig, WorkerShared};
use super::xdp::{OnExit, XdpPair, COUNTERS};
use super::xsk::{xsk_stats, QueuePair};
use crate::config::{Config, Failure};
use crate::engine::Engine;
use crate::hash::Keyer;
use crate::hosttable::HostTable;
use crate::mgmt::store::{Clock, Limits, ReloadSource, Store};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// At most one "overload: shed ..." log line per this period.
const SHED_LOG_PERIOD: Duration = Duration::from_secs(10);

fn log_shed(shed_log: &mut ShedLog, workers: &[Arc<WorkerShared>], period: Duration) {
    let counters: Vec<&WorkerCounters> = workers.iter().map(|w| &w.counters).collect();
    if let Some(line) = shed_log.line(&counters, period.as_secs_f64()) {
        log(line);
    }
}

/// Command-line settings that override the configuration file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `appliance.outside`.
    pub outside: Option<String>,
    /// `appliance.inside`.
    pub inside: Option<String>,
    /// `appliance.run_dir`.
    pub run_dir: Option<PathBuf>,
    /// `appliance.bpffs`.
    pub bpffs: Option<PathBuf>,
    /// `appliance.engines`.
    pub engines: Option<usize>,
    /// `log.events`.
    pub events: Option<PathBuf>,
    /// `appliance.failure`.
    pub failure: Option<Failure>,
}

impl Overrides {
    /// Applies them to a loaded configuration.
    pub fn apply(&self, c: &mut Config) {
        let a = &mut c.appliance;
        if let Some(v) = &self.outside {
            a.outside = Some(v.clone());
        }
        if let Some(v) = &self.inside {
            a.inside = Some(v.clone());
        }
        if let Some(v) = &self.run_dir {
            a.run_dir = v.clone();
        }
        if let Some(v) = &self.bpffs {
            a.bpffs = v.clone();
        }
        if let Some(v) = self.engines {
            a.engines = v;
        }
        if let Some(v) = self.failure {
            a.failure = v;
        }
        if let Some(v) = &self.events {
            c.log.events = Some(v.clone());
        }
    }
}

fn log(msg: impl AsRef<str>) {
    eprintln!("secsip: {}", msg.as_ref());
}

/// Everything the report needs to read.
struct Parts {
    started: Instant,
    /// Unix time of `started`, fixed once so windows that begin at start have a stable origin.
    started_unix: f64,
    mode: &'static str,
    workers: Vec<Arc<WorkerShared>>,
    worker_fds: Vec<[RawFd; 2]>,
    engines: Vec<Arc<Mutex<EngineSnapshot>>>,
    xdp: Arc<Mutex<XdpPair>>,
    reloads: Arc<Mutex<ReloadStatus>>,
    hosts: Arc<HostTable>,
    bans_in_xdp: Arc<std::sync::atomic::AtomicUsize>,
    freshness: Arc<Freshness>,
    event_log: Arc<Mutex<Option<crate::eve::EventLogHandle>>>,
}

impl Parts {
    /// Asks every worker and engine for fresh counters and waits (at most 300 ms: an engine
    /// wakes at least every timer tick) until they have published.
    fn refresh(&self) {
        let want = self.freshness.request();
        for w in &self.workers {
            w.kick();
        }
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline {
            let workers = self.workers.iter().all(|w| w.published.load(Ordering::Acquire) >= want);
            let engines = self.engines.iter().all(|e| e.lock().map(|s| s.generation >= want).unwrap_or(true));
            if workers && engines {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn report(&self) -> Value {
        self.refresh();
        let (nics, _) = {
            let x = self.xdp.lock().unwrap_or_else(|p| p.into_inner());
            let nics: Vec<Value> = x
                .nics
                .iter()
                .map(|n| {
                    let c = n.counters();
                    let m: BTreeMap<&str, u64> = COUNTERS.iter().copied().zip(c).collect();
                    let causes = crate::wire::classify::Unclassified::ALL.iter().map(|u| u.name());
                    let u: BTreeMap<&str, u64> = causes.zip(n.unclassified()).collect();
                    json!({"name": n.name, "ifindex": n.ifindex, "mode": n.mode.name(), "xdp": m, "unclassified": u})
                })
                .collect();
            (nics, ())
        };
        let queues: Vec<Value> = self
            .workers
            .iter()
            .zip(&self.worker_fds)
            .enumerate()
            .map(|(i, (w, fds))| {
                let xsk: Vec<Value> = fds.iter().map(|&fd| serde_json::to_value(xsk_stats(fd).unwrap_or_default()).unwrap_or_default()).collect();
                json!({"queue": i, "counters": w.counters.to_json(), "frames": w.accounting.to_json(), "xsk": xsk})
            })
            .collect();
        let snaps: Vec<EngineSnapshot> = self.engines.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone()).collect();
        let mut verdicts = BTreeMap::<String, u64>::new();
        let mut rule_hits = BTreeMap::<String, u64>::new();
        // A source's messages spread over engines (sharding is by Call-ID): add up its counts.
        let mut drop_sources = BTreeMap::<std::net::IpAddr, u64>::new();
        for s in &snaps {
            for d in &s.top_drops {
                *drop_sources.entry(d.ip).or_default() += d.drops;
            }
            for (ci, row) in s.judge.verdicts.iter().enumerate() {
                for (ai, &v) in row.iter().enumerate() {
                    if v > 0 {
                        *verdicts.entry(format!("{}.{}", CAUSES[ci], ACTIONS[ai])).or_default() += v;
                    }
                }
            }
            for (k, v) in &s.rule_hits {
                *rule_hits.entry(k.clone()).or_default() += v;
            }
        }
        // The report lists the 20 heaviest (each engine tracks TOP_DROPS = 64).
        const TOP_DROP_SOURCES: usize = 20;
        let mut top_drop_sources: Vec<(std::net::IpAddr, u64)> = drop_sources.into_iter().collect();
        top_drop_sources.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let top_drop_sources: Vec<Value> = top_drop_sources.iter().take(TOP_DROP_SOURCES).map(|(ip, n)| json!({"ip": ip.to_string(), "drops": n})).collect();
        // Latency: per engine (merged over workers), then all.
        let n_eng = snaps.len().max(1);
        let mut per_engine: Vec<_> = (0..n_eng).map(|_| new_histogram()).collect();
        for w in &self.workers {
            let h = w.latency.lock().unwrap_or_else(|p| p.into_inner());
            for (dst, src) in per_engine.iter_mut().zip(h.iter()) {
                let _ = dst.add(src);
            }
        }
        let mut all = new_histogram();
        let mut latency: Vec<Value> = Vec::new();
        for (i, h) in per_engine.iter().enumerate() {
            let _ = all.add(h);
            let mut j = latency_json(h);
            j["engine"] = json!(i);
            latency.push(j);
        }
        let mut j = latency_json(&all);
        j["engine"] = json!("all");
        latency.push(j);
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "uptime_s": self.started.elapsed().as_secs_f64(),
            "started_unix": self.started_unix,
            "mode": self.mode,
            "nics": nics,
            "queues": queues,
            "engines": snaps,
            "verdicts": verdicts,
            "rule_hits": rule_hits,
            "top_drop_sources": top_drop_sources,
            "latency": latency,
            "reloads": self.reloads.lock().unwrap_or_else(|p| p.into_inner()).to_json(),
            "events": {
                "written": self.event_log.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map_or(0, |h| h.stats().written),
                "queued": snaps.iter().map(|s| s.judge.events_sent).sum::<u64>(),
                "suppressed": snaps.iter().map(|s| s.judge.events_suppressed).sum::<u64>(),
                "lost": snaps.iter().map(|s| s.judge.events_lost).sum::<u64>(),
            },
            "bans": {"active": self.hosts.bans(mono_ns()).len(), "in_xdp": self.bans_in_xdp.load(Ordering::Relaxed)},
        })
    }
}

/// Runs the appliance until SIGTERM or SIGINT.
pub fn run(config_path: PathBuf, ov: Overrides) -> Result<()> {
    let apply = {
        let ov = ov.clone();
        move |c: &mut Config| ov.apply(c)
    };
    let mut cfg = Config::load(&config_path).map_err(|e| anyhow!("{e}"))?;
    apply(&mut cfg);
    // The rules compile here, from the files the management API will show as running.
    let hosts = Arc::new(HostTable::new(cfg.hosts.clone()));
    let reloads = Arc::new(Mutex::new(ReloadStatus::default()));
    let limits = Limits { max_list_entries: cfg.management.max_list_entries, max_ttl_s: cfg.management.max_ttl_s };
    let mut store = Store::open(cfg.rules.dir.clone(), cfg.compile_options(), limits, hosts.clone(), reloads.clone(), Clock::system())
        .map_err(|e| anyhow!("{e}"))?;
    {
        // SIGHUP and POST /api/reload read the configuration again, as they always did.
        let (cp, ov, running_cfg) = (config_path.clone(), ov.clone(), cfg.clone());
        store.set_reloader(Box::new(move || {
            let mut c = Config::load(&cp).map_err(|e| e.to_string())?;
            ov.apply(&mut c);
            let note = control::restart_note(&c, &running_cfg);
            Ok(ReloadSource { dir: c.rules.dir.clone(), opts: c.compile_options(), label: cp.display().to_string(), note })
        }));
    }
    let rule_slot = store.slot();
    let rules = store.running_set();
    let store = Arc::new(Mutex::new(store));
    let app = cfg.appliance.clone();
    let outside = app.outside.clone().ok_or_else(|| anyhow!("{}: appliance.outside is not set (or pass --outside)", config_path.display()))?;
    let inside = app.inside.clone().ok_or_else(|| anyhow!("{}: appliance.inside is not set (or pass --inside)", config_path.display()))?;
    if outside == inside {
        bail!("--outside and --inside are both {outside:?}: a bridge needs two NICs");
    }
    raise_memlock();
    let pid_file = control::write_pid_file(&app.run_dir)?;
    log(format!("{} rules from {}", rules.rules.len(), cfg.rules.dir.as_ref().map(|d| d.display().to_string()).unwrap_or_else(|| "(none)".into())));

    let xdp = XdpPair::attach(&outside, &inside, &app, &cfg.engine)?;
    log(format!(
        "XDP attached: {outside} ({}), {inside} ({}); links pinned in {}",
        xdp.nics[0].mode.name(),
        xdp.nics[1].mode.name(),
        app.bpffs.display()
    ));
    let mut qps = Vec::new();
    for q in 0..app.queues {
        qps.push(QueuePair::open(&outside, &inside, q, &app)?);
    }
    let areas: Vec<_> = qps.iter().map(|q| q.area.clone()).collect();
    let worker_fds: Vec<[RawFd; 2]> = qps.iter().map(|q| [q.nics[0].fd, q.nics[1].fd]).collect();

    let keyer = Keyer::random();
    let stop = Arc::new(AtomicBool::new(false));
    let n_eng = app.engines;
    let freshness = Arc::new(Freshness::default());
    let workers: Vec<Arc<WorkerShared>> = (0..qps.len())
        .map(|_| WorkerShared::new(n_eng, freshness.clone()).map(Arc::new))
        .collect::<std::io::Result<_>>()
        .context("eventfd")?;
    let tick_ns = cfg.engine.timer_tick_ms.max(1) * 1_000_000;
    let max_held = (app.frames as usize / 4).max(64);
    let (events, event_log) = match &cfg.log.events {
        Some(p) => {
            let sink = if p.as_os_str() == "-" { Sink::Stdout } else { Sink::File(p.clone()) };
            let shown = sink.to_string();
            let (tx, handle) = EventLog::spawn(sink, cfg.log.events_queue).with_context(|| format!("opening the event log {shown}"))?;
            log(format!("security events to {shown}, at most {}/s per engine", cfg.log.events_per_second));
            (Some(tx), Some(handle))
        }
        None => (None, None),
    };
    let event_log = Arc::new(Mutex::new(event_log));
    let tls_gate = crate::engine::tls::TlsGate::new(&cfg.engine.tls, keyer);
    let new_judge = |i: usize| {
        let mut engine = Engine::with_rules(cfg.engine.clone(), keyer, rule_slot.load_full(), hosts.clone());
        engine.share_tls_gate(tls_gate.clone());
        let j = Judge::new(i, engine, rule_slot.clone(), max_held);
        match &events {
            Some(tx) => j.with_events(EventSink {
                sender: tx.clone(),
                limiter: RateLimiter::new(cfg.log.events_per_second, cfg.log.events_burst),
                ifaces: [outside.clone(), inside.clone()],
                keyer,
                lost: 0,
                sent: 0,
            }),
            None => j,
        }
    };

    // Engines (sharded) or inline judges (run-to-completion).
    let mut engine_threads = Vec::new();
    let mut snapshots = Vec::new();
    let mut judgings: Vec<Judging> = Vec::new();
    if n_eng == 0 {
        for i in 0..qps.len() {
            let snap = Arc::new(Mutex::new(EngineSnapshot::default()));
            snapshots.push(snap);
            judgings.push(Judging::Inline(Box::new(new_judge(i))));
        }
    } else {
        let (ret_tx, ret_rx): (Vec<_>, Vec<_>) = qps.iter().map(|q| crossbeam_channel::bounded(q.frames)).unzip();
        let mut inputs = Vec::new();
        let consults = cfg.engine.tcp.consults;
        let (inbox_tx, inbox_rx) = super::consult::Peers::channels(n_eng, consults);
        let mut inbox_rx = inbox_rx.into_iter();
        for i in 0..n_eng {
            let (tx, rx) = crossbeam_channel::bounded(app.engine_queue);
            inputs.push(tx);
            let snap = Arc::new(Mutex::new(EngineSnapshot { engine: i, ..Default::default() }));
            snapshots.push(snap.clone());
            let l = EngineLoop {
                input: rx,
                inbox: if n_eng > 1 { inbox_rx.next().unwrap_or_else(crossbeam_channel::never) } else { crossbeam_channel::never() },
                returns: ret_tx.clone(),
                workers: workers.clone(),
                tick_ns,
                idle: Duration::from_millis(app.idle_timeout_ms.min(cfg.engine.timer_tick_ms.max(1))),
                batch: app.batch,
                snapshot: snap,
                freshness: freshness.clone(),
            };
            let mut judge = new_judge(i);
            if n_eng > 1 {
                judge = judge.with_peers(super::consult::Peers::new(i, inbox_tx.clone(), consults), n_eng);
            }
            let stop = stop.clone();
            let core = (!app.engine_cores.is_empty()).then(|| app.engine_cores[i % app.engine_cores.len()]);
            engine_threads.push(
                std::thread::Builder::new()
                    .name(format!("secsip-engine{i}"))
                    .spawn(move || {
                        pin(core, &format!("engine {i}"));
                        engines::run(judge, l, &stop)
                    })
                    .context("spawning an engine thread")?,
            );
        }
        for rx in ret_rx {
            judgings.push(Judging::Sharded { engines: inputs.clone(), returns: rx });
        }
        drop(inputs);
    }

    // Workers.
    let mut worker_threads = Vec::new();
    for (i, (qp, judging)) in qps.into_iter().zip(judgings).enumerate() {
        let wcfg = WorkerConfig {
            index: i as u16,
            batch: app.batch,
            spin_polls: app.spin_polls,
            idle_timeout_ms: app.idle_timeout_ms,
            failure: app.failure,
            admission: app.admission,
            engine_queue: app.engine_queue,
            tick_ns,
            ring: app.ring_size as usize,
        };
        let shared = workers[i].clone();
        let stop = stop.clone();
        let core = (!app.io_cores.is_empty()).then(|| app.io_cores[i % app.io_cores.len()]);
        let snap = (n_eng == 0).then(|| snapshots[i].clone());
        worker_threads.push(
            std::thread::Builder::new()
                .name(format!("secsip-io{i}"))
                .stack_size(8 << 20)
                .spawn(move || {
                    pin(core, &format!("worker {i}"));
                    let (qp, judging) = worker::run(qp, wcfg, &shared, judging, keyer, &stop, snap.as_deref());
                    drop(judging);
                    qp
                })
                .context("spawning a worker thread")?,
        );
    }

    let xdp = Arc::new(Mutex::new(xdp));
    let bans_in_xdp = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let parts = Arc::new(Parts {
        started: Instant::now(),
        started_unix: control::unix_now(),
        mode: if n_eng == 0 { "run-to-completion" } else { "sharded" },
        workers: workers.clone(),
        worker_fds,
        engines: snapshots,
        xdp: xdp.clone(),
        reloads: reloads.clone(),
        hosts: hosts.clone(),
        bans_in_xdp: bans_in_xdp.clone(),
        freshness,
        event_log: event_log.clone(),
    });
    let sock_path = app.run_dir.join(control::SOCKET);
    let _ = std::fs::remove_file(&sock_path);
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).with_context(|| format!("binding {}", sock_path.display()))?;
    let control_thread = {
        let stop = stop.clone();
        let parts = parts.clone();
        std::thread::Builder::new().name("secsip-control".into()).spawn(move || control::serve(listener, stop, || parts.report()))?
    };

    // The management API: its report holds the parts weakly, so the XDP handle they share is
    // free at shutdown even if a management connection is still finishing.
    let mut mgmt_server = if cfg.management.enabled {
        let weak = Arc::downgrade(&parts);
        let report: crate::mgmt::api::Report = Box::new(move || weak.upgrade().map_or(Value::Null, |p| p.report()));
        match crate::mgmt::server::start_management(&cfg.management, store.clone(), report) {
            Ok(s) => {
                log(format!("management API on http://{}", s.addr()));
                Some(s)
            }
            Err(e) => {
                // The data path matters more than the API: run without it, loudly.
                log(format!("management API not started: {e}"));
                None
            }
        }
    } else {
        None
    };

    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGUSR1,
    ])
    .context("installing signal handlers")?;
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    log(format!(
        "ready: bridging {outside} <-> {inside}, {} queue(s), {}, failure policy {:?}; pid {} in {}",
        app.queues,
        if n_eng == 0 { "run-to-completion".to_string() } else { format!("{n_eng} engine(s)") },
        app.failure,
        std::process::id(),
        pid_file.display()
    ));

    // The control loop: signals, the XDP ban map kept in step with the host table, and a
    // line in the log for each period in which load was shed.
    let mut shed_log = ShedLog::default();
    let mut shed_logged = Instant::now();
    'main: loop {
        for sig in signals.pending() {
            match sig {
                signal_hook::consts::SIGHUP => {
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
                    let res = store.lock().unwrap_or_else(|p| p.into_inner()).reload();
                    log(match res {
                        Ok(l) => l,
                        Err(e) => e.message,
                    });
                    if let Some(h) = event_log.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                        h.reopen();
                    }
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
                }
                signal_hook::consts::SIGUSR1 => {
                    if let Some(h) = event_log.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                        h.reopen();
                        log("SIGUSR1: reopening the event log");
                    }
                }
                _ => break 'main,
            }
        }
        for line in store.lock().unwrap_or_else(|p| p.into_inner()).tick() {
            log(line);
        }
        if app.xdp_bans {
            let now = mono_ns();
            let bans: Vec<_> = hosts.bans(now).into_iter().map(|(ip, b)| (ip, b.until_ns)).collect();
            let n = xdp.lock().unwrap_or_else(|p| p.into_inner()).sync_bans(&bans);
            bans_in_xdp.store(n, Ordering::Relaxed);
        }
        if shed_logged.elapsed() >= SHED_LOG_PERIOD {
            log_shed(&mut shed_log, &workers, shed_logged.elapsed());
            shed_logged = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    log_shed(&mut shed_log, &workers, shed_logged.elapsed());

    if let Some(s) = mgmt_server.take() {
        s.stop();
    }
    log("stopping: draining the rings");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    stop.store(true, Ordering::SeqCst);
    for w in &workers {
        w.kick();
    }
    let mut qps = Vec::new();
    for t in worker_threads {
        qps.push(t.join().map_err(|_| anyhow!("a worker thread panicked"))?);
    }
    for t in engine_threads {
        t.join().map_err(|_| anyhow!("an engine thread panicked"))?;
    }
    drop(events);
    let final_log = event_log.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(h) = final_log {
        let st = h.shutdown();
        log(format!("event log: {} written, {} write errors", st.written, st.write_errors));
    }
    // Every frame is now free or lent to a fill ring.
    let mut leaked = 0i64;
    for (i, w) in workers.iter().enumerate() {
        let f = w.accounting.to_json();
        let lost = f["lost"].as_i64().unwrap_or(0) + f["in_engines"].as_i64().unwrap_or(0) + f["in_tx"].as_i64().unwrap_or(0) + f["backlog"].as_i64().unwrap_or(0);
        leaked += lost;
        log(format!("queue {i}: frames {} = free {} + in fill rings {}; unaccounted {lost}", f["total"], f["free"], f["in_fill"]));
    }
    let final_report = parts.report();
    log(format!("final counters:\n{}", render(&final_report)));
    stop.store(true, Ordering::SeqCst);
    let _ = control_thread.join();
    drop(qps); // closes the sockets: the XSKMAP slots empty, the program falls back per policy
    drop(areas);
    let on_exit = if app.failure == Failure::FailOpen { OnExit::LeavePinned } else { OnExit::Detach };
    drop(parts); // the report's handle on the XDP programs
    match Arc::try_unwrap(xdp) {
        Ok(m) => {
            m.into_inner().unwrap_or_else(|p| p.into_inner()).finish(on_exit)?;
            log(match on_exit {
                OnExit::LeavePinned => "XDP programs left pinned: the NICs keep bridging, SIP uninspected (fail_open)",
                OnExit::Detach => "XDP programs detached: nothing crosses (fail_closed)",
            });
        }
        Err(_) => log("XDP handle still shared at exit; the programs stay pinned"),
    }
    let _ = std::fs::remove_file(&sock_path);
    let _ = std::fs::remove_file(&pid_file);
    if leaked != 0 {
        bail!("{leaked} UMEM frame(s) were not returned at shutdown");
    }
    Ok(())
}

fn pin(core: Option<usize>, what: &str) {
    if let Some(id) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            log(format!("{what}: cannot pin to core {id}; running unpinned"));
        }
    }
}

/// UMEM registration counts against RLIMIT_MEMLOCK unless we have CAP_IPC_LOCK: lift the
/// soft limit to the hard one (raising the hard limit needs CAP_SYS_RESOURCE).
fn raise_memlock() {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write a valid rlimit we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_MEMLOCK, &r);
        }
    }
}
