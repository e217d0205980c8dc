//! [`Parser`] and the lazy, borrowed [`Message`] view.
//!
//! `parse` makes one pass over the lines (line end and control bytes found together, a word
//! at a time; the name is the leading token run) and builds only the
//! header index plus the start-line fields; typed values (Via, From, CSeq, ...) are parsed
//! from their spans when an accessor is called. Validation (see `validate.rs`) then runs the
//! cheap checks and records [`Reasons`]. Nothing here allocates or panics.
//!
//! Leniency, each deliberate:
//! - bare LF line ends are accepted as well as CRLF (RFC 3261 §7.5 requires CRLF, but
//!   rejecting LF would only help evasion of other checks); a bare CR is a control byte;
//! - CR/LF before the start line is skipped (RFC 3261 §7.5 SHOULD);
//! - whitespace before a header's colon is allowed (`HCOLON = *( SP / HTAB ) ":" SWS`);
//! - a status line may omit the reason phrase and its preceding SP.

use super::addr::NameAddr;
use super::auth::{AuthError, Digest};
use super::chars::{has_ctl, is_token, parse_u32, span_of, trim, Split, TOKEN};
use super::header::HeaderName;
use super::method::Method;
use super::sdp::{Sdp, SdpError};
use super::uri::{Uri, UriError};
use super::validate::{self, Limits, Reason, Reasons};
use super::via::Via;

/// Byte range into the message buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// The bytes of `buf` this span covers; empty if it does not fit `buf`.
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.start as usize..self.end as usize).unwrap_or(&[])
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }

    /// True if the span covers no bytes.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Spans never exceed `u32::MAX` because `parse` caps the buffer there.
    fn new(start: usize, end: usize) -> Span {
        Span { start: start as u32, end: end as u32 }
    }
}

/// One indexed header field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Resolved name (compact forms expanded).
    pub name: HeaderName,
    /// The name as written.
    pub name_span: Span,
    /// The value, trimmed; folded continuation lines are included, so the value may hold
    /// CRLF + WS which typed parsers treat as LWS.
    pub value: Span,
}

/// `CSeq = 1*DIGIT LWS Method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// Sequence number (below 2^31).
    pub number: u32,
    /// Method, classified.
    pub method: Method,
    /// Method as written.
    pub method_bytes: &'a [u8],
}

