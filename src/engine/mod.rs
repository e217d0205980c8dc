//! The sans-IO engine: `(now, frame) -> Verdict`, with transaction and dialog state.
//!
//! An [`Engine`] owns, with nothing shared: a SIP [`Parser`], the fragment [`Reassembler`], the
//! transaction and dialog [`Table`]s and its counters. It never reads the clock, touches a
//! socket or spawns a thread; the caller passes time in, so a pcap replay, a unit test and the
//! AF_XDP data path drive exactly the same code.
//!
//! Call order, per frame: [`Engine::handle`], then [`Engine::drain_dropped`] to collect frames
//! that fragment reassembly abandoned meanwhile (timeouts, evictions). With several engines
//! ([`Engine::set_shard`]), an [`Outcome::Consult`] is carried to the engine it names, judged
//! there by [`Engine::judge_consulted`], and its verdict handed back to [`Engine::resume`]
//! (or [`Engine::refuse`] when it could not be carried). `now` must not go back;
//! if it does, expiry simply waits for it to catch up.

pub mod reject;
pub mod replay;
pub mod state;
pub mod table;
#[cfg(test)]
mod steer_tests;
#[cfg(test)]
mod ws_tests;
mod tcp;
#[cfg(test)]
mod consult_tests;

pub use tcp::{Consult, ConsultTicket};
pub mod tls;

use crate::config::EngineConfig;
use crate::hash::Keyer;
use crate::hosttable::{HostLimits, HostTable};
use crate::rules::eval::{Decision, Evaluator, Fired};
use crate::rules::fields::MsgCtx;
use crate::rules::eval::Env;
use crate::rules::objects::ObjectStore;
use crate::rules::RuleSet;
use std::sync::Arc;
use crate::sip::{Method, Parser, Reason, Reasons};
use crate::stream::{ResetPoint, StreamStats, Streams};
use crate::verdict::{Action, Cause, Verdict};
use crate::wire::reasm::{FragKey, FrameId, Pushed, ReasmError, Reassembler};
use crate::wire::{self, DecodeError, Frame, Transport};
use state::{Dialog, StateTracker, Transaction};
use std::net::SocketAddr;
use table::Table;

/// The SIP facts of a judged message, borrowed from the frame or the reassembly buffer.
#[derive(Clone, Copy, Debug)]
pub struct SipSummary<'a> {
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// Request method, for requests.
    pub method: Option<Method>,
    /// Request method token as sent (extension methods keep their name).
    pub method_bytes: Option<&'a [u8]>,
    /// Status code, for responses.
    pub status: Option<u16>,
    /// Call-ID, when present.
    pub call_id: Option<&'a [u8]>,
    /// Validation failures (empty when valid).
    pub reasons: Reasons,
}

/// A verdict and the frames it covers.
#[derive(Clone, Copy, Debug)]
pub struct Judgement<'a> {
    /// Forward or drop, and why.
    pub verdict: Verdict,
    /// The frames the verdict applies to: the frame just handled, or every fragment of the
    /// datagram it completed (in arrival order).
    pub frames: &'a [FrameId],
    /// The SIP message, when the frames carried one.
    pub sip: Option<SipSummary<'a>>,
    /// Rules that fired on the message, in order (indices into [`Engine::rules`]).
    pub fired: &'a [Fired],
    /// The response to send back, for [`Action::Reject`].
    pub response: Option<&'a [u8]>,
    /// The frame just handled is not among `frames` and stays held (a TCP segment whose
    /// message is not complete yet, while earlier segments are released).
    pub keep: bool,
    /// A refused TCP message: reset its connection both ways at these sequence numbers.
    pub reset: Option<ResetPoint>,
}

/// What [`Engine::handle`] made of a frame.
#[derive(Clone, Copy, Debug)]
pub enum Outcome<'a> {
    /// A fragment kept until its datagram is complete; its verdict comes later.
    Held,
    /// A verdict.
    Judged(Judgement<'a>),
    /// A TCP message whose Call-ID another engine owns (so its dialog lives there): ask that
    /// engine ([`Engine::judge_consulted`]) and hand its verdict to [`Engine::resume`]. The
    /// frame just handled stays held, like [`Outcome::Held`].
    Consult(Consult<'a>),
}

/// Consults between engines: TCP messages judged by the engine that owns their Call-ID.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ConsultStats {
    /// Messages this engine asked another engine to judge.
    pub asked: u64,
    /// Answers applied (the verdict forwarded or reset the connection).
    pub answered: u64,
    /// Consults that could not be made (peer queue full, no buffer free): the message was
    /// dropped and its connection reset, never forwarded.
    pub refused: u64,
    /// Answers that found their connection gone (timed out or reset meanwhile).
    pub unmatched: u64,
    /// Waiting connections forgotten before their answer came (timeout, eviction, reset).
    pub abandoned: u64,
    /// Messages this engine judged for another engine.
    pub judged: u64,
}

