//! The engine side of the data path: one [`Engine`] plus what the wire adds to it — frames
//! held while their datagram is incomplete, reject responses written into the request's own
//! buffer, the rule set picked up from the reload slot once per batch, and counters.
//!
//! The same `Judge` runs on an engine thread (sharded mode) or inside a worker
//! (run-to-completion); it never touches a socket, it hands each frame back with what to do.

use super::consult::{Cross, Peers};
use super::xsk::Buf;
use crate::stream::ResetPoint;
use crate::engine::{Engine, Outcome};
use crate::rules::RuleSet;
use crate::verdict::{Action, Cause, Verdict};
use crate::wire::reasm::FrameId;
use afxdp::buf::Buf as _;
use arc_swap::ArcSwap;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// What the worker does with a frame an engine handed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Out {
    /// Send it out of the other NIC.
    Forward,
    /// Put it back in the free pool (the reason is already counted).
    Drop,
    /// The buffer now holds a response frame: send it out of the NIC it came in on.
    Inject,
    /// The buffer holds two frames back to back: `[0, at)` goes out of the NIC it came in
    /// on, `[at, len)` out of the other, copied by the worker into a free frame (both RSTs of
    /// a refused connection when it held only one frame to carry them).
    Split {
        /// Where the second frame starts.
        at: u16,
    },
}

/// A frame and its fate, from engine to worker.
pub struct Done {
    /// The frame.
    pub buf: Buf,
    /// What to do.
    pub out: Out,
}

/// Causes in counter order (see [`cause_index`]).
pub const CAUSES: [&str; 11] = ["not_sip", "valid", "malformed", "stream", "decode", "fragment", "rule", "banned", "keepalive", "retransmission", "tls"];
/// Actions in counter order.
pub const ACTIONS: [&str; 3] = ["accept", "drop", "reject"];

fn cause_index(c: &Cause) -> usize {
    match c {
        Cause::NotSip => 0,
        Cause::Valid => 1,
        Cause::Malformed => 2,
        Cause::Stream(_) => 3,
        Cause::Decode(_) => 4,
        Cause::Fragment(_) => 5,
        Cause::Rule(_) => 6,
        Cause::Banned => 7,
        Cause::Keepalive => 8,
        Cause::Retransmission => 9,
        Cause::TlsUninspected | Cause::Tls(_) => 10,
    }
}

fn action_index(a: Action) -> usize {
    match a {
        Action::Forward => 0,
        Action::Drop => 1,
        Action::Reject => 2,
    }
}

/// Counters of one engine that the `Engine` itself does not keep.
#[derive(Clone, Debug, Default, Serialize)]
pub struct JudgeCounters {
    /// Messages (or frames without a message) by cause, then action; see [`CAUSES`], [`ACTIONS`].
    pub verdicts: [[u64; 3]; 11],
    /// Frames whose datagram was abandoned while held (reassembly failure or eviction).
    pub held_dropped: u64,
    /// Held frames dropped because the hold cap was reached (oldest first).
    pub held_evicted: u64,
    /// Reject responses written for injection.
    pub injected: u64,
    /// TCP RSTs written (two per reset connection when it holds a spare frame, else one).
    pub tcp_rsts: u64,
    /// Rejects that could not be answered on the wire, by reason.
    pub inject_failed: BTreeMap<&'static str, u64>,
    /// Rule-set swaps this engine picked up.
    pub rule_swaps: u64,
    /// Security events queued for the log.
    pub events_sent: u64,
    /// Events the rate limit suppressed.
    pub events_suppressed: u64,
    /// Events lost because the writer's queue was full.
    pub events_lost: u64,
    /// TCP messages sent to the engine owning their Call-ID for judging.
    pub consults_sent: u64,
    /// Answers to another engine's consult that its inbox refused (cannot happen within
    /// the bounds; its connection then times out).
    pub consult_answers_lost: u64,
}

/// A point-in-time copy of an engine's counters, for `secsip stats`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EngineSnapshot {
    /// Engine index.
    pub engine: usize,
    /// Frames judged.
    pub frames: u64,
    /// The engine's own counters.
    pub stats: crate::engine::EngineStats,
    /// Transactions and dialogs.
    pub state: crate::engine::state::StateStats,
    /// Wire-side counters.
    pub judge: JudgeCounters,
    /// Hits per rule id (monitor-mode rules included).
    pub rule_hits: BTreeMap<String, u64>,
    /// Frames held for reassembly now.
    pub held: usize,
    /// The freshness generation this copy answers.
    pub generation: u64,
    /// Heaviest sources of dropped (or rejected) messages, most drops first (see [`TopDrops`]).
    pub top_drops: Vec<DropSource>,
}

/// A source address and the messages of it this engine dropped (an upper bound: see [`TopDrops`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DropSource {
    /// Source IP address.
    pub ip: std::net::IpAddr,
    /// Dropped messages.
    pub drops: u64,
}

/// Sources tracked per engine by [`TopDrops`]: a scrape shows the top 20, and space-saving
/// needs a few times more slots than the answers it gives for them to be accurate.
pub const TOP_DROPS: usize = 64;

/// A bounded top-K of source addresses by dropped messages (Metwally et al.'s space-saving):
/// a source not tracked takes the slot of the smallest count and inherits that count plus
/// one, so a count is an upper bound that exceeds the truth by at most the count it took
/// over, and any source with more than `drops / K` drops is guaranteed to be tracked.
///
/// Fixed arrays, no allocation ever; only touched when a message is dropped. Lookup and
/// eviction are linear scans of 64 16-byte keys (two cache lines per 8 keys): cheaper than
/// hashing at this size, and a flood from one source hits the first slots it occupies.
#[derive(Clone, Debug)]
pub struct TopDrops {
    keys: [u128; TOP_DROPS],
    counts: [u64; TOP_DROPS],
    len: usize,
}

