//! `secsip check --pcap`: replays a capture through the engine and reports what it decided.
//!
//! The capture's own timestamps are the engine's clock, so state expiry and fragment timeouts
//! behave as they did on the wire. Every SIP message gets a verdict line (`--verbose`, or a
//! JSON object with `--json`); the summary counts messages, methods, response classes, dialogs,
//! transactions, malformed messages by reason and verdicts.

use crate::config::Config;
use crate::engine::{Engine, Outcome, SipSummary};
use crate::hash::Keyer;
use crate::hosttable::HostTable;
use crate::rules::eval::Fired;
use crate::rules::RuleSet;
use crate::sip::{Method, Reason};
use crate::verdict::{Action, Cause, Verdict};
use crate::wire::reasm::FrameId;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, TsResolution};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// What `check` prints and writes.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// One line per SIP message.
    pub verbose: bool,
    /// JSON lines instead of text (one object per SIP message, then the summary object).
    pub json: bool,
    /// Write the frames that were forwarded to this pcap.
    pub write_passed: Option<PathBuf>,
    /// Write the frames that were dropped to this pcap.
    pub write_dropped: Option<PathBuf>,
    /// Print progress on stderr when the replay takes longer than a second.
    pub progress: bool,
    /// Rules to judge with (none: validation and the engine's policies only).
    pub rules: Option<Arc<RuleSet>>,
    /// With `verbose`, print only the messages some rule fired on.
    pub only_fired: bool,
}

/// Why a capture could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The capture file could not be opened or read.
    #[error("{path}: {err}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// The file is not a pcap or pcapng capture, or its header is damaged.
    #[error("{path}: not a readable pcap/pcapng capture: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        message: String,
    },
}

/// Counts of one replay, as printed and as serialised under `"summary"`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// The capture file.
    pub file: String,
    /// `pcap` or `pcapng`.
    pub format: &'static str,
    /// Capture records read.
    pub frames: u64,
    /// Records skipped: unsupported link type or a damaged record at the end of the file.
    pub skipped_records: u64,
    /// Seconds between the first and the last record.
    pub capture_seconds: f64,
    /// SIP messages judged.
    pub sip_messages: u64,
    /// Requests by method.
    pub requests: BTreeMap<String, u64>,
    /// Responses by class (`1xx`..`6xx`).
    pub responses: BTreeMap<String, u64>,
    /// Dialogs created (by INVITE or SUBSCRIBE).
    pub dialogs: u64,
    /// Dialogs confirmed by a 2xx.
    pub dialogs_confirmed: u64,
    /// Dialogs ended (BYE answered, or a failure final response).
    pub dialogs_terminated: u64,
    /// Transactions created.
    pub transactions: u64,
    /// Request retransmissions.
    pub retransmissions: u64,
    /// Responses that matched no transaction.
    pub stray_responses: u64,
    /// In-dialog requests for dialogs the engine never saw.
    pub unknown_dialog_requests: u64,
    /// Messages that failed validation.
    pub malformed: u64,
    /// Validation failures by reason.
    pub malformed_by_reason: BTreeMap<String, u64>,
    /// SIP messages by verdict (`accept`, `drop`).
    pub message_verdicts: BTreeMap<String, u64>,
    /// Frames by verdict (`accept`, `drop`), fragments counted one by one.
    pub frame_verdicts: BTreeMap<String, u64>,
    /// Frames by cause of their verdict.
    pub frame_causes: BTreeMap<String, u64>,
    /// Datagrams reassembled from fragments.
    pub reassembled: u64,
    /// Entries evicted from full tables (`transactions`, `dialogs`).
    pub evictions: BTreeMap<String, u64>,
    /// Times each rule fired (monitor-mode firings included), by rule id.
    pub rule_hits: BTreeMap<String, u64>,
    /// Messages decided by each rule, by rule id.
    pub rule_decisions: BTreeMap<String, u64>,
    /// Rules loaded.
    pub rules_loaded: usize,
}

/// One SIP message as `--json` prints it.
#[derive(Serialize)]
struct MessageLine<'a> {
    ts: f64,
    src: String,
    dst: String,
    transport: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    call_id: Option<String>,
    verdict: &'a str,
    cause: String,
    reasons: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fired: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a str>,
}