/// Counters of one engine. Plain integers: the engine is single-threaded and readers sum
/// per-engine copies.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct EngineStats {
    /// Frames handed to the engine.
    pub frames: u64,
    /// Frames forwarded.
    pub forwarded: u64,
    /// Frames dropped.
    pub dropped: u64,
    /// Frames that were not SIP (bridged untouched).
    pub not_sip: u64,
    /// Frames that failed L2-L4 decoding, by [`DecodeError`] (indexed like `DecodeError::ALL`).
    pub decode_errors: Vec<u64>,
    /// Fragments held for reassembly.
    pub fragments_held: u64,
    /// Frames dropped because their datagram's reassembly failed, by [`ReasmError`].
    pub fragment_drops: Vec<u64>,
    /// Datagrams reassembled.
    pub reassembled: u64,
    /// TCP segments held until their message was judged.
    pub tcp_segments_held: u64,
    /// TCP connections reset (a refused message or a broken stream).
    pub tcp_resets: u64,
    /// TCP stream reassembly counters.
    pub tcp: StreamStats,
    /// TCP messages judged by (or for) the engine that owns their Call-ID.
    pub consults: ConsultStats,
    /// TLS ports: frames and connections let through uninspected, denials by cause.
    pub tls: tls::TlsStats,
    /// SIP messages parsed.
    pub sip_messages: u64,
    /// Requests by method, indexed by `Method as usize`.
    pub requests: [u64; 32],
    /// Responses by class (index 1..=6 for 1xx..6xx; 0 for anything else).
    pub responses: [u64; 7],
    /// Messages with at least one validation failure.
    pub malformed: u64,
    /// Validation failures by reason (indexed like `Reason::ALL`).
    pub malformed_by_reason: Vec<u64>,
    /// Messages dropped because their source is banned (not parsed).
    pub banned: u64,
    /// Bans that the host table could not hold (every probed entry held a live ban).
    pub ban_failures: u64,
}

impl EngineStats {
    fn new() -> EngineStats {
        EngineStats {
            decode_errors: vec![0; DecodeError::ALL.len()],
            fragment_drops: vec![0; ReasmError::ALL.len()],
            malformed_by_reason: vec![0; Reason::ALL.len()],
            tcp: StreamStats::new(),
            ..Default::default()
        }
    }
}

/// One engine: parser, reassembly, state tables, counters.
pub struct Engine {
    core: Core,
    reasm: Reassembler,
    tcp: tcp::TcpSide,
    /// The SYN rate table of the TLS ports (shared by every engine of an appliance).
    tls_gate: Arc<tls::TlsGate>,
    /// Backing store for the one-frame `frames` slice of unfragmented verdicts.
    single: [FrameId; 1],
}

/// Everything but the reassembler, so that a verdict can borrow the reassembled datagram while
/// the parser, the state and the counters are updated.
struct Core {
    cfg: EngineConfig,
    parser: Parser,
    tracker: StateTracker,
    stats: EngineStats,
    /// Frames abandoned by reassembly since the last drain.
    dropped: Vec<(FrameId, ReasmError)>,
    /// Scratch for frames TCP reassembly abandoned (evictions, timeouts).
    stream_dropped: Vec<(FrameId, crate::stream::StreamError)>,
    rules: Arc<RuleSet>,
    hosts: Arc<HostTable>,
    evaluator: Evaluator,
    objects: ObjectStore,
    rule_hits: Vec<u64>,
    /// The response of the last reject.
    response: Vec<u8>,
    /// Whether `response` holds a response for the current frame.
    has_response: bool,
}

impl Engine {
    /// An engine with no rules and a host table of its own (offline tools, tests).
    pub fn new(cfg: EngineConfig, keyer: Keyer) -> Engine {
        let hosts = Arc::new(HostTable::new(HostLimits::default()));
        Engine::with_rules(cfg, keyer, Arc::new(RuleSet::empty()), hosts)
    }

    /// An engine judging with `rules`; `keyer` must be the one the shard function uses and
    /// `hosts` the table every engine of the appliance shares.
    pub fn with_rules(cfg: EngineConfig, keyer: Keyer, rules: Arc<RuleSet>, hosts: Arc<HostTable>) -> Engine {
        let parser = Parser::new(cfg.sip.clone());
        let reasm = Reassembler::new(cfg.reassembly.clone());
        let tcp_limits = cfg.tcp.clone();
        let tls_gate = tls::TlsGate::new(&cfg.tls, keyer);
        let (ws_ports, ws_limits) = (cfg.sip_ws_ports.clone(), cfg.websocket.clone());
        let tracker = StateTracker::new(&cfg, keyer);
        let tick_ns = cfg.timer_tick_ms.max(1) * 1_000_000;
        let objects = ObjectStore::new(
            cfg.objects.clone(),
            keyer,
            cfg.transactions.timeout_s * 1_000_000_000,
            cfg.dialogs.confirmed_timeout_s * 1_000_000_000,
            tick_ns,
        );
        let rule_hits = vec![0; rules.rules.len()];
        Engine {
            core: Core {
                cfg,
                parser,
                tracker,
                stats: EngineStats::new(),
                dropped: Vec::with_capacity(64),
                stream_dropped: Vec::with_capacity(64),
                rules,
                hosts,
                evaluator: Evaluator::new(),
                objects,
                rule_hits,
                response: Vec::with_capacity(512),
                has_response: false,
            },
            reasm,
            tcp: tcp::TcpSide::new(Streams::new(tcp_limits).with_websocket(&ws_ports, ws_limits), keyer),
            tls_gate,
            single: [0],
        }
    }