impl Default for TopDrops {
    fn default() -> TopDrops {
        TopDrops { keys: [0; TOP_DROPS], counts: [0; TOP_DROPS], len: 0 }
    }
}

impl TopDrops {
    /// Counts one dropped message from `ip`.
    pub fn add(&mut self, ip: std::net::IpAddr) {
        let key = match ip {
            std::net::IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
            std::net::IpAddr::V6(a) => u128::from(a),
        };
        if let Some(i) = self.keys[..self.len].iter().position(|&k| k == key) {
            self.counts[i] += 1;
        } else if self.len < TOP_DROPS {
            self.keys[self.len] = key;
            self.counts[self.len] = 1;
            self.len += 1;
        } else {
            let (i, &min) = self.counts.iter().enumerate().min_by_key(|(_, &c)| c).expect("TOP_DROPS > 0");
            self.keys[i] = key;
            self.counts[i] = min + 1;
        }
    }

    /// The tracked sources, most drops first (allocates: for snapshots, not the data path).
    pub fn list(&self) -> Vec<DropSource> {
        let mut v: Vec<DropSource> = self.keys[..self.len]
            .iter()
            .zip(&self.counts)
            .map(|(&k, &drops)| {
                let a = std::net::Ipv6Addr::from(k);
                DropSource { ip: a.to_ipv4_mapped().map_or(std::net::IpAddr::V6(a), std::net::IpAddr::V4), drops }
            })
            .collect();
        v.sort_by(|a, b| b.drops.cmp(&a.drops).then(a.ip.cmp(&b.ip)));
        v
    }
}

/// Where an engine sends its security events, and how many it may send.
pub struct EventSink {
    /// The writer's queue.
    pub sender: crate::eve::EventSender,
    /// This engine's share of the log's rate.
    pub limiter: crate::eve::RateLimiter,
    /// NIC names, outside then inside (`in_iface`).
    pub ifaces: [String; 2],
    /// Call-ID hash for `flow_id` (the shard's keyer).
    pub keyer: crate::hash::Keyer,
    /// Events the queue refused (full).
    pub lost: u64,
    /// Events sent.
    pub sent: u64,
}

impl EventSink {
    /// Writes the event a judgement calls for, if any and if the rate allows.
    fn judged(&mut self, now: u64, rules: &RuleSet, parser: &mut crate::sip::Parser, frame: &[u8], nic: u8, j: &crate::engine::Judgement<'_>) {
        use crate::eve::{Alert, Event, EventType};
        let v = j.verdict;
        let rule_of = |i: u32| rules.rules.get(i as usize);
        // Which rule to name: the one that decided, else the first that asked to be logged
        // (log = true, or a monitor-mode rule that would have acted).
        let (event_type, rule) = match (v.action, v.cause) {
            (Action::Drop, Cause::Rule(i)) => (EventType::Drop, rule_of(i)),
            (Action::Reject, Cause::Rule(i)) => (EventType::Reject, rule_of(i)),
            (Action::Drop, _) => (EventType::Drop, None),
            (Action::Reject, _) => (EventType::Reject, None),
            (Action::Forward, _) => {
                let logged = j.fired.iter().filter_map(|f| rule_of(f.rule)).find(|r| {
                    r.log || (r.monitor && !matches!(r.action, crate::rules::model::Action::Accept))
                });
                match logged {
                    Some(r) => (EventType::Alert, Some(r)),
                    None => return,
                }
            }
        };
        if v.cause == Cause::NotSip && v.action == Action::Forward {
            return;
        }
        if !self.limiter.admit(now) {
            return;
        }
        let Some(sip) = j.sip else {
            if let Cause::Decode(_) = v.cause {
                self.undecodable(frame, nic, v);
            }
            return;
        };
        let alert = rule.map(|r| Alert {
            action: if event_type == EventType::Alert { Alert::ALLOWED } else { Alert::BLOCKED },
            signature_id: rules.rules.iter().position(|x| std::ptr::eq(x, r)).map_or(0, |i| i as u32 + 1),
            signature: r.id.clone(),
            category: r.tag.clone().unwrap_or_else(|| r.file.file_stem().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()),
            severity: r.severity,
        });
        let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        let mut info = crate::eve::SipInfo {
            method: text(sip.method_bytes),
            call_id: text(sip.call_id),
            code: sip.status,
            ..Default::default()
        };
        // The rest is read again from the message, only for the events that get written.
        // A TCP segment need not hold the message (nor only it): read nothing more from it.
        if j.frames.len() == 1 && sip.transport == crate::wire::Transport::Udp {
            if let Ok(crate::wire::Frame::Ip(d)) = crate::wire::decode(frame) {
                let m = parser.parse(d.payload);
                info.uri = text(m.request_uri_bytes());
                info.from = text(m.header(crate::sip::HeaderName::From));
                info.to = text(m.header(crate::sip::HeaderName::To));
                info.user_agent = m.user_agent().map(|u| String::from_utf8_lossy(u).into_owned());
                info.reason = m.reason_phrase().map(|r| String::from_utf8_lossy(r).into_owned());
            }
        }
        let flow_id = sip.call_id.map_or(0, |c| self.keyer.call_id(c) as u64);
        let ev = Event {
            timestamp_ns: wall_ns(),
            event_type,
            src: sip.src,
            dst: sip.dst,
            proto: if sip.transport.proto() == 6 { "TCP" } else { "UDP" },
            in_iface: self.ifaces[nic as usize & 1].clone(),
            flow_id,
            alert,
            sip: Some(info),
            reason: (rule.is_none()).then(|| v.cause.name()),
        };
        if self.sender.try_send(ev) {
            self.sent += 1;
        } else {
            self.lost += 1;
        }
    }
}

