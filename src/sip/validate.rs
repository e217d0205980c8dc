//! Validation verdict inputs: [`Reason`], the [`Reasons`] bitset, and parser [`Limits`].
//!
//! The checks themselves run in `Parser::parse` (see `message.rs`); they are modelled on
//! Kamailio `sanity` (`sanity_check()` flags 1..8192) and OpenSIPS `sipmsg_validate`, and
//! every one is bounded by the message size and [`Limits`].

use serde::{Deserialize, Serialize};

use super::addr::NameAddr;
use super::auth::Digest;
use super::chars::{parse_u32, trim, WORD};
use super::header::HeaderName;
use super::message::{CSeq, Message};
use super::normal;
use super::uri::Uri;
use super::via::Via;

macro_rules! reasons {
    ($( $(#[$doc:meta])* $v:ident = $name:literal, )*) => {
        /// Why a message failed validation. Each maps to one bit of [`Reasons`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Reason { $( $(#[$doc])* $v, )* }

        impl Reason {
            /// Every reason, in bit order.
            pub const ALL: &'static [Reason] = &[ $( Reason::$v, )* ];

            /// Stable snake_case name, used in rules, logs and metrics.
            pub fn name(&self) -> &'static str {
                match self { $( Reason::$v => $name, )* }
            }
        }
    };
}

reasons! {
    /// Start line is neither `Method SP URI SP Version` nor `Version SP Code SP Phrase`.
    BadStartLine = "bad_start_line",
    /// SIP-Version is not `SIP/2.0` (case-insensitive).
    BadVersion = "bad_version",
    /// Status code is not three digits in 100..=699.
    BadStatusCode = "bad_status_code",
    /// Method is not a `token`.
    BadMethod = "bad_method",
    /// Request-URI is empty, has control bytes or does not parse.
    BadRequestUri = "bad_request_uri",
    /// Request-URI, or a From/To/Contact URI, is longer than `max_uri_bytes`.
    UriTooLong = "uri_too_long",
    /// A header line has no colon, or its name is not a `token`, or a continuation line
    /// follows the start line.
    HeaderSyntax = "header_syntax",
    /// A header line holds NUL, a bare CR, DEL or another control byte (HTAB excepted).
    HeaderChars = "header_chars",
    /// More than `max_headers` header fields; the surplus is not indexed.
    TooManyHeaders = "too_many_headers",
    /// One header field (with its folded lines) is longer than `max_header_bytes`.
    HeaderTooLong = "header_too_long",
    /// The datagram is longer than `max_message_bytes`.
    MessageTooLong = "message_too_long",
    /// No empty line ends the header section (truncated message).
    UnterminatedHeaders = "unterminated_headers",
    /// No Call-ID header.
    MissingCallId = "missing_call_id",
    /// No CSeq header.
    MissingCseq = "missing_cseq",
    /// No From header.
    MissingFrom = "missing_from",
    /// No To header.
    MissingTo = "missing_to",
    /// No Via header.
    MissingVia = "missing_via",
    /// A request whose From has no `tag` parameter.
    MissingFromTag = "missing_from_tag",
    /// Call-ID is empty or not `word [ "@" word ]`.
    BadCallId = "bad_call_id",
    /// Call-ID is longer than `max_call_id_bytes`.
    CallIdTooLong = "call_id_too_long",
    /// CSeq is not `1*DIGIT LWS Method` with a number below 2^31.
    BadCseq = "bad_cseq",
    /// A request's CSeq method differs from its request method.
    CseqMethodMismatch = "cseq_method_mismatch",
    /// Call-ID, CSeq, From, To, Max-Forwards, Content-Length or Content-Type repeated.
    DuplicateSingleton = "duplicate_singleton",
    /// Content-Length is not a number.
    BadContentLength = "bad_content_length",
    /// Body length differs from Content-Length.
    ContentLengthMismatch = "content_length_mismatch",
    /// Non-empty body without Content-Type (RFC 3261 §20.15 MUST).
    MissingContentType = "missing_content_type",
    /// Max-Forwards is not a number in 0..=255.
    BadMaxForwards = "bad_max_forwards",
    /// From is not a valid name-addr / addr-spec, its parameters are malformed, or its URI
    /// does not parse.
    BadFrom = "bad_from",
    /// To is not a valid name-addr / addr-spec, its parameters are malformed, or its URI
    /// does not parse.
    BadTo = "bad_to",
    /// From or To carries more than one `tag` parameter (Kamailio sanity flag 4096).
    DuplicateTag = "duplicate_tag",
    /// A Via hop does not parse, or its protocol is not `SIP/2.0` (sanity flags 8, 16).
    BadVia = "bad_via",
    /// The top Via has no `branch` parameter.
    MissingViaBranch = "missing_via_branch",
    /// The top Via's transport is not UDP, TCP, TLS, SCTP, TLS-SCTP, WS or WSS. Lower hops
    /// may name any `other-transport` token (RFC 3261 §25.1; RFC 4475 §3.1.1.10 `transports`).
    UnknownViaTransport = "unknown_via_transport",
    /// More than `max_via_hops` Via hops in total.
    TooManyViaHops = "too_many_via_hops",
    /// Expires header, or a Contact `expires` parameter, is not a number (sanity flag 256).
    BadExpires = "bad_expires",
    /// A Contact element does not parse, has a bad URI, or `*` is mixed with addresses.
    BadContact = "bad_contact",
    /// A Route or Record-Route element does not parse.
    BadRoute = "bad_route",
    /// Authorization or Proxy-Authorization does not parse as credentials (sanity flag 2048).
    BadAuthorization = "bad_authorization",
    /// The Request-URI, or a From/To/Contact/Route/Record-Route URI, has a user or host
    /// that percent-decodes to a control byte or to bytes that are not UTF-8, or an IPv4
    /// host with a leading zero (decimal to us, octal to `inet_aton`): no normal form to
    /// match rules on (see `normal.rs`).
    BadEncoding = "bad_encoding",
    /// Date is not an RFC 1123 date in GMT, `wkday "," SP 2DIGIT SP month SP 4DIGIT SP
    /// 2DIGIT ":" 2DIGIT ":" 2DIGIT SP "GMT"` (RFC 3261 §25.1; RFC 4475 §3.1.2.12 `baddate`).
    BadDate = "bad_date",
    /// The Request-URI carries a `?headers` component, which RFC 3261 §19.1.1 forbids there
    /// (RFC 4475 §3.1.2.11 `escruri`).
    RequestUriHeaders = "request_uri_headers",
}

impl Reason {
    /// Look a reason up by its [`Reason::name`].
    pub fn from_name(name: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.name() == name)
    }

    #[inline]
    fn bit(self) -> u64 {
        1u64 << (self as u8)
    }
}