/// Reads pcap or pcapng records and normalises their link layer to Ethernet.
enum Capture<R: Read> {
    Pcap { reader: PcapReader<R>, link: DataLink },
    PcapNg { reader: PcapNgReader<R>, raw: Vec<u8> },
}

/// Counts bytes read, for progress.
struct Counting<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// Prepends an Ethernet header for link types that carry IP directly; `None` when the link
/// type is not one we can replay.
fn to_ethernet(link: DataLink, data: &[u8], out: &mut Vec<u8>) -> bool {
    const MACS: [u8; 12] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    let (ethertype, payload): (u16, &[u8]) = match link {
        DataLink::ETHERNET => {
            out.clear();
            out.extend_from_slice(data);
            return true;
        }
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => match data.first().map(|b| b >> 4) {
            Some(4) => (0x0800, data),
            Some(6) => (0x86dd, data),
            _ => return false,
        },
        // Linux cooked capture v1: 16-byte header, protocol type in its last two bytes.
        DataLink::LINUX_SLL if data.len() >= 16 => (u16::from_be_bytes([data[14], data[15]]), &data[16..]),
        // v2: 20-byte header, protocol type first.
        DataLink::LINUX_SLL2 if data.len() >= 20 => (u16::from_be_bytes([data[0], data[1]]), &data[20..]),
        // BSD loopback: a 4-byte address family (2 = IPv4; 24, 28, 30 = IPv6 on the BSDs).
        DataLink::NULL | DataLink::LOOP if data.len() >= 4 => {
            let fam = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            let fam_be = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            let v6 = |f: u32| matches!(f, 24 | 28 | 30);
            if fam == 2 || fam_be == 2 {
                (0x0800, &data[4..])
            } else if v6(fam) || v6(fam_be) {
                (0x86dd, &data[4..])
            } else {
                return false;
            }
        }
        _ => return false,
    };
    out.clear();
    out.extend_from_slice(&MACS);
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.extend_from_slice(payload);
    true
}

impl<R: Read> Capture<R> {
    /// The next record, `Ok(None)` for a record that cannot be replayed (skipped), `Err` when
    /// the file is damaged from here on.
    fn next(&mut self, buf: &mut Vec<u8>) -> Option<Result<Option<u64>, String>> {
        match self {
            Capture::Pcap { reader, link } => {
                let p = match reader.next_packet()? {
                    Ok(p) => p,
                    Err(e) => return Some(Err(e.to_string())),
                };
                let ts = p.timestamp.as_nanos() as u64;
                Some(Ok(to_ethernet(*link, &p.data, buf).then_some(ts)))
            }
            Capture::PcapNg { reader, raw } => loop {
                let block = match reader.next_block()? {
                    Ok(b) => b,
                    Err(e) => return Some(Err(e.to_string())),
                };
                // The block borrows the reader, which the interface lookup needs: copy the bytes out.
                let (iface, raw_ts) = match &block {
                    Block::EnhancedPacket(p) => (p.interface_id, p.timestamp.as_nanos() as u64),
                    Block::SimplePacket(_) => (0, 0),
                    _ => continue,
                };
                raw.clear();
                match &block {
                    Block::EnhancedPacket(p) => raw.extend_from_slice(&p.data),
                    Block::SimplePacket(p) => raw.extend_from_slice(&p.data),
                    _ => {}
                }
                drop(block);
                let Some(idb) = reader.interfaces().get(iface as usize) else {
                    return Some(Ok(None));
                };
                // pcap-file returns the raw timestamp units as nanoseconds: scale by if_tsresol
                // (default 10^-6 s).
                let mut units_per_sec: u64 = 1_000_000;
                for o in &idb.options {
                    if let InterfaceDescriptionOption::IfTsResol(r) = o {
                        units_per_sec = if r & 0x80 != 0 {
                            1u64.checked_shl((r & 0x7f) as u32).unwrap_or(1_000_000_000)
                        } else {
                            10u64.checked_pow(*r as u32).unwrap_or(1_000_000_000)
                        };
                    }
                }
                let ts = (raw_ts as u128 * 1_000_000_000 / units_per_sec.max(1) as u128) as u64;
                let link = idb.linktype;
                return Some(Ok(to_ethernet(link, raw, buf).then_some(ts)));
            },
        }
    }
}