impl EventSink {
    /// A drop event for a TCP message no engine could be asked about (its connection reset).
    fn consult_refused(&mut self, src: std::net::SocketAddr, dst: std::net::SocketAddr, nic: u8) {
        let ev = crate::eve::Event {
            timestamp_ns: wall_ns(),
            event_type: crate::eve::EventType::Drop,
            src,
            dst,
            proto: "TCP",
            in_iface: self.ifaces[nic as usize & 1].clone(),
            flow_id: 0,
            alert: None,
            sip: None,
            reason: Some(Cause::Stream(crate::stream::StreamError::ConsultRefused).name()),
        };
        if self.sender.try_send(ev) {
            self.sent += 1;
        } else {
            self.lost += 1;
        }
    }

    /// A drop event for a frame the engine's decoder refused (beyond its limits, ESP, ...),
    /// when the widest decoder still finds its addresses; without them it is only counted.
    fn undecodable(&mut self, frame: &[u8], nic: u8, v: Verdict) {
        let Ok(crate::wire::Frame::Ip(d)) = crate::wire::decode(frame) else { return };
        let ev = crate::eve::Event {
            timestamp_ns: wall_ns(),
            event_type: crate::eve::EventType::Drop,
            src: std::net::SocketAddr::new(d.src, d.src_port),
            dst: std::net::SocketAddr::new(d.dst, d.dst_port),
            proto: if d.transport == crate::wire::Transport::Tcp { "TCP" } else { "UDP" },
            in_iface: self.ifaces[nic as usize & 1].clone(),
            flow_id: 0,
            alert: None,
            sip: None,
            reason: Some(v.cause.name()),
        };
        if self.sender.try_send(ev) {
            self.sent += 1;
        } else {
            self.lost += 1;
        }
    }
}

fn wall_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Frames held by an engine, with the worker each belongs to.
struct Held {
    buf: Buf,
    worker: u16,
}

/// One engine and its wire-side state.
pub struct Judge {
    index: usize,
    engine: Engine,
    rules: Arc<ArcSwap<RuleSet>>,
    next_id: FrameId,
    held: hashbrown::HashMap<FrameId, Held>,
    held_order: VecDeque<FrameId>,
    max_held: usize,
    dropped: Vec<(FrameId, Verdict)>,
    scratch: Vec<u8>,
    ids: Vec<FrameId>,
    counters: JudgeCounters,
    top_drops: TopDrops,
    /// Hits of the rules of earlier sets, by id, for the ids the running set still has: the
    /// engine's per-rule counters restart at every swap (API list edits swap often), but a
    /// rule's hit counter must keep growing (Prometheus counters, the web manager).
    carried_hits: std::collections::HashMap<String, u64>,
    events: Option<EventSink>,
    parser: crate::sip::Parser,
    /// The other engines, when there are several.
    peers: Option<Peers>,
}

impl Judge {
    /// `max_held` bounds the frames kept for incomplete datagrams (they are UMEM frames the
    /// workers cannot refill with while held).
    pub fn new(index: usize, engine: Engine, rules: Arc<ArcSwap<RuleSet>>, max_held: usize) -> Judge {
        let parser = crate::sip::Parser::new(engine.config().sip.clone());
        Judge {
            index,
            engine,
            rules,
            next_id: 1,
            held: hashbrown::HashMap::with_capacity(max_held),
            held_order: VecDeque::with_capacity(max_held),
            max_held,
            dropped: Vec::with_capacity(64),
            scratch: vec![0; 4096],
            ids: Vec::with_capacity(64),
            parser,
            events: None,
            peers: None,
            counters: JudgeCounters::default(),
            top_drops: TopDrops::default(),
            carried_hits: std::collections::HashMap::new(),
        }
    }

    /// Sends security events (drops, rejects, rules with `log = true`) to `sink`.
    pub fn with_events(mut self, sink: EventSink) -> Judge {
        self.events = Some(sink);
        self
    }

    /// Makes this judge one of several engines sharded by Call-ID: TCP messages whose Call-ID
    /// another engine owns are judged there (see [`super::consult`]).
    pub fn with_peers(mut self, peers: Peers, engines: usize) -> Judge {
        self.engine.set_shard(self.index, engines);
        self.peers = Some(peers);
        self
    }

    /// Picks up a rule set swapped in by a reload (once per batch: one atomic load).
    pub fn refresh_rules(&mut self) {
        let cur = self.rules.load();
        if !Arc::ptr_eq(&cur, self.engine.rules()) {
            // Bounded by the new set's rule count: ids it no longer has are forgotten.
            let mut totals = std::mem::take(&mut self.carried_hits);
            for (n, r) in self.engine.rule_hits().iter().zip(&self.engine.rules().rules) {
                *totals.entry(r.id.clone()).or_default() += n;
            }
            self.carried_hits = cur.rules.iter().filter_map(|r| totals.get(&r.id).map(|&n| (r.id.clone(), n))).collect();
            self.engine.set_rules(Arc::clone(&cur));
            self.counters.rule_swaps += 1;
        }
    }