impl<'a> CSeq<'a> {
    /// Parse a CSeq value; `None` if malformed or the number is 2^31 or more.
    pub fn parse(v: &'a [u8]) -> Option<CSeq<'a>> {
        let v = trim(v);
        let n = v.iter().position(|b| !b.is_ascii_digit()).unwrap_or(v.len());
        let number = parse_u32(v.get(..n)?)?;
        if number > 0x7fff_ffff {
            return None;
        }
        let rest = v.get(n..)?;
        let method_bytes = trim(rest);
        if method_bytes.len() == rest.len() || !is_token(method_bytes) {
            return None;
        }
        Some(CSeq { number, method: Method::parse(method_bytes), method_bytes })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Request,
    Response,
    Invalid,
}

/// Reusable parser: owns the header-index scratch, allocated once in [`Parser::new`].
#[derive(Debug)]
pub struct Parser {
    limits: Limits,
    headers: Vec<Header>,
}

impl Parser {
    /// A parser whose index holds up to `limits.max_headers` headers.
    pub fn new(limits: Limits) -> Parser {
        let headers = Vec::with_capacity(limits.max_headers);
        Parser { limits, headers }
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parse one message that must fill `buf` exactly (a stream-framed message: bytes past
    /// Content-Length are a `content_length_mismatch`). Always returns a [`Message`];
    /// problems are recorded in [`Message::reasons`].
    pub fn parse<'a>(&'a mut self, buf: &'a [u8]) -> Message<'a> {
        self.parse_framed(buf, false)
    }

    /// Parse one UDP datagram: octets past the Content-Length body are discarded, not a
    /// failure (RFC 3261 §18.3; RFC 4475 §3.1.1.8 `dblreq`). [`Message::body`] is then the
    /// declared body and [`Message::surplus`] what followed it.
    pub fn parse_datagram<'a>(&'a mut self, buf: &'a [u8]) -> Message<'a> {
        self.parse_framed(buf, true)
    }

    fn parse_framed<'a>(&'a mut self, buf: &'a [u8], datagram: bool) -> Message<'a> {
        let limits = &self.limits;
        let headers = &mut self.headers;
        headers.clear();
        let mut reasons = Reasons::default();
        if buf.len() > limits.max_message_bytes {
            reasons.insert(Reason::MessageTooLong);
        }
        let buf = buf.get(..u32::MAX as usize).unwrap_or(buf);

        let mut msg = Message {
            buf,
            headers: &[],
            first: [u32::MAX; HeaderName::COUNT],
            count: [0; HeaderName::COUNT],
            kind: Kind::Invalid,
            method: Method::Other,
            method_span: Span::default(),
            uri_span: Span::default(),
            version_span: Span::default(),
            status: 0,
            reason_span: Span::default(),
            body_start: buf.len() as u32,
            body_end: buf.len() as u32,
            reasons: Reasons::default(),
        };

        let start = buf.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(buf.len());
        // Control bytes on the start line are judged per field by `start_line`.
        let (le, mut pos, _) = scan_line(buf, start);
        start_line(&mut msg, &mut reasons, limits, start, le);

        let mut terminated = false;
        // Whether the previous logical header was indexed, so a continuation line can
        // extend it; continuation of a rejected or surplus line is dropped with it.
        let mut last_indexed = false;
        let mut seen_header = false;
        while pos < buf.len() {
            let ls = pos;
            let (le, next, ctl) = scan_line(buf, ls);
            pos = next;
            let line = buf.get(ls..le).unwrap_or(&[]);
            let Some(&b0) = line.first() else {
                terminated = true;
                msg.body_start = next as u32;
                break;
            };
            if ctl && !ctl_only_quoted(line) {
                reasons.insert(Reason::HeaderChars);
            }
            if b0 == b' ' || b0 == b'\t' {
                if !seen_header {
                    reasons.insert(Reason::HeaderSyntax);
                } else if let (true, Some(h)) = (last_indexed, headers.last_mut()) {
                    let lead = line.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(line.len());
                    let tail = trim_end_offset(line);
                    if lead < tail {
                        if h.value.is_empty() {
                            h.value.start = (ls + lead) as u32;
                        }
                        h.value.end = (ls + tail) as u32;
                    }
                    if le.saturating_sub(h.name_span.start as usize) > limits.max_header_bytes {
                        reasons.insert(Reason::HeaderTooLong);
                    }
                }
                continue;
            }
            seen_header = true;
            last_indexed = false;
            if line.len() > limits.max_header_bytes {
                reasons.insert(Reason::HeaderTooLong);
            }
            // `field-name HCOLON`, HCOLON = *( SP / HTAB ) ":" SWS: the name is the leading
            // token run, and only blanks may separate it from the colon. (`:` is no token
            // byte, so this is the first colon of the line.)
            let name_len = span_of(line, &TOKEN);
            let blanks = line.get(name_len..).map_or(0, |r| r.iter().take_while(|&&b| b == b' ' || b == b'\t').count());
            let colon = name_len + blanks;
            if name_len == 0 || line.get(colon) != Some(&b':') {
                reasons.insert(Reason::HeaderSyntax);
                continue;
            }
            let name = line.get(..name_len).unwrap_or(&[]);
            let after = line.get(colon + 1..).unwrap_or(&[]);
            let lead = after.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(after.len());
            let tail = after.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(0, |p| p + 1);
            let vstart = ls + colon + 1 + lead;
            let vend = (ls + colon + 1 + tail).max(vstart);
            if headers.len() >= limits.max_headers {
                reasons.insert(Reason::TooManyHeaders);
                continue;
            }
            let hn = HeaderName::from_bytes(name);
            let slot = hn as usize;
            if let (Some(f), Some(c)) = (msg.first.get_mut(slot), msg.count.get_mut(slot)) {
                if *f == u32::MAX {
                    *f = headers.len() as u32;
                }
                *c = c.saturating_add(1);
            }
            headers.push(Header {
                name: hn,
                name_span: Span::new(ls, ls + name_len),
                value: Span::new(vstart, vend),
            });
            last_indexed = true;
        }
        if !terminated {
            reasons.insert(Reason::UnterminatedHeaders);
        }
        msg.headers = headers.as_slice();
        if datagram && msg.header_count(HeaderName::ContentLength) == 1 {
            if let Some(n) = msg.content_length() {
                msg.body_end = msg.body_end.min(msg.body_start.saturating_add(n));
            }
        }
        reasons.0 |= validate::check(&msg, limits).0;
        msg.reasons = reasons;
        msg
    }
}

/// Whether every control byte of `line` (other than HTAB) is the second half of a
/// `quoted-pair` inside a `quoted-string`, which RFC 3261 §25.1 allows for any byte but CR
/// and LF (RFC 4475 §3.1.1.2 `intmeth`: NUL, BEL and DEL escaped in a display name). Only
/// run on the rare lines the scan flagged.
fn ctl_only_quoted(line: &[u8]) -> bool {
    let (mut quoted, mut escaped) = (false, false);
    for &b in line {
        if escaped {
            escaped = false;
            if b == b'\r' || b == b'\n' {
                return false;
            }
            continue;
        }
        match b {
            b'"' => quoted = !quoted,
            b'\\' if quoted => escaped = true,
            b'\t' => {}
            0..=0x1f | 0x7f => return false,
            _ => {}
        }
    }
    true
}

/// Offset one past the last non-SP/HT byte of `line`.
fn trim_end_offset(line: &[u8]) -> usize {
    line.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(0, |p| p + 1)
}

/// From `start`, in one pass: the end of the line's content (before CR LF or LF), the start
/// of the next line, and whether the content holds a control byte other than HTAB (a bare
/// CR included), i.e. `has_ctl` of the content.
///
/// Line end and control check used to be two passes (`memchr` LF, then `has_ctl`); both
/// look for the same rare bytes, so one word-at-a-time scan serves both.
fn scan_line(buf: &[u8], start: usize) -> (usize, usize, bool) {
    let mut ctl = false;
    let mut i = start;
    while let Some(j) = next_special(buf, i) {
        match buf.get(j) {
            Some(b'\n') => return (j, j + 1, ctl),
            Some(b'\r') if buf.get(j + 1) == Some(&b'\n') => return (j, j + 2, ctl),
            Some(b'\t') => {}
            _ => ctl = true,
        }
        i = j + 1;
    }
    (buf.len(), buf.len(), ctl)
}

/// Index of the first byte at or after `from` that is below 0x20 or DEL.
fn next_special(buf: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let rest = buf.get(from..)?;
    let mut chunks = rest.chunks_exact(8);
    let mut off = from;
    for c in chunks.by_ref() {
        let x = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        // SWAR "has byte less than n": a byte's high bit is set in `(x - n) & !x` when the
        // byte is below n (n <= 0x80). Borrows only run upwards from such a byte, so the
        // lowest flagged byte is always a true one, which is all we use.
        let low = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let y = x ^ (ONES * 0x7f);
        let del = y.wrapping_sub(ONES) & !y & HIGH;
        let m = low | del;
        if m != 0 {
            return Some(off + (m.trailing_zeros() / 8) as usize);
        }
        off += 8;
    }
    let tail = chunks.remainder();
    tail.iter().position(|&b| b < 0x20 || b == 0x7f).map(|p| off + p)
}

fn start_line(msg: &mut Message<'_>, reasons: &mut Reasons, limits: &Limits, ls: usize, le: usize) {
    let line = msg.buf.get(ls..le).unwrap_or(&[]);
    let is_version = |v: &[u8]| v.eq_ignore_ascii_case(b"SIP/2.0");
    if line.get(..4).is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/")) {
        msg.kind = Kind::Response;
        let Some(sp1) = memchr::memchr(b' ', line) else {
            msg.version_span = Span::new(ls, le);
            reasons.insert(Reason::BadStartLine);
            if !is_version(line) {
                reasons.insert(Reason::BadVersion);
            }
            return;
        };
        msg.version_span = Span::new(ls, ls + sp1);
        if !is_version(line.get(..sp1).unwrap_or(&[])) {
            reasons.insert(Reason::BadVersion);
        }
        let rest = line.get(sp1 + 1..).unwrap_or(&[]);
        let sp2 = memchr::memchr(b' ', rest).unwrap_or(rest.len());
        let code = rest.get(..sp2).unwrap_or(&[]);
        match parse_u32(code) {
            Some(c @ 100..=699) if code.len() == 3 => msg.status = c as u16,
            _ => reasons.insert(Reason::BadStatusCode),
        }
        let rs = (ls + sp1 + 1 + sp2 + 1).min(le);
        msg.reason_span = Span::new(rs, le);
        if has_ctl(msg.reason_span.get(msg.buf)) {
            reasons.insert(Reason::BadStartLine);
        }
        return;
    }
    let Some(sp1) = memchr::memchr(b' ', line) else {
        reasons.insert(Reason::BadStartLine);
        return;
    };
    let method = line.get(..sp1).unwrap_or(&[]);
    if !is_token(method) {
        reasons.insert(Reason::BadMethod);
    }
    msg.kind = Kind::Request;
    msg.method = Method::parse(method);
    msg.method_span = Span::new(ls, ls + sp1);
    let rest = line.get(sp1 + 1..).unwrap_or(&[]);
    let Some(sp2) = memchr::memchr(b' ', rest) else {
        msg.uri_span = Span::new(ls + sp1 + 1, le);
        reasons.insert(Reason::BadStartLine);
        return;
    };
    let us = ls + sp1 + 1;
    msg.uri_span = Span::new(us, us + sp2);
    msg.version_span = Span::new(us + sp2 + 1, le);
    if !is_version(msg.version_span.get(msg.buf)) {
        reasons.insert(Reason::BadVersion);
    }
    let uri = msg.uri_span.get(msg.buf);
    if uri.len() > limits.max_uri_bytes {
        reasons.insert(Reason::UriTooLong);
    }
    match Uri::parse(uri) {
        Ok(u) if !uri.is_empty() && !has_ctl(uri) => {
            if !u.headers.is_empty() || uri.ends_with(b"?") {
                reasons.insert(Reason::RequestUriHeaders);
            }
        }
        _ => reasons.insert(Reason::BadRequestUri),
    }
}

/// A parsed SIP message: borrowed from the buffer and the parser's header index.
#[derive(Clone, Debug)]
pub struct Message<'a> {
    buf: &'a [u8],
    headers: &'a [Header],
    /// Index of the first header with each name (`u32::MAX`: none): O(1) `header()`.
    first: [u32; HeaderName::COUNT],
    /// Headers with each name, saturating at 255.
    count: [u8; HeaderName::COUNT],
    kind: Kind,
    method: Method,
    method_span: Span,
    uri_span: Span,
    version_span: Span,
    status: u16,
    reason_span: Span,
    body_start: u32,
    body_end: u32,
    reasons: Reasons,
}

/// The values of all headers with one name, in order.
#[derive(Clone, Debug)]
pub struct HeaderValues<'a> {
    buf: &'a [u8],
    iter: std::slice::Iter<'a, Header>,
    name: HeaderName,
}

impl<'a> Iterator for HeaderValues<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let name = self.name;
        self.iter.find(|h| h.name == name).map(|h| h.value.get(self.buf))
    }
}