/// A pcap written as the replay goes (Ethernet, nanosecond timestamps).
struct Sink {
    writer: PcapWriter<BufWriter<File>>,
}

impl Sink {
    fn create(path: &Path) -> Result<Sink, CheckError> {
        let io = |err| CheckError::Io { path: path.to_owned(), err };
        let f = File::create(path).map_err(io)?;
        let header = PcapHeader { datalink: DataLink::ETHERNET, ts_resolution: TsResolution::NanoSecond, ..Default::default() };
        let writer = PcapWriter::with_header(BufWriter::new(f), header)
            .map_err(|e| CheckError::Format { path: path.to_owned(), message: e.to_string() })?;
        Ok(Sink { writer })
    }

    fn write(&mut self, ts_ns: u64, frame: &[u8]) -> std::io::Result<()> {
        let p = PcapPacket::new(std::time::Duration::from_nanos(ts_ns), frame.len() as u32, frame);
        self.writer.write_packet(&p).map(|_| ()).map_err(std::io::Error::other)
    }
}

fn method_name(s: &SipSummary<'_>) -> String {
    match (s.method, s.method_bytes) {
        (Some(Method::Other), Some(b)) | (None, Some(b)) => String::from_utf8_lossy(b).into_owned(),
        (Some(m), _) => m.as_str().to_string(),
        (None, None) => "?".into(),
    }
}

/// The replay state: engine, sinks, held fragments, tallies.
struct Replay<'o> {
    opts: &'o CheckOptions,
    out: &'o mut dyn Write,
    passed: Option<Sink>,
    dropped: Option<Sink>,
    /// Fragments waiting for their datagram's verdict, kept only when a sink needs them.
    held: HashMap<FrameId, (u64, Vec<u8>)>,
    summary: Summary,
    first_ts: Option<u64>,
    last_ts: u64,
    rules: Arc<RuleSet>,
}

