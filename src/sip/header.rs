//! Header names: the known set as an enum, case-insensitive lookup, compact forms.

/// A header field name, resolved case-insensitively with RFC 3261 §7.3.3 compact forms
/// (and the compact forms registered by later RFCs: `u`, `x`, `b`, `o`, `r`, `k`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum HeaderName {
    /// `Via` (compact `v`).
    Via,
    /// `From` (compact `f`).
    From,
    /// `To` (compact `t`).
    To,
    /// `Call-ID` (compact `i`).
    CallId,
    /// `CSeq`.
    CSeq,
    /// `Contact` (compact `m`).
    Contact,
    /// `Max-Forwards`.
    MaxForwards,
    /// `Expires`.
    Expires,
    /// `Content-Length` (compact `l`).
    ContentLength,
    /// `Content-Type` (compact `c`).
    ContentType,
    /// `Content-Encoding` (compact `e`).
    ContentEncoding,
    /// `User-Agent`.
    UserAgent,
    /// `Server`.
    Server,
    /// `Route`.
    Route,
    /// `Record-Route`.
    RecordRoute,
    /// `Authorization`.
    Authorization,
    /// `Proxy-Authorization`.
    ProxyAuthorization,
    /// `WWW-Authenticate`.
    WwwAuthenticate,
    /// `Proxy-Authenticate`.
    ProxyAuthenticate,
    /// `Allow`.
    Allow,
    /// `Supported` (compact `k`).
    Supported,
    /// `Require`.
    Require,
    /// `Proxy-Require`.
    ProxyRequire,
    /// `Unsupported`.
    Unsupported,
    /// `Date`.
    Date,
    /// `Subject` (compact `s`).
    Subject,
    /// `Event` (compact `o`).
    Event,
    /// `Refer-To` (compact `r`).
    ReferTo,
    /// `Accept`.
    Accept,
    /// `Organization`.
    Organization,
    /// `Priority`.
    Priority,
    /// `Timestamp`.
    Timestamp,
    /// `Warning`.
    Warning,
    /// `Min-Expires`.
    MinExpires,
    /// `Retry-After`.
    RetryAfter,
    /// `Allow-Events` (compact `u`).
    AllowEvents,
    /// `Session-Expires` (compact `x`).
    SessionExpires,
    /// `Referred-By` (compact `b`).
    ReferredBy,
    /// Any other header; compare [`crate::sip::Header::name_span`] bytes to tell them apart.
    Other,
}

impl HeaderName {
    /// Number of variants, for per-name arrays indexed by `name as usize`.
    pub const COUNT: usize = 39;

    /// Every variant except [`HeaderName::Other`], in declaration order.
    pub const KNOWN: [HeaderName; 38] = [HeaderName::Via, HeaderName::From, HeaderName::To, HeaderName::CallId, HeaderName::CSeq, HeaderName::Contact, HeaderName::MaxForwards, HeaderName::Expires, HeaderName::ContentLength, HeaderName::ContentType, HeaderName::ContentEncoding, HeaderName::UserAgent, HeaderName::Server, HeaderName::Route, HeaderName::RecordRoute, HeaderName::Authorization, HeaderName::ProxyAuthorization, HeaderName::WwwAuthenticate, HeaderName::ProxyAuthenticate, HeaderName::Allow, HeaderName::Supported, HeaderName::Require, HeaderName::ProxyRequire, HeaderName::Unsupported, HeaderName::Date, HeaderName::Subject, HeaderName::Event, HeaderName::ReferTo, HeaderName::Accept, HeaderName::Organization, HeaderName::Priority, HeaderName::Timestamp, HeaderName::Warning, HeaderName::MinExpires, HeaderName::RetryAfter, HeaderName::AllowEvents, HeaderName::SessionExpires, HeaderName::ReferredBy];