    /// Makes this engine `index` of `engines` that shard by Call-ID (with the keyer it was
    /// built with): a TCP message whose Call-ID another engine owns becomes an
    /// [`Outcome::Consult`]. Engines are alone (never consult) until this is called.
    pub fn set_shard(&mut self, index: usize, engines: usize) {
        self.tcp.set_shard(index, engines);
    }

    /// Judges a TCP message another engine framed and consulted this one on (this engine
    /// owns its Call-ID, so its dialog and transactions): parsed, tracked and ruled like any
    /// message here, a reject turned into a drop (a stream cannot be answered into). The
    /// judgement covers no frame; its verdict goes back to the asking engine.
    pub fn judge_consulted<'a>(&'a mut self, now: u64, src: SocketAddr, dst: SocketAddr, transport: Transport, msg: &'a [u8]) -> Judgement<'a> {
        let Engine { core, reasm, .. } = self;
        core.has_response = false;
        core.evaluator.fired.clear();
        core.tick(now, reasm);
        core.stats.consults.judged += 1;
        let (mut verdict, sip) = core.judge_sip(now, src, dst, transport, msg);
        if verdict.action == Action::Reject {
            verdict.action = Action::Drop;
        }
        core.has_response = false;
        let core: &'a Core = core;
        Judgement { verdict, frames: &[], sip: Some(sip), fired: &core.evaluator.fired, response: None, keep: false, reset: None }
    }