/// The comma-separated elements of all headers with one name, in order (quotes and `<>`
/// respected, empty elements skipped).
#[derive(Clone, Debug)]
pub struct Elements<'a> {
    values: HeaderValues<'a>,
    current: Split<'a>,
}

impl<'a> Iterator for Elements<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if let Some(e) = self.current.next() {
                return Some(e);
            }
            self.current = Split::new(self.values.next()?, b',');
        }
    }
}

/// The addresses of a list header (Contact, Route, ...); unparsable elements are skipped
/// (validation reports them).
#[derive(Clone, Debug)]
pub struct NameAddrs<'a>(Elements<'a>);

impl<'a> Iterator for NameAddrs<'a> {
    type Item = NameAddr<'a>;
    fn next(&mut self) -> Option<NameAddr<'a>> {
        self.0.by_ref().find_map(NameAddr::parse)
    }
}

/// The Contact headers: the `*` wildcard (REGISTER removal) or a list of addresses.
#[derive(Clone, Debug)]
pub enum Contacts<'a> {
    /// `Contact: *`.
    Wildcard,
    /// Addresses (possibly none).
    List(NameAddrs<'a>),
}

impl Contacts<'_> {
    /// True for `Contact: *`.
    pub fn is_wildcard(&self) -> bool {
        matches!(self, Contacts::Wildcard)
    }
}

