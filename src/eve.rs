//! The security event log: one JSON line per event, in Suricata's EVE shape, rate-limited and
//! written by its own thread.
//!
//! An event travels in three steps:
//!
//! 1. An engine thread judges a message, then asks its own [`RateLimiter`] whether one more event
//!    may be logged. It builds the owned [`Event`] only if the limiter admits it, so during a flood
//!    a refused event costs one counter increment and no allocation.
//! 2. [`EventSender::try_send`] puts the event on a bounded channel. It never blocks: when the
//!    writer falls behind, the event is refused and the engine counts it.
//! 3. The writer thread started by [`EventLog::spawn`] serializes each event into one line and
//!    batches the lines. It writes a batch to the [`Sink`] when the channel runs empty, every
//!    [`FLUSH_INTERVAL`] at the latest, and whenever [`BATCH_BYTES`] have accumulated.
//!
//! # Line shape
//!
//! ```text
//! {"timestamp":"2026-11-22T10:00:00.123456+0000","event_type":"alert","src_ip":"10.0.0.1",
//!  "src_port":5060,"dest_ip":"10.0.0.2","dest_port":5060,"proto":"UDP","in_iface":"outside",
//!  "flow_id":123,"alert":{"action":"blocked","signature_id":7,"signature":"scanner-ua",
//!  "category":"scan","severity":2},"sip":{"method":"INVITE","uri":"sip:bob@example.com",...}}
//! ```
//!
//! (This is one line in the file.) The keys come in that order. Mapping from [`Event`]:
//!
//! - `timestamp` is UTC with microseconds and a `+0000` offset, as Suricata writes it (see
//!   [`Timestamp`]).
//! - `flow_id` is masked to its low 51 bits ([`FLOW_ID_MASK`]), as Suricata does, so that
//!   consumers that store JSON numbers as doubles (JavaScript, Elasticsearch) read it exactly.
//! - `alert` and `sip` are written only when present. Inside `sip`, `None` values and empty
//!   strings are left out (a response has no request URI).
//! - [`Event::reason`] is written as `"drop":{"reason":"…"}`, where Suricata 7 writes the reason
//!   for a drop.
//!
//! # Failures
//!
//! The writer never gives up. If a write, or the open that follows a reopen, fails, the events
//! concerned are dropped and counted in [`LogStats::write_errors`]. The first failure of a streak
//! is reported once on stderr, and so is the recovery. Memory stays bounded throughout: a failed
//! batch is discarded, not kept for a retry. If a write fails after part of a line has gone out,
//! the next batch starts with a newline, so the damage stays on one line.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use serde::{Serialize, Serializer};

/// The writer writes out buffered lines at least this often.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// The writer writes out its batch once it holds this many bytes.
pub const BATCH_BYTES: usize = 64 * 1024;

/// `flow_id` is written masked to 51 bits, as Suricata does (`FlowGetId`).
pub const FLOW_ID_MASK: u64 = (1 << 51) - 1;

/// Mode of a log file that the writer creates (before the umask): the lines hold addresses and
/// Call-IDs.
const FILE_MODE: u32 = 0o640;

const NS_PER_SEC: u64 = 1_000_000_000;

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// One security event, built by an engine thread from a judged message.
///
/// It owns all its data, so it can cross to the writer thread. Build one only after
/// [`RateLimiter::admit`] returned `true`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Wall clock time in ns since the UNIX epoch. The caller passes it in.
    pub timestamp_ns: u64,
    /// `drop`, `alert` or `reject`.
    pub event_type: EventType,
    /// Source of the judged message.
    pub src: SocketAddr,
    /// Destination of the judged message.
    pub dst: SocketAddr,
    /// `"UDP"` or `"TCP"`, written as it is given.
    pub proto: &'static str,
    /// Name of the NIC the frame came in on.
    pub in_iface: String,
    /// A hash supplied by the caller (the Call-ID hash). It is written masked to
    /// [`FLOW_ID_MASK`].
    pub flow_id: u64,
    /// The rule that decided, if one did.
    pub alert: Option<Alert>,
    /// The SIP message, if it parsed far enough to describe it.
    pub sip: Option<SipInfo>,
    /// Why a message was dropped when no rule decided: `"malformed"`, `"banned"`,
    /// `"decode.xxx"`… Written as `drop.reason`.
    pub reason: Option<String>,
}

/// The kind of an event: the `event_type` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The message was discarded.
    Drop,
    /// A rule matched; the message may have been forwarded ([`Alert::action`] tells).
    Alert,
    /// The message was discarded and answered with a SIP response.
    Reject,
}

/// The rule behind an event: the `alert` object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// [`Alert::ALLOWED`] or [`Alert::BLOCKED`].
    pub action: &'static str,
    /// Numeric rule id.
    pub signature_id: u32,
    /// The rule's id as written in the rule file.
    pub signature: String,
    /// The rule's category (its tag).
    pub category: String,
    /// 1 (highest) to 255.
    pub severity: u8,
}

