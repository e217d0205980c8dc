//! The fields rules can read: names, types, and how each is taken from a parsed message.
//!
//! Extraction is lazy: a field is located only when a rule reads it, and the evaluator caches
//! each field's values for the message, so twenty rules on `sip.from.user` parse From once.
//! A field has one value per occurrence (every Contact, every Via hop, every header line of
//! a name) and URI parts are in their normal form (`sip::normal`), the raw bytes being the
//! `.raw` fields: rules see values as the endpoint will (DESIGN §9).

use crate::sip::auth::Digest;
use crate::sip::normal::{self, Norm, NormError};
use crate::sip::uri::Uri;
use crate::sip::{HeaderName, Message, NameAddr, Reason};
use std::net::{IpAddr, SocketAddr};

/// The type of a field's value, for type-checking tests at compile time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Bytes.
    Str,
    /// Integer.
    Num,
    /// True or false.
    Bool,
    /// IP address.
    Ip,
}

/// A part of a name-addr header (From, To, Contact).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// The whole header value.
    Whole,
    /// The URI.
    Uri,
    /// The URI's user part.
    User,
    /// The URI's host.
    Host,
    /// The `tag` parameter.
    Tag,
    /// The display name.
    Display,
    /// The `expires` parameter.
    Expires,
    /// The URI as written (`.uri.raw`).
    RawUri,
    /// The user part as written (`.user.raw`).
    RawUser,
    /// The host as written (`.host.raw`).
    RawHost,
}

/// A readable field.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// `sip.method`
    Method,
    /// `sip.status`
    Status,
    /// `sip.reason`
    Reason,
    /// `sip.is_request`
    IsRequest,
    /// `sip.is_response`
    IsResponse,
    /// `sip.ruri` and its parts (user, host, port as `Display`... see `RuriPort`).
    Ruri(Part),
    /// `sip.ruri.port`
    RuriPort,
    /// `sip.from.*`
    From(Part),
    /// `sip.to.*`
    To(Part),
    /// `sip.contact.*`
    Contact(Part),
    /// `sip.route.*`
    Route(Part),
    /// `sip.record_route.*`
    RecordRoute(Part),
    /// `sip.call_id`
    CallId,
    /// `sip.cseq`
    CSeq,
    /// `sip.cseq.method`
    CSeqMethod,
    /// `sip.cseq.number`
    CSeqNumber,
    /// `sip.via`
    Via,
    /// `sip.via.branch`
    ViaBranch,
    /// `sip.via.host`
    ViaHost,
    /// `sip.via.port`
    ViaPort,
    /// `sip.via.transport`
    ViaTransport,
    /// `sip.via.received`
    ViaReceived,
    /// `sip.ua`
    Ua,
    /// `sip.server`
    Server,
    /// `sip.max_forwards`
    MaxForwards,
    /// `sip.expires`
    Expires,
    /// `sip.content_length`
    ContentLength,
    /// `sip.content_type`
    ContentType,
    /// `sip.body`
    Body,
    /// `sip.auth.username`
    AuthUsername,
    /// `sip.auth.realm`
    AuthRealm,
    /// `sip.auth.uri`
    AuthUri,
    /// `sip.auth.response`
    AuthResponse,
    /// `sip.headers.NAME` (lower-case name)
    Header(String),
    /// `sip.headers.ANY`: every header's value
    HeaderAny,
    /// `sip.length`
    Length,
    /// `sip.malformed`
    Malformed,
    /// `sip.malformed.REASON`
    MalformedReason(Reason),
    /// `ip.src`
    IpSrc,
    /// `ip.dst`
    IpDst,
    /// `l4.srcport`
    SrcPort,
    /// `l4.dstport`
    DstPort,
    /// `transport`
    Transport,
    /// `dialog.exists`
    DialogExists,
    /// `dialog.confirmed`
    DialogConfirmed,
    /// `transaction.exists`
    TransactionExists,
    /// `transaction.retransmissions`
    TransactionRetransmissions,
}