    /// Canonical spelling (`"Call-ID"`); `"Other"` for [`HeaderName::Other`].
    pub fn as_str(&self) -> &'static str {
        match self {
            HeaderName::Via => "Via",
            HeaderName::From => "From",
            HeaderName::To => "To",
            HeaderName::CallId => "Call-ID",
            HeaderName::CSeq => "CSeq",
            HeaderName::Contact => "Contact",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::Expires => "Expires",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::ContentType => "Content-Type",
            HeaderName::ContentEncoding => "Content-Encoding",
            HeaderName::UserAgent => "User-Agent",
            HeaderName::Server => "Server",
            HeaderName::Route => "Route",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::Authorization => "Authorization",
            HeaderName::ProxyAuthorization => "Proxy-Authorization",
            HeaderName::WwwAuthenticate => "WWW-Authenticate",
            HeaderName::ProxyAuthenticate => "Proxy-Authenticate",
            HeaderName::Allow => "Allow",
            HeaderName::Supported => "Supported",
            HeaderName::Require => "Require",
            HeaderName::ProxyRequire => "Proxy-Require",
            HeaderName::Unsupported => "Unsupported",
            HeaderName::Date => "Date",
            HeaderName::Subject => "Subject",
            HeaderName::Event => "Event",
            HeaderName::ReferTo => "Refer-To",
            HeaderName::Accept => "Accept",
            HeaderName::Organization => "Organization",
            HeaderName::Priority => "Priority",
            HeaderName::Timestamp => "Timestamp",
            HeaderName::Warning => "Warning",
            HeaderName::MinExpires => "Min-Expires",
            HeaderName::RetryAfter => "Retry-After",
            HeaderName::AllowEvents => "Allow-Events",
            HeaderName::SessionExpires => "Session-Expires",
            HeaderName::ReferredBy => "Referred-By",
            HeaderName::Other => "Other",
        }
    }

    /// Resolve a header name: case-insensitive, compact forms expanded, never allocates.
    ///
    /// Names are lower-cased into a stack buffer and matched as byte strings, which the
    /// compiler turns into a length switch plus a short compare.
    pub fn from_bytes(name: &[u8]) -> HeaderName {
        if name.len() == 1 {
            return match name.first().map(u8::to_ascii_lowercase) {
                Some(b'v') => HeaderName::Via,
                Some(b'f') => HeaderName::From,
                Some(b't') => HeaderName::To,
                Some(b'i') => HeaderName::CallId,
                Some(b'm') => HeaderName::Contact,
                Some(b'l') => HeaderName::ContentLength,
                Some(b'c') => HeaderName::ContentType,
                Some(b'e') => HeaderName::ContentEncoding,
                Some(b'k') => HeaderName::Supported,
                Some(b's') => HeaderName::Subject,
                Some(b'o') => HeaderName::Event,
                Some(b'r') => HeaderName::ReferTo,
                Some(b'u') => HeaderName::AllowEvents,
                Some(b'x') => HeaderName::SessionExpires,
                Some(b'b') => HeaderName::ReferredBy,
                _ => HeaderName::Other,
            };
        }
        let mut lower = [0u8; 20];
        let Some(dst) = lower.get_mut(..name.len()) else {
            return HeaderName::Other;
        };
        for (d, s) in dst.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        match &*dst {
            b"via" => HeaderName::Via,
            b"from" => HeaderName::From,
            b"to" => HeaderName::To,
            b"call-id" => HeaderName::CallId,
            b"cseq" => HeaderName::CSeq,
            b"contact" => HeaderName::Contact,
            b"max-forwards" => HeaderName::MaxForwards,
            b"expires" => HeaderName::Expires,
            b"content-length" => HeaderName::ContentLength,
            b"content-type" => HeaderName::ContentType,
            b"content-encoding" => HeaderName::ContentEncoding,
            b"user-agent" => HeaderName::UserAgent,
            b"server" => HeaderName::Server,
            b"route" => HeaderName::Route,
            b"record-route" => HeaderName::RecordRoute,
            b"authorization" => HeaderName::Authorization,
            b"proxy-authorization" => HeaderName::ProxyAuthorization,
            b"www-authenticate" => HeaderName::WwwAuthenticate,
            b"proxy-authenticate" => HeaderName::ProxyAuthenticate,
            b"allow" => HeaderName::Allow,
            b"supported" => HeaderName::Supported,
            b"require" => HeaderName::Require,
            b"proxy-require" => HeaderName::ProxyRequire,
            b"unsupported" => HeaderName::Unsupported,
            b"date" => HeaderName::Date,
            b"subject" => HeaderName::Subject,
            b"event" => HeaderName::Event,
            b"refer-to" => HeaderName::ReferTo,
            b"accept" => HeaderName::Accept,
            b"organization" => HeaderName::Organization,
            b"priority" => HeaderName::Priority,
            b"timestamp" => HeaderName::Timestamp,
            b"warning" => HeaderName::Warning,
            b"min-expires" => HeaderName::MinExpires,
            b"retry-after" => HeaderName::RetryAfter,
            b"allow-events" => HeaderName::AllowEvents,
            b"session-expires" => HeaderName::SessionExpires,
            b"referred-by" => HeaderName::ReferredBy,
            _ => HeaderName::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_round_trips() {
        for h in HeaderName::KNOWN {
            assert_eq!(HeaderName::from_bytes(h.as_str().as_bytes()), h);
            assert_eq!(HeaderName::from_bytes(h.as_str().to_ascii_uppercase().as_bytes()), h);
        }
        assert_eq!(HeaderName::KNOWN.len() + 1, HeaderName::COUNT);
    }

    #[test]
    fn compact_and_case() {
        let cases: &[(&[u8], HeaderName)] = &[
            (b"i", HeaderName::CallId),
            (b"I", HeaderName::CallId),
            (b"f", HeaderName::From),
            (b"t", HeaderName::To),
            (b"v", HeaderName::Via),
            (b"m", HeaderName::Contact),
            (b"l", HeaderName::ContentLength),
            (b"c", HeaderName::ContentType),
            (b"e", HeaderName::ContentEncoding),
            (b"k", HeaderName::Supported),
            (b"s", HeaderName::Subject),
            (b"o", HeaderName::Event),
            (b"r", HeaderName::ReferTo),
            (b"u", HeaderName::AllowEvents),
            (b"x", HeaderName::SessionExpires),
            (b"b", HeaderName::ReferredBy),
            (b"z", HeaderName::Other),
            (b"call-id", HeaderName::CallId),
            (b"CALL-ID", HeaderName::CallId),
            (b"cSeQ", HeaderName::CSeq),
            (b"www-authenticate", HeaderName::WwwAuthenticate),
            (b"X-Custom", HeaderName::Other),
            (b"", HeaderName::Other),
            (b"proxy-authorization-and-then-some", HeaderName::Other),
        ];
        for (n, h) in cases {
            assert_eq!(HeaderName::from_bytes(n), *h, "{:?}", String::from_utf8_lossy(n));
        }
    }
}
