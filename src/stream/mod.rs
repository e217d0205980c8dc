//! SIP over TCP as a stream: per-connection reassembly and RFC 3261 §18.3 framing, sans-IO.
//!
//! [`Streams`] follows each TCP connection in both directions and hands out whole SIP
//! messages; it never reads a clock or touches a socket, time is passed in (like quinn-proto).
//! The caller (the engine) drives it per segment:
//!
//! 1. [`Streams::push`] a segment; it says whether the segment can pass at once (handshake,
//!    pure ACK, a verified retransmission), is held, must be dropped, or breaks the stream;
//! 2. while [`Streams::next_message`] yields a message, judge it and [`Streams::accept`] it
//!    (or [`Streams::abort`] the connection, which yields where to reset it);
//! 3. [`Streams::release`] the frames whose bytes are all judged, to forward them in order.
//!
//! Policy, stated once:
//! - **First data wins, and a conflict is an attack.** A segment that overlaps bytes already
//!   received (held, or forwarded but not yet acknowledged by the peer) must carry the same
//!   bytes; otherwise the endpoint and the firewall could read different streams (the TCP
//!   variant of overlapping fragments), so the connection is reset.
//! - Bytes forwarded are kept until the peer acknowledges them, so a retransmission is
//!   compared, not trusted. A segment wholly below what the peer acknowledged passes: the
//!   endpoint discards it.
//! - Out-of-order data is held if it lies within `window_bytes` of the judged point; beyond
//!   that it is dropped (the sender retransmits), never forwarded ahead of its message.
//! - A connection first seen mid-stream (after a restart) is picked up at the first segment
//!   seen, which must begin a message; earlier bytes are dropped until the peer's ACK proves
//!   the endpoint already has them.
//! - Every bound is per connection and in all; evictions and timeouts drop the held frames,
//!   counted by cause.

pub mod framing;
pub mod reassembly;
pub mod websocket;

pub use reassembly::{Push, ResetPoint, Streams};

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Why a connection's stream was broken (or a segment refused); one counter per variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamError {
    /// A message without Content-Length: over a stream its end cannot be found (RFC 3261 §18.3).
    MissingContentLength,
    /// A Content-Length that is not one decimal number, or two that disagree.
    BadContentLength,
    /// A message larger than `max_message_bytes` (or headers that do not end within it).
    MessageTooLarge,
    /// A segment overlapping earlier bytes of the stream with different bytes.
    ConflictingOverlap,
    /// Data beyond the reassembly window: dropped, the sender retransmits.
    OutOfWindow,
    /// Data before the pickup point of a connection first seen mid-stream, not yet proven
    /// received by the endpoint: dropped.
    BeforePickup,
    /// A connection holding more than `max_flow_bytes`.
    FlowOverBudget,
    /// A connection holding more than `max_flow_segments` frames.
    TooManySegments,
    /// A message not completed within `timeout_ms`.
    Timeout,
    /// A connection evicted to make room (`max_flows` or `max_bytes`).
    Evicted,
    /// Frames held for a connection its peer reset or restarted.
    PeerReset,
    /// A message the engine owning its Call-ID could not be asked about (its queue full, or
    /// no consult buffer free): never forwarded unjudged, so the connection is reset.
    ConsultRefused,
    /// On a WebSocket port, bytes that are not the client's upgrade request (or a 101 without one).
    WsNoUpgrade,
    /// An upgrade request or 101 missing what RFC 6455 requires, with a body, or naming an extension.
    WsBadHandshake,
    /// An upgrade that does not offer, or a 101 that does not choose, exactly the `sip` subprotocol.
    WsSubprotocol,
    /// The server answered the upgrade with something other than 101.
    WsUpgradeRefused,
    /// An upgrade request or response longer than `max_handshake_bytes`.
    WsHandshakeTooLarge,
    /// The client sent data before the server's 101.
    WsEarlyData,
    /// A client frame without a mask (RFC 6455 §5.1).
    WsUnmasked,
    /// A masked server frame (RFC 6455 §5.1).
    WsMasked,
    /// A frame with reserved bits or opcode, a broken fragmentation sequence, or a bad control frame.
    WsBadFrame,
    /// Data after a close frame from the same side.
    WsAfterClose,
}