    /// Judges `buf` (from `worker`) at `now`; every frame whose fate is now known goes to `out`
    /// with the worker it belongs to (a completed datagram releases its held fragments).
    pub fn judge(&mut self, now: u64, mut buf: Buf, worker: u16, out: &mut impl FnMut(u16, Done)) {
        buf.get_user_mut().engine = self.index as u16;
        let id = self.next_id;
        self.next_id += 1;
        let len = buf.get_len() as usize;
        let nic = buf.get_user().nic;
        let outcome = self.engine.handle(now, &buf.get_data()[..len], id);
        match outcome {
            Outcome::Held => self.hold(id, buf, worker, out),
            Outcome::Consult(c) => {
                let sent = self.peers.as_mut().is_some_and(|p| p.ask(c.engine, c.ticket, c.src, c.dst, nic, c.msg));
                let ticket = c.ticket;
                self.hold(id, buf, worker, out);
                self.after_ask(now, sent, ticket, nic, out);
            }
            Outcome::Judged(j) => {
                let v = j.verdict;
                count(&mut self.counters, &mut self.top_drops, &j);
                if let Some(ev) = self.events.as_mut() {
                    let frame = &buf.get_data()[..len];
                    ev.judged(now, &self.rules.load(), &mut self.parser, frame, nic, &j);
                }
                let mut reply = None;
                if v.action == Action::Reject {
                    if let Some(resp) = j.response {
                        let cap = (buf.get_capacity() as usize).min(self.scratch.len());
                        match crate::wire::inject::build_reply(&buf.get_data()[..len], resp, &mut self.scratch[..cap]) {
                            Ok(n) => reply = Some(n),
                            Err(e) => *self.counters.inject_failed.entry(e.name()).or_default() += 1,
                        }
                    }
                }
                // The verdict borrows the frame; copy the ids out so the frames can move.
                self.ids.clear();
                self.ids.extend_from_slice(j.frames);
                let (keep, reset) = (j.keep, j.reset);
                let mut rsts = [None, None];
                if let Some(r) = reset {
                    rsts = self.build_resets(&buf.get_data()[..len], r);
                }
                self.settle(v, Some((id, buf, worker, reply, keep)), rsts, nic, out);
            }
        }
    }

    /// Hands out the frames in `self.ids` with verdict `v`: the frame just handled (`this`,
    /// with its reject answer and whether it stays held) from the caller, the others from the
    /// held set; the first two spare ones carry `rsts`.
    fn settle(&mut self, v: Verdict, this: Option<(FrameId, Buf, u16, Option<usize>, bool)>, rsts: [Option<(Vec<u8>, bool)>; 2], nic: u8, out: &mut impl FnMut(u16, Done)) {
        let (id, mut this, worker, mut reply, keep) = match this {
            Some((id, b, w, r, k)) => (Some(id), Some(b), w, r, k),
            None => (None, None, 0, None, false),
        };
        let mut spare = Vec::new();
        for i in 0..self.ids.len() {
            let fid = self.ids[i];
            let (b, w) = if Some(fid) == id {
                let Some(b) = this.take() else { continue };
                (b, worker)
            } else if let Some(h) = self.held.remove(&fid) {
                (h.buf, h.worker)
            } else {
                continue; // evicted earlier and already dropped
            };
            if Some(fid) == id {
                if let Some(n) = reply.take() {
                    // The request is dropped anyway: its buffer carries the answer.
                    let mut b = b;
                    b.get_data_mut()[..n].copy_from_slice(&self.scratch[..n]);
                    b.set_len(n as u16);
                    self.counters.injected += 1;
                    out(w, Done { buf: b, out: Out::Inject });
                    continue;
                }
            }
            if rsts.iter().any(Option::is_some) && spare.len() < 2 {
                spare.push((b, w));
            } else {
                out(w, Done { buf: b, out: fate(v.action) });
            }
        }
        self.send_resets(rsts, nic, spare, out);
        if let (Some(b), Some(id)) = (this.take(), id) {
            if keep {
                self.hold(id, b, worker, out);
            } else {
                // A verdict that does not list the frame just handled must still not leak it.
                out(worker, Done { buf: b, out: Out::Drop });
            }
        }
        self.drain(out);
        if self.held_order.len() > self.held.len() * 2 + 64 {
            let held = &self.held;
            self.held_order.retain(|id| held.contains_key(id));
        }
    }

    /// After a consult was asked (`sent`) or could not be (no buffer, the owner's inbox
    /// full): a refusal drops the message and resets its connection, counted and logged.
    fn after_ask(&mut self, now: u64, sent: bool, ticket: crate::engine::ConsultTicket, nic: u8, out: &mut impl FnMut(u16, Done)) {
        if sent {
            self.counters.consults_sent += 1;
            return;
        }
        if let Some(ev) = self.events.as_mut() {
            let (src, dst) = ticket.ends();
            ev.consult_refused(src, dst, nic);
        }
        self.resume(now, Resume::Refuse(ticket), nic, out);
    }

    /// Takes in a message from another engine: an ask is judged here and answered, an
    /// answer resumes the connection that waits for it.
    pub fn cross(&mut self, now: u64, msg: Cross, out: &mut impl FnMut(u16, Done)) {
        match msg {
            Cross::Ask(ask) => {
                let j = self.engine.judge_consulted(now, ask.src, ask.dst, ask.ticket.transport(), &ask.msg);
                let v = j.verdict;
                count(&mut self.counters, &mut self.top_drops, &j);
                if let Some(ev) = self.events.as_mut() {
                    ev.judged(now, &self.rules.load(), &mut self.parser, &[], ask.nic, &j);
                }
                if !self.peers.as_mut().is_some_and(|p| p.answer(ask, v)) {
                    self.counters.consult_answers_lost += 1;
                }
            }
            Cross::Answer { ticket, verdict, nic, msg } => {
                if let Some(p) = self.peers.as_mut() {
                    p.give_back(msg);
                }
                self.resume(now, Resume::Answer(ticket, verdict), nic, out);
            }
        }
    }