impl Alert {
    /// `action` of a rule that let the message through.
    pub const ALLOWED: &'static str = "allowed";
    /// `action` of a rule that dropped or rejected the message.
    pub const BLOCKED: &'static str = "blocked";
}

/// The judged SIP message: the `sip` object. Empty strings and `None`s are left out of the line.
///
/// The strings come from the wire and are attacker-controlled; serialization escapes them, so an
/// event stays one line. Bounding their length is up to the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SipInfo {
    /// The request method, or the CSeq method of a response.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// The Request-URI (empty for a response).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uri: String,
    /// The Call-ID header value.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub call_id: String,
    /// The From header value.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// The To header value.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub to: String,
    /// The User-Agent header value (or Server, for a response).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The status code of a response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// The reason phrase of a response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An [`Event`] as its line is laid out: borrowed, in key order.
#[derive(Serialize)]
struct Line<'a> {
    timestamp: Timestamp,
    event_type: EventType,
    src_ip: IpAddr,
    src_port: u16,
    dest_ip: IpAddr,
    dest_port: u16,
    proto: &'a str,
    in_iface: &'a str,
    flow_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<&'a Alert>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sip: Option<&'a SipInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drop: Option<DropInfo<'a>>,
}

#[derive(Serialize)]
struct DropInfo<'a> {
    reason: &'a str,
}

impl Event {
    /// Writes the event as one JSON line, newline included.
    pub fn write_line<W: Write>(&self, mut out: W) -> io::Result<()> {
        let line = Line {
            timestamp: Timestamp(self.timestamp_ns),
            event_type: self.event_type,
            src_ip: self.src.ip(),
            src_port: self.src.port(),
            dest_ip: self.dst.ip(),
            dest_port: self.dst.port(),
            proto: self.proto,
            in_iface: &self.in_iface,
            flow_id: self.flow_id & FLOW_ID_MASK,
            alert: self.alert.as_ref(),
            sip: self.sip.as_ref(),
            drop: self.reason.as_deref().map(|reason| DropInfo { reason }),
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")
    }
}

// ---------------------------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------------------------

/// A wall clock time in ns since the UNIX epoch. It displays as Suricata writes timestamps:
/// `2026-11-22T10:00:00.123456+0000` (UTC; the microseconds are truncated, not rounded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub u64);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / NS_PER_SEC;
        let micros = self.0 % NS_PER_SEC / 1_000;
        let (year, month, day) = civil_from_days(secs / 86_400);
        let sod = secs % 86_400;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}+0000",
            sod / 3_600,
            sod / 60 % 60,
            sod % 60,
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Turns days since 1970-01-01 into a (year, month, day) date of the proleptic Gregorian
/// calendar.
///
/// This is Howard Hinnant's `civil_from_days`, unsigned because the epoch is our lower bound.
/// The count is shifted to start on 0000-03-01, so that the leap day falls at the end of a
/// shifted year. Eras are 400-year cycles of 146 097 days. Shifted months start with March, and
/// each takes `(153 * m + 2) / 5` days to reach.
fn civil_from_days(days: u64) -> (u64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z / 146_097;
    let doe = z % 146_097; // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1st
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let year = era * 400 + yoe + u64::from(month <= 2);
    (year, month, day)
}

// ---------------------------------------------------------------------------------------------
// Rate limiting
// ---------------------------------------------------------------------------------------------

/// A token bucket that decides whether an event may be logged. Each engine thread owns one, so
/// it needs no sharing and no atomics.
///
/// The bucket holds at most `burst` events and refills at `rate` events per second. It starts
/// full. Arithmetic is in integer "token-nanoseconds": one event costs 10⁹, and every nanosecond
/// adds `rate`. Admission is therefore exact and depends only on the `now_ns` values passed in.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    /// Refill per ns, in token-ns: the rate per second.
    rate: u64,
    /// Bucket size in token-ns.
    capacity: u64,
    tokens: u64,
    last_ns: u64,
    suppressed: u64,
}

impl RateLimiter {
    /// `rate_per_sec` events per second on average, with bursts of up to `burst` events (at least
    /// 1). With a rate of 0 the bucket never refills: `burst` events in all, then none.
    pub fn new(rate_per_sec: u32, burst: u32) -> RateLimiter {
        let capacity = u64::from(burst.max(1)) * NS_PER_SEC;
        RateLimiter { rate: u64::from(rate_per_sec), capacity, tokens: capacity, last_ns: 0, suppressed: 0 }
    }