/// A set of [`Reason`]s, one bit each; empty means the message passed validation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reasons(pub u64);

impl Reasons {
    /// No reason recorded.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// Whether `r` is recorded.
    pub fn contains(&self, r: Reason) -> bool {
        self.0 & r.bit() != 0
    }

    /// Record `r`.
    pub fn insert(&mut self, r: Reason) {
        self.0 |= r.bit();
    }

    /// Number of reasons recorded.
    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// The recorded reasons, in bit order.
    pub fn iter(&self) -> impl Iterator<Item = Reason> + '_ {
        let bits = self.0;
        Reason::ALL.iter().copied().filter(move |r| bits & r.bit() != 0)
    }
}

/// Parser limits. Exceeding one records a [`Reason`]; parsing still completes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest accepted message in bytes (default 65535, the largest UDP payload; Kamailio's
    /// `BUF_SIZE` is the same).
    pub max_message_bytes: usize,
    /// Header fields indexed per message; also the parser's one-time scratch capacity
    /// (default 64).
    pub max_headers: usize,
    /// Longest header field in bytes, name and folded lines included (default 2048).
    pub max_header_bytes: usize,
    /// Longest Request-URI or From/To/Contact URI in bytes (default 1024).
    pub max_uri_bytes: usize,
    /// Longest Call-ID in bytes (default 255, Kamailio's `sanity` bound for Call-ID).
    pub max_call_id_bytes: usize,
    /// Most Via hops over all Via headers (default 70, the Max-Forwards a UAC starts with,
    /// RFC 3261 §8.1.1.6: a legitimate request cannot have crossed more proxies; RFC 4475
    /// §3.1.1.7 `longreq` carries 34).
    pub max_via_hops: usize,
    /// Accept requests from RFC 2543 elements (default true): a request whose top Via has
    /// no `branch` parameter at all is matched by the RFC 3261 §17.2.3 backwards-compatible
    /// rules, and its From may then lack a tag (a null tag, §12.1.1), so neither is
    /// `missing_via_branch` / `missing_from_tag` (RFC 4475 §3.4.1 `inv2543`). An empty
    /// `branch=` or a tagless From under an RFC 3261 branch stays a failure. False makes
    /// both mandatory for every request.
    pub allow_rfc2543: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 65535,
            max_headers: 64,
            max_header_bytes: 2048,
            max_uri_bytes: 1024,
            max_call_id_bytes: 255,
            max_via_hops: 70,
            allow_rfc2543: true,
        }
    }
}