    /// Carries out what resuming a connection gave: more frames released or reset, or the
    /// next message consulted on. `nic` is the ingress of the connection's last segment when
    /// the message's ingress NIC (a reset takes it from the held frames).
    fn resume(&mut self, now: u64, how: Resume, nic: u8, out: &mut impl FnMut(u16, Done)) {
        let outcome = match how {
            Resume::Answer(t, v) => self.engine.resume(now, t, v),
            Resume::Refuse(t) => self.engine.refuse(now, t),
        };
        let (sent, ticket, nic) = match outcome {
            Outcome::Held => return self.drain(out),
            Outcome::Consult(c) => {
                (self.peers.as_mut().is_some_and(|p| p.ask(c.engine, c.ticket, c.src, c.dst, nic, c.msg)), c.ticket, nic)
            }
            Outcome::Judged(j) => {
                let v = j.verdict;
                // The owner counted (and logged) its verdict on the consulted message; what
                // is new here is a message judged locally after it, or a refusal.
                if j.sip.is_some() || v.cause == Cause::Stream(crate::stream::StreamError::ConsultRefused) {
                    count(&mut self.counters, &mut self.top_drops, &j);
                }
                if let (Some(ev), true) = (self.events.as_mut(), j.sip.is_some()) {
                    ev.judged(now, &self.rules.load(), &mut self.parser, &[], nic, &j);
                }
                self.ids.clear();
                self.ids.extend_from_slice(j.frames);
                let reset = j.reset;
                // The frames of the consulted direction come first: RSTs are built from one.
                let first = self.ids.first().and_then(|f| self.held.get(f));
                let nic = first.map_or(nic, |h| h.buf.get_user().nic);
                let mut rsts = [None, None];
                if let (Some(r), Some(h)) = (reset, first) {
                    let frame = h.buf.get_data()[..h.buf.get_len() as usize].to_vec();
                    rsts = self.build_resets(&frame, r);
                }
                return self.settle(v, None, rsts, nic, out);
            }
        };
        self.after_ask(now, sent, ticket, nic, out);
    }

    /// Keeps frame `id` until the engine's verdict on it, within `max_held` (oldest dropped).
    fn hold(&mut self, id: FrameId, buf: Buf, worker: u16, out: &mut impl FnMut(u16, Done)) {
        if self.held.len() >= self.max_held {
            if let Some(old) = self.held_order.pop_front() {
                if let Some(h) = self.held.remove(&old) {
                    self.counters.held_evicted += 1;
                    out(h.worker, Done { buf: h.buf, out: Out::Drop });
                }
            }
        }
        self.held.insert(id, Held { buf, worker });
        self.held_order.push_back(id);
    }

    /// RST frames of a refused TCP connection, built from its last segment `frame`: one on to
    /// the segment's receiver (index 0) and one back to its sender (index 1), each with its length.
    fn build_resets(&mut self, frame: &[u8], r: ResetPoint) -> [Option<(Vec<u8>, bool)>; 2] {
        let mut rst = [None, None];
        let ack = r.to_sender.unwrap_or(0);
        let targets = [(false, Some(r.to_receiver), ack), (true, r.to_sender, r.to_receiver)];
        for (slot, (back, seq, ack)) in rst.iter_mut().zip(targets) {
            let Some(seq) = seq else { continue };
            match crate::wire::inject::build_tcp_reset(frame, back, seq, ack, &mut self.scratch) {
                Ok(n) => *slot = Some((self.scratch[..n].to_vec(), back)),
                Err(e) => *self.counters.inject_failed.entry(e.name()).or_default() += 1,
            }
        }
        rst
    }

    /// Writes the RSTs into spare frames of the refused connection: the receiver's first, as
    /// it is the protected side. A frame is sent out of the NIC toward its target whichever NIC
    /// it came in on (`nic` is the refused segment's).
    fn send_resets(&mut self, rsts: [Option<(Vec<u8>, bool)>; 2], nic: u8, spare: Vec<(Buf, u16)>, out: &mut impl FnMut(u16, Done)) {
        if let ([Some(a), Some(b)], [_]) = (&rsts, spare.as_slice()) {
            let (buf, w) = spare.into_iter().next().expect("one spare frame");
            return self.send_both_resets(a, b, nic, buf, w, out);
        }
        let mut spare = spare.into_iter();
        for (bytes, back) in rsts.into_iter().flatten() {
            let Some((mut b, w)) = spare.next() else { break };
            if bytes.len() > b.get_capacity() as usize {
                out(w, Done { buf: b, out: Out::Drop });
                continue;
            }
            b.get_data_mut()[..bytes.len()].copy_from_slice(&bytes);
            b.set_len(bytes.len() as u16);
            // Inject leaves by the NIC the frame came in on, Forward by the other one.
            let toward_ingress = leaves_by_ingress(back, &b, nic);
            self.counters.tcp_rsts += 1;
            out(w, Done { buf: b, out: if toward_ingress { Out::Inject } else { Out::Forward } });
        }
        for (b, w) in spare {
            out(w, Done { buf: b, out: Out::Drop });
        }
    }

    /// Both RSTs in the one frame the connection left: the one toward the frame's ingress NIC
    /// first, the worker splits them ([`Out::Split`]).
    fn send_both_resets(&mut self, a: &(Vec<u8>, bool), b: &(Vec<u8>, bool), nic: u8, mut buf: Buf, w: u16, out: &mut impl FnMut(u16, Done)) {
        let (first, second) = if leaves_by_ingress(a.1, &buf, nic) { (a, b) } else { (b, a) };
        let (n1, n2) = (first.0.len(), second.0.len());
        if n1 + n2 > buf.get_capacity() as usize {
            out(w, Done { buf, out: Out::Drop });
            return;
        }
        let data = buf.get_data_mut();
        data[..n1].copy_from_slice(&first.0);
        data[n1..n1 + n2].copy_from_slice(&second.0);
        buf.set_len((n1 + n2) as u16);
        self.counters.tcp_rsts += 2;
        out(w, Done { buf, out: Out::Split { at: n1 as u16 } });
    }

    /// Advances timers (state expiry, fragment timeouts) and returns abandoned frames.
    pub fn tick(&mut self, now: u64, out: &mut impl FnMut(u16, Done)) {
        self.engine.tick(now);
        self.drain(out);
    }