    /// Applies the verdict another engine gave on the consulted message `ticket` names: its
    /// frames are released (and framing of its direction goes on: the outcome may be
    /// another consult) or its connection reset. Held when nothing is released yet, or the
    /// connection is gone (its frames were dropped with it).
    pub fn resume(&mut self, now: u64, ticket: ConsultTicket, verdict: Verdict) -> Outcome<'_> {
        let Engine { core, tcp, .. } = self;
        core.has_response = false;
        core.evaluator.fired.clear();
        let before = core.dropped.len();
        let out = tcp.resume(core, now, ticket, verdict);
        core.count_abandoned(before);
        Engine::tcp_outcome(core, out)
    }

    /// A consult the data path could not deliver (the owner's queue full, no buffer free):
    /// the message is dropped and its connection reset, counted as `consult_refused`.
    pub fn refuse(&mut self, now: u64, ticket: ConsultTicket) -> Outcome<'_> {
        self.core.stats.consults.refused += 1;
        self.tcp.streams.count_error(crate::stream::StreamError::ConsultRefused);
        self.resume(now, ticket, Verdict::drop(Cause::Stream(crate::stream::StreamError::ConsultRefused)))
    }

    /// The [`Outcome`] of a TCP outcome with no segment at hand, frames counted.
    fn tcp_outcome<'a>(core: &'a mut Core, out: tcp::TcpOutcome<'a>) -> Outcome<'a> {
        match out {
            tcp::TcpOutcome::Held => Outcome::Held,
            tcp::TcpOutcome::Consult(c) => Outcome::Consult(c),
            tcp::TcpOutcome::Judged { verdict, frames, sip, keep, reset } => {
                match verdict.action {
                    Action::Forward => core.stats.forwarded += frames.len() as u64,
                    Action::Drop | Action::Reject => core.stats.dropped += frames.len() as u64,
                }
                let core: &'a Core = core;
                Outcome::Judged(Judgement { verdict, frames, sip, fired: &core.evaluator.fired, response: None, keep, reset })
            }
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &EngineStats {
        &self.core.stats
    }

    /// The configuration this engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.core.cfg
    }

    /// The rule set in force.
    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.core.rules
    }

    /// Replaces the rule set; takes effect from the next frame. Per-rule counters restart.
    pub fn set_rules(&mut self, rules: Arc<RuleSet>) {
        self.core.rule_hits = vec![0; rules.rules.len()];
        self.core.rules = rules;
    }

    /// Times each rule fired (monitor-mode firings included), indexed like [`Engine::rules`].
    pub fn rule_hits(&self) -> &[u64] {
        &self.core.rule_hits
    }

    /// The shared host table (bans, per-source counters).
    pub fn hosts(&self) -> &Arc<HostTable> {
        &self.core.hosts
    }

    /// The stateful objects of the rules held by this engine.
    pub fn objects(&self) -> &ObjectStore {
        &self.core.objects
    }

    /// Transaction and dialog tracking counters.
    pub fn state_stats(&self) -> state::StateStats {
        self.core.tracker.stats()
    }

    /// The transaction table (for inspection and tests).
    pub fn transactions(&self) -> &Table<Transaction> {
        &self.core.tracker.transactions
    }

    /// The dialog table (for inspection and tests).
    pub fn dialogs(&self) -> &Table<Dialog> {
        &self.core.tracker.dialogs
    }

    /// The fragment reassembler (for inspection and tests).
    pub fn reassembler(&self) -> &Reassembler {
        &self.reasm
    }

    /// Makes this engine count TLS connections in `gate` (one for every engine, so that the
    /// per-client rate holds whichever engine a connection meets).
    pub fn share_tls_gate(&mut self, gate: Arc<tls::TlsGate>) {
        self.tls_gate = gate;
    }

    /// The TLS SYN rate table in use.
    pub fn tls_gate(&self) -> &Arc<tls::TlsGate> {
        &self.tls_gate
    }

    /// The TCP connections (for inspection and tests).
    pub fn streams(&self) -> &Streams {
        &self.tcp.streams
    }

    /// Moves frames abandoned by reassembly (timeout, eviction) into `out` with their verdict.
    pub fn drain_dropped(&mut self, out: &mut Vec<(FrameId, Verdict)>) {
        for (id, e) in self.core.dropped.drain(..) {
            out.push((id, Verdict::drop(Cause::Fragment(e))));
        }
        let from = self.core.stream_dropped.len();
        self.tcp.streams.drain_dropped(&mut self.core.stream_dropped);
        self.core.stats.dropped += (self.core.stream_dropped.len() - from) as u64;
        for (id, e) in self.core.stream_dropped.drain(..) {
            out.push((id, Verdict::drop(Cause::Stream(e))));
        }
    }

    /// Advances timers without a frame (idle periods): expires state, stale fragments and
    /// TCP connections.
    pub fn tick(&mut self, now: u64) {
        self.core.tick(now, &mut self.reasm);
        self.tcp.streams.expire(now);
        self.tcp.sweep(&mut self.core);
        self.core.stats.tcp.copy_from(self.tcp.streams.stats());
    }

    /// Judges one Ethernet frame received at `now` (nanoseconds, monotonic). `id` names the
    /// frame so that a verdict covering several fragments can say which frames it covers.
    pub fn handle<'a>(&'a mut self, now: u64, frame: &'a [u8], id: FrameId) -> Outcome<'a> {
        let Engine { core, reasm, tcp, tls_gate, single } = self;
        *single = [id];
        let single: &'a [FrameId] = single;
        core.stats.frames += 1;
        core.has_response = false;
        core.evaluator.fired.clear();
        core.tick(now, reasm);
        let before = core.dropped.len();
        let mut keep = false;
        let mut reset = None;
        let (verdict, frames, sip) = match wire::decode_with(frame, &core.cfg.decode) {
            Err(e) => (core.undecodable(e), single, None),
            Ok(Frame::NotIp { .. }) => (core.not_sip(1), single, None),
            Ok(Frame::Ip(d)) => match d.frag {
                // Only UDP is reassembled: a fragment that may hold SIP the engine cannot see
                // (TCP, or UDP behind AH) is undecodable; other fragmented traffic is bridged.
                Some(_) if d.transport == Transport::Tcp => (core.undecodable(DecodeError::FragmentedTcp), single, None),
                Some(_) if d.transport == Transport::Other(51) => (core.undecodable(DecodeError::FragmentedAh), single, None),
                Some(_) if d.transport != Transport::Udp => (core.not_sip(1), single, None),
                Some(f) => {
                    let key = FragKey { src: d.src, dst: d.dst, id: f.id, proto: 17 };
                    match reasm.push(now, key, f.offset, f.more, d.payload, id, &mut core.dropped) {
                        Pushed::Incomplete => {
                            core.stats.fragments_held += 1;
                            core.count_abandoned(before);
                            return Outcome::Held;
                        }
                        Pushed::Failed { reason, frames } => {
                            core.count_fragment_drop(reason, frames.len());
                            (Verdict::drop(Cause::Fragment(reason)), frames, None)
                        }
                        Pushed::Complete { datagram, frames } => {
                            core.stats.reassembled += 1;
                            let (v, sip) = core.judge_datagram(now, &d, datagram, frames.len());
                            (v, frames, sip)
                        }
                    }
                }
                None if d.transport == Transport::Tcp && core.cfg.tls.port_of(d.src_port, d.dst_port).is_some() => {
                    (core.judge_tls(now, frame, &d, tls_gate), single, None)
                }
                None if d.transport == Transport::Tcp && core.cfg.is_sip_tcp(d.src_port, d.dst_port) => {
                    match tcp.judge(core, now, frame, &d, id) {
                        tcp::TcpOutcome::Held => {
                            core.count_abandoned(before);
                            return Outcome::Held;
                        }
                        tcp::TcpOutcome::Consult(c) => {
                            core.count_abandoned(before);
                            return Outcome::Consult(c);
                        }
                        tcp::TcpOutcome::Judged { verdict, frames, sip, keep: k, reset: r } => {
                            (keep, reset) = (k, r);
                            (verdict, frames, sip)
                        }
                    }
                }
                None => {
                    let (v, sip) = core.judge_l4(now, &d);
                    (v, single, sip)
                }
            },
        };
        core.count_abandoned(before);
        match verdict.action {
            Action::Forward => core.stats.forwarded += frames.len() as u64,
            Action::Drop | Action::Reject => core.stats.dropped += frames.len() as u64,
        }
        let core: &'a Core = core;
        let response = core.has_response.then_some(core.response.as_slice());
        Outcome::Judged(Judgement { verdict, frames, sip, fired: &core.evaluator.fired, response, keep, reset })
    }
}

