//! Counters of the data path and the report `secsip stats` prints.
//!
//! Each counter has one writer (its worker or engine thread), which updates it with a plain
//! load and store: no read-modify-write, no contention, no lock. Readers sum them at report
//! time. Engines keep their richer counters privately and publish a copy about twice a second.

use super::admit::Shed;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// On-demand publishing: the control thread raises `want`; every worker and engine publishes
/// its private counters when it sees a new value and records the value it published for, so
/// a report can wait until every copy is at least as new as the request.
#[derive(Debug, Default)]
pub struct Freshness {
    /// The latest generation asked for.
    pub want: AtomicU64,
}

impl Freshness {
    /// Asks for a new generation; returns it.
    pub fn request(&self) -> u64 {
        self.want.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
    }
}

/// Counters of one worker.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// Frames received per NIC (outside, inside).
    pub rx: [AtomicU64; 2],
    /// Frames sent per NIC.
    pub tx: [AtomicU64; 2],
    /// Frames dropped on an engine's verdict.
    pub dropped: AtomicU64,
    /// Reject answers put on the wire.
    pub injected: AtomicU64,
    /// SIP dropped before any engine judged it, by cause (indexed like [`Shed::ALL`]).
    pub shed: [AtomicU64; Shed::ALL.len()],
    /// SIP forwarded without a verdict: its engine thread is gone and `failure = "fail_open"`.
    /// A live daemon never does this, however loaded.
    pub uninspected_forwarded: AtomicU64,
    /// Frames dropped because a TX ring stayed full until the backlog overflowed.
    pub tx_backlog_dropped: AtomicU64,
    /// Second frames of an [`Out::Split`](super::judge::Out::Split) (an RST) not sent: no
    /// free frame to carry them.
    pub split_unsent: AtomicU64,
    /// Times the worker went to sleep in poll(2).
    pub sleeps: AtomicU64,
}

impl WorkerCounters {
    /// Adds one (single writer).
    pub fn bump(c: &AtomicU64) {
        c.store(c.load(Relaxed) + 1, Relaxed);
    }

    /// Adds `n` received frames on `nic`.
    pub fn add_rx(&self, nic: usize, n: u64) {
        self.rx[nic].store(self.rx[nic].load(Relaxed) + n, Relaxed);
    }

    /// Adds `n` sent frames on `nic`.
    pub fn add_tx(&self, nic: usize, n: u64) {
        self.tx[nic].store(self.tx[nic].load(Relaxed) + n, Relaxed);
    }

    /// Counts a frame shed for `cause`.
    pub fn shed(&self, cause: Shed) {
        Self::bump(&self.shed[cause as usize]);
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        let g = |c: &AtomicU64| c.load(Relaxed);
        let shed: Map<String, Value> = Shed::ALL.iter().map(|c| (c.name().to_string(), g(&self.shed[*c as usize]).into())).collect();
        json!({
            "rx": {"outside": g(&self.rx[0]), "inside": g(&self.rx[1])},
            "tx": {"outside": g(&self.tx[0]), "inside": g(&self.tx[1])},
            "dropped": g(&self.dropped),
            "injected": g(&self.injected),
            "shed": shed,
            "uninspected_forwarded": g(&self.uninspected_forwarded),
            "tx_backlog_dropped": g(&self.tx_backlog_dropped),
            "split_unsent": g(&self.split_unsent),
            "sleeps": g(&self.sleeps),
        })
    }
}

/// Turns the shed counters of all workers into a log line when they grew: one line per
/// period at most, however long the flood, so the log says when and why load was shed.
#[derive(Debug, Default)]
pub struct ShedLog {
    last: [u64; Shed::ALL.len()],
}