/// Run the header-level checks on an indexed message. Start-line and line-level reasons are
/// recorded by the parser itself; this adds the rest.
pub(crate) fn check(msg: &Message<'_>, limits: &Limits) -> Reasons {
    use HeaderName as H;
    let mut r = Reasons::default();
    let request = msg.is_request();

    for (h, reason) in [
        (H::CallId, Reason::MissingCallId),
        (H::CSeq, Reason::MissingCseq),
        (H::From, Reason::MissingFrom),
        (H::To, Reason::MissingTo),
        (H::Via, Reason::MissingVia),
    ] {
        if msg.header(h).is_none() {
            r.insert(reason);
        }
    }
    let singletons =
        [H::CallId, H::CSeq, H::From, H::To, H::MaxForwards, H::ContentLength, H::ContentType];
    if singletons.iter().any(|&h| msg.header_count(h) > 1) {
        r.insert(Reason::DuplicateSingleton);
    }

    if let Some(cid) = msg.call_id() {
        if cid.len() > limits.max_call_id_bytes {
            r.insert(Reason::CallIdTooLong);
        }
        if !is_call_id(cid) {
            r.insert(Reason::BadCallId);
        }
    }

    if let Some(raw) = msg.header(H::CSeq) {
        match CSeq::parse(raw) {
            None => r.insert(Reason::BadCseq),
            Some(c) => {
                if request && msg.method_bytes() != Some(c.method_bytes) {
                    r.insert(Reason::CseqMethodMismatch);
                }
            }
        }
    }

    // An RFC 2543 request: its top Via has no branch parameter at all.
    let legacy = request
        && limits.allow_rfc2543
        && msg.elements(H::Via).next().and_then(Via::parse).is_some_and(|v| v.params.check(b"branch").first.is_none());

    for (h, bad) in [(H::From, Reason::BadFrom), (H::To, Reason::BadTo)] {
        let Some(raw) = msg.header(h) else { continue };
        match NameAddr::parse(raw) {
            None => r.insert(bad),
            Some(a) => {
                // Validity, tag count and tag value from one pass over the parameters.
                let tag = a.params.check(b"tag");
                if !tag.valid {
                    r.insert(bad);
                }
                check_uri(a.uri, bad, &mut r);
                if a.uri.len() > limits.max_uri_bytes {
                    r.insert(Reason::UriTooLong);
                }
                if tag.count > 1 {
                    r.insert(Reason::DuplicateTag);
                }
                // `a.tag()`, without a second scan.
                if h == H::From && request && !legacy && tag.first.flatten().is_none_or(<[u8]>::is_empty) {
                    r.insert(Reason::MissingFromTag);
                }
            }
        }
    }

    check_vias(msg, limits, legacy, &mut r);
    if let Some(Ok(u)) = msg.request_uri() {
        if normal::check(&u).is_err() {
            r.insert(Reason::BadEncoding);
        }
    }

    if let Some(v) = msg.header(H::MaxForwards) {
        if parse_u32(trim(v)).is_none_or(|n| n > 255) {
            r.insert(Reason::BadMaxForwards);
        }
    }
    if msg.header(H::Date).is_some_and(|v| !is_sip_date(trim(v))) {
        r.insert(Reason::BadDate);
    }
    if let Some(v) = msg.header(H::Expires) {
        if parse_u32(trim(v)).is_none() {
            r.insert(Reason::BadExpires);
        }
    }
    let body = msg.body();
    if let Some(v) = msg.header(H::ContentLength) {
        match parse_u32(trim(v)) {
            None => r.insert(Reason::BadContentLength),
            Some(n) => {
                if n as usize != body.len() {
                    r.insert(Reason::ContentLengthMismatch);
                }
            }
        }
    }
    if !body.is_empty() && msg.header(H::ContentType).is_none() {
        r.insert(Reason::MissingContentType);
    }

    let (mut n, mut star) = (0usize, false);
    for el in msg.elements(H::Contact) {
        n += 1;
        if el == b"*" {
            star = true;
            continue;
        }
        match NameAddr::parse(el) {
            None => r.insert(Reason::BadContact),
            Some(a) => {
                let expires = a.params.check(b"expires");
                if !expires.valid {
                    r.insert(Reason::BadContact);
                }
                check_uri(a.uri, Reason::BadContact, &mut r);
                if a.uri.len() > limits.max_uri_bytes {
                    r.insert(Reason::UriTooLong);
                }
                // `a.param(b"expires")`, without a second scan.
                if let Some(Some(e)) = expires.first {
                    if parse_u32(e).is_none() {
                        r.insert(Reason::BadExpires);
                    }
                }
            }
        }
    }
    // RFC 3261 §10.2.2: `*` stands alone.
    if star && n > 1 {
        r.insert(Reason::BadContact);
    }

    for h in [H::Route, H::RecordRoute] {
        for el in msg.elements(h) {
            match NameAddr::parse(el) {
                Some(a) if a.params.is_valid() => {
                    if Uri::parse(a.uri).is_ok_and(|u| normal::check(&u).is_err()) {
                        r.insert(Reason::BadEncoding);
                    }
                }
                _ => r.insert(Reason::BadRoute),
            }
        }
    }

    for h in [H::Authorization, H::ProxyAuthorization] {
        if msg.header(h).is_some_and(|v| Digest::parse(v).is_err()) {
            r.insert(Reason::BadAuthorization);
        }
    }
    r
}

