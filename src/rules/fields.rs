//! The fields rules can read: names, types, and how each is taken from a parsed message.
//!
//! Extraction is lazy: a field is located only when a rule reads it, and the evaluator caches
//! each field's value for the message, so twenty rules on `sip.from.user` parse From once.

use crate::sip::uri::Uri;
use crate::sip::{Contacts, HeaderName, Message, NameAddr, Reason};
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
    ("sip.ruri.user", Kind::Str),
    ("sip.ruri.host", Kind::Str),
    ("sip.ruri.port", Kind::Num),
    ("sip.from", Kind::Str),
    ("sip.from.uri", Kind::Str),
    ("sip.from.user", Kind::Str),
    ("sip.from.host", Kind::Str),
    ("sip.from.tag", Kind::Str),
    ("sip.from.display", Kind::Str),
    ("sip.to", Kind::Str),
    ("sip.to.uri", Kind::Str),
    ("sip.to.user", Kind::Str),
    ("sip.to.host", Kind::Str),
    ("sip.to.tag", Kind::Str),
    ("sip.to.display", Kind::Str),
    ("sip.contact", Kind::Str),
    ("sip.contact.uri", Kind::Str),
    ("sip.contact.user", Kind::Str),
    ("sip.contact.host", Kind::Str),
    ("sip.contact.expires", Kind::Num),
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
        ".user" => Part::User,
        ".host" => Part::Host,
        ".tag" => Part::Tag,
        ".display" => Part::Display,
        _ => return None,
    })
}

impl Field {
    /// Resolves a field name; `None` when it is not a field.
    pub fn lookup(name: &str) -> Option<(Field, Kind)> {
        if let Some(h) = name.strip_prefix("sip.headers.") {
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
            "sip.ruri" => Field::Ruri(Part::Whole),
            "sip.ruri.user" => Field::Ruri(Part::User),
            "sip.ruri.host" => Field::Ruri(Part::Host),
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

fn name_addr_part<'a>(na: Option<NameAddr<'a>>, raw: Option<&'a [u8]>, part: Part) -> Value<'a> {
    if part == Part::Whole {
        return raw.map_or(Value::Absent, Value::Str);
    }
    let Some(na) = na else { return Value::Absent };
    let s = |o: Option<&'a [u8]>| o.map_or(Value::Absent, Value::Str);
    match part {
        Part::Whole => unreachable!("handled above"),
        Part::Uri => Value::Str(na.uri),
        Part::Tag => s(na.tag()),
        Part::Display => s(na.display),
        Part::Expires => na.expires().map_or(Value::Absent, |e| Value::Num(e as i64)),
        Part::User => s(Uri::parse(na.uri).ok().and_then(|u| u.user)),
        Part::Host => s(Uri::parse(na.uri).ok().map(|u| u.host)),
    }
}

fn num<T: Into<i64>>(v: Option<T>) -> Value<'static> {
    v.map_or(Value::Absent, |n| Value::Num(n.into()))
}

fn digest_param<'a>(m: &Message<'a>, name: &[u8]) -> Value<'a> {
    let d = m.authorization().or_else(|| m.proxy_authorization()).and_then(Result::ok);
    d.and_then(|d| d.get(name)).map_or(Value::Absent, Value::Str)
}