impl ShedLog {
    /// Takes the workers' current totals; a line when any cause grew since the last call.
    pub fn line(&mut self, counters: &[&WorkerCounters], period_s: f64) -> Option<String> {
        let mut now = [0u64; Shed::ALL.len()];
        for c in counters {
            for (t, a) in now.iter_mut().zip(&c.shed) {
                *t += a.load(Relaxed);
            }
        }
        let grew: Vec<String> = Shed::ALL
            .iter()
            .filter(|c| now[**c as usize] > self.last[**c as usize])
            .map(|c| format!("{} {}", c.name(), now[*c as usize] - self.last[*c as usize]))
            .collect();
        self.last = now;
        (!grew.is_empty()).then(|| format!("overload: shed SIP frames before the engines in the last {period_s:.1} s: {}", grew.join(", ")))
    }
}

/// Where a worker's frames are. `free + in_fill + in_engines + in_tx + backlog == frames` at
/// every instant the worker publishes; with no traffic, only `free` and `in_fill` are non-zero.
#[derive(Debug, Default)]
pub struct Accounting {
    frames: AtomicUsize,
    free: AtomicUsize,
    in_fill: AtomicUsize,
    in_engines: AtomicUsize,
    in_tx: AtomicUsize,
    backlog: AtomicUsize,
}

impl Accounting {
    /// Publishes the worker's view.
    pub fn set(&self, frames: usize, free: usize, in_fill: usize, in_engines: usize, in_tx: usize, backlog: usize) {
        self.frames.store(frames, Relaxed);
        self.free.store(free, Relaxed);
        self.in_fill.store(in_fill, Relaxed);
        self.in_engines.store(in_engines, Relaxed);
        self.in_tx.store(in_tx, Relaxed);
        self.backlog.store(backlog, Relaxed);
    }

    /// As JSON, with `lost` = frames no place accounts for (must be 0).
    pub fn to_json(&self) -> Value {
        let f = self.frames.load(Relaxed);
        let parts = [&self.free, &self.in_fill, &self.in_engines, &self.in_tx, &self.backlog].map(|a| a.load(Relaxed));
        let placed: usize = parts.iter().sum();
        json!({
            "total": f, "free": parts[0], "in_fill": parts[1], "in_engines": parts[2],
            "in_tx": parts[3], "backlog": parts[4], "lost": f as i64 - placed as i64,
        })
    }
}