impl<'a> Message<'a> {
    /// The whole message buffer.
    pub fn buf(&self) -> &'a [u8] {
        self.buf
    }

    /// True if the start line is a request line.
    pub fn is_request(&self) -> bool {
        self.kind == Kind::Request
    }

    /// True if the start line is a status line.
    pub fn is_response(&self) -> bool {
        self.kind == Kind::Response
    }

    /// Request method; `None` for responses and unparsable start lines.
    pub fn method(&self) -> Option<Method> {
        self.is_request().then_some(self.method)
    }

    /// Request method as written.
    pub fn method_bytes(&self) -> Option<&'a [u8]> {
        self.is_request().then(|| self.method_span.get(self.buf))
    }

    /// Status code (100..=699); `None` for requests or an invalid code.
    pub fn status(&self) -> Option<u16> {
        (self.is_response() && self.status != 0).then_some(self.status)
    }

    /// Reason phrase of a response (may be empty).
    pub fn reason_phrase(&self) -> Option<&'a [u8]> {
        self.is_response().then(|| self.reason_span.get(self.buf))
    }

    /// Request-URI as written.
    pub fn request_uri_bytes(&self) -> Option<&'a [u8]> {
        self.is_request().then(|| self.uri_span.get(self.buf))
    }

    /// Request-URI, parsed.
    pub fn request_uri(&self) -> Option<Result<Uri<'a>, UriError>> {
        self.request_uri_bytes().map(Uri::parse)
    }

    /// SIP-Version as written (`SIP/2.0`).
    pub fn version(&self) -> Option<&'a [u8]> {
        (self.kind != Kind::Invalid && !self.version_span.is_empty())
            .then(|| self.version_span.get(self.buf))
    }

    /// The header index, in message order.
    pub fn headers(&self) -> &'a [Header] {
        self.headers
    }

    /// Value of the first header called `name` (for [`HeaderName::Other`], the first unknown
    /// header; use [`Message::header_by_name`] to pick one).
    pub fn header(&self, name: HeaderName) -> Option<&'a [u8]> {
        let i = *self.first.get(name as usize)?;
        self.headers.get(i as usize).map(|h| h.value.get(self.buf))
    }

    /// Values of every header called `name`.
    pub fn headers_named(&self, name: HeaderName) -> HeaderValues<'a> {
        let from = self.first.get(name as usize).map_or(usize::MAX, |&i| i as usize);
        HeaderValues { buf: self.buf, iter: self.headers.get(from..).unwrap_or(&[]).iter(), name }
    }

    /// Values of every header called `name` (case-insensitive, compact forms resolved), so
    /// headers outside [`HeaderName`] can be reached too.
    pub fn header_by_name<'q>(&self, name: &'q [u8]) -> impl Iterator<Item = &'a [u8]> + 'q
    where
        'a: 'q,
    {
        let known = HeaderName::from_bytes(name);
        let buf = self.buf;
        self.headers
            .iter()
            .filter(move |h| {
                h.name == known
                    && (known != HeaderName::Other || h.name_span.get(buf).eq_ignore_ascii_case(name))
            })
            .map(move |h| h.value.get(buf))
    }

    /// Number of headers called `name`.
    pub fn header_count(&self, name: HeaderName) -> usize {
        match self.count.get(name as usize) {
            Some(&c) if c < u8::MAX => c as usize,
            _ => self.headers_named(name).count(),
        }
    }

    /// Comma-separated elements over every header called `name`.
    pub fn elements(&self, name: HeaderName) -> Elements<'a> {
        Elements { values: self.headers_named(name), current: Split::new(&[], b',') }
    }

    /// The body: everything after the empty line (empty if there is none).
    pub fn body(&self) -> &'a [u8] {
        self.buf.get(self.body_start as usize..self.body_end as usize).unwrap_or(&[])
    }

    /// Octets of a datagram after its Content-Length body ([`Parser::parse_datagram`]):
    /// not part of the message, ignored by the receiver; empty otherwise.
    pub fn surplus(&self) -> &'a [u8] {
        self.buf.get(self.body_end as usize..).unwrap_or(&[])
    }

    /// Validation verdict inputs; empty if the message passed every check.
    pub fn reasons(&self) -> Reasons {
        self.reasons
    }

    /// Call-ID, trimmed.
    pub fn call_id(&self) -> Option<&'a [u8]> {
        self.header(HeaderName::CallId).map(trim)
    }

    /// CSeq, parsed.
    pub fn cseq(&self) -> Option<CSeq<'a>> {
        self.header(HeaderName::CSeq).and_then(CSeq::parse)
    }

    /// Every Via hop over every Via header, top first; unparsable hops are skipped.
    pub fn vias(&self) -> impl Iterator<Item = Via<'a>> {
        self.elements(HeaderName::Via).filter_map(Via::parse)
    }

    /// The topmost Via hop; `None` if absent or unparsable.
    pub fn top_via(&self) -> Option<Via<'a>> {
        self.elements(HeaderName::Via).next().and_then(Via::parse)
    }

    /// From, parsed.
    pub fn from(&self) -> Option<NameAddr<'a>> {
        self.header(HeaderName::From).and_then(NameAddr::parse)
    }

    /// To, parsed.
    pub fn to(&self) -> Option<NameAddr<'a>> {
        self.header(HeaderName::To).and_then(NameAddr::parse)
    }

    /// Contact: wildcard or the list of addresses over every Contact header.
    pub fn contacts(&self) -> Contacts<'a> {
        if self.elements(HeaderName::Contact).next() == Some(b"*") {
            Contacts::Wildcard
        } else {
            Contacts::List(NameAddrs(self.elements(HeaderName::Contact)))
        }
    }

    /// Route entries, in order.
    pub fn routes(&self) -> NameAddrs<'a> {
        NameAddrs(self.elements(HeaderName::Route))
    }

    /// Record-Route entries, in order.
    pub fn record_routes(&self) -> NameAddrs<'a> {
        NameAddrs(self.elements(HeaderName::RecordRoute))
    }

    fn number(&self, name: HeaderName) -> Option<u32> {
        self.header(name).and_then(|v| parse_u32(trim(v)))
    }

    /// Max-Forwards, if numeric.
    pub fn max_forwards(&self) -> Option<u32> {
        self.number(HeaderName::MaxForwards)
    }

    /// Expires header, if numeric.
    pub fn expires(&self) -> Option<u32> {
        self.number(HeaderName::Expires)
    }

    /// Content-Length, if numeric.
    pub fn content_length(&self) -> Option<u32> {
        self.number(HeaderName::ContentLength)
    }

    /// Content-Type as written (media type and parameters).
    pub fn content_type(&self) -> Option<&'a [u8]> {
        self.header(HeaderName::ContentType)
    }

    /// User-Agent.
    pub fn user_agent(&self) -> Option<&'a [u8]> {
        self.header(HeaderName::UserAgent)
    }

    /// Server.
    pub fn server(&self) -> Option<&'a [u8]> {
        self.header(HeaderName::Server)
    }

    /// Allow methods over every Allow header.
    pub fn allow(&self) -> Elements<'a> {
        self.elements(HeaderName::Allow)
    }

    /// Supported option tags over every Supported header.
    pub fn supported(&self) -> Elements<'a> {
        self.elements(HeaderName::Supported)
    }

    /// Require option tags over every Require header.
    pub fn require(&self) -> Elements<'a> {
        self.elements(HeaderName::Require)
    }

    /// Authorization credentials, parsed.
    pub fn authorization(&self) -> Option<Result<Digest<'a>, AuthError>> {
        self.header(HeaderName::Authorization).map(Digest::parse)
    }

    /// Proxy-Authorization credentials, parsed.
    pub fn proxy_authorization(&self) -> Option<Result<Digest<'a>, AuthError>> {
        self.header(HeaderName::ProxyAuthorization).map(Digest::parse)
    }

    /// WWW-Authenticate challenge, parsed.
    pub fn www_authenticate(&self) -> Option<Result<Digest<'a>, AuthError>> {
        self.header(HeaderName::WwwAuthenticate).map(Digest::parse)
    }

    /// Proxy-Authenticate challenge, parsed.
    pub fn proxy_authenticate(&self) -> Option<Result<Digest<'a>, AuthError>> {
        self.header(HeaderName::ProxyAuthenticate).map(Digest::parse)
    }

    /// True if Content-Type is `application/sdp` (case-insensitive, parameters ignored).
    pub fn is_sdp(&self) -> bool {
        self.content_type().is_some_and(|ct| {
            let media = ct.split(|&b| b == b';').next().unwrap_or(&[]);
            trim(media).eq_ignore_ascii_case(b"application/sdp")
        })
    }

    /// The body as SDP, when Content-Type is `application/sdp`.
    pub fn sdp(&self) -> Option<Result<Sdp<'a>, SdpError>> {
        self.is_sdp().then(|| Sdp::parse(self.body()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `req!(name, bytes, |msg| { ... })`: one test per fixture, httparse-style.
    macro_rules! req {
        ($name:ident, $buf:expr, |$m:ident| $body:block) => {
            #[test]
            fn $name() {
                let mut p = Parser::new(Limits::default());
                let $m = p.parse($buf);
                all_accessors(&$m);
                $body
            }
        };
    }

    /// Exercise every accessor; used by fixtures and property tests alike.
    fn all_accessors(m: &Message<'_>) {
        let len = m.buf().len() as u32;
        for h in m.headers() {
            assert!(h.name_span.start <= h.name_span.end && h.name_span.end <= len);
            assert!(h.value.start <= h.value.end && h.value.end <= len);
        }
        assert!(m.body().len() <= m.buf().len());
        let _ = (m.is_request(), m.is_response(), m.method(), m.method_bytes(), m.status());
        let _ = (m.reason_phrase(), m.request_uri_bytes(), m.request_uri(), m.version());
        let _ = (m.call_id(), m.cseq(), m.top_via(), m.from(), m.to());
        let _ = (m.max_forwards(), m.expires(), m.content_length(), m.content_type());
        let _ = (m.user_agent(), m.server(), m.authorization(), m.proxy_authorization());
        let _ = (m.www_authenticate(), m.proxy_authenticate(), m.sdp(), m.reasons().len());
        for v in m.vias() {
            let _ = (v.branch(), v.received(), v.rport(), v.maddr(), v.ttl(), v.params.is_valid());
        }
        if let Contacts::List(l) = m.contacts() {
            for c in l {
                let _ = (c.expires(), c.tag(), c.params.iter().count());
            }
        }
        let _ = m.routes().count() + m.record_routes().count();
        let _ = m.allow().count() + m.supported().count() + m.require().count();
        for h in HeaderName::KNOWN {
            let _ = (m.header(h), m.header_count(h), m.headers_named(h).count());
        }
        let _ = m.header_by_name(b"X-Foo").count() + m.header_by_name(b"i").count();
    }

    fn reasons(buf: &[u8]) -> Vec<&'static str> {
        let mut p = Parser::new(Limits::default());
        let m = p.parse(buf);
        all_accessors(&m);
        m.reasons().iter().map(|r| r.name()).collect()
    }

    const INVITE: &[u8] = b"INVITE sip:bob@biloxi.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.com>\r\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.com>\r\n\
Allow: INVITE, ACK, CANCEL\r\n\
Allow: BYE,OPTIONS\r\n\
Supported: replaces, timer\r\n\
User-Agent: secsip-test/1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 141\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

    req!(invite_with_sdp, INVITE, |m| {
        assert_eq!(m.reasons(), Reasons::default(), "{:?}", m.reasons().iter().collect::<Vec<_>>());
        assert!(m.is_request());
        assert_eq!(m.method(), Some(Method::Invite));
        assert_eq!(m.method_bytes(), Some(&b"INVITE"[..]));
        assert_eq!(m.request_uri_bytes(), Some(&b"sip:bob@biloxi.com"[..]));
        assert!(m.request_uri().unwrap().is_ok());
        assert_eq!(m.version(), Some(&b"SIP/2.0"[..]));
        assert_eq!(m.call_id(), Some(&b"a84b4c76e66710@pc33.atlanta.com"[..]));
        let c = m.cseq().unwrap();
        assert_eq!((c.number, c.method, c.method_bytes), (314159, Method::Invite, &b"INVITE"[..]));
        let v = m.top_via().unwrap();
        assert_eq!((v.transport, v.host), (&b"UDP"[..], &b"pc33.atlanta.com"[..]));
        assert_eq!(m.from().unwrap().tag(), Some(&b"1928301774"[..]));
        assert_eq!(m.to().unwrap().tag(), None);
        assert_eq!(m.to().unwrap().display, Some(&b"Bob"[..]));
        assert_eq!(m.max_forwards(), Some(70));
        assert_eq!(m.content_length(), Some(141));
        assert_eq!(m.body().len(), 141);
        assert!(m.body().starts_with(b"v=0"));
        assert!(m.is_sdp() && m.sdp().unwrap().is_ok());
        assert_eq!(m.user_agent(), Some(&b"secsip-test/1.0"[..]));
        assert_eq!(m.allow().collect::<Vec<_>>(), vec![&b"INVITE"[..], b"ACK", b"CANCEL", b"BYE", b"OPTIONS"]);
        assert_eq!(m.supported().collect::<Vec<_>>(), vec![&b"replaces"[..], b"timer"]);
        assert_eq!(m.require().count(), 0);
        assert_eq!(m.header_count(HeaderName::Allow), 2);
        assert_eq!(m.headers().len(), 13);
        assert!(m.authorization().is_none());
        match m.contacts() {
            Contacts::List(mut l) => assert_eq!(l.next().unwrap().uri, b"sip:alice@pc33.atlanta.com"),
            Contacts::Wildcard => panic!(),
        }
    });

    req!(register_with_auth, b"REGISTER sip:registrar.biloxi.com SIP/2.0\r\n\
Via: SIP/2.0/UDP bobspc.biloxi.com:5060;branch=z9hG4bKnashds7;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.com>\r\n\
From: Bob <sip:bob@biloxi.com>;tag=456248\r\n\
Call-ID: 843817637684230@998sdasdh09\r\n\
CSeq: 1826 REGISTER\r\n\
Contact: <sip:bob@192.0.2.4>;expires=7200, \"Mobile, 2\" <sip:bob@[2001:db8::4]:5070>;q=0.5\r\n\
Contact: sip:bob@198.51.100.1;expires=60\r\n\
Authorization: Digest username=\"bob\", realm=\"biloxi.com\", nonce=\"dcd98b\", uri=\"sip:biloxi.com\", response=\"6629fae4\"\r\n\
Expires: 7200\r\n\
Content-Length: 0\r\n\
\r\n", |m| {
        assert!(m.reasons().is_empty(), "{:?}", m.reasons().iter().collect::<Vec<_>>());
        assert_eq!(m.method(), Some(Method::Register));
        assert_eq!(m.expires(), Some(7200));
        assert_eq!(m.top_via().unwrap().port, Some(5060));
        assert_eq!(m.top_via().unwrap().rport(), Some(None));
        let Contacts::List(l) = m.contacts() else { panic!() };
        let v: Vec<_> = l.collect();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].expires(), Some(7200));
        assert_eq!(v[1].display, Some(&b"Mobile, 2"[..]));
        assert_eq!(v[1].uri, b"sip:bob@[2001:db8::4]:5070");
        assert_eq!(v[1].param(b"q"), Some(Some(&b"0.5"[..])));
        assert_eq!(v[2].uri, b"sip:bob@198.51.100.1");
        assert_eq!(v[2].expires(), Some(60));
        assert!(m.authorization().unwrap().is_ok());
        assert!(m.body().is_empty());
    });

    req!(register_wildcard, b"REGISTER sip:r.example.com SIP/2.0\r\n\
v: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n\
t: <sip:a@example.com>\r\nf: <sip:a@example.com>;tag=1\r\ni: wc1\r\nCSeq: 2 REGISTER\r\n\
m: *\r\nExpires: 0\r\nl: 0\r\n\r\n", |m| {
        assert!(m.reasons().is_empty(), "{:?}", m.reasons().iter().collect::<Vec<_>>());
        assert!(m.contacts().is_wildcard());
        assert_eq!(m.call_id(), Some(&b"wc1"[..]));
    });

    req!(compact_forms_and_case, b"OPTIONS sip:carol@chicago.com SIP/2.0\r\n\
v: SIP/2.0/TCP [2001:db8::10]:5061;branch=z9hG4bKhjhs8ass877\r\n\
mAX-fORWARDS: 70\r\n\
t: <sip:carol@chicago.com>\r\n\
f: \"Alice \\\"A\\\", Esq.\" <sip:alice@[2001:db8::20]>;tag=1928301774\r\n\
i: a84b4c76e66710\r\n\
cseq: 63104 OPTIONS\r\n\
m: <sips:alice@[2001:db8::20]:5061>\r\n\
k: 100rel\r\n\
Supported: timer\r\n\
ACCEPT: application/sdp\r\n\
X-Custom: one\r\n\
x-custom: two\r\n\
l: 0\r\n\
\r\n", |m| {
        assert!(m.reasons().is_empty(), "{:?}", m.reasons().iter().collect::<Vec<_>>());
        assert_eq!(m.call_id(), Some(&b"a84b4c76e66710"[..]));
        assert_eq!(m.max_forwards(), Some(70));
        let v = m.top_via().unwrap();
        assert_eq!((v.host, v.port), (&b"2001:db8::10"[..], Some(5061)));
        let f = m.from().unwrap();
        assert_eq!(f.display, Some(&b"Alice \\\"A\\\", Esq."[..]));
        assert_eq!(f.uri, b"sip:alice@[2001:db8::20]");
        assert_eq!(m.supported().collect::<Vec<_>>(), vec![&b"100rel"[..], b"timer"]);
        assert_eq!(m.header_by_name(b"x-CUSTOM").collect::<Vec<_>>(), vec![&b"one"[..], b"two"]);
        assert_eq!(m.header_by_name(b"Call-ID").next(), Some(&b"a84b4c76e66710"[..]));
        assert_eq!(m.header_by_name(b"k").count(), 2);
        assert_eq!(m.header(HeaderName::Accept), Some(&b"application/sdp"[..]));
        assert_eq!(m.headers()[1].name_span.get(m.buf()), b"mAX-fORWARDS");
    });

    req!(folding_and_multi_via, b"BYE sip:alice@pc33.atlanta.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds10,\r\n\
\x20SIP/2.0/UDP bigbox3.site3.atlanta.com;branch=z9hG4bK77ef4c2312983.1\r\n\
Via: SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bK2;received=2001:db8::99\r\n\
Max-Forwards: 70\r\n\
From: Bob\r\n\t<sip:bob@biloxi.com>;tag=a6c85cf\r\n\
To: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 231 BYE\r\n\
Subject:\r\n  folded\r\n   subject\r\n\
Route: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>\r\n\
Route: <sip:p3.example.com;lr>\r\n\
Content-Length: 0\r\n\
\r\n", |m| {
        assert!(m.reasons().is_empty(), "{:?}", m.reasons().iter().collect::<Vec<_>>());
        let vias: Vec<_> = m.vias().collect();
        assert_eq!(vias.len(), 3);
        assert_eq!(vias[1].host, b"bigbox3.site3.atlanta.com");
        assert_eq!(vias[2].host, b"2001:db8::1");
        assert_eq!(vias[2].transport, b"TLS");
        assert_eq!(vias[2].received(), Some(&b"2001:db8::99"[..]));
        let f = m.from().unwrap();
        assert_eq!((f.display, f.uri), (Some(&b"Bob"[..]), &b"sip:bob@biloxi.com"[..]));
        assert_eq!(m.header(HeaderName::Subject), Some(&b"folded\r\n   subject"[..]));
        let r: Vec<_> = m.routes().map(|a| a.uri).collect();
        assert_eq!(r, vec![&b"sip:p1.example.com;lr"[..], b"sip:p2.example.com;lr", b"sip:p3.example.com;lr"]);
    });

    req!(bare_lf_and_leading_crlf, b"\r\nACK sip:bob@192.0.2.4 SIP/2.0\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds9\n\
Max-Forwards: 70\nTo: Bob <sip:bob@biloxi.com>;tag=a6c85cf\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\nCall-ID: a84b4c76e66710\n\
CSeq: 314159 ACK\nContent-Length: 0\n\n", |m| {
        assert!(m.reasons().is_empty(), "{:?}", m.reasons().iter().collect::<Vec<_>>());
        assert_eq!(m.method(), Some(Method::Ack));
        assert_eq!(m.cseq().unwrap().method, Method::Ack);
        assert_eq!(m.to().unwrap().tag(), Some(&b"a6c85cf"[..]));
    });

    req!(ringing_180, b"SIP/2.0 180 Ringing\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds;received=192.0.2.1\r\n\
To: Bob <sip:bob@biloxi.com>;tag=a6c85cf\r\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:bob@192.0.2.4>\r\n\
Record-Route: <sip:ss2.biloxi.example.com;lr>, <sip:ss1.atlanta.example.com;lr>\r\n\
Content-Length: 0\r\n\r\n", |m| {
        assert!(m.reasons().is_empty(), "{:?}", m.reasons().iter().collect::<Vec<_>>());
        assert!(m.is_response() && !m.is_request());
        assert_eq!(m.status(), Some(180));
        assert_eq!(m.reason_phrase(), Some(&b"Ringing"[..]));
        assert_eq!(m.method(), None);
        assert_eq!(m.record_routes().count(), 2);
        assert_eq!(m.cseq().unwrap().method, Method::Invite);
    });

    req!(ok_200_with_sdp_and_challenge, b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n\
To: <sip:bob@biloxi.com>;tag=a6c85cf\r\n\
From: <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: x1\r\nCSeq: 1 INVITE\r\nServer: secsip-uas\r\n\
WWW-Authenticate: Digest realm=\"atlanta.com\", nonce=\"84a4cc6f\", qop=\"auth\"\r\n\
Content-Type: Application/SDP; charset=utf-8\r\nContent-Length: 4\r\n\r\nv=0\n", |m| {
        assert!(m.reasons().is_empty(), "{:?}", m.reasons().iter().collect::<Vec<_>>());
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.server(), Some(&b"secsip-uas"[..]));
        assert!(m.www_authenticate().unwrap().is_ok());
        assert!(m.is_sdp());
        assert_eq!(m.body(), b"v=0\n");
    });

    req!(status_without_phrase, b"SIP/2.0 100\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
To: <sip:b@h>\r\nFrom: <sip:a@h>;tag=1\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n", |m| {
        assert!(m.reasons().is_empty(), "{:?}", m.reasons().iter().collect::<Vec<_>>());
        assert_eq!(m.status(), Some(100));
        assert_eq!(m.reason_phrase(), Some(&b""[..]));
    });

    req!(extension_method, b"FOO sip:x@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
To: <sip:b@h>\r\nFrom: <sip:a@h>;tag=1\r\nCall-ID: c\r\nCSeq: 1 FOO\r\n\r\n", |m| {
        assert!(m.reasons().is_empty());
        assert_eq!(m.method(), Some(Method::Other));
        assert_eq!(m.method().unwrap().as_str(), "OTHER");
        assert_eq!(m.method_bytes(), Some(&b"FOO"[..]));
    });

    /// A minimal valid request; each malformed case below edits it.
    const BASE: &str = "OPTIONS sip:b@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n\
From: <sip:a@example.com>;tag=1\r\n\
To: <sip:b@example.com>\r\n\
Call-ID: abc@h\r\n\
CSeq: 1 OPTIONS\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\
\r\n";

    #[test]
    fn base_is_valid() {
        assert_eq!(reasons(BASE.as_bytes()), Vec::<&str>::new());
    }

    /// Replace `from` in BASE by `to` and assert exactly `want` is reported.
    fn case(from: &str, to: &str, want: &str) {
        assert!(BASE.contains(from), "{from}");
        let buf = BASE.replacen(from, to, 1);
        let mut got = reasons(buf.as_bytes());
        let mut want: Vec<&str> = want.split('+').filter(|w| !w.is_empty()).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{to:?}");
    }

    #[test]
    fn each_reason() {
        case("OPTIONS sip:b@example.com SIP/2.0", "OPTIONS", "bad_start_line");
        case("OPTIONS sip:b@example.com SIP/2.0", "OPTIONS sip:b@example.com SIP/3.0", "bad_version");
        case("OPTIONS sip:b@example.com SIP/2.0", "OPTIONS sip:b@exa\x01mple.com SIP/2.0", "bad_request_uri");
        case("OPTIONS sip:b@example.com SIP/2.0", "OPT(ONS sip:b@example.com SIP/2.0", "bad_method+cseq_method_mismatch");
        case("Max-Forwards: 70\r\n", "Max-Forwards 70\r\n", "header_syntax");
        case("Max-Forwards: 70\r\n", "Max Forwards: 70\r\n", "header_syntax");
        case("Max-Forwards: 70\r\n", "Max-Forwards: 70\r\nSubject: a\x00b\r\n", "header_chars");
        case("Max-Forwards: 70\r\n", "Max-Forwards: 70\r\nSubject: a\rb\x7f\r\n", "header_chars");
        case("Call-ID: abc@h\r\n", "", "missing_call_id");
        case("CSeq: 1 OPTIONS\r\n", "", "missing_cseq");
        case("From: <sip:a@example.com>;tag=1\r\n", "", "missing_from");
        case("To: <sip:b@example.com>\r\n", "", "missing_to");
        case("Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n", "", "missing_via");
        case(";tag=1", "", "missing_from_tag");
        case("Call-ID: abc@h", "Call-ID: abc def", "bad_call_id");
        case("Call-ID: abc@h", "Call-ID: a@b@c", "bad_call_id");
        case("CSeq: 1 OPTIONS", "CSeq: x OPTIONS", "bad_cseq");
        case("CSeq: 1 OPTIONS", "CSeq: 2147483648 OPTIONS", "bad_cseq");
        case("CSeq: 1 OPTIONS", "CSeq: 1OPTIONS", "bad_cseq");
        case("CSeq: 1 OPTIONS", "CSeq: 1 INVITE", "cseq_method_mismatch");
        case("Call-ID: abc@h\r\n", "Call-ID: abc@h\r\ni: abc@h\r\n", "duplicate_singleton");
        case("Max-Forwards: 70\r\n", "Max-Forwards: 70\r\nMax-Forwards: 70\r\n", "duplicate_singleton");
        case("Content-Length: 0", "Content-Length: zero", "bad_content_length");
        case("Content-Length: 0", "Content-Length: 5", "content_length_mismatch");
        case("Max-Forwards: 70", "Max-Forwards: 256", "bad_max_forwards");
        case("Max-Forwards: 70", "Max-Forwards: -1", "bad_max_forwards");
        case("From: <sip:a@example.com>", "From: <sip:a@example.com", "bad_from");
        case("From: <sip:a@example.com>;tag=1", "From: <sip:a@example.com>;tag=1;x=\"open", "bad_from");
        case("To: <sip:b@example.com>", "To: Bob sip:b@example.com", "bad_to");
        case("To: <sip:b@example.com>", "To: <>", "bad_to");
        case(";tag=1", ";tag=1;tag=2", "duplicate_tag");
        case("SIP/2.0/UDP h.example.com", "SIP/2.0/UDP", "bad_via");
        case("SIP/2.0/UDP h.example.com", "SIP/1.0/UDP h.example.com", "bad_via");
        case("SIP/2.0/UDP h.example.com", "SIP/2.0/UDP [2001:db8::1", "bad_via");
        // With no branch at all the request is an RFC 2543 one (`allow_rfc2543`).
        case(";branch=z9hG4bK1", ";received=192.0.2.1", "");
        let strict = Limits { allow_rfc2543: false, ..Limits::default() };
        let branchless = BASE.replacen(";branch=z9hG4bK1", "", 1);
        assert_eq!(Parser::new(strict).parse(branchless.as_bytes()).reasons().iter().map(|r| r.name()).collect::<Vec<_>>(), ["missing_via_branch"]);
        case("Max-Forwards: 70", "Subject: \"a\\\x00b\"", "");
        case("Max-Forwards: 70", "Subject: \"a\x00b\"", "header_chars");
        case("Max-Forwards: 70", "Date: Fri, 01 Jan 2010 16:00:00 EST", "bad_date");
        case("OPTIONS sip:b@example.com SIP/2.0", "OPTIONS sip:b@example.com?Route=x SIP/2.0", "request_uri_headers");
        case("SIP/2.0/UDP h.example.com", "SIP/2.0/FOO h.example.com", "unknown_via_transport");
        case("Max-Forwards: 70", "Expires: soon", "bad_expires");
        case("Max-Forwards: 70", "Contact: <sip:c@h>;expires=x", "bad_expires");
        case("Max-Forwards: 70", "Contact: <sip:c@h> junk", "bad_contact");
        case("Max-Forwards: 70", "Contact: *, <sip:c@h>", "bad_contact");
        case("Max-Forwards: 70", "Contact: <sip:c@h>, <sip:d@h", "bad_contact");
        case("Max-Forwards: 70", "Route: <sip:p1.example.com;lr", "bad_route");
        case("Max-Forwards: 70", "Record-Route: sip:x@h;lr=\"", "bad_route");
        case("Content-Length: 0\r\n\r\n", "Content-Length: 0\r\n", "unterminated_headers");
        case("Content-Length: 0\r\n\r\n", "Content-Length: 4\r\n\r\nbody", "missing_content_type");
        case("Max-Forwards: 70\r\n", "Max-Forwards: 70\r\n folded\r\n", "bad_max_forwards");
    }

    #[test]
    fn response_reasons() {
        let resp = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n\
To: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";
        assert_eq!(reasons(resp.as_bytes()), Vec::<&str>::new());
        for (code, want) in [("20", "bad_status_code"), ("700", "bad_status_code"), ("2x0", "bad_status_code")] {
            let b = resp.replacen("200", code, 1);
            assert_eq!(reasons(b.as_bytes()), vec![want]);
        }
        assert_eq!(reasons(resp.replacen("SIP/2.0 200", "SIP/2.1 200", 1).as_bytes()), vec!["bad_version"]);
        // Responses need no From tag.
        assert_eq!(reasons(resp.replacen(";tag=1", "", 1).as_bytes()), Vec::<&str>::new());
    }

    #[test]
    fn limits_reasons() {
        let limits = Limits {
            max_message_bytes: 300,
            max_headers: 8,
            max_header_bytes: 60,
            max_uri_bytes: 20,
            max_call_id_bytes: 8,
            max_via_hops: 2,
            allow_rfc2543: false,
        };
        let mut p = Parser::new(limits);
        let r = |p: &mut Parser, b: &str| -> Vec<&'static str> {
            p.parse(b.as_bytes()).reasons().iter().map(|r| r.name()).collect()
        };
        let small = "OPTIONS sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: abc\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert_eq!(r(&mut p, small), Vec::<&str>::new());
        let long = format!("{small}{}", "x".repeat(300));
        assert!(r(&mut p, &long).contains(&"message_too_long"));
        let many = small.replacen("\r\n\r\n", "\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 1);
        assert_eq!(r(&mut p, &many), vec!["too_many_headers"]);
        assert_eq!(p.parse(many.as_bytes()).headers().len(), 8);
        let big = small.replacen("Call-ID: abc", &format!("Subject: {}\r\nCall-ID: abc", "s".repeat(60)), 1);
        assert_eq!(r(&mut p, &big), vec!["header_too_long"]);
        let folded = small.replacen("Call-ID: abc", &format!("Subject: a\r\n {}\r\nCall-ID: abc", "s".repeat(60)), 1);
        assert_eq!(r(&mut p, &folded), vec!["header_too_long"]);
        assert_eq!(r(&mut p, &small.replacen("sip:b@h SIP", "sip:bbbbbbbbbbbbbbbbbbbbbbbb@h SIP", 1)), vec!["uri_too_long"]);
        assert_eq!(r(&mut p, &small.replacen("<sip:a@h>", "<sip:aaaaaaaaaaaaaaaaaaaaaa@h>", 1)), vec!["uri_too_long"]);
        assert_eq!(r(&mut p, &small.replacen("Call-ID: abc", "Call-ID: abcdefghij", 1)), vec!["call_id_too_long"]);
        let hops = small.replacen("Via:", "Via: SIP/2.0/UDP a;branch=z9hG4bK2\r\nv: SIP/2.0/UDP b;branch=z9hG4bK3\r\nVia:", 1);
        assert_eq!(r(&mut p, &hops), vec!["too_many_via_hops"]);
    }

    #[test]
    fn garbage_is_a_verdict() {
        for b in [&b""[..], b"\r\n\r\n", b"hello", b"\0\0\0", b"SIP/2.0", b"INVITE"] {
            let r = reasons(b);
            assert!(!r.is_empty(), "{:?}", String::from_utf8_lossy(b));
        }
        assert!(reasons(b"").contains(&"bad_start_line"));
        assert!(reasons(b"INVITE sip:a@b SIP/2.0\r\n folded\r\n\r\n").contains(&"header_syntax"));
    }

    #[test]
    fn no_realloc() {
        let mut p = Parser::new(Limits::default());
        let cap = p.headers.capacity();
        let many: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
        let buf = format!("OPTIONS sip:a@b SIP/2.0\r\n{many}\r\n");
        let n = p.parse(buf.as_bytes()).headers().len();
        assert_eq!(n, 64);
        assert_eq!(p.headers.capacity(), cap);
    }

    /// `cargo test --release --lib sip::message::tests::perf -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn perf() {
        let mut p = Parser::new(Limits::default());
        let mut buf = INVITE.to_vec();
        // Pad the SDP to a realistic ~900-byte INVITE.
        let pad = b"a=sendrecv\r\n".repeat(30);
        buf.extend_from_slice(&pad);
        let cl = format!("Content-Length: {}", 141 + pad.len());
        let s = String::from_utf8(buf).unwrap().replacen("Content-Length: 141", &cl, 1);
        let buf = s.into_bytes();
        assert!(p.parse(&buf).reasons().is_empty());
        let n = 200_000;
        let t = std::time::Instant::now();
        let mut acc = 0usize;
        for _ in 0..n {
            let m = p.parse(std::hint::black_box(&buf));
            acc += m.reasons().len() + m.headers().len();
        }
        let dt = t.elapsed();
        println!("{} bytes: {:?}/parse+validate (acc {acc})", buf.len(), dt / n);
    }

    fn valid_fixtures() -> Vec<Vec<u8>> {
        vec![INVITE.to_vec(), BASE.as_bytes().to_vec(), b"SIP/2.0 180 Ringing\r\n\
v: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1,SIP/2.0/TCP h;branch=z9hG4bK2\r\n\
f: \"A \\\"q\\\", b\" <sip:a@[2001:db8::2]>;tag=1\r\nt: <sip:b@h>;tag=2\r\ni: c\r\n\
CSeq: 1 INVITE\r\nm: <sip:c@h>;expires=5, sip:d@h\r\nRoute: <sip:r@h;lr>\r\n\
Authorization: Digest username=\"a\"\r\nContent-Type: application/sdp\r\nl: 3\r\n\r\nv=0"
            .to_vec()]
    }

    /// The two passes `scan_line` replaces: `memchr` LF (CR LF or LF ends a line), then
    /// `has_ctl` of the content.
    fn two_pass_line(buf: &[u8], start: usize) -> (usize, usize, bool) {
        let (end, next) = match memchr::memchr(b'\n', &buf[start..]) {
            Some(i) => {
                let lf = start + i;
                (if i > 0 && buf[lf - 1] == b'\r' { lf - 1 } else { lf }, lf + 1)
            }
            None => (buf.len(), buf.len()),
        };
        (end, next, has_ctl(&buf[start..end]))
    }

    proptest! {
        #[test]
        fn scan_line_matches_two_passes(
            buf in proptest::collection::vec(
                prop::sample::select(&b"ab:\r\n\t \x00\x1f\x7f\x80\xff"[..]), 0..64),
            start in 0usize..64,
        ) {
            let start = start.min(buf.len());
            prop_assert_eq!(scan_line(&buf, start), two_pass_line(&buf, start));
        }

        #[test]
        fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut p = Parser::new(Limits::default());
            let m = p.parse(&buf);
            all_accessors(&m);
        }

        #[test]
        fn sip_like_bytes_never_panic(buf in proptest::collection::vec(
            prop::sample::select(&b"SIP/2.0 INVITE sip:@;=,<>\"\\[]:\r\n \tVia:From:To:Call-ID:CSeq:1ab\0"[..]),
            0..600,
        )) {
            let mut p = Parser::new(Limits::default());
            let m = p.parse(&buf);
            all_accessors(&m);
        }

        #[test]
        fn mutations_never_panic(
            which in 0usize..3,
            ops in proptest::collection::vec((0u8..4, any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let mut buf = valid_fixtures().swap_remove(which);
            for (op, at, byte) in ops {
                if buf.is_empty() { break; }
                let i = at.index(buf.len());
                match op {
                    0 => buf[i] ^= byte | 1,
                    1 => buf.truncate(i),
                    2 => {
                        let ins = [b'\r', b'\n', b':', b'"', b' ', 0, b',', b';', b'<', b'['];
                        buf.insert(i, ins[byte as usize % ins.len()]);
                    }
                    _ => { buf.remove(i); }
                }
            }
            let mut p = Parser::new(Limits::default());
            let m = p.parse(&buf);
            all_accessors(&m);
        }
    }
}