impl StreamError {
    /// Every variant, in declaration order (for counter tables).
    pub const ALL: &'static [StreamError] = &[
        StreamError::MissingContentLength,
        StreamError::BadContentLength,
        StreamError::MessageTooLarge,
        StreamError::ConflictingOverlap,
        StreamError::OutOfWindow,
        StreamError::BeforePickup,
        StreamError::FlowOverBudget,
        StreamError::TooManySegments,
        StreamError::Timeout,
        StreamError::Evicted,
        StreamError::PeerReset,
        StreamError::ConsultRefused,
        StreamError::WsNoUpgrade,
        StreamError::WsBadHandshake,
        StreamError::WsSubprotocol,
        StreamError::WsUpgradeRefused,
        StreamError::WsHandshakeTooLarge,
        StreamError::WsEarlyData,
        StreamError::WsUnmasked,
        StreamError::WsMasked,
        StreamError::WsBadFrame,
        StreamError::WsAfterClose,
    ];

    /// Stable snake_case name, used as a counter / metric label.
    pub fn name(&self) -> &'static str {
        match self {
            StreamError::MissingContentLength => "missing_content_length",
            StreamError::BadContentLength => "bad_content_length",
            StreamError::MessageTooLarge => "message_too_large",
            StreamError::ConflictingOverlap => "conflicting_overlap",
            StreamError::OutOfWindow => "out_of_window",
            StreamError::BeforePickup => "before_pickup",
            StreamError::FlowOverBudget => "flow_over_budget",
            StreamError::TooManySegments => "too_many_segments",
            StreamError::Timeout => "timeout",
            StreamError::Evicted => "evicted",
            StreamError::PeerReset => "peer_reset",
            StreamError::ConsultRefused => "consult_refused",
            StreamError::WsNoUpgrade => "ws_no_upgrade",
            StreamError::WsBadHandshake => "ws_bad_handshake",
            StreamError::WsSubprotocol => "ws_subprotocol",
            StreamError::WsUpgradeRefused => "ws_upgrade_refused",
            StreamError::WsHandshakeTooLarge => "ws_handshake_too_large",
            StreamError::WsEarlyData => "ws_early_data",
            StreamError::WsUnmasked => "ws_unmasked",
            StreamError::WsMasked => "ws_masked",
            StreamError::WsBadFrame => "ws_bad_frame",
            StreamError::WsAfterClose => "ws_after_close",
        }
    }

    /// Index in [`StreamError::ALL`].
    pub fn index(&self) -> usize {
        StreamError::ALL.iter().position(|e| e == self).unwrap_or(0)
    }
}

impl core::fmt::Display for StreamError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Bounds of TCP stream reassembly, per engine (`[engine.tcp]`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct StreamLimits {
    /// Connections tracked at once (default 65536); the least recently checked is evicted.
    pub max_flows: usize,
    /// Bytes buffered over all connections (default 64 MiB); the oldest are evicted past it.
    pub max_bytes: usize,
    /// Bytes buffered per connection, both directions (default 256 KiB).
    pub max_flow_bytes: usize,
    /// Frames held per connection (default 128): a stream cut into tiny segments is an evasion.
    pub max_flow_segments: usize,
    /// Largest SIP message, headers and body (default 65535).
    pub max_message_bytes: usize,
    /// How far past the judged point out-of-order data is held, in bytes (default 131072).
    pub window_bytes: usize,
    /// Time a connection may hold an unfinished message, in ms (default 5000).
    pub timeout_ms: u64,
    /// Time an idle connection is remembered, in seconds (default 3600); a forgotten one is
    /// picked up again mid-stream.
    pub idle_timeout_s: u64,
    /// Messages an engine may have out at once for judging by the engine that owns their
    /// Call-ID (default 256): the size of its consult buffer pool.
    pub consults: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_flows: 65536,
            max_bytes: 64 << 20,
            max_flow_bytes: 256 << 10,
            max_flow_segments: 128,
            max_message_bytes: 65535,
            window_bytes: 128 << 10,
            timeout_ms: 5000,
            idle_timeout_s: 3600,
            consults: 256,
        }
    }
}