impl Core {
    fn tick(&mut self, now: u64, reasm: &mut Reassembler) {
        self.tracker.expire(now);
        self.objects.expire(now);
        let before = self.dropped.len();
        reasm.expire(now, &mut self.dropped);
        self.count_abandoned(before);
    }

    /// Counts the frames reassembly abandoned since `from` (they are dropped, reported later).
    fn count_abandoned(&mut self, from: usize) {
        for i in from..self.dropped.len() {
            let e = self.dropped[i].1;
            self.count_fragment_drop(e, 1);
            self.stats.dropped += 1;
        }
    }

    fn count_fragment_drop(&mut self, e: ReasmError, frames: usize) {
        if let Some(i) = ReasmError::ALL.iter().position(|x| *x == e) {
            self.stats.fragment_drops[i] += frames as u64;
        }
    }

    /// A segment of a TLS port: forwarded uninspected or refused by the port's policy.
    fn judge_tls(&mut self, now: u64, frame: &[u8], d: &wire::Decoded<'_>, gate: &tls::TlsGate) -> Verdict {
        let Some((port, client_is_src)) = self.cfg.tls.port_of(d.src_port, d.dst_port) else { return self.not_sip(1) };
        let client = if client_is_src { d.src } else { d.dst };
        // A SYN without ACK towards the port opens a connection (flags at TCP offset 13).
        let flags = frame.get(d.l4_offset + 13).copied().unwrap_or(0);
        let opening = client_is_src && flags & 0x12 == 0x02;
        match tls::judge(&self.cfg.tls, gate, port, client, opening, now) {
            Ok(()) => {
                self.stats.tls.uninspected_frames += 1;
                self.stats.tls.uninspected_connections += u64::from(opening);
                Verdict::forward(Cause::TlsUninspected)
            }
            Err(e) => {
                self.stats.tls.denied[e.index()] += 1;
                Verdict::drop(Cause::Tls(e))
            }
        }
    }

    fn undecodable(&mut self, e: DecodeError) -> Verdict {
        if let Some(i) = DecodeError::ALL.iter().position(|x| *x == e) {
            self.stats.decode_errors[i] += 1;
        }
        let policy = if e == DecodeError::Esp { self.cfg.esp } else { self.cfg.undecodable };
        Verdict { action: policy.action(), cause: Cause::Decode(e) }
    }

    fn not_sip(&mut self, frames: usize) -> Verdict {
        self.stats.not_sip += frames as u64;
        Verdict::forward(Cause::NotSip)
    }