    fn drain(&mut self, out: &mut impl FnMut(u16, Done)) {
        self.engine.drain_dropped(&mut self.dropped);
        for (fid, _) in self.dropped.drain(..) {
            if let Some(h) = self.held.remove(&fid) {
                self.counters.held_dropped += 1;
                out(h.worker, Done { buf: h.buf, out: Out::Drop });
            }
        }
    }

    /// Hands back every held frame as dropped (shutdown).
    pub fn release_all(&mut self, out: &mut impl FnMut(u16, Done)) {
        self.held_order.clear();
        for (_, h) in self.held.drain() {
            self.counters.held_dropped += 1;
            out(h.worker, Done { buf: h.buf, out: Out::Drop });
        }
    }

    /// Frames held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> EngineSnapshot {
        let rules = self.engine.rules();
        let rule_hits = self
            .engine
            .rule_hits()
            .iter()
            .zip(&rules.rules)
            .map(|(n, r)| (r.id.clone(), n + self.carried_hits.get(&r.id).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let mut judge = self.counters.clone();
        if let Some(e) = &self.events {
            judge.events_sent = e.sent;
            judge.events_suppressed = e.limiter.suppressed();
            judge.events_lost = e.lost;
        }
        EngineSnapshot {
            engine: self.index,
            frames: self.engine.stats().frames,
            stats: self.engine.stats().clone(),
            state: self.engine.state_stats(),
            judge,
            rule_hits,
            held: self.held.len(),
            generation: 0,
            top_drops: self.top_drops.list(),
        }
    }
}

/// Counts a judgement's verdict (and its source, when dropped).
fn count(counters: &mut JudgeCounters, top_drops: &mut TopDrops, j: &crate::engine::Judgement<'_>) {
    let v = j.verdict;
    counters.verdicts[cause_index(&v.cause)][action_index(v.action)] += 1;
    if v.action != Action::Forward {
        // Frames that never decoded to a message have no source to name.
        if let Some(sip) = &j.sip {
            top_drops.add(sip.src.ip());
        }
    }
}

/// How a waiting TCP connection goes on.
enum Resume {
    /// The owner's verdict came.
    Answer(crate::engine::ConsultTicket, Verdict),
    /// The consult could not be made.
    Refuse(crate::engine::ConsultTicket),
}

/// Whether an RST written into `buf` leaves by the NIC `buf` came in on: `back` RSTs go to
/// the refused segment's sender, which is behind that segment's NIC `nic`.
fn leaves_by_ingress(back: bool, buf: &Buf, nic: u8) -> bool {
    back == (buf.get_user().nic == nic)
}

fn fate(a: Action) -> Out {
    match a {
        Action::Forward => Out::Forward,
        Action::Drop | Action::Reject => Out::Drop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EngineConfig;
    use crate::hash::Keyer;
    use crate::hosttable::{HostLimits, HostTable};
    use crate::rules::compile::Source;
    use crate::wire::testutil::{fragment_v4, sip_fragments_v4, udp_v4};
    use crate::wire::Frame;
    use afxdp::mmap_area::{MmapArea, MmapAreaOptions};

    const REJECT_OPTIONS: &str = r#"
[[rule]]
id = "no-options"
when = 'sip.method == "OPTIONS"'
action = "reject"
status = 403
"#;

    fn judge(rules: &str, max_held: usize) -> Judge {
        let src = Source { path: "t.toml".into(), text: rules.into() };
        let rs = crate::rules::compile(&[src], std::path::Path::new("."), &Default::default()).unwrap();
        let rs = Arc::new(rs);
        let hosts = Arc::new(HostTable::new(HostLimits::default()));
        let mut cfg = EngineConfig::default();
        cfg.transactions.max_entries = 1024;
        cfg.transactions.max_bytes = 1 << 20;
        cfg.dialogs.max_entries = 1024;
        cfg.dialogs.max_bytes = 1 << 20;
        cfg.objects.max_bytes = 1 << 20;
        let engine = Engine::with_rules(cfg, Keyer::with_keys(1, 2), rs.clone(), hosts);
        Judge::new(3, engine, Arc::new(ArcSwap::new(rs)), max_held)
    }

    fn frames(n: usize) -> (Arc<MmapArea<'static, super::super::xsk::Meta>>, Vec<Buf>) {
        MmapArea::new(n, 2048, MmapAreaOptions { huge_tlb: false }).unwrap()
    }

    fn load(mut b: Buf, bytes: &[u8]) -> Buf {
        b.get_data_mut()[..bytes.len()].copy_from_slice(bytes);
        b.set_len(bytes.len() as u16);
        b
    }

    const OPTIONS: &[u8] = b"OPTIONS sip:b@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

    /// An OPTIONS large enough to need three 256-byte fragments.
    fn big_options(n: u16) -> Vec<u8> {
        let body = OPTIONS.strip_suffix(b"\r\n").unwrap();
        let mut m = body.to_vec();
        m.extend_from_slice(format!("Subject: {n} {}\r\n\r\n", "x".repeat(400)).as_bytes());
        m
    }

    /// A whole (unfragmented) Ethernet + IPv4 + UDP frame.
    fn frame_v4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        fragment_v4(src, dst, 1, &udp_v4(src, dst, sport, dport, payload), 1480).remove(0)
    }

    #[test]
    fn reject_turns_the_request_buffer_into_the_answer() {
        let (_area, mut bufs) = frames(4);
        let mut j = judge(REJECT_OPTIONS, 16);
        let req = frame_v4([10, 0, 0, 1], [10, 0, 0, 2], 5060, 5060, OPTIONS);
        let mut got = Vec::new();
        j.judge(1, load(bufs.pop().unwrap(), &req), 7, &mut |w, d| got.push((w, d)));
        assert_eq!(got.len(), 1);
        let (w, d) = got.pop().unwrap();
        assert_eq!((w, d.out), (7, Out::Inject));
        assert_eq!(d.buf.get_user().engine, 3);
        let reply = &d.buf.get_data()[..d.buf.get_len() as usize];
        let Ok(Frame::Ip(ip)) = crate::wire::decode(reply) else { panic!("reply does not decode") };
        assert_eq!(ip.src.to_string(), "10.0.0.2");
        assert_eq!(ip.dst.to_string(), "10.0.0.1");
        assert!(ip.payload.starts_with(b"SIP/2.0 403 "), "{:?}", String::from_utf8_lossy(ip.payload));
        assert_eq!(j.snapshot().judge.injected, 1);
        assert_eq!(j.snapshot().rule_hits.get("no-options"), Some(&1));
        assert_eq!(j.snapshot().top_drops, vec![DropSource { ip: "10.0.0.1".parse().unwrap(), drops: 1 }]);
    }

    fn v4(i: u32) -> std::net::IpAddr {
        std::net::IpAddr::V4(std::net::Ipv4Addr::from(i))
    }

    #[test]
    fn top_drops_stays_bounded_and_keeps_both_families() {
        let mut t = TopDrops::default();
        for i in 0..10_000u32 {
            t.add(v4(0x0a00_0000 + i));
        }
        let v6: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        t.add(v6);
        t.add(v6);
        let l = t.list();
        assert_eq!(l.len(), TOP_DROPS);
        assert!(l.windows(2).all(|w| w[0].drops >= w[1].drops), "sorted: {l:?}");
        // The total is conserved: space-saving never loses a count, it reassigns it.
        let kept: u64 = l.iter().map(|d| d.drops).sum();
        assert_eq!(kept, 10_002);
        assert!(l.iter().any(|d| d.ip == v6));
        let mut one = TopDrops::default();
        one.add(v4(0x0a00_0001));
        assert_eq!(one.list(), vec![DropSource { ip: "10.0.0.1".parse().unwrap(), drops: 1 }]);
    }

    #[test]
    fn heavy_hitters_survive_churn() {
        let mut t = TopDrops::default();
        let heavy = [v4(0xc000_0201), v4(0xc000_0202), "2001:db8::bad".parse().unwrap()];
        // 3 × 2000 drops from the heavy sources spread over 20 000 one-off spoofed sources.
        let mut churn = 0u32;
        for _ in 0..2000 {
            for h in &heavy {
                t.add(*h);
            }
            for _ in 0..10 {
                churn += 1;
                t.add(v4(0x6400_0000 + churn));
            }
        }
        let l = t.list();
        assert_eq!(l.len(), TOP_DROPS);
        let top: Vec<_> = l[..3].iter().map(|d| d.ip).collect();
        for h in &heavy {
            assert!(top.contains(h), "{h} not in the top 3: {:?}", &l[..5]);
        }
        // Counts are upper bounds within total/K of the truth.
        let bound = (6000 + 20_000) / TOP_DROPS as u64;
        for d in &l[..3] {
            assert!(d.drops >= 2000 && d.drops <= 2000 + bound, "{d:?}");
        }
    }

    #[test]
    fn fragments_are_held_then_released_together() {
        let (_area, mut bufs) = frames(8);
        let mut j = judge("", 16);
        let frs = sip_fragments_v4([10, 0, 0, 1], [10, 0, 0, 2], (5060, 5060), 9, &big_options(0), 256);
        assert!(frs.len() >= 2);
        let mut got = Vec::new();
        for (i, f) in frs.iter().enumerate() {
            j.judge(10 + i as u64, load(bufs.pop().unwrap(), f), 1, &mut |w, d| got.push((w, d.out)));
        }
        assert_eq!(got.len(), frs.len(), "every fragment comes back once");
        assert!(got.iter().all(|&(w, o)| w == 1 && o == Out::Forward));
        assert_eq!(j.held(), 0);
    }

    #[test]
    fn the_hold_cap_evicts_oldest_and_release_all_returns_the_rest() {
        let (_area, mut bufs) = frames(16);
        let mut j = judge("", 2);
        let mut got = Vec::new();
        // First fragments of four different datagrams: all held, the cap is two.
        for id in 0..4u16 {
            let f = sip_fragments_v4([10, 0, 0, 1], [10, 0, 0, 2], (5060, 5060), 100 + id, &big_options(id), 256).remove(0);
            j.judge(id as u64, load(bufs.pop().unwrap(), &f), 0, &mut |_, d| got.push(d.out));
        }
        assert_eq!(j.held(), 2);
        assert_eq!(got, vec![Out::Drop, Out::Drop]);
        assert_eq!(j.snapshot().judge.held_evicted, 2);
        j.release_all(&mut |_, d| got.push(d.out));
        assert_eq!(got.len(), 4);
        assert_eq!(j.held(), 0);
    }

    #[test]
    fn a_swapped_rule_set_is_picked_up_once() {
        let (_area, mut bufs) = frames(4);
        let mut j = judge("", 4);
        let req = frame_v4([10, 0, 0, 1], [10, 0, 0, 2], 5060, 5060, OPTIONS);
        let mut got = Vec::new();
        j.judge(1, load(bufs.pop().unwrap(), &req), 0, &mut |_, d| got.push(d.out));
        let src = Source { path: "t.toml".into(), text: REJECT_OPTIONS.into() };
        let rs = crate::rules::compile(&[src], std::path::Path::new("."), &Default::default()).unwrap();
        j.rules.store(Arc::new(rs));
        j.refresh_rules();
        j.refresh_rules();
        assert_eq!(j.snapshot().judge.rule_swaps, 1);
        let req2 = frame_v4([10, 0, 0, 1], [10, 0, 0, 2], 5060, 5060, &OPTIONS.iter().map(|&b| if b == b'1' { b'2' } else { b }).collect::<Vec<_>>());
        j.judge(2, load(bufs.pop().unwrap(), &req2), 0, &mut |_, d| got.push(d.out));
        assert_eq!(got, vec![Out::Forward, Out::Inject]);
    }

    #[test]
    fn rule_hits_keep_growing_across_swaps_while_the_rule_exists() {
        let (_area, mut bufs) = frames(8);
        let compile = |text: &str| {
            let src = Source { path: "t.toml".into(), text: text.into() };
            Arc::new(crate::rules::compile(&[src], std::path::Path::new("."), &Default::default()).unwrap())
        };
        let mut j = judge("", 4);
        j.rules.store(compile(REJECT_OPTIONS));
        j.refresh_rules();
        let mut n = 0u8;
        let mut send = |j: &mut Judge| {
            n += 1;
            let req = frame_v4([10, 0, 0, 1], [10, 0, 0, 2], 5060, 5060, &OPTIONS.iter().map(|&b| if b == b'1' { b'0' + n } else { b }).collect::<Vec<_>>());
            j.judge(n as u64, load(bufs.pop().unwrap(), &req), 0, &mut |_, _| {});
        };
        send(&mut j);
        let id = j.engine.rules().rules[0].id.clone();
        assert_eq!(j.snapshot().rule_hits.get(&id), Some(&1));
        // The same rule in a new set (an API list edit recompiles): the count carries on.
        j.rules.store(compile(REJECT_OPTIONS));
        j.refresh_rules();
        send(&mut j);
        assert_eq!(j.snapshot().rule_hits.get(&id), Some(&2));
        // A set without it forgets it; a later set with it starts again from zero.
        j.rules.store(compile(""));
        j.refresh_rules();
        assert_eq!(j.snapshot().rule_hits.get(&id), None);
        j.rules.store(compile(REJECT_OPTIONS));
        j.refresh_rules();
        assert_eq!(j.snapshot().rule_hits.get(&id), None);
    }

    /// Judges 0 and 1 of two, wired by consult channels; engine 0's pool holds `pool` buffers.
    fn pair(pool: usize) -> (Judge, Judge, Vec<crossbeam_channel::Receiver<Cross>>) {
        let (tx, rx) = Peers::channels(2, 4);
        let (mut a, mut b) = (judge("", 16), judge("", 16));
        (a.index, b.index) = (0, 1);
        (a.with_peers(Peers::new(0, tx.clone(), pool), 2), b.with_peers(Peers::new(1, tx, 4), 2), rx)
    }

    /// A TCP OPTIONS whose Call-ID engine 1 of two owns (the test judges' keyer).
    fn tcp_options_owned_by_1() -> Vec<u8> {
        let k = crate::hash::Keyer::with_keys(1, 2);
        let cid = (0..).map(|i| format!("c{i}")).find(|c| crate::hash::shard_of(k.call_id(c.as_bytes()), 2) == 1).unwrap();
        let m = String::from_utf8(OPTIONS.to_vec()).unwrap().replace("Call-ID: c1", &format!("Call-ID: {cid}")).replace("SIP/2.0/UDP", "SIP/2.0/TCP");
        let (c, s) = ("10.0.0.1:40000".parse().unwrap(), "10.0.0.2:5060".parse().unwrap());
        crate::fixtures::tcp_frame(c, s, 100, 1, crate::fixtures::tcp_flags::ACK, m.as_bytes())
    }

    #[test]
    fn a_consulted_segment_waits_for_the_owner_and_goes_on_with_its_verdict() {
        let (_area, mut bufs) = frames(4);
        let (mut a, mut b, rx) = pair(4);
        let mut got = Vec::new();
        a.judge(1, load(bufs.pop().unwrap(), &tcp_options_owned_by_1()), 5, &mut |w, d| got.push((w, d.out)));
        assert!(got.is_empty(), "held while the owner judges");
        assert_eq!(a.held(), 1);
        let ask = rx[1].try_recv().expect("engine 1 was asked");
        b.cross(2, ask, &mut |_, _| panic!("the owner holds no frame of it"));
        let answer = rx[0].try_recv().expect("engine 1 answered");
        a.cross(3, answer, &mut |w, d| got.push((w, d.out)));
        assert_eq!(got, vec![(5, Out::Forward)]);
        assert_eq!((a.snapshot().judge.consults_sent, a.snapshot().stats.consults.answered), (1, 1));
        assert_eq!((b.snapshot().stats.consults.judged, b.snapshot().judge.verdicts[1][0]), (1, 1));
        assert_eq!(a.held(), 0);
    }

    #[test]
    fn a_consult_without_a_free_buffer_drops_and_resets_never_forwards() {
        let (_area, mut bufs) = frames(4);
        let (mut a, _b, rx) = pair(0);
        let mut got = Vec::new();
        a.judge(1, load(bufs.pop().unwrap(), &tcp_options_owned_by_1()), 5, &mut |w, d| got.push((w, d.out)));
        assert!(rx[1].try_recv().is_err(), "nothing sent");
        // The segment's own buffer carries both RSTs (the worker splits them); nothing is
        // forwarded as is.
        assert!(matches!(got.as_slice(), [(5, Out::Split { .. })]), "{got:?}");
        assert_eq!(a.snapshot().judge.tcp_rsts, 2);
        let s = a.snapshot();
        assert_eq!((s.stats.consults.refused, s.stats.tcp.errors[crate::stream::StreamError::ConsultRefused.index()]), (1, 1));
        assert_eq!(s.judge.verdicts[cause_index(&Cause::Stream(crate::stream::StreamError::ConsultRefused))][1], 1);
        assert_eq!(a.held(), 0);
    }
}