    /// Returns `true` if one more event may be logged at `now_ns`, and takes its token. If time
    /// moves backwards, nothing refills until it has caught up.
    pub fn admit(&mut self, now_ns: u64) -> bool {
        if now_ns > self.last_ns {
            let refill = (now_ns - self.last_ns).saturating_mul(self.rate);
            self.tokens = self.tokens.saturating_add(refill).min(self.capacity);
            self.last_ns = now_ns;
        }
        if self.tokens >= NS_PER_SEC {
            self.tokens -= NS_PER_SEC;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// How many events [`RateLimiter::admit`] has refused so far.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

// ---------------------------------------------------------------------------------------------
// Sending side
// ---------------------------------------------------------------------------------------------

/// Where the writer puts the lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    /// Append to this file, creating it if needed (mode 0640 before the umask). It is reopened
    /// on [`EventLogHandle::reopen`].
    File(PathBuf),
    /// Standard output.
    Stdout,
    /// Nowhere. Events are serialized and counted as written (for tests and benchmarks).
    Discard,
}

impl fmt::Display for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sink::File(p) => write!(f, "{}", p.display()),
            Sink::Stdout => f.write_str("stdout"),
            Sink::Discard => f.write_str("discard"),
        }
    }
}

/// The engines' end of the event channel. Clone it once per engine thread.
#[derive(Clone, Debug)]
pub struct EventSender {
    tx: Sender<Event>,
}

impl EventSender {
    /// A bounded channel of at least one slot (a zero-capacity crossbeam channel would only hand
    /// over to a receiver that is already waiting).
    fn bounded(capacity: usize) -> (EventSender, Receiver<Event>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        (EventSender { tx }, rx)
    }

    /// Queues the event for the writer and never blocks. It returns `false`, dropping the event,
    /// when the queue is full or the writer has stopped. The caller counts such refusals.
    pub fn try_send(&self, ev: Event) -> bool {
        match self.tx.try_send(ev) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

/// The writer's counters, as read by [`EventLogHandle::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Events handed to the sink (the OS, for a file).
    pub written: u64,
    /// Events lost because a write or an open failed. Every event that the writer dequeued is
    /// either `written` or counted here.
    pub write_errors: u64,
    /// Successful reopens of a file sink.
    pub reopened: u64,
}

#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    write_errors: AtomicU64,
    reopened: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> LogStats {
        LogStats {
            written: self.written.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
            reopened: self.reopened.load(Ordering::Relaxed),
        }
    }
}

/// Control of the writer thread: reopen, counters, shutdown.
///
/// If the handle is dropped without [`EventLogHandle::shutdown`], the writer still drains and
/// flushes, but nobody waits for it to finish.
#[derive(Debug)]
pub struct EventLogHandle {
    counters: Arc<Counters>,
    reopen: Arc<AtomicBool>,
    /// Dropped to stop the writer: it wakes on the disconnection.
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl EventLogHandle {
    /// Asks the writer to close and reopen a file sink (logrotate's `postrotate`). It only stores
    /// a flag, so it is async-signal-safe. The writer acts on the flag within
    /// [`FLUSH_INTERVAL`], after it has written everything it received earlier to the old file.
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Relaxed);
    }

    /// The flag behind [`EventLogHandle::reopen`], for `signal_hook::flag::register`.
    pub fn reopen_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.reopen)
    }

    /// The counters so far.
    pub fn stats(&self) -> LogStats {
        self.counters.snapshot()
    }

    /// Stops the writer after it has written every event queued at this point, flushes, joins
    /// the thread and returns the final counters. Stop the engines first: after this call,
    /// [`EventSender::try_send`] returns `false`.
    pub fn shutdown(self) -> LogStats {
        let EventLogHandle { counters, stop, thread, .. } = self;
        drop(stop);
        if thread.join().is_err() {
            let _ = writeln!(io::stderr(), "secsip: event log writer panicked");
        }
        counters.snapshot()
    }
}

// ---------------------------------------------------------------------------------------------
// Writer thread
// ---------------------------------------------------------------------------------------------

/// The writer thread's state: the sink, the current batch of lines, the failure streak.
pub struct EventLog {
    sink: Sink,
    /// `None` after an open failed; it is retried on the next write.
    out: Option<Box<dyn Write + Send>>,
    batch: Vec<u8>,
    batch_lines: u64,
    last_flush: Instant,
    /// A failed write may have left part of a line behind; the next write starts a new line.
    torn: bool,
    /// During a failure streak, the events lost so far.
    failing: Option<u64>,
    counters: Arc<Counters>,
    reopen: Arc<AtomicBool>,
}

impl EventLog {
    /// Opens the sink and starts the writer thread (`secsip-eve`). `capacity` is the channel
    /// size in events, at least 1. Engines send on the returned [`EventSender`]; the handle
    /// reopens, reads counters and shuts down.
    ///
    /// It fails if the log file cannot be opened, so that a bad path shows at startup, or if the
    /// thread cannot be started. Later failures are counted instead (see the module doc).
    pub fn spawn(sink: Sink, capacity: usize) -> io::Result<(EventSender, EventLogHandle)> {
        let out = open(&sink)?;
        let (sender, events) = EventSender::bounded(capacity);
        let (stop, stopped) = crossbeam_channel::bounded(0);
        let counters = Arc::new(Counters::default());
        let reopen = Arc::new(AtomicBool::new(false));
        let log = EventLog {
            sink,
            out: Some(out),
            batch: Vec::with_capacity(BATCH_BYTES + 4096),
            batch_lines: 0,
            last_flush: Instant::now(),
            torn: false,
            failing: None,
            counters: Arc::clone(&counters),
            reopen: Arc::clone(&reopen),
        };
        let thread = std::thread::Builder::new().name("secsip-eve".into()).spawn(move || log.run(events, stopped))?;
        Ok((sender, EventLogHandle { counters, reopen, stop, thread }))
    }