/// Every fixed field name with its field and type (the `sip.headers.*` and `sip.malformed.*`
/// families are resolved separately).
pub const FIELDS: &[(&str, Kind)] = &[
    ("sip.method", Kind::Str),
    ("sip.status", Kind::Num),
    ("sip.reason", Kind::Str),
    ("sip.is_request", Kind::Bool),
    ("sip.is_response", Kind::Bool),
    ("sip.ruri", Kind::Str),
    ("sip.ruri.raw", Kind::Str),
    ("sip.ruri.user", Kind::Str),
    ("sip.ruri.user.raw", Kind::Str),
    ("sip.ruri.host", Kind::Str),
    ("sip.ruri.host.raw", Kind::Str),
    ("sip.ruri.port", Kind::Num),
    ("sip.from", Kind::Str),
    ("sip.from.uri", Kind::Str),
    ("sip.from.uri.raw", Kind::Str),
    ("sip.from.user", Kind::Str),
    ("sip.from.user.raw", Kind::Str),
    ("sip.from.host", Kind::Str),
    ("sip.from.host.raw", Kind::Str),
    ("sip.from.tag", Kind::Str),
    ("sip.from.display", Kind::Str),
    ("sip.to", Kind::Str),
    ("sip.to.uri", Kind::Str),
    ("sip.to.uri.raw", Kind::Str),
    ("sip.to.user", Kind::Str),
    ("sip.to.user.raw", Kind::Str),
    ("sip.to.host", Kind::Str),
    ("sip.to.host.raw", Kind::Str),
    ("sip.to.tag", Kind::Str),
    ("sip.to.display", Kind::Str),
    ("sip.contact", Kind::Str),
    ("sip.contact.uri", Kind::Str),
    ("sip.contact.uri.raw", Kind::Str),
    ("sip.contact.user", Kind::Str),
    ("sip.contact.user.raw", Kind::Str),
    ("sip.contact.host", Kind::Str),
    ("sip.contact.host.raw", Kind::Str),
    ("sip.contact.expires", Kind::Num),
    ("sip.route", Kind::Str),
    ("sip.route.uri", Kind::Str),
    ("sip.route.uri.raw", Kind::Str),
    ("sip.route.user", Kind::Str),
    ("sip.route.user.raw", Kind::Str),
    ("sip.route.host", Kind::Str),
    ("sip.route.host.raw", Kind::Str),
    ("sip.record_route", Kind::Str),
    ("sip.record_route.uri", Kind::Str),
    ("sip.record_route.uri.raw", Kind::Str),
    ("sip.record_route.user", Kind::Str),
    ("sip.record_route.user.raw", Kind::Str),
    ("sip.record_route.host", Kind::Str),
    ("sip.record_route.host.raw", Kind::Str),
    ("sip.call_id", Kind::Str),
    ("sip.cseq", Kind::Str),
    ("sip.cseq.method", Kind::Str),
    ("sip.cseq.number", Kind::Num),
    ("sip.via", Kind::Str),
    ("sip.via.branch", Kind::Str),
    ("sip.via.host", Kind::Str),
    ("sip.via.port", Kind::Num),
    ("sip.via.transport", Kind::Str),
    ("sip.via.received", Kind::Str),
    ("sip.ua", Kind::Str),
    ("sip.server", Kind::Str),
    ("sip.max_forwards", Kind::Num),
    ("sip.expires", Kind::Num),
    ("sip.content_length", Kind::Num),
    ("sip.content_type", Kind::Str),
    ("sip.body", Kind::Str),
    ("sip.auth.username", Kind::Str),
    ("sip.auth.realm", Kind::Str),
    ("sip.auth.uri", Kind::Str),
    ("sip.auth.response", Kind::Str),
    ("sip.headers.ANY", Kind::Str),
    ("sip.length", Kind::Num),
    ("sip.malformed", Kind::Bool),
    ("ip.src", Kind::Ip),
    ("ip.dst", Kind::Ip),
    ("l4.srcport", Kind::Num),
    ("l4.dstport", Kind::Num),
    ("transport", Kind::Str),
    ("dialog.exists", Kind::Bool),
    ("dialog.confirmed", Kind::Bool),
    ("transaction.exists", Kind::Bool),
    ("transaction.retransmissions", Kind::Num),
];