impl<'m, 'a> MsgCtx<'m, 'a> {
    /// The value of `f` in this message.
    pub fn get(&self, f: &Field) -> Value<'a> {
        let m = self.msg;
        let s = |o: Option<&'a [u8]>| o.map_or(Value::Absent, Value::Str);
        match f {
            Field::Method => s(m.method_bytes()),
            Field::Status => num(m.status()),
            Field::Reason => s(m.reason_phrase()),
            Field::IsRequest => Value::Bool(m.is_request()),
            Field::IsResponse => Value::Bool(m.is_response()),
            Field::Ruri(Part::Whole) => s(m.request_uri_bytes()),
            Field::Ruri(p) => {
                let u = m.request_uri().and_then(Result::ok);
                match p {
                    Part::User => s(u.and_then(|u| u.user)),
                    Part::Host => s(u.map(|u| u.host)),
                    _ => Value::Absent,
                }
            }
            Field::RuriPort => num(m.request_uri().and_then(Result::ok).and_then(|u| u.port)),
            Field::From(p) => name_addr_part(m.from(), m.header(HeaderName::From), *p),
            Field::To(p) => name_addr_part(m.to(), m.header(HeaderName::To), *p),
            Field::Contact(p) => {
                let first = match m.contacts() {
                    Contacts::List(mut l) => l.next(),
                    Contacts::Wildcard => None,
                };
                name_addr_part(first, m.header(HeaderName::Contact), *p)
            }
            Field::CallId => s(m.call_id()),
            Field::CSeq => s(m.header(HeaderName::CSeq)),
            Field::CSeqMethod => s(m.cseq().map(|c| c.method_bytes)),
            Field::CSeqNumber => num(m.cseq().map(|c| c.number)),
            Field::Via => s(m.header(HeaderName::Via)),
            Field::ViaBranch => s(m.top_via().and_then(|v| v.branch())),
            Field::ViaHost => s(m.top_via().map(|v| v.host)),
            Field::ViaPort => num(m.top_via().and_then(|v| v.port)),
            Field::ViaTransport => s(m.top_via().map(|v| v.transport)),
            Field::ViaReceived => s(m.top_via().and_then(|v| v.received())),
            Field::Ua => s(m.user_agent()),
            Field::Server => s(m.server()),
            Field::MaxForwards => num(m.max_forwards()),
            Field::Expires => num(m.expires()),
            Field::ContentLength => num(m.content_length()),
            Field::ContentType => s(m.content_type()),
            Field::Body => Value::Str(m.body()),
            Field::AuthUsername => digest_param(m, b"username"),
            Field::AuthRealm => digest_param(m, b"realm"),
            Field::AuthUri => digest_param(m, b"uri"),
            Field::AuthResponse => digest_param(m, b"response"),
            Field::Header(name) => s(m.header_by_name(name.as_bytes()).next()),
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
        }
    }

    /// Number of values of `f`: all Via hops, all Contacts, all headers of a name; else 0 or 1.
    pub fn count(&self, f: &Field) -> i64 {
        let m = self.msg;
        match f {
            Field::Via => m.vias().count() as i64,
            Field::Contact(_) => match m.contacts() {
                Contacts::List(l) => l.count() as i64,
                Contacts::Wildcard => 1,
            },
            Field::Header(name) => m.header_by_name(name.as_bytes()).count() as i64,
            other => self.get(other).truthy() as i64,
        }
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

    #[test]
    fn every_fixed_name_resolves_and_extracts() {
        let mut p = Parser::new(Limits::default());
        let msg = p.parse(MSG);
        assert!(msg.reasons().is_empty());
        let ctx = MsgCtx {
            msg: &msg,
            src: "192.0.2.1:5060".parse().unwrap(),
            dst: "192.0.2.2:5060".parse().unwrap(),
            transport: "udp",
            state: StateView::default(),
        };
        for (name, kind) in FIELDS {
            let (f, k) = Field::lookup(name).unwrap_or_else(|| panic!("{name} does not resolve"));
            assert_eq!(k, *kind);
            let _ = ctx.get(&f);
        }
        let g = |n: &str| ctx.get(&Field::lookup(n).unwrap().0);
        assert_eq!(g("sip.method"), Value::Str(b"INVITE"));
        assert_eq!(g("sip.ruri.user"), Value::Str(b"+15551234"));
        assert_eq!(g("sip.ruri.port"), Value::Num(5070));
        assert_eq!(g("sip.from.user"), Value::Str(b"alice"));
        assert_eq!(g("sip.from.display"), Value::Str(b"Alice"));
        assert_eq!(g("sip.from.tag"), Value::Str(b"1234"));
        assert_eq!(g("sip.to.tag"), Value::Absent);
        assert_eq!(g("sip.contact.expires"), Value::Num(60));
        assert_eq!(g("sip.via.branch"), Value::Str(b"z9hG4bKabc"));
        assert_eq!(g("sip.via.received"), Value::Str(b"192.0.2.9"));
        assert_eq!(g("sip.cseq.number"), Value::Num(7));
        assert_eq!(g("sip.ua"), Value::Str(b"friendly-scanner"));
        assert_eq!(g("sip.headers.date"), Value::Str(b"Sat, 13 Nov 2010 23:29:00 GMT"));
        assert_eq!(g("sip.headers.DATE"), Value::Str(b"Sat, 13 Nov 2010 23:29:00 GMT"));
        assert_eq!(g("sip.auth.username"), Value::Str(b"100"));
        assert_eq!(g("sip.malformed"), Value::Bool(false));
        assert_eq!(g("sip.malformed.missing_call_id"), Value::Bool(false));
        assert_eq!(g("ip.src"), Value::Ip("192.0.2.1".parse().unwrap()));
        assert_eq!(ctx.count(&Field::Via), 2);
        assert_eq!(ctx.count(&Field::Contact(Part::Whole)), 2);
        assert_eq!(ctx.count(&Field::Header("via".into())), 2);
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