    fn run(mut self, events: Receiver<Event>, stopped: Receiver<()>) {
        loop {
            let wait = if self.batch.is_empty() { FLUSH_INTERVAL } else { FLUSH_INTERVAL.saturating_sub(self.last_flush.elapsed()) };
            crossbeam_channel::select! {
                recv(events) -> ev => match ev {
                    Ok(ev) => {
                        self.push(&ev);
                        while self.batch.len() < BATCH_BYTES {
                            match events.try_recv() {
                                Ok(ev) => self.push(&ev),
                                Err(_) => break,
                            }
                        }
                    }
                    Err(_) => break, // every sender is gone and the queue is empty
                },
                recv(stopped) -> _ => {
                    // Only what is queued now: senders that are still running cannot keep the
                    // writer alive.
                    for _ in 0..events.len() {
                        match events.try_recv() {
                            Ok(ev) => self.push(&ev),
                            Err(_) => break,
                        }
                        if self.batch.len() >= BATCH_BYTES {
                            self.flush();
                        }
                    }
                    break;
                }
                default(wait) => {}
            }
            if self.reopen.swap(false, Ordering::Relaxed) {
                self.reopen_sink();
            }
            if !self.batch.is_empty()
                && (events.is_empty() || self.batch.len() >= BATCH_BYTES || self.last_flush.elapsed() >= FLUSH_INTERVAL)
            {
                self.flush();
            }
        }
        self.flush();
    }

    /// Appends one line to the batch.
    fn push(&mut self, ev: &Event) {
        let start = self.batch.len();
        match ev.write_line(&mut self.batch) {
            Ok(()) => self.batch_lines += 1,
            Err(e) => {
                // Serializing into memory fails only on a bug; the line is dropped.
                self.batch.truncate(start);
                self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                self.failed(&e, 1);
            }
        }
    }

    /// Writes the batch out and empties it, whatever happens.
    fn flush(&mut self) {
        self.last_flush = Instant::now();
        if self.batch.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut self.batch_lines);
        let (sent, result) = self.write_batch();
        // Lines that made it out completely before an error still count as written.
        let done = if result.is_ok() { lines } else { memchr::memchr_iter(b'\n', &self.batch[..sent]).count() as u64 };
        self.batch.clear();
        self.counters.written.fetch_add(done, Ordering::Relaxed);
        match result {
            Ok(()) => self.recovered(),
            Err(e) => {
                self.counters.write_errors.fetch_add(lines - done, Ordering::Relaxed);
                self.failed(&e, lines - done);
            }
        }
    }

    /// Writes the batch to the sink, opening it first if needed. Returns how many bytes of the
    /// batch went out, and the first error.
    fn write_batch(&mut self) -> (usize, io::Result<()>) {
        let out = match self.out.take() {
            Some(out) => out,
            None => match open(&self.sink) {
                Ok(out) => out,
                Err(e) => return (0, Err(e)),
            },
        };
        let out = self.out.insert(out);
        if self.torn {
            if let (_, Err(e)) = write_all(out, b"\n") {
                return (0, Err(e));
            }
            self.torn = false;
        }
        let (sent, result) = write_all(out, &self.batch);
        let result = result.and_then(|()| out.flush());
        if sent > 0 && self.batch[sent - 1] != b'\n' {
            self.torn = true;
        }
        (sent, result)
    }

    fn reopen_sink(&mut self) {
        if !matches!(self.sink, Sink::File(_)) {
            return;
        }
        // Everything received before the request belongs in the old file.
        self.flush();
        self.out = None;
        match open(&self.sink) {
            Ok(out) => {
                self.out = Some(out);
                self.counters.reopened.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.failed(&e, 0),
        }
    }

    /// Records a failure that lost `lost` events; only the first of a streak is reported.
    fn failed(&mut self, e: &io::Error, lost: u64) {
        match &mut self.failing {
            Some(total) => *total += lost,
            None => {
                self.failing = Some(lost);
                let _ = writeln!(io::stderr(), "secsip: event log {}: {e}; dropping events until it works again", self.sink);
            }
        }
    }

    /// Ends a failure streak after a successful write.
    fn recovered(&mut self) {
        if let Some(lost) = self.failing.take() {
            let _ = writeln!(io::stderr(), "secsip: event log {}: writing again ({lost} events lost)", self.sink);
        }
    }
}

fn open(sink: &Sink) -> io::Result<Box<dyn Write + Send>> {
    Ok(match sink {
        Sink::File(path) => Box::new(OpenOptions::new().append(true).create(true).mode(FILE_MODE).open(path)?),
        Sink::Stdout => Box::new(io::stdout()),
        Sink::Discard => Box::new(io::sink()),
    })
}