impl Replay<'_> {
    fn emit_frames(&mut self, verdict: Verdict, frames: &[FrameId], current: FrameId, ts: u64, frame: &[u8]) -> std::io::Result<()> {
        *self.summary.frame_verdicts.entry(verdict.action.name().into()).or_default() += frames.len() as u64;
        let cause = self.cause_name(verdict);
        *self.summary.frame_causes.entry(cause).or_default() += frames.len() as u64;
        let mut sink = match verdict.action {
            Action::Forward => self.passed.as_mut(),
            Action::Drop | Action::Reject => self.dropped.as_mut(),
        };
        for &id in frames {
            let kept = self.held.remove(&id);
            if let Some(sink) = sink.as_deref_mut() {
                if id == current {
                    sink.write(ts, frame)?;
                } else if let Some((t, f)) = &kept {
                    sink.write(*t, f)?;
                }
            }
        }
        Ok(())
    }

    fn cause_name(&self, v: Verdict) -> String {
        match v.cause {
            Cause::Rule(i) => format!("rule:{}", self.rules.rules.get(i as usize).map_or("?", |r| r.id.as_str())),
            c => c.name(),
        }
    }

    fn emit_message(&mut self, ts: u64, verdict: Verdict, s: &SipSummary<'_>, fired: &[Fired]) -> std::io::Result<()> {
        *self.summary.message_verdicts.entry(verdict.action.name().into()).or_default() += 1;
        let rules = self.rules.clone();
        let rule = match verdict.cause {
            Cause::Rule(i) => rules.rules.get(i as usize).map(|r| r.id.as_str()),
            _ => None,
        };
        if let Some(id) = rule {
            *self.summary.rule_decisions.entry(id.to_string()).or_default() += 1;
        }
        let mut tags: Vec<&str> = vec![];
        for f in fired {
            if let Some(t) = rules.rules.get(f.rule as usize).and_then(|r| r.tag.as_deref()) {
                if !tags.contains(&t) {
                    tags.push(t);
                }
            }
        }
        let fired: Vec<String> = fired
            .iter()
            .filter_map(|f| rules.rules.get(f.rule as usize).map(|r| if f.monitor { format!("{} (monitor)", r.id) } else { r.id.clone() }))
            .filter(|id| !rules.rules.iter().any(|r| r.is_definition && *id == r.id))
            .collect();
        let reasons: Vec<&'static str> = s.reasons.iter().map(|r| r.name()).collect();
        let call_id = s.call_id.map(|c| String::from_utf8_lossy(c).into_owned());
        if self.opts.json {
            let line = MessageLine {
                ts: ts as f64 / 1e9,
                src: s.src.to_string(),
                dst: s.dst.to_string(),
                transport: s.transport.name(),
                method: s.status.is_none().then(|| method_name(s)),
                status: s.status,
                call_id,
                verdict: verdict.action.name(),
                cause: self.cause_name(verdict),
                reasons,
                rule,
                fired,
                tags,
            };
            serde_json::to_writer(&mut *self.out, &line)?;
            writeln!(self.out)?;
        } else if self.opts.verbose && (!self.opts.only_fired || rule.is_some() || !fired.is_empty()) {
            let what = match s.status {
                Some(code) => code.to_string(),
                None => method_name(s),
            };
            let rel = ts.saturating_sub(self.first_ts.unwrap_or(ts)) as f64 / 1e9;
            write!(
                self.out,
                "{rel:12.6} {} {} -> {} {:<9} {:<6} call-id={}",
                s.transport.name(),
                s.src,
                s.dst,
                what,
                verdict.action.name(),
                call_id.as_deref().unwrap_or("-"),
            )?;
            if !reasons.is_empty() {
                write!(self.out, " reasons={}", reasons.join(","))?;
            }
            if let Some(r) = rule {
                write!(self.out, " rule={r}")?;
            }
            if !fired.is_empty() && (fired.len() > 1 || rule.is_none()) {
                write!(self.out, " fired={}", fired.join(","))?;
            }
            if !tags.is_empty() {
                write!(self.out, " tags={}", tags.join(","))?;
            }
            if verdict.cause == Cause::Banned {
                write!(self.out, " banned")?;
            }
            writeln!(self.out)?;
        }
        Ok(())
    }
}

