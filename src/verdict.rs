//! What happens to a frame, and why: declared once, counted everywhere.

use crate::stream::StreamError;
use crate::wire::reasm::ReasmError;
use crate::wire::DecodeError;

/// What the data path does with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send it on to the other NIC.
    Forward,
    /// Discard it.
    Drop,
    /// Discard it and answer the sender with a SIP response.
    Reject,
}

impl Action {
    /// `accept` or `drop`, as reports and JSON name it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Forward => "accept",
            Action::Drop => "drop",
            Action::Reject => "reject",
        }
    }
}

/// Why the action was taken. Every variant has a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// Not SIP (not IP, not a SIP port, not UDP/TCP): bridged untouched.
    NotSip,
    /// A SIP message that passed validation.
    Valid,
    /// A SIP message that failed validation; the reasons travel with the message.
    Malformed,
    /// A TCP segment carrying only CRLF keepalives (RFC 5626), released once framed.
    Keepalive,
    /// A TCP retransmission of bytes already judged, verified equal (or already acknowledged).
    Retransmission,
    /// A TCP segment refused, or a connection reset, by stream reassembly or framing.
    Stream(StreamError),
    /// The frame claims to be IP but cannot be decoded.
    Decode(DecodeError),
    /// A fragment whose datagram was abandoned.
    Fragment(ReasmError),
    /// A rule decided (index in the rule set that judged the message).
    Rule(u32),
    /// The source is banned: dropped before parsing.
    Banned,
    /// A frame of a TLS port let through by its policy, uninspected (it is encrypted).
    TlsUninspected,
    /// A frame of a TLS port refused by its policy or the SYN rate.
    Tls(crate::engine::tls::TlsDenial),
}

impl Cause {
    /// Stable snake_case name for counters and logs (`decode.truncated_udp`, `fragment.overlap`).
    pub fn name(&self) -> String {
        match self {
            Cause::NotSip => "not_sip".into(),
            Cause::Valid => "valid".into(),
            Cause::Malformed => "malformed".into(),
            Cause::Keepalive => "keepalive".into(),
            Cause::Retransmission => "retransmission".into(),
            Cause::Stream(e) => format!("stream.{}", e.name()),
            Cause::Decode(e) => format!("decode.{}", e.name()),
            Cause::Fragment(e) => format!("fragment.{}", e.name()),
            Cause::Rule(_) => "rule".into(),
            Cause::Banned => "banned".into(),
            Cause::TlsUninspected => "tls_uninspected".into(),
            Cause::Tls(d) => format!("tls.{}", d.name()),
        }
    }
}

/// The engine's judgement on a frame (or on all the fragments of one datagram).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Verdict {
    /// Forward or drop.
    pub action: Action,
    /// Why.
    pub cause: Cause,
}

impl Verdict {
    /// Forward for `cause`.
    pub fn forward(cause: Cause) -> Verdict {
        Verdict { action: Action::Forward, cause }
    }
    /// Drop for `cause`.
    pub fn drop(cause: Cause) -> Verdict {
        Verdict { action: Action::Drop, cause }
    }
}

/// What to do with frames in a class the operator may want either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Discard (the default for anything that failed a check).
    #[default]
    Drop,
    /// Let it through, counted.
    Forward,
}

impl Policy {
    /// The action this policy takes.
    pub fn action(&self) -> Action {
        match self {
            Policy::Drop => Action::Drop,
            Policy::Forward => Action::Forward,
        }
    }
}