fn addr_part(rest: &str) -> Option<Part> {
    Some(match rest {
        "" => Part::Whole,
        ".uri" => Part::Uri,
        ".uri.raw" => Part::RawUri,
        ".user" => Part::User,
        ".user.raw" => Part::RawUser,
        ".host" => Part::Host,
        ".host.raw" => Part::RawHost,
        ".tag" => Part::Tag,
        ".display" => Part::Display,
        _ => return None,
    })
}

impl Field {
    /// Resolves a field name; `None` when it is not a field.
    pub fn lookup(name: &str) -> Option<(Field, Kind)> {
        if let Some(h) = name.strip_prefix("sip.headers.") {
            if h.eq_ignore_ascii_case("any") {
                return Some((Field::HeaderAny, Kind::Str));
            }
            let ok = !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            return ok.then(|| (Field::Header(h.to_ascii_lowercase()), Kind::Str));
        }
        if let Some(r) = name.strip_prefix("sip.malformed.") {
            return Reason::from_name(r).map(|r| (Field::MalformedReason(r), Kind::Bool));
        }
        let kind = FIELDS.iter().find(|(n, _)| *n == name)?.1;
        let f = match name {
            "sip.method" => Field::Method,
            "sip.status" => Field::Status,
            "sip.reason" => Field::Reason,
            "sip.is_request" => Field::IsRequest,
            "sip.is_response" => Field::IsResponse,
            "sip.ruri" => Field::Ruri(Part::Uri),
            "sip.ruri.raw" => Field::Ruri(Part::RawUri),
            "sip.ruri.user" => Field::Ruri(Part::User),
            "sip.ruri.user.raw" => Field::Ruri(Part::RawUser),
            "sip.ruri.host" => Field::Ruri(Part::Host),
            "sip.ruri.host.raw" => Field::Ruri(Part::RawHost),
            "sip.ruri.port" => Field::RuriPort,
            "sip.contact.expires" => Field::Contact(Part::Expires),
            "sip.call_id" => Field::CallId,
            "sip.cseq" => Field::CSeq,
            "sip.cseq.method" => Field::CSeqMethod,
            "sip.cseq.number" => Field::CSeqNumber,
            "sip.via" => Field::Via,
            "sip.via.branch" => Field::ViaBranch,
            "sip.via.host" => Field::ViaHost,
            "sip.via.port" => Field::ViaPort,
            "sip.via.transport" => Field::ViaTransport,
            "sip.via.received" => Field::ViaReceived,
            "sip.ua" => Field::Ua,
            "sip.server" => Field::Server,
            "sip.max_forwards" => Field::MaxForwards,
            "sip.expires" => Field::Expires,
            "sip.content_length" => Field::ContentLength,
            "sip.content_type" => Field::ContentType,
            "sip.body" => Field::Body,
            "sip.auth.username" => Field::AuthUsername,
            "sip.auth.realm" => Field::AuthRealm,
            "sip.auth.uri" => Field::AuthUri,
            "sip.auth.response" => Field::AuthResponse,
            "sip.length" => Field::Length,
            "sip.malformed" => Field::Malformed,
            "ip.src" => Field::IpSrc,
            "ip.dst" => Field::IpDst,
            "l4.srcport" => Field::SrcPort,
            "l4.dstport" => Field::DstPort,
            "transport" => Field::Transport,
            "dialog.exists" => Field::DialogExists,
            "dialog.confirmed" => Field::DialogConfirmed,
            "transaction.exists" => Field::TransactionExists,
            "transaction.retransmissions" => Field::TransactionRetransmissions,
            n => {
                if let Some(p) = n.strip_prefix("sip.from").and_then(addr_part) {
                    Field::From(p)
                } else if let Some(p) = n.strip_prefix("sip.to").and_then(addr_part) {
                    Field::To(p)
                } else if let Some(p) = n.strip_prefix("sip.contact").and_then(addr_part) {
                    Field::Contact(p)
                } else if let Some(p) = n.strip_prefix("sip.route").and_then(addr_part) {
                    Field::Route(p)
                } else if let Some(p) = n.strip_prefix("sip.record_route").and_then(addr_part) {
                    Field::RecordRoute(p)
                } else {
                    return None;
                }
            }
        };
        Some((f, kind))
    }