/// Replays `path` through a fresh engine built from `cfg`; writes message lines to `out` and
/// progress to `progress`; returns the summary (the caller prints it).
pub fn run(
    path: &Path,
    cfg: &Config,
    opts: &CheckOptions,
    out: &mut dyn Write,
    progress: &mut dyn Write,
) -> Result<Summary, CheckError> {
    let io = |err| CheckError::Io { path: path.to_owned(), err };
    let file = File::open(path).map_err(io)?;
    let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let read = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let mut br = BufReader::with_capacity(1 << 16, Counting { inner: file, read: read.clone() });
    let magic = br.fill_buf().map_err(io)?.get(..4).map(|m| [m[0], m[1], m[2], m[3]]);
    let fmt_err = |message: String| CheckError::Format { path: path.to_owned(), message };
    let (mut cap, format) = match magic {
        Some([0x0a, 0x0d, 0x0d, 0x0a]) => {
            (Capture::PcapNg { reader: PcapNgReader::new(br).map_err(|e| fmt_err(e.to_string()))?, raw: Vec::new() }, "pcapng")
        }
        Some(_) => {
            let reader = PcapReader::new(br).map_err(|e| fmt_err(e.to_string()))?;
            let link = reader.header().datalink;
            (Capture::Pcap { reader, link }, "pcap")
        }
        None => return Err(fmt_err("file is shorter than any capture header".into())),
    };

    let rules = opts.rules.clone().unwrap_or_else(|| Arc::new(RuleSet::empty()));
    let hosts = Arc::new(HostTable::new(cfg.hosts.clone()));
    let mut engine = Engine::with_rules(cfg.engine.clone(), Keyer::random(), rules.clone(), hosts);
    let passed = opts.write_passed.as_deref().map(Sink::create).transpose()?;
    let dropped = opts.write_dropped.as_deref().map(Sink::create).transpose()?;
    let keep_held = passed.is_some() || dropped.is_some();
    let mut r = Replay {
        opts,
        out,
        passed,
        dropped,
        held: HashMap::new(),
        summary: Summary { file: path.display().to_string(), format, ..Default::default() },
        first_ts: None,
        last_ts: 0,
        rules,
    };
    let out_err = |err| CheckError::Io { path: PathBuf::from("<output>"), err };
    let started = Instant::now();
    let mut last_progress = started;
    let mut buf = Vec::with_capacity(2048);
    let mut abandoned = Vec::new();
    let mut id: FrameId = 0;
    while let Some(next) = cap.next(&mut buf) {
        let ts = match next {
            Ok(Some(ts)) => ts,
            Ok(None) => {
                r.summary.skipped_records += 1;
                continue;
            }
            Err(e) => {
                // A capture cut short (tcpdump killed mid-write) still replays what it holds.
                let _ = writeln!(progress, "secsip check: {}: stopped at a damaged record: {e}", path.display());
                r.summary.skipped_records += 1;
                break;
            }
        };
        id += 1;
        r.summary.frames += 1;
        r.first_ts.get_or_insert(ts);
        r.last_ts = r.last_ts.max(ts);
        match engine.handle(ts, &buf, id) {
            // One engine, never sharded: nothing to consult.
            Outcome::Held | Outcome::Consult(_) => {
                if keep_held {
                    r.held.insert(id, (ts, buf.clone()));
                }
            }
            Outcome::Judged(j) => {
                if let Some(s) = &j.sip {
                    r.emit_message(ts, j.verdict, s, j.fired).map_err(out_err)?;
                }
                r.emit_frames(j.verdict, j.frames, id, ts, &buf).map_err(out_err)?;
                if j.keep && keep_held {
                    r.held.insert(id, (ts, buf.clone()));
                }
            }
        }
        engine.drain_dropped(&mut abandoned);
        for (fid, v) in abandoned.drain(..) {
            r.emit_frames(v, &[fid], 0, ts, &[]).map_err(out_err)?;
        }
        if opts.progress && id % 4096 == 0 && last_progress.elapsed().as_secs_f64() >= 1.0 {
            last_progress = Instant::now();
            let done = read.get();
            let pct = if total_bytes > 0 { done as f64 * 100.0 / total_bytes as f64 } else { 0.0 };
            let _ = writeln!(
                progress,
                "secsip check: {} frames, {:.1} of {:.1} MiB ({pct:.0}%), {:.0} frames/s",
                r.summary.frames,
                done as f64 / 1048576.0,
                total_bytes as f64 / 1048576.0,
                r.summary.frames as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    // Fragments still waiting at the end of the capture never completed: they time out.
    engine.tick(r.last_ts.saturating_add(3_600_000_000_000));
    engine.drain_dropped(&mut abandoned);
    for (fid, v) in abandoned.drain(..) {
        r.emit_frames(v, &[fid], 0, r.last_ts, &[]).map_err(out_err)?;
    }
    finish_summary(&mut r.summary, &engine, r.first_ts.unwrap_or(0), r.last_ts);
    for s in [r.passed.take(), r.dropped.take()].into_iter().flatten() {
        s.writer.into_writer().flush().map_err(out_err)?;
    }
    Ok(r.summary)
}

fn finish_summary(s: &mut Summary, engine: &Engine, first: u64, last: u64) {
    let st = engine.stats();
    let state = engine.state_stats();
    s.capture_seconds = last.saturating_sub(first) as f64 / 1e9;
    s.sip_messages = st.sip_messages;
    for name in [
        "INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "INFO", "PRACK", "SUBSCRIBE", "NOTIFY", "UPDATE", "MESSAGE", "REFER",
        "PUBLISH",
    ] {
        let m = Method::parse(name.as_bytes());
        let n = st.requests[(m as usize).min(31)];
        if n > 0 {
            s.requests.insert(name.into(), n);
        }
    }
    let other = st.requests[(Method::Other as usize).min(31)];
    if other > 0 {
        s.requests.insert("OTHER".into(), other);
    }
    for (class, &n) in st.responses.iter().enumerate() {
        if n > 0 {
            let k = if class == 0 { "other".to_string() } else { format!("{class}xx") };
            s.responses.insert(k, n);
        }
    }
    s.dialogs = state.dialogs;
    s.dialogs_confirmed = state.dialogs_confirmed;
    s.dialogs_terminated = state.dialogs_terminated;
    s.transactions = state.transactions;
    s.retransmissions = state.retransmissions;
    s.stray_responses = state.stray_responses;
    s.unknown_dialog_requests = state.unknown_dialog_requests;
    s.malformed = st.malformed;
    for (i, &n) in st.malformed_by_reason.iter().enumerate() {
        if n > 0 {
            s.malformed_by_reason.insert(Reason::ALL[i].name().into(), n);
        }
    }
    s.reassembled = st.reassembled;
    s.evictions.insert("transactions".into(), state.transaction_table.evicted);
    s.evictions.insert("dialogs".into(), state.dialog_table.evicted);
    let rs = engine.rules();
    s.rules_loaded = rs.rules.iter().filter(|r| !r.is_definition).count();
    for (i, &n) in engine.rule_hits().iter().enumerate() {
        if n > 0 && !rs.rules[i].is_definition {
            s.rule_hits.insert(rs.rules[i].id.clone(), n);
        }
    }
}

fn row(out: &mut dyn Write, label: &str, map: &BTreeMap<String, u64>) -> std::io::Result<()> {
    if map.is_empty() {
        return Ok(());
    }
    let items: Vec<String> = map.iter().map(|(k, v)| format!("{k} {v}")).collect();
    writeln!(out, "  {label:<24}{}", items.join("  "))
}

/// Prints the summary as a table for people.
pub fn print_summary(s: &Summary, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "secsip check: {} ({}), {} frames over {:.3} s", s.file, s.format, s.frames, s.capture_seconds)?;
    let req: u64 = s.requests.values().sum();
    let resp: u64 = s.responses.values().sum();
    writeln!(out, "  {:<24}{} ({req} requests, {resp} responses)", "SIP messages", s.sip_messages)?;
    row(out, "requests", &s.requests)?;
    row(out, "responses", &s.responses)?;
    writeln!(
        out,
        "  {:<24}{} created, {} confirmed, {} ended",
        "dialogs", s.dialogs, s.dialogs_confirmed, s.dialogs_terminated
    )?;
    writeln!(
        out,
        "  {:<24}{} ({} retransmissions, {} stray responses)",
        "transactions", s.transactions, s.retransmissions, s.stray_responses
    )?;
    if s.unknown_dialog_requests > 0 {
        writeln!(out, "  {:<24}{}", "unknown-dialog requests", s.unknown_dialog_requests)?;
    }
    writeln!(out, "  {:<24}{}", "malformed messages", s.malformed)?;
    row(out, "malformed by reason", &s.malformed_by_reason)?;
    row(out, "message verdicts", &s.message_verdicts)?;
    row(out, "frame verdicts", &s.frame_verdicts)?;
    row(out, "frames by cause", &s.frame_causes)?;
    if s.reassembled > 0 {
        writeln!(out, "  {:<24}{}", "datagrams reassembled", s.reassembled)?;
    }
    if s.rules_loaded > 0 {
        writeln!(out, "  {:<24}{} loaded, {} fired", "rules", s.rules_loaded, s.rule_hits.len())?;
        for (id, n) in &s.rule_hits {
            let decided = s.rule_decisions.get(id).copied().unwrap_or(0);
            writeln!(out, "    {id:<40} fired {n:>8}  decided {decided:>8}")?;
        }
    }
    let ev: u64 = s.evictions.values().sum();
    if ev > 0 {
        row(out, "table evictions", &s.evictions)?;
    }
    if s.skipped_records > 0 {
        writeln!(out, "  {:<24}{} (unsupported link type or damaged)", "skipped records", s.skipped_records)?;
    }
    Ok(())
}