    /// A reassembled UDP datagram: SIP if its ports say so.
    fn judge_datagram<'a>(
        &mut self,
        now: u64,
        d: &wire::Decoded<'_>,
        datagram: &'a [u8],
        frames: usize,
    ) -> (Verdict, Option<SipSummary<'a>>) {
        match wire::udp_datagram(datagram) {
            Err(e) => (self.undecodable(e), None),
            Ok((sport, dport, payload)) if self.cfg.is_sip_udp(sport, dport) => {
                let src = SocketAddr::new(d.src, sport);
                let dst = SocketAddr::new(d.dst, dport);
                let (v, s) = self.judge_sip(now, src, dst, Transport::Udp, payload);
                (v, Some(s))
            }
            Ok(_) => (self.not_sip(frames), None),
        }
    }

    /// An unfragmented IP frame that is not SIP over TCP (that goes to [`tcp`]).
    fn judge_l4<'a>(&mut self, now: u64, d: &wire::Decoded<'a>) -> (Verdict, Option<SipSummary<'a>>) {
        if !(d.transport == Transport::Udp && self.cfg.is_sip_udp(d.src_port, d.dst_port)) {
            return (self.not_sip(1), None);
        }
        let src = SocketAddr::new(d.src, d.src_port);
        let dst = SocketAddr::new(d.dst, d.dst_port);
        let (v, s) = self.judge_sip(now, src, dst, d.transport, d.payload);
        (v, Some(s))
    }

    /// Parses, validates and tracks one SIP message.
    fn judge_sip<'a>(
        &mut self,
        now: u64,
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        payload: &'a [u8],
    ) -> (Verdict, SipSummary<'a>) {
        self.stats.sip_messages += 1;
        if self.hosts.banned(src.ip(), now).is_some() || self.hosts.banned(dst.ip(), now).is_some() {
            // Banned addresses cost no parsing: that is the point of banning a flood. Traffic
            // towards them (answers to a scanner) has nothing to deliver either.
            self.stats.banned += 1;
            let summary = SipSummary { src, dst, transport, method: None, method_bytes: None, status: None, call_id: None, reasons: Reasons::default() };
            return (Verdict::drop(Cause::Banned), summary);
        }
        // A datagram may carry octets past its Content-Length (RFC 3261 §18.3): the receiver
        // discards them; on a stream they would be the next message.
        let msg = if transport == Transport::Udp { self.parser.parse_datagram(payload) } else { self.parser.parse(payload) };
        let reasons = msg.reasons();
        let method = msg.method();
        let status = msg.status();
        if let Some(m) = method {
            self.stats.requests[(m as usize).min(31)] += 1;
        }
        if let Some(code) = status {
            let class = (code / 100) as usize;
            self.stats.responses[if (1..=6).contains(&class) { class } else { 0 }] += 1;
        }
        if !reasons.is_empty() {
            self.stats.malformed += 1;
            for r in reasons.iter() {
                if let Some(i) = Reason::ALL.iter().position(|x| *x == r) {
                    self.stats.malformed_by_reason[i] += 1;
                }
            }
        }
        let look = self.tracker.lookup(&msg, src.ip());
        let (mut keys, view) = (look.keys, look.view);
        keys.dst = Some(dst.ip());
        let decision = if self.rules.rules.is_empty() {
            None
        } else {
            let ctx = MsgCtx { msg: &msg, src, dst, transport: transport.name(), state: view };
            let mut env = Env { objects: &mut self.objects, hosts: &self.hosts, keys, now };
            let d = self.evaluator.eval(&self.rules, &ctx, &mut env);
            for f in &self.evaluator.fired {
                if let Some(h) = self.rule_hits.get_mut(f.rule as usize) {
                    *h += 1;
                }
            }
            d
        };
        let verdict = match decision {
            Some((rule, Decision::Accept)) => {
                if reasons.is_empty() {
                    self.tracker.track(now, &msg, src.ip(), &look);
                }
                Verdict::forward(Cause::Rule(rule))
            }
            Some((rule, Decision::Drop)) => Verdict::drop(Cause::Rule(rule)),
            Some((rule, Decision::Reject { status })) => {
                let r = &self.rules.rules[rule as usize];
                let tag = format!("secsip-{:08x}", self.rule_hits.get(rule as usize).copied().unwrap_or(0));
                self.has_response = reject::build_response(&msg, status, &r.reason, &tag, &mut self.response);
                let action = if self.has_response { Action::Reject } else { Action::Drop };
                Verdict { action, cause: Cause::Rule(rule) }
            }
            Some((rule, Decision::Ban { duration_ns })) => {
                let id = self.rules.ban_ids.get(rule as usize).copied().unwrap_or(rule);
                if !self.hosts.ban(src.ip(), now.saturating_add(duration_ns), id) {
                    self.stats.ban_failures += 1;
                }
                Verdict::drop(Cause::Rule(rule))
            }
            None if !reasons.is_empty() => Verdict { action: self.cfg.malformed.action(), cause: Cause::Malformed },
            None => {
                self.tracker.track(now, &msg, src.ip(), &look);
                Verdict::forward(Cause::Valid)
            }
        };
        // The message borrows the parser; re-slice its fields from the payload so the summary
        // lives as long as the frame.
        let summary = SipSummary {
            src,
            dst,
            transport,
            method,
            method_bytes: msg.method_bytes().map(|b| rebase(payload, b)),
            status,
            call_id: msg.call_id().map(|b| rebase(payload, b)),
            reasons,
        };
        (verdict, summary)
    }
}

/// The same bytes as `sub`, borrowed from `base` (which `sub` lies within).
fn rebase<'a>(base: &'a [u8], sub: &[u8]) -> &'a [u8] {
    let start = (sub.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
    base.get(start..start.saturating_add(sub.len())).unwrap_or(&[])
}