/// Latency summary of a histogram, in microseconds.
pub fn latency_json(h: &hdrhistogram::Histogram<u64>) -> Value {
    let us = |v: u64| v as f64 / 1000.0;
    json!({
        "count": h.len(),
        "p50_us": us(h.value_at_quantile(0.50)),
        "p90_us": us(h.value_at_quantile(0.90)),
        "p99_us": us(h.value_at_quantile(0.99)),
        "p999_us": us(h.value_at_quantile(0.999)),
        "max_us": us(h.max()),
        // For a Prometheus summary's `_sum` (hdrhistogram keeps no exact sum: mean × count).
        "sum_us": h.mean() * h.len() as f64 / 1000.0,
    })
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// WebSocket and TLS port lines, summed over engines (`engines[].stats.tcp`, `.tls`).
fn streams_and_tls(o: &mut String, r: &Value) {
    let engines = r["engines"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let sum = |f: &dyn Fn(&Value) -> &Value| engines.iter().map(|e| n(f(&e["stats"]))).sum::<u64>();
    let _ = writeln!(
        o,
        "\nWebSocket: {} handshakes, {} messages, {} control frames",
        sum(&|s| &s["tcp"]["ws_handshakes"]),
        sum(&|s| &s["tcp"]["ws_messages"]),
        sum(&|s| &s["tcp"]["ws_control_frames"]),
    );
    let denied: Vec<String> = crate::engine::tls::TlsDenial::ALL
        .iter()
        .enumerate()
        .map(|(i, d)| format!("{} {}", d.name(), sum(&|s| &s["tls"]["denied"][i])))
        .collect();
    let _ = writeln!(
        o,
        "TLS (tls_uninspected): {} frames, {} connections let through; denied: {}",
        sum(&|s| &s["tls"]["uninspected_frames"]),
        sum(&|s| &s["tls"]["uninspected_connections"]),
        denied.join(", "),
    );
}

/// Renders the JSON report of a running daemon for a terminal.
pub fn render(r: &Value) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "secsip {} — pid {}, up {:.0} s, {} mode, {} queue(s), {} engine(s)",
        r["version"].as_str().unwrap_or("?"),
        r["pid"],
        r["uptime_s"].as_f64().unwrap_or(0.0),
        r["mode"].as_str().unwrap_or("?"),
        r["queues"].as_array().map_or(0, |a| a.len()),
        r["engines"].as_array().map_or(0, |a| a.len()),
    );
    let _ = writeln!(o, "\nNICs (XDP program)");
    for nic in r["nics"].as_array().into_iter().flatten() {
        let x = &nic["xdp"];
        let _ = writeln!(
            o,
            "  {:<10} {:<8} rx {:>10}  bridged in kernel {:>10}  to userspace {:>10}  banned {:>8}  fail-open {:>8}  fail-closed {:>8}",
            nic["name"].as_str().unwrap_or("?"),
            nic["mode"].as_str().unwrap_or("?"),
            n(&x["rx"]),
            n(&x["bridged"]),
            n(&x["to_userspace"]),
            n(&x["banned"]),
            n(&x["fail_open"]),
            n(&x["fail_closed"]),
        );
        let causes: Vec<String> = nic["unclassified"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| v.as_u64().is_some_and(|v| v > 0))
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if !causes.is_empty() || x["unclassified_dropped"].as_u64().is_some_and(|v| v > 0) {
            let _ = writeln!(o, "  {:<19} unclassified: {}  (dropped {})", "", causes.join(", "), n(&x["unclassified_dropped"]));
        }
    }
    let _ = writeln!(o, "\nQueues (AF_XDP workers)");
    for q in r["queues"].as_array().into_iter().flatten() {
        let c = &q["counters"];
        let f = &q["frames"];
        let _ = writeln!(
            o,
            "  q{:<3} rx {}/{}  tx {}/{}  dropped {}  injected {}  uninspected fwd {}  frames {} free {} in-fill {} in-engines {} in-tx {} lost {}",
            q["queue"], n(&c["rx"]["outside"]), n(&c["rx"]["inside"]), n(&c["tx"]["outside"]), n(&c["tx"]["inside"]),
            n(&c["dropped"]), n(&c["injected"]), n(&c["uninspected_forwarded"]),
            n(&f["total"]), n(&f["free"]), n(&f["in_fill"]), n(&f["in_engines"]), n(&f["in_tx"]), f["lost"],
        );
        let sh = &c["shed"];
        let _ = writeln!(
            o,
            "        shed: rate {}  congestion {}  queue full {}  engine gone {}",
            n(&sh["rate"]), n(&sh["congestion"]), n(&sh["queue_full"]), n(&sh["engine_gone"]),
        );
        for (side, x) in ["outside", "inside"].iter().zip(q["xsk"].as_array().into_iter().flatten()) {
            let _ = writeln!(
                o,
                "        {side:<8} socket: rx dropped {} ring full {} fill empty {} invalid {}/{}",
                n(&x["rx_dropped"]), n(&x["rx_ring_full"]), n(&x["rx_fill_ring_empty_descs"]),
                n(&x["rx_invalid_descs"]), n(&x["tx_invalid_descs"]),
            );
        }
    }
    let _ = writeln!(o, "\nVerdicts (all engines)");
    for (k, v) in r["verdicts"].as_object().into_iter().flatten() {
        let _ = writeln!(o, "  {k:<28} {}", v);
    }
    if let Some(h) = r["rule_hits"].as_object().filter(|m| !m.is_empty()) {
        let _ = writeln!(o, "\nRule hits");
        let mut hits: Vec<_> = h.iter().collect();
        hits.sort_by_key(|(_, v)| std::cmp::Reverse(n(v)));
        for (k, v) in hits {
            let _ = writeln!(o, "  {k:<40} {}", v);
        }
    }
    if let Some(top) = r["top_drop_sources"].as_array().filter(|a| !a.is_empty()) {
        let _ = writeln!(o, "\nTop sources by dropped messages");
        for t in top {
            let _ = writeln!(o, "  {:<40} {}", t["ip"].as_str().unwrap_or("?"), n(&t["drops"]));
        }
    }
    streams_and_tls(&mut o, r);
    let _ = writeln!(o, "\nLatency rx->tx (µs)");
    for l in r["latency"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "  {:<8} n {:>9}  p50 {:>8.1}  p90 {:>8.1}  p99 {:>8.1}  p99.9 {:>8.1}  max {:>8.1}",
            l["engine"].as_str().map(str::to_string).unwrap_or_else(|| l["engine"].to_string()),
            n(&l["count"]), l["p50_us"].as_f64().unwrap_or(0.0), l["p90_us"].as_f64().unwrap_or(0.0),
            l["p99_us"].as_f64().unwrap_or(0.0), l["p999_us"].as_f64().unwrap_or(0.0), l["max_us"].as_f64().unwrap_or(0.0),
        );
    }
    let rl = &r["reloads"];
    let _ = writeln!(
        o,
        "\nReloads: {} ok, {} failed{}",
        n(&rl["ok"]),
        n(&rl["failed"]),
        rl["last_error"].as_str().map(|e| format!(" (last error: {e})")).unwrap_or_default()
    );
    let ev = &r["events"];
    let _ = writeln!(o, "Events: {} written, {} suppressed by rate limit, {} lost (queue full)", n(&ev["written"]), n(&ev["suppressed"]), n(&ev["lost"]));
    let _ = writeln!(o, "Bans: {} active, {} in the XDP map", n(&r["bans"]["active"]), n(&r["bans"]["in_xdp"]));
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounting_reports_unplaced_frames() {
        let a = Accounting::default();
        a.set(100, 40, 50, 5, 3, 2);
        assert_eq!(a.to_json()["lost"], 0);
        a.set(100, 40, 50, 0, 0, 0);
        assert_eq!(a.to_json()["lost"], 10);
    }

    #[test]
    fn counters_add_per_nic() {
        let c = WorkerCounters::default();
        c.add_rx(1, 5);
        WorkerCounters::bump(&c.dropped);
        c.shed(Shed::Congestion);
        let j = c.to_json();
        assert_eq!(j["shed"]["congestion"], 1);
        assert_eq!(j["shed"]["rate"], 0);
        assert!(render(&json!({"queues": [{"counters": j}]})).contains("shed: rate 0  congestion 1"));
        assert_eq!(j["rx"]["inside"], 5);
        assert_eq!(j["rx"]["outside"], 0);
        assert_eq!(j["dropped"], 1);
    }

    #[test]
    fn shed_log_says_what_grew_once() {
        let (a, b) = (WorkerCounters::default(), WorkerCounters::default());
        let mut l = ShedLog::default();
        assert_eq!(l.line(&[&a, &b], 10.0), None);
        a.shed(Shed::Rate);
        b.shed(Shed::Rate);
        b.shed(Shed::QueueFull);
        assert_eq!(l.line(&[&a, &b], 10.0).as_deref(), Some("overload: shed SIP frames before the engines in the last 10.0 s: rate 2, queue_full 1"));
        assert_eq!(l.line(&[&a, &b], 10.0), None, "nothing new, nothing said");
    }

    #[test]
    fn render_survives_an_empty_report() {
        let s = render(&json!({}));
        assert!(s.contains("Verdicts"));
        assert!(!s.contains("Top sources"));
        let s = render(&json!({"top_drop_sources": [{"ip": "192.0.2.9", "drops": 7}]}));
        assert!(s.contains("192.0.2.9") && s.contains(" 7\n"), "{s}");
    }

    #[test]
    fn unclassified_causes_show_per_nic_only_when_counted() {
        let nic = |u: serde_json::Value, dropped: u64| json!({"nics": [{"name": "outside", "xdp": {"unclassified_dropped": dropped}, "unclassified": u}]});
        let s = render(&nic(json!({"fragment": 3, "esp": 0, "vlan_depth": 1}), 0));
        assert!(s.contains("unclassified: fragment 3, vlan_depth 1  (dropped 0)") && !s.contains("esp"), "{s}");
        assert!(!render(&nic(json!({"fragment": 0}), 0)).contains("unclassified"));
    }
}