/// A From/To/Contact URI: `bad` when it does not parse, `bad_encoding` when it has no
/// normal form.
fn check_uri(uri: &[u8], bad: Reason, r: &mut Reasons) {
    match Uri::parse(uri) {
        Err(_) => r.insert(bad),
        Ok(u) => {
            if normal::check(&u).is_err() {
                r.insert(Reason::BadEncoding);
            }
        }
    }
}

fn check_vias(msg: &Message<'_>, limits: &Limits, legacy: bool, r: &mut Reasons) {
    let mut hops = 0usize;
    for el in msg.elements(HeaderName::Via) {
        hops += 1;
        if hops > limits.max_via_hops {
            r.insert(Reason::TooManyViaHops);
            break;
        }
        let Some(v) = Via::parse(el) else {
            r.insert(Reason::BadVia);
            continue;
        };
        let branch = v.params.check(b"branch");
        if !v.is_sip2() || !branch.valid {
            r.insert(Reason::BadVia);
        }
        if hops == 1 && !v.known_transport() {
            r.insert(Reason::UnknownViaTransport);
        }
        // `v.branch()`, without a second scan.
        if hops == 1 && !legacy && branch.first.flatten().is_none_or(<[u8]>::is_empty) {
            r.insert(Reason::MissingViaBranch);
        }
    }
    if hops == 0 && msg.header(HeaderName::Via).is_some() {
        r.insert(Reason::BadVia);
    }
}