    /// True for fields whose value depends on engine state rather than on the message.
    pub fn is_stateful(&self) -> bool {
        matches!(
            self,
            Field::DialogExists | Field::DialogConfirmed | Field::TransactionExists | Field::TransactionRetransmissions
        )
    }
}

/// The closest known name to `name` (edit distance), for "did you mean" hints.
pub fn suggest<'a>(name: &str, extra: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    let reasons = Reason::ALL.iter().map(|r| format!("sip.malformed.{}", r.name()));
    let fixed = FIELDS.iter().map(|(n, _)| n.to_string());
    for cand in fixed.chain(reasons).chain(extra.map(str::to_string)) {
        let d = edit_distance(name, &cand);
        if best.as_ref().is_none_or(|(bd, _)| d < *bd) {
            best = Some((d, cand));
        }
    }
    // A suggestion further than about a third of the name away is noise.
    best.filter(|(d, _)| *d <= name.len().max(3) / 3 + 1).map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let sub = prev[j - 1] + (a[i - 1] != b[j - 1]) as usize;
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// A field's value in one message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Not present.
    Absent,
    /// Bytes.
    Str(&'a [u8]),
    /// Integer.
    Num(i64),
    /// Boolean.
    Bool(bool),
    /// Address.
    Ip(IpAddr),
}

impl<'a> Value<'a> {
    /// The bytes, for string values.
    pub fn bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Str(b) => Some(b),
            _ => None,
        }
    }

    /// Truth of a lone value: present, non-empty, non-zero, true.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Absent => false,
            Value::Str(b) => !b.is_empty(),
            Value::Num(n) => *n != 0,
            Value::Bool(b) => *b,
            Value::Ip(_) => true,
        }
    }
}

/// What the engine knows about the message's state, read by `dialog.*` / `transaction.*`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateView {
    /// The message belongs to a tracked dialog.
    pub dialog_exists: bool,
    /// That dialog is confirmed.
    pub dialog_confirmed: bool,
    /// The message matches a live transaction.
    pub transaction_exists: bool,
    /// Retransmissions of the transaction's request so far.
    pub retransmissions: u16,
}

/// A message and its envelope, as rules see it.
pub struct MsgCtx<'m, 'a> {
    /// The parsed message.
    pub msg: &'m Message<'a>,
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// `udp` or `tcp`.
    pub transport: &'static str,
    /// State lookups.
    pub state: StateView,
}

/// One value of a field as the evaluator keeps it for a message: a range of the message
/// buffer or of the scratch buffer (normal forms), or a scalar.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Item {
    Msg(u32, u32),
    Scratch(u32, u32),
    Num(i64),
    Bool(bool),
    Ip(IpAddr),
}

/// The values of the fields read for one message, and the scratch that holds the normal
/// forms that differ from the message's bytes. Cleared per message; once warm (capacity
/// reached) it never allocates.
#[derive(Default, Debug)]
pub struct Values {
    items: Vec<Item>,
    scratch: Vec<u8>,
}

impl Values {
    /// Forgets every value (keeps the capacity).
    pub fn clear(&mut self) {
        self.items.clear();
        self.scratch.clear();
    }