#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, CallParams, Direction};
    use crate::verdict::Policy;

    const SEC: u64 = 1_000_000_000;

    fn engine() -> Engine {
        Engine::new(EngineConfig::default(), Keyer::with_keys(3, 4))
    }

    fn addrs(p: &CallParams) -> (SocketAddr, SocketAddr) {
        (SocketAddr::new(p.client_ip, p.client_port), SocketAddr::new(p.server_ip, p.server_port))
    }

    /// Runs the fixture call through `e` starting at `t0`, one message every 10 ms; returns
    /// the verdicts.
    fn run_call(e: &mut Engine, p: &CallParams, t0: u64) -> Vec<Verdict> {
        let (c, s) = addrs(p);
        let mut out = vec![];
        for (i, (dir, msg)) in fixtures::complete_call(p).into_iter().enumerate() {
            let (src, dst) = match dir {
                Direction::ClientToServer => (c, s),
                Direction::ServerToClient => (s, c),
            };
            let frame = fixtures::udp_frame(src, dst, &msg);
            match e.handle(t0 + i as u64 * SEC / 100, &frame, i as u64) {
                Outcome::Judged(j) => {
                    assert_eq!(j.frames, &[i as u64]);
                    let sip = j.sip.expect("a SIP message");
                    assert!(sip.reasons.is_empty(), "message {i} malformed: {:?}", sip.reasons.iter().map(|r| r.name()).collect::<Vec<_>>());
                    out.push(j.verdict);
                }
                _ => panic!("unfragmented frame held"),
            }
        }
        out
    }

    #[test]
    fn complete_call_counts_one_dialog_and_five_transactions() {
        let mut e = engine();
        let p = CallParams::default();
        let verdicts = run_call(&mut e, &p, SEC);
        assert_eq!(verdicts.len(), 11);
        assert!(verdicts.iter().all(|v| *v == Verdict::forward(Cause::Valid)));
        let st = e.state_stats();
        assert_eq!(st.dialogs, 1);
        assert_eq!(st.dialogs_confirmed, 1);
        assert_eq!(st.dialogs_terminated, 1);
        assert_eq!(st.transactions, 5);
        assert_eq!(st.retransmissions, 0);
        assert_eq!(st.stray_responses, 0);
        assert_eq!(st.unknown_dialog_requests, 0);
        assert_eq!(e.stats().sip_messages, 11);
        assert_eq!(e.stats().requests[Method::Register as usize], 2);
        assert_eq!(e.stats().responses[1], 2);
        assert_eq!(e.stats().responses[2], 3);
        assert_eq!(e.stats().responses[4], 1);
    }

    #[test]
    fn state_expires_after_its_lifetime() {
        let mut e = engine();
        let p = CallParams::default();
        run_call(&mut e, &p, SEC);
        assert_eq!(e.transactions().len(), 5);
        assert_eq!(e.dialogs().len(), 1);
        // Transactions live 32 s after their last message; the ended dialog lingers 32 s.
        e.tick(SEC + 31 * SEC);
        assert_eq!(e.transactions().len(), 5);
        e.tick(SEC + 34 * SEC);
        assert_eq!(e.transactions().len(), 0);
        assert_eq!(e.dialogs().len(), 0);
        assert_eq!(e.state_stats().transaction_table.expired, 5);
    }

    #[test]
    fn retransmission_and_stray_response_are_told_apart() {
        let mut e = engine();
        let p = CallParams::default();
        let (c, s) = addrs(&p);
        let call = fixtures::complete_call(&p);
        let invite = &call[4].1;
        let f = fixtures::udp_frame(c, s, invite);
        e.handle(SEC, &f, 1);
        e.handle(SEC + SEC / 2, &f, 2);
        assert_eq!(e.state_stats().transactions, 1);
        assert_eq!(e.state_stats().retransmissions, 1);
        // A 200 for a REGISTER nobody sent.
        let stray = fixtures::udp_frame(s, c, &call[3].1);
        e.handle(2 * SEC, &stray, 3);
        assert_eq!(e.state_stats().stray_responses, 1);
    }

    #[test]
    fn in_dialog_request_without_dialog_is_counted() {
        let mut e = engine();
        let p = CallParams::default();
        let (c, s) = addrs(&p);
        let bye = &fixtures::complete_call(&p)[9].1;
        e.handle(SEC, &fixtures::udp_frame(c, s, bye), 1);
        assert_eq!(e.state_stats().unknown_dialog_requests, 1);
        assert_eq!(e.state_stats().dialogs, 0);
    }

    #[test]
    fn callee_bye_ends_the_dialog_too() {
        // The callee hangs up: its BYE carries the caller's tag in To.
        let mut e = engine();
        let p = CallParams::default();
        let (c, s) = addrs(&p);
        let call = fixtures::complete_call(&p);
        for (i, (dir, m)) in call.iter().take(9).enumerate() {
            let (a, b) = if *dir == Direction::ClientToServer { (c, s) } else { (s, c) };
            e.handle(SEC + i as u64, &fixtures::udp_frame(a, b, m), i as u64);
        }
        let bye = fixtures::callee_bye(&p);
        let ok = fixtures::response(&bye, 200, "OK", None);
        e.handle(2 * SEC, &fixtures::udp_frame(s, c, &bye), 20);
        e.handle(2 * SEC + 1, &fixtures::udp_frame(c, s, &ok), 21);
        let st = e.state_stats();
        assert_eq!(st.unknown_dialog_requests, 0);
        assert_eq!(st.dialogs_terminated, 1);
    }

    #[test]
    fn malformed_messages_follow_the_policy() {
        let p = CallParams::default();
        let (c, s) = addrs(&p);
        let bad = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.77.0.1;branch=z9hG4bKx\r\n\r\n";
        let f = fixtures::udp_frame(c, s, bad);
        let mut e = engine();
        match e.handle(SEC, &f, 1) {
            Outcome::Judged(j) => {
                assert_eq!(j.verdict, Verdict::drop(Cause::Malformed));
                let sip = j.sip.unwrap();
                assert!(sip.reasons.iter().any(|r| r.name() == "missing_call_id"));
            }
            _ => panic!(),
        }
        assert_eq!(e.stats().malformed, 1);
        assert_eq!(e.stats().dropped, 1);
        assert_eq!(e.state_stats().transactions, 0, "malformed messages create no state");

        let cfg = EngineConfig { malformed: Policy::Forward, ..Default::default() };
        let mut e = Engine::new(cfg, Keyer::with_keys(1, 1));
        match e.handle(SEC, &f, 1) {
            Outcome::Judged(j) => assert_eq!(j.verdict, Verdict::forward(Cause::Malformed)),
            _ => panic!(),
        }
    }

    #[test]
    fn non_sip_is_bridged_and_garbage_is_dropped() {
        let mut e = engine();
        let rtp = fixtures::udp_frame("10.77.0.1:40000".parse().unwrap(), "10.77.0.2:40002".parse().unwrap(), &[0x80; 172]);
        match e.handle(SEC, &rtp, 1) {
            Outcome::Judged(j) => {
                assert_eq!(j.verdict, Verdict::forward(Cause::NotSip));
                assert!(j.sip.is_none());
            }
            _ => panic!(),
        }
        // An IPv4 ethertype with a truncated header.
        let mut junk = rtp[..20].to_vec();
        junk.truncate(18);
        match e.handle(SEC, &junk, 2) {
            Outcome::Judged(j) => {
                assert_eq!(j.verdict.action, Action::Drop);
                assert!(matches!(j.verdict.cause, Cause::Decode(_)));
            }
            _ => panic!(),
        }
        assert_eq!(e.stats().not_sip, 1);
        assert_eq!(e.stats().decode_errors.iter().sum::<u64>(), 1);
    }

    #[test]
    fn fragmented_invite_is_judged_once_with_all_its_frames() {
        for (src, dst) in [("10.77.0.1:5060", "10.77.0.2:5060"), ("[2001:db8::1]:5060", "[2001:db8::2]:5060")] {
            let (src, dst): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
            let p = CallParams { client_ip: src.ip(), server_ip: dst.ip(), ..Default::default() };
            let mut invite = fixtures::complete_call(&p)[4].1.clone();
            // Pad the SDP so the INVITE needs three fragments at a 600-byte MTU.
            fixtures::pad_body(&mut invite, 1200);
            let frags = fixtures::fragment_udp(src, dst, &invite, 600, 77);
            assert!(frags.len() >= 3);
            let mut e = engine();
            let n = frags.len();
            for (i, f) in frags.iter().enumerate().rev() {
                match e.handle(SEC, f, i as u64) {
                    Outcome::Held => assert!(i > 0, "last fragment to arrive must complete it"),
                    Outcome::Consult(_) => panic!("consulted"),
                    Outcome::Judged(j) => {
                        assert_eq!(i, 0);
                        assert_eq!(j.verdict, Verdict::forward(Cause::Valid), "{:?}", j.sip.map(|s| s.reasons));
                        let mut ids = j.frames.to_vec();
                        ids.sort();
                        assert_eq!(ids, (0..n as u64).collect::<Vec<_>>());
                        assert_eq!(j.sip.unwrap().method, Some(Method::Invite));
                    }
                }
            }
            assert_eq!(e.stats().reassembled, 1);
            assert_eq!(e.state_stats().dialogs, 1);
        }
    }

    #[test]
    fn incomplete_fragments_time_out_and_are_reported() {
        let p = CallParams::default();
        let (c, s) = addrs(&p);
        let mut invite = fixtures::complete_call(&p)[4].1.clone();
        fixtures::pad_body(&mut invite, 1200);
        let frags = fixtures::fragment_udp(c, s, &invite, 600, 9);
        let mut e = engine();
        assert!(matches!(e.handle(SEC, &frags[0], 1), Outcome::Held));
        e.tick(SEC + 10 * SEC);
        let mut dropped = vec![];
        e.drain_dropped(&mut dropped);
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].0, 1);
        assert_eq!(dropped[0].1.action, Action::Drop);
        assert_eq!(e.reassembler().datagrams(), 0);
    }

    #[test]
    fn fragment_flood_stays_within_the_reassembly_cap() {
        let mut cfg = EngineConfig::default();
        cfg.reassembly.max_datagrams = 64;
        let cap_bytes = cfg.reassembly.max_bytes;
        let mut e = Engine::new(cfg, Keyer::with_keys(5, 6));
        let p = CallParams::default();
        let (c, s) = addrs(&p);
        let mut invite = fixtures::complete_call(&p)[4].1.clone();
        fixtures::pad_body(&mut invite, 1200);
        let mut dropped = vec![];
        for id in 0..20_000u32 {
            let frags = fixtures::fragment_udp(c, s, &invite, 600, id);
            // Only the first fragment of each datagram: none ever completes.
            assert!(matches!(e.handle(SEC + id as u64 * 1000, &frags[0], id as u64), Outcome::Held));
            assert!(e.reassembler().datagrams() <= 64);
            assert!(e.reassembler().bytes() <= cap_bytes);
            e.drain_dropped(&mut dropped);
        }
        assert_eq!(dropped.len(), 20_000 - 64, "every evicted fragment is reported");
        assert!(dropped.iter().all(|(_, v)| v.action == Action::Drop));
    }
}