/// `rfc1123-date = wkday "," SP date1 SP time SP "GMT"` (RFC 3261 §25.1), e.g.
/// `Sat, 13 Nov 2010 23:29:00 GMT`.
fn is_sip_date(s: &[u8]) -> bool {
    const WKDAY: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTH: [&[u8]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    let at = |from: usize, len: usize| s.get(from..from + len).unwrap_or(&[]);
    let digits = |from: usize, len: usize| {
        let d = at(from, len);
        d.len() == len && d.iter().all(u8::is_ascii_digit)
    };
    s.len() == 29
        && WKDAY.contains(&at(0, 3))
        && at(3, 2) == b", "
        && digits(5, 2)
        && at(7, 1) == b" "
        && MONTH.contains(&at(8, 3))
        && at(11, 1) == b" "
        && digits(12, 4)
        && at(16, 1) == b" "
        && digits(17, 2)
        && at(19, 1) == b":"
        && digits(20, 2)
        && at(22, 1) == b":"
        && digits(23, 2)
        && at(25, 4) == b" GMT"
}

/// `callid = word [ "@" word ]`
fn is_call_id(s: &[u8]) -> bool {
    // Branch-free fold rather than `all`: Call-IDs are long and almost always valid.
    let word = |w: &[u8]| !w.is_empty() && w.iter().fold(true, |ok, &b| ok & WORD[b as usize]);
    match memchr::memchr(b'@', s) {
        Some(i) => word(s.get(..i).unwrap_or(&[])) && word(s.get(i + 1..).unwrap_or(&[])),
        None => word(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitset() {
        assert!(Reason::ALL.len() <= 64);
        let mut r = Reasons::default();
        assert!(r.is_empty());
        r.insert(Reason::MissingCallId);
        r.insert(Reason::BadAuthorization);
        r.insert(Reason::MissingCallId);
        assert_eq!(r.len(), 2);
        assert!(r.contains(Reason::MissingCallId));
        assert!(!r.contains(Reason::BadVia));
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![Reason::MissingCallId, Reason::BadAuthorization]);
    }

    #[test]
    fn names_unique_and_round_trip() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert_eq!(Reason::from_name(r.name()), Some(*r));
            assert!(r.name().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        assert_eq!(Reason::MissingCallId.name(), "missing_call_id");
    }

    #[test]
    fn sip_dates() {
        assert!(is_sip_date(b"Sat, 15 Oct 2005 04:44:56 GMT"));
        for bad in [
            &b"Fri, 01 Jan 2010 16:00:00 EST"[..],
            b"Fri, 1 Jan 2010 16:00:00 GMT",
            b"Fry, 01 Jan 2010 16:00:00 GMT",
            b"Fri, 01 Jun 10 16:00:00 GMT",
            b"Fri 01 Jan 2010 16:00:00 GMT",
            b"Fri, 01 Jab 2010 16:00:00 GMT",
            b"Fri, 01 Jan 2010 16:00:0x GMT",
            b"",
        ] {
            assert!(!is_sip_date(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn limits_serde() {
        let l: Limits = serde_json::from_str(r#"{"max_headers": 10}"#).unwrap();
        assert_eq!(l.max_headers, 10);
        assert_eq!(l.max_message_bytes, 65535);
        assert!(serde_json::from_str::<Limits>(r#"{"bogus": 1}"#).is_err());
    }
}