    /// Number of values held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when no value is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Value `i`; `buf` is the message buffer the values were taken from.
    pub fn get<'v>(&'v self, i: usize, buf: &'v [u8]) -> Value<'v> {
        match self.items.get(i) {
            None => Value::Absent,
            Some(&Item::Msg(a, b)) => Value::Str(buf.get(a as usize..b as usize).unwrap_or_default()),
            Some(&Item::Scratch(a, b)) => Value::Str(self.scratch.get(a as usize..b as usize).unwrap_or_default()),
            Some(&Item::Num(n)) => Value::Num(n),
            Some(&Item::Bool(b)) => Value::Bool(b),
            Some(&Item::Ip(ip)) => Value::Ip(ip),
        }
    }

    fn push(&mut self, buf: &[u8], v: Value<'_>) {
        let item = match v {
            Value::Absent => return,
            Value::Str(b) => return self.push_bytes(buf, b),
            Value::Num(n) => Item::Num(n),
            Value::Bool(b) => Item::Bool(b),
            Value::Ip(ip) => Item::Ip(ip),
        };
        self.items.push(item);
    }

    /// Bytes of the message by range; anything else (a transport name) is copied.
    fn push_bytes(&mut self, buf: &[u8], b: &[u8]) {
        let start = (b.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
        if start <= buf.len() && b.len() <= buf.len() - start {
            self.items.push(Item::Msg(start as u32, (start + b.len()) as u32));
        } else {
            let s = self.scratch.len();
            self.scratch.extend_from_slice(b);
            self.items.push(Item::Scratch(s as u32, self.scratch.len() as u32));
        }
    }

    /// The normal form of `raw` as `norm` writes it into the scratch; `raw` itself when it
    /// is already normal or has no normal form (validation reports that as `bad_encoding`).
    fn push_norm(&mut self, buf: &[u8], raw: &[u8], norm: impl FnOnce(&mut Vec<u8>) -> Result<Norm, NormError>) {
        match norm(&mut self.scratch) {
            Ok(Norm::Written(r)) => self.items.push(Item::Scratch(r.start as u32, r.end as u32)),
            Ok(Norm::Raw) | Err(_) => self.push_bytes(buf, raw),
        }
    }

    /// The URI part `part` of the URI `raw` (normal or raw as the part says).
    fn push_uri_part(&mut self, buf: &[u8], raw: &[u8], part: Part) {
        if part == Part::RawUri {
            return self.push_bytes(buf, raw);
        }
        let Ok(u) = Uri::parse(raw) else {
            // An unparsable URI (validation names it) still shows as written.
            if part == Part::Uri {
                self.push_bytes(buf, raw);
            }
            return;
        };
        match part {
            Part::Uri => self.push_norm(buf, raw, |o| normal::uri(&u, o)),
            Part::User => {
                if let Some(user) = u.user {
                    self.push_norm(buf, user, |o| normal::user(&u, o));
                }
            }
            Part::RawUser => {
                if let Some(user) = u.user {
                    self.push_bytes(buf, user);
                }
            }
            Part::Host => self.push_norm(buf, u.host, |o| normal::host(&u, o)),
            Part::RawHost => self.push_bytes(buf, u.host),
            _ => {}
        }
    }

    /// Part `part` of one address element (a From value, one Contact).
    fn push_name_addr(&mut self, buf: &[u8], el: &[u8], part: Part) {
        if part == Part::Whole {
            return self.push_bytes(buf, el);
        }
        let Some(na) = NameAddr::parse(el) else { return };
        match part {
            Part::Tag => self.push(buf, na.tag().map_or(Value::Absent, Value::Str)),
            Part::Display => self.push(buf, na.display.map_or(Value::Absent, Value::Str)),
            Part::Expires => self.push(buf, na.expires().map_or(Value::Absent, |e| Value::Num(e as i64))),
            p => self.push_uri_part(buf, na.uri, p),
        }
    }
}

fn num<T: Into<i64>>(v: Option<T>) -> Value<'static> {
    v.map_or(Value::Absent, |n| Value::Num(n.into()))
}