/// Like [`Write::write_all`], but also reports how many bytes were written before an error.
fn write_all(out: &mut dyn Write, mut buf: &[u8]) -> (usize, io::Result<()>) {
    let mut sent = 0;
    while !buf.is_empty() {
        match out.write(buf) {
            Ok(0) => return (sent, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                sent += n;
                buf = &buf[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (sent, Err(e)),
        }
    }
    (sent, Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::path::Path;

    fn sample(event_type: EventType) -> Event {
        Event {
            timestamp_ns: 1_795_341_600_123_456_789,
            event_type,
            src: "10.0.0.1:5060".parse().unwrap(),
            dst: "10.0.0.2:5080".parse().unwrap(),
            proto: "UDP",
            in_iface: "outside".into(),
            flow_id: 123,
            alert: None,
            sip: Some(SipInfo {
                method: "INVITE".into(),
                uri: "sip:bob@example.com".into(),
                call_id: "a84b4c76e66710@pc33".into(),
                from: "<sip:alice@example.com>;tag=1928301774".into(),
                to: "<sip:bob@example.com>".into(),
                user_agent: Some("friendly-scanner".into()),
                code: None,
                reason: None,
            }),
            reason: None,
        }
    }

    fn line(ev: &Event) -> String {
        let mut out = Vec::new();
        ev.write_line(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn parse(ev: &Event) -> Value {
        let s = line(ev);
        assert!(s.ends_with('\n'));
        assert_eq!(s.matches('\n').count(), 1, "one line: {s}");
        serde_json::from_str(&s).unwrap()
    }

    fn keys(v: &Value) -> Vec<&str> {
        let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }

    #[test]
    fn drop_event_shape() {
        let mut ev = sample(EventType::Drop);
        ev.reason = Some("malformed".into());
        let v = parse(&ev);
        assert_eq!(
            keys(&v),
            ["dest_ip", "dest_port", "drop", "event_type", "flow_id", "in_iface", "proto", "sip", "src_ip", "src_port", "timestamp"]
        );
        assert_eq!(v["timestamp"], "2026-11-22T10:00:00.123456+0000");
        assert_eq!(v["event_type"], "drop");
        assert_eq!(v["src_ip"], "10.0.0.1");
        assert_eq!(v["src_port"], 5060);
        assert_eq!(v["dest_ip"], "10.0.0.2");
        assert_eq!(v["dest_port"], 5080);
        assert_eq!(v["proto"], "UDP");
        assert_eq!(v["in_iface"], "outside");
        assert_eq!(v["flow_id"], 123);
        assert_eq!(v["drop"], serde_json::json!({"reason": "malformed"}));
        assert_eq!(keys(&v["sip"]), ["call_id", "from", "method", "to", "uri", "user_agent"]);
        assert_eq!(v["sip"]["method"], "INVITE");
        assert_eq!(v["sip"]["uri"], "sip:bob@example.com");
        assert_eq!(v["sip"]["call_id"], "a84b4c76e66710@pc33");
        assert_eq!(v["sip"]["from"], "<sip:alice@example.com>;tag=1928301774");
        assert_eq!(v["sip"]["to"], "<sip:bob@example.com>");
        assert_eq!(v["sip"]["user_agent"], "friendly-scanner");
    }

    #[test]
    fn drop_without_sip_or_rule() {
        let mut ev = sample(EventType::Drop);
        ev.sip = None;
        ev.reason = Some("decode.truncated_udp".into());
        let v = parse(&ev);
        assert!(v.get("sip").is_none() && v.get("alert").is_none());
        assert_eq!(v["drop"]["reason"], "decode.truncated_udp");
    }

    #[test]
    fn alert_event_shape() {
        let mut ev = sample(EventType::Alert);
        ev.src = "[2001:db8::1]:5061".parse().unwrap();
        ev.proto = "TCP";
        ev.flow_id = u64::MAX;
        ev.alert = Some(Alert {
            action: Alert::BLOCKED,
            signature_id: 7,
            signature: "scanner-ua".into(),
            category: "scan".into(),
            severity: 2,
        });
        ev.sip = Some(SipInfo {
            method: "INVITE".into(),
            call_id: "x".into(),
            code: Some(403),
            reason: Some("Forbidden".into()),
            ..SipInfo::default()
        });
        let v = parse(&ev);
        assert_eq!(
            keys(&v),
            ["alert", "dest_ip", "dest_port", "event_type", "flow_id", "in_iface", "proto", "sip", "src_ip", "src_port", "timestamp"]
        );
        assert_eq!(v["event_type"], "alert");
        assert_eq!(v["src_ip"], "2001:db8::1");
        assert_eq!(v["src_port"], 5061);
        assert_eq!(v["proto"], "TCP");
        assert_eq!(v["flow_id"], FLOW_ID_MASK);
        assert_eq!(
            v["alert"],
            serde_json::json!({"action": "blocked", "signature_id": 7, "signature": "scanner-ua", "category": "scan", "severity": 2})
        );
        // A response: no request URI, no empty strings, no nulls.
        assert_eq!(v["sip"], serde_json::json!({"method": "INVITE", "call_id": "x", "code": 403, "reason": "Forbidden"}));
    }

    #[test]
    fn key_order_is_eve_order() {
        let mut ev = sample(EventType::Reject);
        ev.alert = Some(Alert { action: Alert::ALLOWED, signature_id: 1, signature: "r".into(), category: "c".into(), severity: 3 });
        ev.reason = Some("rules".into());
        let s = line(&ev);
        assert!(s.starts_with(r#"{"timestamp":"2026-11-22T10:00:00.123456+0000","event_type":"reject","src_ip":"10.0.0.1""#), "{s}");
        let order = [
            "\"timestamp\"",
            "\"event_type\"",
            "\"src_ip\"",
            "\"src_port\"",
            "\"dest_ip\"",
            "\"dest_port\"",
            "\"proto\"",
            "\"in_iface\"",
            "\"flow_id\"",
            "\"alert\"",
            "\"sip\"",
            "\"drop\"",
        ];
        let at: Vec<usize> = order.iter().map(|k| s.find(k).unwrap_or_else(|| panic!("{k} missing in {s}"))).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{s}");
        assert_eq!(parse(&ev)["alert"]["action"], "allowed");
    }

    #[test]
    fn hostile_strings_stay_on_one_line() {
        let mut ev = sample(EventType::Drop);
        let ua = "evil\r\n{\"event_type\":\"alert\"}\u{0}\u{7f}\\ é";
        ev.sip.as_mut().unwrap().user_agent = Some(ua.into());
        ev.in_iface = "in\"side".into();
        let v = parse(&ev);
        assert_eq!(v["sip"]["user_agent"], ua);
        assert_eq!(v["in_iface"], "in\"side");
    }

    #[test]
    fn timestamps() {
        let cases = [
            (0, "1970-01-01T00:00:00.000000+0000"),
            (999, "1970-01-01T00:00:00.000000+0000"),
            (1_000, "1970-01-01T00:00:00.000001+0000"),
            (86_399_999_999_999, "1970-01-01T23:59:59.999999+0000"),
            (951_782_400_000_000_000, "2000-02-29T00:00:00.000000+0000"), // leap: divisible by 400
            (951_868_799_500_000_000, "2000-02-29T23:59:59.500000+0000"),
            (1_709_164_800_000_000_000, "2024-02-29T00:00:00.000000+0000"), // leap: divisible by 4
            (1_795_341_600_123_456_789, "2026-11-22T10:00:00.123456+0000"),
            (1_798_761_599_000_000_000, "2026-12-31T23:59:59.000000+0000"),
            (4_102_444_799_000_000_000, "2099-12-31T23:59:59.000000+0000"),
            (4_107_542_400_000_000_000, "2100-03-01T00:00:00.000000+0000"), // 2100 is not leap
            (u64::MAX, "2554-07-21T23:34:33.709551+0000"),
        ];
        for (ns, want) in cases {
            assert_eq!(Timestamp(ns).to_string(), want, "{ns}");
        }
    }

    #[test]
    fn civil_from_days_walks_every_day() {
        // An independent calendar, stepped one day at a time, up to the last day a u64 of ns
        // reaches.
        let (mut y, mut m, mut d) = (1970u64, 1u32, 1u32);
        for days in 0..=(u64::MAX / NS_PER_SEC / 86_400) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
            let len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
        assert_eq!((y, m, d), (2554, 7, 22));
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn rate_limiter_burst_then_rate() {
        let t0 = 1_795_341_600 * NS_PER_SEC;
        let mut rl = RateLimiter::new(10, 5);
        assert_eq!((0..8).filter(|_| rl.admit(t0)).count(), 5, "the burst");
        assert_eq!(rl.suppressed(), 3);
        // 10/s: one token every 100 ms, not earlier.
        assert!(!rl.admit(t0 + 99 * MS));
        assert!(rl.admit(t0 + 100 * MS));
        assert!(!rl.admit(t0 + 100 * MS));
        assert!(!rl.admit(t0 + 150 * MS));
        assert!(rl.admit(t0 + 200 * MS));
        // A second at full speed admits the rate.
        let admitted = (1..=1000).filter(|i| rl.admit(t0 + 200 * MS + i * MS)).count();
        assert_eq!(admitted, 10);
        // A long silence refills to the burst, not beyond.
        let t1 = t0 + 3_600 * NS_PER_SEC;
        assert_eq!((0..100).filter(|_| rl.admit(t1)).count(), 5);
        assert_eq!(rl.suppressed(), 3 + 3 + 990 + 95);
    }

    #[test]
    fn rate_limiter_edges() {
        // Time going backwards refills nothing and panics nowhere.
        let mut rl = RateLimiter::new(1, 1);
        assert!(rl.admit(10 * NS_PER_SEC));
        assert!(!rl.admit(NS_PER_SEC));
        assert!(!rl.admit(10 * NS_PER_SEC + NS_PER_SEC - 1));
        assert!(rl.admit(11 * NS_PER_SEC));
        // Rate 0: the burst, then never again.
        let mut rl = RateLimiter::new(0, 2);
        assert!(rl.admit(0) && rl.admit(0));
        assert!(!rl.admit(u64::MAX));
        // Burst 0 counts as 1; extreme values saturate.
        let mut rl = RateLimiter::new(u32::MAX, 0);
        assert!(rl.admit(u64::MAX));
        assert!(!rl.admit(u64::MAX));
        let mut rl = RateLimiter::new(u32::MAX, u32::MAX);
        assert!(rl.admit(0));
        assert!(rl.admit(u64::MAX));
    }

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("secsip-eve-{}-{name}", std::process::id()))
    }

    fn read_lines(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    fn wait_until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn numbered(i: u64) -> Event {
        Event { flow_id: i, ..sample(EventType::Drop) }
    }

    /// Sends, retrying while the queue is full (tests want every event).
    fn send(tx: &EventSender, ev: Event) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !tx.try_send(ev.clone()) {
            assert!(Instant::now() < deadline, "queue stayed full");
            std::thread::yield_now();
        }
    }

    #[test]
    fn writer_writes_every_line() {
        let path = temp_path("write.json");
        let _ = std::fs::remove_file(&path);
        let (tx, log) = EventLog::spawn(Sink::File(path.clone()), 64).unwrap();
        let senders: Vec<_> = (0..4)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || (0..500).for_each(|i| send(&tx, numbered(t * 1000 + i))))
            })
            .collect();
        senders.into_iter().for_each(|s| s.join().unwrap());
        let stats = log.shutdown();
        assert_eq!(stats, LogStats { written: 2000, write_errors: 0, reopened: 0 });
        let lines = read_lines(&path);
        let mut ids: Vec<u64> = lines.iter().map(|v| v["flow_id"].as_u64().unwrap()).collect();
        ids.sort_unstable();
        let want: Vec<u64> = (0..4).flat_map(|t| (0..500).map(move |i| t * 1000 + i)).collect();
        assert_eq!(ids, want);
        // Per sender, the order is kept.
        let first: Vec<u64> = lines.iter().map(|v| v["flow_id"].as_u64().unwrap()).filter(|&id| id < 1000).collect();
        assert_eq!(first, (0..500).collect::<Vec<_>>());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn flushes_when_idle() {
        let path = temp_path("idle.json");
        let _ = std::fs::remove_file(&path);
        let (tx, log) = EventLog::spawn(Sink::File(path.clone()), 8).unwrap();
        assert!(tx.try_send(numbered(1)));
        // Nothing else comes: the line goes out without waiting for more.
        wait_until("the line written", || log.stats().written == 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n') && text.lines().count() == 1, "{text}");
        log.shutdown();
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn reopen_after_rename() {
        let path = temp_path("rotate.json");
        let rotated = temp_path("rotate.json.1");
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&rotated);
        let (tx, log) = EventLog::spawn(Sink::File(path.clone()), 16).unwrap();
        (0..10).for_each(|i| send(&tx, numbered(i)));
        wait_until("10 written", || log.stats().written == 10);
        std::fs::rename(&path, &rotated).unwrap();
        log.reopen();
        wait_until("the reopen", || log.stats().reopened == 1);
        (10..15).for_each(|i| send(&tx, numbered(i)));
        let stats = log.shutdown();
        assert_eq!(stats, LogStats { written: 15, write_errors: 0, reopened: 1 });
        let ids = |p: &Path| read_lines(p).iter().map(|v| v["flow_id"].as_u64().unwrap()).collect::<Vec<_>>();
        assert_eq!(ids(&rotated), (0..10).collect::<Vec<_>>());
        assert_eq!(ids(&path), (10..15).collect::<Vec<_>>());
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_file(&rotated).unwrap();
    }

    #[test]
    fn full_queue_refuses_without_blocking() {
        let (tx, rx) = EventSender::bounded(2);
        assert!(tx.try_send(numbered(1)));
        assert!(tx.clone().try_send(numbered(2)));
        assert!(!tx.try_send(numbered(3)));
        assert_eq!(rx.try_recv().unwrap().flow_id, 1);
        assert!(tx.try_send(numbered(4)));
        drop(rx);
        assert!(!tx.try_send(numbered(5)), "no writer");
        // Capacity 0 still queues one event.
        let (tx, _rx) = EventSender::bounded(0);
        assert!(tx.try_send(numbered(1)));
        assert!(!tx.try_send(numbered(2)));
    }

    #[test]
    fn shutdown_drains_the_queue() {
        let path = temp_path("drain.json");
        let _ = std::fs::remove_file(&path);
        let (tx, log) = EventLog::spawn(Sink::File(path.clone()), 10_000).unwrap();
        let sent = (0..10_000).filter(|&i| tx.try_send(numbered(i))).count() as u64;
        assert_eq!(sent, 10_000, "the queue holds them all");
        let stats = log.shutdown();
        assert_eq!(stats.written, sent);
        assert_eq!(read_lines(&path).len() as u64, sent);
        assert!(!tx.try_send(numbered(0)), "the writer is gone");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn senders_gone_stops_the_writer() {
        let (tx, log) = EventLog::spawn(Sink::Discard, 4).unwrap();
        send(&tx, numbered(1));
        drop(tx);
        wait_until("the writer to end", || log.thread.is_finished());
        assert_eq!(log.shutdown().written, 1);
    }

    #[test]
    fn survives_an_unwritable_file() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        let (tx, log) = EventLog::spawn(Sink::File("/dev/full".into()), 16).unwrap();
        (0..3).for_each(|i| send(&tx, numbered(i)));
        wait_until("3 errors", || log.stats().write_errors == 3);
        (3..5).for_each(|i| send(&tx, numbered(i)));
        assert_eq!(log.shutdown(), LogStats { written: 0, write_errors: 5, reopened: 0 });
    }

    #[test]
    fn reopen_failure_then_recovery() {
        let dir = temp_path("gone");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("eve.json");
        let (tx, log) = EventLog::spawn(Sink::File(path.clone()), 16).unwrap();
        send(&tx, numbered(1));
        wait_until("1 written", || log.stats().written == 1);
        // The directory disappears: the reopen fails, and so does every write until it is back.
        std::fs::remove_dir_all(&dir).unwrap();
        log.reopen();
        wait_until("the reopen attempt", || !log.reopen.load(Ordering::Relaxed));
        send(&tx, numbered(2));
        wait_until("1 error", || log.stats().write_errors == 1);
        std::fs::create_dir(&dir).unwrap();
        send(&tx, numbered(3));
        wait_until("2 written", || log.stats().written == 2);
        log.reopen();
        wait_until("the reopen", || log.stats().reopened == 1);
        send(&tx, numbered(4));
        assert_eq!(log.shutdown(), LogStats { written: 3, write_errors: 1, reopened: 1 });
        let ids: Vec<u64> = read_lines(&path).iter().map(|v| v["flow_id"].as_u64().unwrap()).collect();
        assert_eq!(ids, [3, 4]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_path_fails_at_spawn() {
        let path = temp_path("no-such-dir").join("eve.json");
        assert!(EventLog::spawn(Sink::File(path), 16).is_err());
    }

    #[test]
    fn stdout_and_discard_count_lines() {
        let (tx, log) = EventLog::spawn(Sink::Discard, 16).unwrap();
        (0..7).for_each(|i| send(&tx, numbered(i)));
        log.reopen(); // a no-op for anything but a file
        assert_eq!(log.shutdown(), LogStats { written: 7, write_errors: 0, reopened: 0 });
        // Stdout opens and shuts down (nothing sent: it would bypass the test harness' capture).
        let (_tx, log) = EventLog::spawn(Sink::Stdout, 16).unwrap();
        assert_eq!(log.shutdown(), LogStats::default());
    }

    #[test]
    fn torn_batches_restart_on_a_new_line() {
        /// Accepts `budget` bytes, then fails until refilled.
        struct Choke(Arc<std::sync::Mutex<(Vec<u8>, usize)>>);
        impl Write for Choke {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let mut g = self.0.lock().unwrap();
                let n = buf.len().min(g.1);
                if n == 0 {
                    return Err(io::ErrorKind::StorageFull.into());
                }
                g.1 -= n;
                g.0.extend_from_slice(&buf[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let shared = Arc::new(std::sync::Mutex::new((Vec::new(), 0)));
        let mut log = EventLog {
            sink: Sink::Discard,
            out: Some(Box::new(Choke(Arc::clone(&shared)))),
            batch: Vec::new(),
            batch_lines: 0,
            last_flush: Instant::now(),
            torn: false,
            failing: None,
            counters: Arc::default(),
            reopen: Arc::default(),
        };
        let one = line(&numbered(1)).len();
        shared.lock().unwrap().1 = one + 10; // the first line and a bit of the second
        log.push(&numbered(1));
        log.push(&numbered(2));
        log.flush();
        assert_eq!(log.counters.snapshot(), LogStats { written: 1, write_errors: 1, reopened: 0 });
        assert!(log.torn);
        shared.lock().unwrap().1 = usize::MAX;
        log.push(&numbered(3));
        log.flush();
        assert_eq!(log.counters.snapshot(), LogStats { written: 2, write_errors: 1, reopened: 0 });
        let text = String::from_utf8(shared.lock().unwrap().0.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(serde_json::from_str::<Value>(lines[0]).unwrap()["flow_id"], 1);
        assert!(serde_json::from_str::<Value>(lines[1]).is_err(), "the torn line");
        assert_eq!(serde_json::from_str::<Value>(lines[2]).unwrap()["flow_id"], 3);
    }
}