impl StreamLimits {
    /// Checks the bounds make sense together; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_flows == 0 || self.max_flow_segments == 0 || self.timeout_ms == 0 || self.idle_timeout_s == 0 || self.consults == 0 {
            return Err("engine.tcp.max_flows, max_flow_segments, timeout_ms, idle_timeout_s and consults must be at least 1".into());
        }
        if self.max_message_bytes < 64 || self.max_flow_bytes < self.max_message_bytes {
            return Err(format!(
                "engine.tcp.max_flow_bytes = {} must be at least max_message_bytes = {} (which must be >= 64)",
                self.max_flow_bytes, self.max_message_bytes
            ));
        }
        if self.max_bytes < self.max_flow_bytes {
            return Err(format!("engine.tcp.max_bytes = {} must be at least max_flow_bytes = {}", self.max_bytes, self.max_flow_bytes));
        }
        if self.window_bytes > (1 << 30) {
            return Err(format!("engine.tcp.window_bytes = {}: must be at most 2^30", self.window_bytes));
        }
        Ok(())
    }
}

/// A connection, the same for both directions (`a` is the lower endpoint).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// The lower endpoint.
    pub a: SocketAddr,
    /// The higher endpoint.
    pub b: SocketAddr,
}

impl FlowKey {
    /// The connection of a segment from `src` to `dst`, and the segment's direction (0: a→b).
    pub fn of(src: SocketAddr, dst: SocketAddr) -> (FlowKey, usize) {
        if src <= dst {
            (FlowKey { a: src, b: dst }, 0)
        } else {
            (FlowKey { a: dst, b: src }, 1)
        }
    }
}

/// The TCP header fields reassembly reads, and the payload.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number, when the ACK flag is set.
    pub ack: Option<u32>,
    /// SYN flag.
    pub syn: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// Payload bytes.
    pub payload: &'a [u8],
}

/// Counters of stream reassembly.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StreamStats {
    /// Connections tracked now.
    pub flows: u64,
    /// Connections created.
    pub flows_created: u64,
    /// Connections picked up mid-stream (first segment without SYN).
    pub midstream: u64,
    /// Segments held until their message was judged.
    pub segments_held: u64,
    /// Messages framed and handed out.
    pub messages: u64,
    /// CRLF keepalives passed (RFC 5626 pings and pongs).
    pub keepalives: u64,
    /// WebSocket upgrade requests and 101s passed.
    pub ws_handshakes: u64,
    /// WebSocket messages framed (each one SIP message), counted in `messages` too.
    pub ws_messages: u64,
    /// WebSocket ping, pong and close frames passed.
    pub ws_control_frames: u64,
    /// Connections forgotten after `idle_timeout_s` with nothing held.
    pub idle_expired: u64,
    /// Streams broken or segments refused, by [`StreamError`] (indexed like `StreamError::ALL`).
    pub errors: Vec<u64>,
    /// Bytes buffered now.
    pub bytes: u64,
    /// Most bytes ever buffered at once.
    pub peak_bytes: u64,
}

impl StreamStats {
    /// Counters with a slot per [`StreamError`].
    pub fn new() -> StreamStats {
        StreamStats { errors: vec![0; StreamError::ALL.len()], ..Default::default() }
    }

    /// Copies `o` into `self` without allocating (both have a slot per [`StreamError`]).
    pub fn copy_from(&mut self, o: &StreamStats) {
        let StreamStats { flows, flows_created, midstream, segments_held, messages, keepalives, ws_handshakes, ws_messages, ws_control_frames, idle_expired, errors, bytes, peak_bytes } = o;
        (self.ws_handshakes, self.ws_messages, self.ws_control_frames) = (*ws_handshakes, *ws_messages, *ws_control_frames);
        (self.flows, self.flows_created, self.midstream, self.segments_held) = (*flows, *flows_created, *midstream, *segments_held);
        (self.messages, self.keepalives, self.idle_expired, self.bytes, self.peak_bytes) = (*messages, *keepalives, *idle_expired, *bytes, *peak_bytes);
        self.errors.resize(errors.len(), 0);
        self.errors.copy_from_slice(errors);
    }
}