impl<'m, 'a> MsgCtx<'m, 'a> {
    /// Appends every value of `f` in this message to `out`, in message order: one per
    /// element of a list header (Contact, Via, Route, Record-Route), one per header line of
    /// a repeatable header (User-Agent, Server, credentials, `sip.headers.*`), else at most one.
    pub fn collect(&self, f: &Field, out: &mut Values) {
        let m = self.msg;
        let buf = m.buf();
        let s = |o: Option<&'a [u8]>| o.map_or(Value::Absent, Value::Str);
        let one = match f {
            Field::Ruri(p) => {
                if let Some(u) = m.request_uri_bytes() {
                    out.push_uri_part(buf, u, *p);
                }
                return;
            }
            Field::From(p) | Field::To(p) => {
                let h = if matches!(f, Field::From(_)) { HeaderName::From } else { HeaderName::To };
                if let Some(v) = m.header(h) {
                    out.push_name_addr(buf, v, *p);
                }
                return;
            }
            Field::Contact(p) | Field::Route(p) | Field::RecordRoute(p) => {
                let h = match f {
                    Field::Contact(_) => HeaderName::Contact,
                    Field::Route(_) => HeaderName::Route,
                    _ => HeaderName::RecordRoute,
                };
                for el in m.elements(h) {
                    out.push_name_addr(buf, el, *p);
                }
                return;
            }
            Field::Via => {
                for el in m.elements(HeaderName::Via) {
                    out.push_bytes(buf, el);
                }
                return;
            }
            Field::ViaBranch | Field::ViaHost | Field::ViaPort | Field::ViaTransport | Field::ViaReceived => {
                for v in m.vias() {
                    let val = match f {
                        Field::ViaBranch => s(v.branch()),
                        Field::ViaHost => Value::Str(v.host),
                        Field::ViaPort => num(v.port),
                        Field::ViaTransport => Value::Str(v.transport),
                        _ => s(v.received()),
                    };
                    out.push(buf, val);
                }
                return;
            }
            Field::Ua | Field::Server => {
                let h = if matches!(f, Field::Ua) { HeaderName::UserAgent } else { HeaderName::Server };
                for v in m.headers_named(h) {
                    out.push_bytes(buf, v);
                }
                return;
            }
            Field::AuthUsername | Field::AuthRealm | Field::AuthUri | Field::AuthResponse => {
                let name: &[u8] = match f {
                    Field::AuthUsername => b"username",
                    Field::AuthRealm => b"realm",
                    Field::AuthUri => b"uri",
                    _ => b"response",
                };
                let creds = m.headers_named(HeaderName::Authorization).chain(m.headers_named(HeaderName::ProxyAuthorization));
                for d in creds.filter_map(|v| Digest::parse(v).ok()) {
                    out.push(buf, s(d.get(name)));
                }
                return;
            }
            Field::Header(name) => {
                for v in m.header_by_name(name.as_bytes()) {
                    out.push_bytes(buf, v);
                }
                return;
            }
            Field::HeaderAny => {
                for h in m.headers() {
                    out.push_bytes(buf, h.value.get(buf));
                }
                return;
            }
            Field::Method => s(m.method_bytes()),
            Field::Status => num(m.status()),
            Field::Reason => s(m.reason_phrase()),
            Field::IsRequest => Value::Bool(m.is_request()),
            Field::IsResponse => Value::Bool(m.is_response()),
            Field::RuriPort => num(m.request_uri().and_then(Result::ok).and_then(|u| u.port)),
            Field::CallId => s(m.call_id()),
            Field::CSeq => s(m.header(HeaderName::CSeq)),
            Field::CSeqMethod => s(m.cseq().map(|c| c.method_bytes)),
            Field::CSeqNumber => num(m.cseq().map(|c| c.number)),
            Field::MaxForwards => num(m.max_forwards()),
            Field::Expires => num(m.expires()),
            Field::ContentLength => num(m.content_length()),
            Field::ContentType => s(m.content_type()),
            Field::Body => Value::Str(m.body()),
            Field::Length => Value::Num(m.buf().len() as i64),
            Field::Malformed => Value::Bool(!m.reasons().is_empty()),
            Field::MalformedReason(r) => Value::Bool(m.reasons().contains(*r)),
            Field::IpSrc => Value::Ip(self.src.ip()),
            Field::IpDst => Value::Ip(self.dst.ip()),
            Field::SrcPort => Value::Num(self.src.port() as i64),
            Field::DstPort => Value::Num(self.dst.port() as i64),
            Field::Transport => Value::Str(self.transport.as_bytes()),
            Field::DialogExists => Value::Bool(self.state.dialog_exists),
            Field::DialogConfirmed => Value::Bool(self.state.dialog_confirmed),
            Field::TransactionExists => Value::Bool(self.state.transaction_exists),
            Field::TransactionRetransmissions => Value::Num(self.state.retransmissions as i64),
        };
        out.push(buf, one);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{Limits, Parser};

    const MSG: &[u8] = b"INVITE sip:+15551234@gw.example.com:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;received=192.0.2.9\r\n\
Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKdef\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1234\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: abc@host\r\n\
CSeq: 7 INVITE\r\n\
Contact: <sip:alice@192.0.2.1>;expires=60, <sip:alice@192.0.2.2>\r\n\
User-Agent: friendly-scanner\r\n\
Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n\
Authorization: Digest username=\"100\", realm=\"pbx\", nonce=\"n\", uri=\"sip:gw\", response=\"0123456789abcdef0123456789abcdef\"\r\n\
Content-Length: 0\r\n\r\n";

    fn ctx_of<'m, 'a>(msg: &'m Message<'a>) -> MsgCtx<'m, 'a> {
        MsgCtx {
            msg,
            src: "192.0.2.1:5060".parse().unwrap(),
            dst: "192.0.2.2:5060".parse().unwrap(),
            transport: "udp",
            state: StateView::default(),
        }
    }

    /// Every value of field `name`, as text.
    fn values(ctx: &MsgCtx<'_, '_>, name: &str) -> Vec<String> {
        let mut v = Values::default();
        ctx.collect(&Field::lookup(name).unwrap_or_else(|| panic!("{name}")).0, &mut v);
        (0..v.len())
            .map(|i| match v.get(i, ctx.msg.buf()) {
                Value::Str(b) => String::from_utf8_lossy(b).into_owned(),
                Value::Num(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Ip(ip) => ip.to_string(),
                Value::Absent => "absent".into(),
            })
            .collect()
    }

    #[test]
    fn every_fixed_name_resolves_and_extracts() {
        let mut p = Parser::new(Limits::default());
        let msg = p.parse(MSG);
        assert!(msg.reasons().is_empty());
        let ctx = ctx_of(&msg);
        for (name, kind) in FIELDS {
            let (_, k) = Field::lookup(name).unwrap_or_else(|| panic!("{name} does not resolve"));
            assert_eq!(k, *kind);
            let _ = values(&ctx, name);
        }
        let g = |n: &str| values(&ctx, n);
        assert_eq!(g("sip.method"), ["INVITE"]);
        assert_eq!(g("sip.ruri.user"), ["+15551234"]);
        assert_eq!(g("sip.ruri.port"), ["5070"]);
        assert_eq!(g("sip.from.user"), ["alice"]);
        assert_eq!(g("sip.from.display"), ["Alice"]);
        assert_eq!(g("sip.from.tag"), ["1234"]);
        assert!(g("sip.to.tag").is_empty());
        assert_eq!(g("sip.contact.expires"), ["60"]);
        assert_eq!(g("sip.contact.host"), ["192.0.2.1", "192.0.2.2"]);
        assert_eq!(g("sip.via.branch"), ["z9hG4bKabc", "z9hG4bKdef"]);
        assert_eq!(g("sip.via.received"), ["192.0.2.9"]);
        assert_eq!(g("sip.cseq.number"), ["7"]);
        assert_eq!(g("sip.ua"), ["friendly-scanner"]);
        assert_eq!(g("sip.headers.date"), ["Sat, 13 Nov 2010 23:29:00 GMT"]);
        assert_eq!(g("sip.headers.DATE"), ["Sat, 13 Nov 2010 23:29:00 GMT"]);
        assert_eq!(g("sip.headers.ANY").len(), msg.headers().len());
        assert_eq!(g("sip.auth.username"), ["100"]);
        assert_eq!(g("sip.malformed"), ["false"]);
        assert_eq!(g("sip.malformed.missing_call_id"), ["false"]);
        assert_eq!(g("ip.src"), ["192.0.2.1"]);
        assert_eq!(g("transport"), ["udp"]);
        assert_eq!(g("sip.via").len(), 2);
        assert_eq!(g("sip.contact").len(), 2);
        assert_eq!(g("sip.headers.via").len(), 2);
    }

    #[test]
    fn normal_and_raw_forms() {
        let text = b"INVITE SIP:%2B882-16-555@GW.Example;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKabc\r\n\
From: <sip:%61lice@Example.com>;tag=1\r\n\
To: <tel:16-555;phone-context=+882>\r\n\
Call-ID: x@h\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:a@h1>\r\n\
Contact: <sip:b@H2>, <sip:c@h3>\r\n\
Route: <sip:p1.example;lr>, <sip:%70x@P2.example;lr>\r\n\
User-Agent: polite\r\n\
User-Agent: friendly-scanner\r\n\
Content-Length: 0\r\n\r\n";
        let mut p = Parser::new(Limits::default());
        let msg = p.parse(text);
        let ctx = ctx_of(&msg);
        let g = |n: &str| values(&ctx, n);
        assert_eq!(g("sip.ruri"), ["sip:+88216555@gw.example;user=phone"]);
        assert_eq!(g("sip.ruri.raw"), ["SIP:%2B882-16-555@GW.Example;user=phone"]);
        assert_eq!(g("sip.ruri.user"), ["+88216555"]);
        assert_eq!(g("sip.ruri.user.raw"), ["%2B882-16-555"]);
        assert_eq!(g("sip.ruri.host"), ["gw.example"]);
        assert_eq!(g("sip.ruri.host.raw"), ["GW.Example"]);
        assert_eq!(g("sip.from.user"), ["alice"]);
        assert_eq!(g("sip.from.uri"), ["sip:alice@example.com"]);
        assert_eq!(g("sip.to.user"), ["+88216555"]);
        assert_eq!(g("sip.contact.host"), ["h1", "h2", "h3"]);
        assert_eq!(g("sip.contact.host.raw"), ["h1", "H2", "h3"]);
        assert_eq!(g("sip.route.host"), ["p1.example", "p2.example"]);
        assert_eq!(g("sip.route.user"), ["px"]);
        assert_eq!(g("sip.record_route"), Vec::<String>::new());
        assert_eq!(g("sip.ua"), ["polite", "friendly-scanner"]);
    }

    #[test]
    fn unknown_names_are_refused_and_suggested() {
        assert!(Field::lookup("sip.metod").is_none());
        assert_eq!(suggest("sip.metod", std::iter::empty()).as_deref(), Some("sip.method"));
        assert_eq!(suggest("sip.from.usr", std::iter::empty()).as_deref(), Some("sip.from.user"));
        assert_eq!(suggest("ip.scr", std::iter::empty()).as_deref(), Some("ip.src"));
        assert_eq!(suggest("from_lst", ["from_list"].into_iter()).as_deref(), Some("from_list"));
        assert_eq!(suggest("zzzzzzzzzzzz", std::iter::empty()), None);
        assert!(Field::lookup("sip.malformed.no_such_reason").is_none());
        assert!(Field::lookup("sip.headers.").is_none());
        assert!(Field::lookup("sip.headers.x-custom").is_some());
    }
}
