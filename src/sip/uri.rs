//! Zero-copy SIP / SIPS / tel URI parser (RFC 3261 §19.1 and §25.1, RFC 3966).
//!
//! Every slice handed out borrows from the input; nothing is decoded or allocated unless the
//! caller asks for it with [`percent_decode`] and its own buffer.

use memchr::memchr;

/// URI scheme, matched case-insensitively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:` (RFC 3966)
    Tel,
    /// Any other syntactically valid scheme (`http:`, `urn:`, ...).
    Other,
}

/// Which production of `host` matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    /// `hostname` (DNS name).
    Name,
    /// `IPv4address`.
    Ipv4,
    /// `IPv6reference` (the host slice excludes the brackets).
    Ipv6,
}

/// Why a URI was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriError {
    /// Zero-length input.
    Empty,
    /// Missing `:` or scheme not `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
    BadScheme,
    /// User (or tel number) empty or outside its character class.
    BadUser,
    /// Password outside its character class.
    BadPassword,
    /// Host empty, malformed name, IPv4 or IPv6 reference.
    BadHost,
    /// Port empty, non-numeric or above 65535.
    BadPort,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// Malformed `;param` or `?header`.
    BadParam,
    /// Control, space or non-ASCII byte anywhere in the URI.
    BadChar,
    /// Output buffer too small for [`percent_decode`].
    TooLong,
}

impl UriError {
    /// Stable snake_case name for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            UriError::Empty => "empty",
            UriError::BadScheme => "bad_scheme",
            UriError::BadUser => "bad_user",
            UriError::BadPassword => "bad_password",
            UriError::BadHost => "bad_host",
            UriError::BadPort => "bad_port",
            UriError::BadEscape => "bad_escape",
            UriError::BadParam => "bad_param",
            UriError::BadChar => "bad_char",
            UriError::TooLong => "too_long",
        }
    }
}

impl core::fmt::Display for UriError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed URI; all slices borrow from [`Uri::raw`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uri<'a> {
    /// The scheme.
    pub scheme: Scheme,
    /// The whole input.
    pub raw: &'a [u8],
    /// `user` (still escaped) for sip/sips, the telephone-subscriber number for tel.
    pub user: Option<&'a [u8]>,
    /// `password` (still escaped), present when userinfo has a `:`.
    pub password: Option<&'a [u8]>,
    /// Host without IPv6 brackets; empty for tel and other schemes.
    pub host: &'a [u8],
    /// Which host production matched (`Name` when the host is empty).
    pub host_kind: HostKind,
    /// Explicit port.
    pub port: Option<u16>,
    /// Text after the first `;` up to `?`, without the leading `;`.
    pub params: &'a [u8],
    /// Text after `?`, without the `?`.
    pub headers: &'a [u8],
}

/// Builds a membership table: ASCII letters and digits when `alnum`, plus every byte in `extra`.
const fn class(alnum: bool, extra: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    if alnum {
        let mut c = 0usize;
        while c < 256 {
            let b = c as u8;
            t[c] = b.is_ascii_alphanumeric();
            c += 1;
        }
    }
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
}

/// ```text
/// unreserved       =  alphanum / mark
/// mark             =  "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
/// user             =  1*( unreserved / escaped / user-unreserved )
/// user-unreserved  =  "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
/// ```
static USER: [bool; 256] = class(true, b"-_.!~*'()&=+$,;?/");

/// ```text
/// password         =  *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
/// ```
static PASSWORD: [bool; 256] = class(true, b"-_.!~*'()&=+$,");

/// ```text
/// paramchar         =  param-unreserved / unreserved / escaped
/// param-unreserved  =  "[" / "]" / "/" / ":" / "&" / "+" / "$"
/// ```
static PARAMCHAR: [bool; 256] = class(true, b"-_.!~*'()[]/:&+$");

/// ```text
/// hname           =  1*( hnv-unreserved / unreserved / escaped )
/// hvalue          =  *( hnv-unreserved / unreserved / escaped )
/// hnv-unreserved  =  "[" / "]" / "/" / "?" / ":" / "+" / "$"
/// ```
static HNV: [bool; 256] = class(true, b"-_.!~*'()[]/?:+$");

/// ```text
/// scheme  =  ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
/// ```
static SCHEME: [bool; 256] = class(true, b"+-.");

/// ```text
/// uric      =  reserved / unreserved / escaped
/// reserved  =  ";" / "/" / "?" / ":" / "@" / "&" / "=" / "+" / "$" / ","
/// ```
static URIC: [bool; 256] = class(true, b";/?:@&=+$,-_.!~*'()");

/// RFC 3966 `isub` value: `1*uric`, minus `;` which would start the next parameter.
static URIC_NO_SEMI: [bool; 256] = class(true, b"/?:@&=+$,-_.!~*'()");

/// RFC 3966:
/// ```text
/// pname  =  1*( alphanum / "-" )
/// ```
static TEL_PNAME: [bool; 256] = class(true, b"-");

/// RFC 3966:
/// ```text
/// phonedigit        =  DIGIT / [ visual-separator ]
/// visual-separator  =  "-" / "." / "(" / ")"
/// ```
static PHONEDIGIT: [bool; 256] = class(false, b"0123456789-.()");

/// RFC 3966:
/// ```text
/// phonedigit-hex  =  HEXDIG / "*" / "#" / [ visual-separator ]
/// ```
static PHONEDIGIT_HEX: [bool; 256] = class(false, b"0123456789abcdefABCDEF*#-.()");

/// Value of one hex digit.
fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// An empty slice positioned at the end of `s`, so empty results still point into the input.
fn end_of(s: &[u8]) -> &[u8] {
    s.get(s.len()..).unwrap_or(s)
}

/// Splits `s` around the byte at `i` (which is dropped); `(s, end)` when `i` is out of range.
fn cut(s: &[u8], i: usize) -> (&[u8], &[u8]) {
    match s.split_at_checked(i) {
        Some((a, b)) => (a, b.get(1..).unwrap_or(b)),
        None => (s, end_of(s)),
    }
}

/// Checks `s` against `class` where `%HH` escapes are also allowed.
fn check_escaped(s: &[u8], class: &[bool; 256], err: UriError) -> Result<(), UriError> {
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c == b'%' {
            let hi = s.get(i + 1).copied().and_then(hex_val);
            let lo = s.get(i + 2).copied().and_then(hex_val);
            if hi.is_none() || lo.is_none() {
                return Err(UriError::BadEscape);
            }
            i += 3;
        } else if class[usize::from(c)] {
            i += 1;
        } else {
            return Err(err);
        }
    }
    Ok(())
}

/// `1*DIGIT` bounded to `u16`.
fn parse_u16(s: &[u8]) -> Option<u16> {
    if s.is_empty() {
        return None;
    }
    let mut v: u32 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
        if v > u32::from(u16::MAX) {
            return None;
        }
    }
    u16::try_from(v).ok()
}

/// RFC 3261 `IPv4address`, with each octet additionally bounded to 255 (RFC 3986 `dec-octet`).
fn valid_ipv4(s: &[u8]) -> bool {
    let mut n = 0;
    for part in s.split(|&c| c == b'.') {
        n += 1;
        if part.is_empty() || part.len() > 3 || !part.iter().all(u8::is_ascii_digit) {
            return false;
        }
        if parse_u16(part).is_none_or(|v| v > 255) {
            return false;
        }
    }
    n == 4
}

/// Counts 16-bit groups in a `hexseq`, allowing a trailing IPv4 (two groups) when `v4_tail`.
fn hexseq_groups(s: &[u8], v4_tail: bool) -> Option<usize> {
    if s.is_empty() {
        return Some(0);
    }
    let mut groups = 0;
    let mut parts = s.split(|&c| c == b':').peekable();
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        if !part.is_empty() && part.len() <= 4 && part.iter().all(u8::is_ascii_hexdigit) {
            groups += 1;
        } else if last && v4_tail && valid_ipv4(part) {
            groups += 2;
        } else {
            return None;
        }
    }
    Some(groups)
}

/// RFC 3261 `IPv6address` with the group count enforced as in RFC 4291 §2.2.
///
/// ```text
/// IPv6address  =  hexpart [ ":" IPv4address ]
/// hexpart      =  hexseq / hexseq "::" [ hexseq ] / "::" [ hexseq ]
/// hexseq       =  hex4 *( ":" hex4)
/// hex4         =  1*4HEXDIG
/// ```
fn valid_ipv6(s: &[u8]) -> bool {
    let double = s.windows(2).position(|w| w == b"::");
    match double {
        Some(i) => {
            let left = s.get(..i).unwrap_or_default();
            let right = s.get(i + 2..).unwrap_or_default();
            if right.windows(2).any(|w| w == b"::") {
                return false;
            }
            match (hexseq_groups(left, false), hexseq_groups(right, true)) {
                (Some(l), Some(r)) => l + r <= 7,
                _ => false,
            }
        }
        None => hexseq_groups(s, true) == Some(8),
    }
}

/// RFC 3261 `hostname`.
///
/// ```text
/// hostname     =  *( domainlabel "." ) toplabel [ "." ]
/// domainlabel  =  alphanum / alphanum *( alphanum / "-" ) alphanum
/// toplabel     =  ALPHA / ALPHA *( alphanum / "-" ) alphanum
/// ```
fn valid_hostname(s: &[u8]) -> bool {
    let s = s.strip_suffix(b".").unwrap_or(s);
    if s.is_empty() {
        return false;
    }
    let mut labels = s.split(|&c| c == b'.').peekable();
    while let Some(label) = labels.next() {
        let (Some(&first), Some(&last)) = (label.first(), label.last()) else {
            return false;
        };
        if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
            return false;
        }
        if !label
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        {
            return false;
        }
        if labels.peek().is_none() && !first.is_ascii_alphabetic() {
            return false;
        }
    }
    true
}

/// Classifies a bracket-less host as an IPv4 address or a host name.
fn classify_host(h: &[u8]) -> Option<HostKind> {
    if h.is_empty() {
        None
    } else if h.iter().all(|&c| c.is_ascii_digit() || c == b'.') {
        // A toplabel must start with ALPHA, so an all-digit host can only be IPv4.
        valid_ipv4(h).then_some(HostKind::Ipv4)
    } else {
        valid_hostname(h).then_some(HostKind::Name)
    }
}

/// Validates `uri-parameters` after the leading `;`: `pname [ "=" pvalue ]` separated by `;`.
fn validate_params(p: &[u8]) -> Result<(), UriError> {
    for item in p.split(|&c| c == b';') {
        let (name, value) = split_eq(item);
        if name.is_empty() {
            return Err(UriError::BadParam);
        }
        check_escaped(name, &PARAMCHAR, UriError::BadParam)?;
        if let Some(v) = value {
            if v.is_empty() {
                return Err(UriError::BadParam);
            }
            check_escaped(v, &PARAMCHAR, UriError::BadParam)?;
        }
    }
    Ok(())
}

/// Validates `headers` after the `?`: `hname "=" hvalue` separated by `&`.
fn validate_headers(h: &[u8]) -> Result<(), UriError> {
    for item in h.split(|&c| c == b'&') {
        let (name, value) = split_eq(item);
        let Some(value) = value else {
            return Err(UriError::BadParam);
        };
        if name.is_empty() {
            return Err(UriError::BadParam);
        }
        check_escaped(name, &HNV, UriError::BadParam)?;
        check_escaped(value, &HNV, UriError::BadParam)?;
    }
    Ok(())
}

/// Splits `name=value` at the first `=`.
fn split_eq(item: &[u8]) -> (&[u8], Option<&[u8]>) {
    match memchr(b'=', item) {
        Some(i) => {
            let (n, v) = cut(item, i);
            (n, Some(v))
        }
        None => (item, None),
    }
}

/// RFC 3966 `global-number-digits` / `local-number-digits`.
fn valid_tel_number(n: &[u8]) -> bool {
    match n.split_first() {
        Some((b'+', digits)) => {
            digits.iter().all(|&c| PHONEDIGIT[usize::from(c)])
                && digits.iter().any(u8::is_ascii_digit)
        }
        Some(_) => {
            n.iter().all(|&c| PHONEDIGIT_HEX[usize::from(c)])
                && n.iter()
                    .any(|&c| c.is_ascii_hexdigit() || c == b'*' || c == b'#')
        }
        None => false,
    }
}

/// Validates RFC 3966 `*par` after the first `;`.
fn validate_tel_params(p: &[u8]) -> Result<(), UriError> {
    for item in p.split(|&c| c == b';') {
        let (name, value) = split_eq(item);
        if name.is_empty() || !name.iter().all(|&c| TEL_PNAME[usize::from(c)]) {
            return Err(UriError::BadParam);
        }
        if let Some(v) = value {
            if v.is_empty() {
                return Err(UriError::BadParam);
            }
            let class = if name.eq_ignore_ascii_case(b"isub") {
                &URIC_NO_SEMI
            } else {
                &PARAMCHAR
            };
            check_escaped(v, class, UriError::BadParam)?;
        }
    }
    Ok(())
}

impl<'a> Uri<'a> {
    /// Parses and validates one URI (no surrounding `<>` or whitespace).
    ///
    /// The common sip/sips shape takes a one-pass shortcut ([`fast_sip`]); everything else,
    /// and every rejection, goes through the general grammar.
    pub fn parse(b: &'a [u8]) -> Result<Uri<'a>, UriError> {
        match fast_sip(b) {
            Some(uri) => Ok(uri),
            None => Self::parse_general(b),
        }
    }

    /// The full grammar, one production at a time.
    fn parse_general(b: &'a [u8]) -> Result<Uri<'a>, UriError> {
        if b.is_empty() {
            return Err(UriError::Empty);
        }
        if b.iter().any(|&c| c <= b' ' || c >= 0x7f) {
            return Err(UriError::BadChar);
        }
        let colon = memchr(b':', b).ok_or(UriError::BadScheme)?;
        let (scheme_txt, rest) = cut(b, colon);
        match scheme_txt.first() {
            Some(c) if c.is_ascii_alphabetic() => {}
            _ => return Err(UriError::BadScheme),
        }
        if !scheme_txt.iter().all(|&c| SCHEME[usize::from(c)]) {
            return Err(UriError::BadScheme);
        }
        let scheme = if scheme_txt.eq_ignore_ascii_case(b"sip") {
            Scheme::Sip
        } else if scheme_txt.eq_ignore_ascii_case(b"sips") {
            Scheme::Sips
        } else if scheme_txt.eq_ignore_ascii_case(b"tel") {
            Scheme::Tel
        } else {
            Scheme::Other
        };
        let empty = end_of(b);
        let mut uri = Uri {
            scheme,
            raw: b,
            user: None,
            password: None,
            host: empty,
            host_kind: HostKind::Name,
            port: None,
            params: empty,
            headers: empty,
        };
        match scheme {
            Scheme::Other => {
                // absoluteURI: only the opaque/hier part's character set is checked.
                if rest.is_empty() {
                    return Err(UriError::BadChar);
                }
                check_escaped(rest, &URIC, UriError::BadChar)?;
            }
            Scheme::Tel => {
                let (number, params) = match memchr(b';', rest) {
                    Some(i) => {
                        let (n, p) = cut(rest, i);
                        validate_tel_params(p)?;
                        (n, p)
                    }
                    None => (rest, end_of(rest)),
                };
                if !valid_tel_number(number) {
                    return Err(UriError::BadUser);
                }
                uri.user = Some(number);
                uri.params = params;
            }
            Scheme::Sip | Scheme::Sips => Self::parse_sip(rest, &mut uri)?,
        }
        Ok(uri)
    }

    /// `[ userinfo ] hostport uri-parameters [ headers ]` for sip and sips.
    fn parse_sip(rest: &'a [u8], uri: &mut Uri<'a>) -> Result<(), UriError> {
        // Neither host, port, params nor headers may contain a bare '@', so the first one
        // ends the userinfo even though the user part may itself contain ';' and '?'.
        let hostpart = match memchr(b'@', rest) {
            Some(i) => {
                let (userinfo, hostpart) = cut(rest, i);
                let (user, password) = match memchr(b':', userinfo) {
                    Some(j) => {
                        let (u, p) = cut(userinfo, j);
                        (u, Some(p))
                    }
                    None => (userinfo, None),
                };
                if user.is_empty() {
                    return Err(UriError::BadUser);
                }
                check_escaped(user, &USER, UriError::BadUser)?;
                if let Some(p) = password {
                    check_escaped(p, &PASSWORD, UriError::BadPassword)?;
                }
                uri.user = Some(user);
                uri.password = password;
                hostpart
            }
            None => rest,
        };

        let after_host = if hostpart.first() == Some(&b'[') {
            let close = memchr(b']', hostpart).ok_or(UriError::BadHost)?;
            let (inner, after) = cut(hostpart, close);
            let inner = inner.get(1..).unwrap_or_default();
            if !valid_ipv6(inner) {
                return Err(UriError::BadHost);
            }
            uri.host = inner;
            uri.host_kind = HostKind::Ipv6;
            after
        } else {
            let end = hostpart
                .iter()
                .position(|&c| matches!(c, b':' | b';' | b'?'))
                .unwrap_or(hostpart.len());
            let (host, after) = hostpart
                .split_at_checked(end)
                .unwrap_or((hostpart, end_of(hostpart)));
            uri.host_kind = classify_host(host).ok_or(UriError::BadHost)?;
            uri.host = host;
            after
        };

        let after_port = match after_host.split_first() {
            Some((b':', p)) => {
                let end = p
                    .iter()
                    .position(|&c| c == b';' || c == b'?')
                    .unwrap_or(p.len());
                let (digits, after) = p.split_at_checked(end).unwrap_or((p, end_of(p)));
                uri.port = Some(parse_u16(digits).ok_or(UriError::BadPort)?);
                after
            }
            _ => after_host,
        };

        let after_params = match after_port.split_first() {
            Some((b';', p)) => {
                let end = memchr(b'?', p).unwrap_or(p.len());
                let (params, after) = p.split_at_checked(end).unwrap_or((p, end_of(p)));
                validate_params(params)?;
                uri.params = params;
                after
            }
            _ => after_port,
        };

        match after_params.split_first() {
            None => Ok(()),
            Some((b'?', h)) => {
                validate_headers(h)?;
                uri.headers = h;
                Ok(())
            }
            // Only reachable after `]`: anything but `:`, `;`, `?` there is a broken host.
            Some(_) => Err(UriError::BadHost),
        }
    }

    /// Looks up a URI parameter by case-insensitive name; `;lr` gives `Some(None)`.
    pub fn param(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        self.params
            .split(|&c| c == b';')
            .map(split_eq)
            .find(|(n, _)| !n.is_empty() && n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Looks up a `?header=value` by case-insensitive name (value still escaped).
    pub fn header(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.headers
            .split(|&c| c == b'&')
            .map(split_eq)
            .find(|(n, _)| !n.is_empty() && n.eq_ignore_ascii_case(name))
            .map(|(n, v)| v.unwrap_or(end_of(n)))
    }

    /// The `user=` parameter (`phone`, `ip`, ...).
    pub fn user_param(&self) -> Option<&'a [u8]> {
        self.param(b"user").flatten()
    }

    /// Percent-decodes the user part into `out`; `None` when there is no user part.
    pub fn user_decoded<'o>(&self, out: &'o mut [u8]) -> Option<Result<&'o [u8], UriError>> {
        self.user.map(|u| percent_decode(u, out))
    }
}

/// `user` without `escaped`: the bytes the one-pass [`fast_sip`] accepts in a user part.
/// `%` (and so any escape) sends the URI to the general parser.
static FAST_USER: [bool; 256] = class(true, b"-_.!~*'()&=+$,;?/");

/// `paramchar` without `escaped`, for [`fast_sip`].
static FAST_PARAMCHAR: [bool; 256] = class(true, b"-_.!~*'()[]/:&+$");

/// Length of the leading run of `s` in `class`.
#[inline]
fn run(s: &[u8], class: &[bool; 256]) -> usize {
    s.iter().position(|&c| !class[usize::from(c)]).unwrap_or(s.len())
}

/// One-pass parser for the common shape of a sip/sips URI:
///
/// ```text
/// ( "sip:" / "sips:" ) [ user "@" ] ( hostname / IPv4address ) [ ":" port ]
///     *( ";" pname [ "=" pvalue ] )
/// ```
/// with no escapes, no password, no IPv6 reference and no `?headers`.
///
/// Returns `Some` only for input that the general path of [`Uri::parse`] accepts with the
/// very same result (the `fast_path_agrees` property test checks this); anything else, valid
/// or not, yields `None` and is left to the general path, which also picks the error. So this
/// is purely a shortcut: it never decides a rejection.
fn fast_sip(b: &[u8]) -> Option<Uri<'_>> {
    let (scheme, rest) = if b.get(..4)?.eq_ignore_ascii_case(b"sip:") {
        (Scheme::Sip, b.get(4..)?)
    } else if b.get(..5)?.eq_ignore_ascii_case(b"sips:") {
        (Scheme::Sips, b.get(5..)?)
    } else {
        return None;
    };
    // `@` is in no class accepted after the user part, so a user run that stops at `@` ends
    // at the first `@`, exactly where the general path splits userinfo. A run that stops
    // elsewhere means there is no userinfo (or a password, which the host scan below then
    // rejects as a non-numeric port).
    let n = run(rest, &FAST_USER);
    let (user, hostpart) = match rest.get(n) {
        Some(b'@') if n > 0 => (Some(rest.get(..n)?), rest.get(n + 1..)?),
        _ => (None, rest),
    };
    let (host, host_kind) = fast_host(hostpart)?;
    let mut s = hostpart.get(host.len()..)?;
    let mut port = None;
    if let Some((b':', p)) = s.split_first() {
        let digits = p.iter().position(|c| !c.is_ascii_digit()).unwrap_or(p.len());
        port = Some(parse_u16(p.get(..digits)?)?);
        s = p.get(digits..)?;
    }
    let params = match s.split_first() {
        None => end_of(b),
        Some((b';', p)) => {
            fast_params(p)?;
            p
        }
        Some(_) => return None,
    };
    Some(Uri {
        scheme,
        raw: b,
        user,
        password: None,
        host,
        host_kind,
        port,
        params,
        headers: end_of(b),
    })
}

/// The host at the start of `s` (ended by `:`, `;` or the end), in one pass; `Some` only if
/// [`classify_host`] accepts it with the same kind.
///
/// ```text
/// hostname     =  *( domainlabel "." ) toplabel [ "." ]
/// domainlabel  =  alphanum / alphanum *( alphanum / "-" ) alphanum
/// toplabel     =  ALPHA / ALPHA *( alphanum / "-" ) alphanum
/// IPv4address  =  1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT   (each at most 255)
/// ```
/// A trailing `.` is left to the general path.
fn fast_host(s: &[u8]) -> Option<(&[u8], HostKind)> {
    let mut len = 0; // bytes of the host so far
    let mut dots = 0; // labels completed
    let mut label = 0; // length of the current label
    let mut first = 0u8; // first byte of the current label
    let mut prev = 0u8; // previous byte
    let mut all_num = true; // only digits and dots so far (an IPv4 candidate)
    let mut octet = 0u32; // value of the current label while all_num
    for &c in s {
        match c {
            b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'-' => {
                if label == 0 {
                    if c == b'-' {
                        return None;
                    }
                    first = c;
                    octet = 0;
                }
                if !c.is_ascii_digit() {
                    all_num = false;
                } else if all_num {
                    octet = octet * 10 + u32::from(c - b'0');
                }
                label += 1;
                if all_num && (label > 3 || octet > 255) {
                    return None;
                }
            }
            b'.' => {
                if label == 0 || prev == b'-' {
                    return None;
                }
                dots += 1;
                label = 0;
            }
            b':' | b';' => break,
            _ => return None,
        }
        prev = c;
        len += 1;
    }
    if label == 0 || prev == b'-' {
        return None;
    }
    let kind = if all_num {
        if dots != 3 {
            return None;
        }
        HostKind::Ipv4
    } else {
        if !first.is_ascii_alphabetic() {
            return None;
        }
        HostKind::Name
    };
    Some((s.get(..len)?, kind))
}

/// `pname [ "=" pvalue ] *( ";" pname [ "=" pvalue ] )` without escapes, to the end of `p`.
fn fast_params(mut p: &[u8]) -> Option<()> {
    loop {
        let n = run(p, &FAST_PARAMCHAR);
        if n == 0 {
            return None;
        }
        p = p.get(n..)?;
        if let Some((b'=', v)) = p.split_first() {
            let n = run(v, &FAST_PARAMCHAR);
            if n == 0 {
                return None;
            }
            p = v.get(n..)?;
        }
        match p.split_first() {
            None => return Some(()),
            Some((b';', next)) => p = next,
            Some(_) => return None,
        }
    }
}

/// Decodes `%HH` escapes of `input` into `out` and returns the written prefix.
pub fn percent_decode<'o>(input: &[u8], out: &'o mut [u8]) -> Result<&'o [u8], UriError> {
    let mut i = 0;
    let mut n = 0;
    while let Some(&c) = input.get(i) {
        let byte = if c == b'%' {
            let hi = input.get(i + 1).copied().and_then(hex_val);
            let lo = input.get(i + 2).copied().and_then(hex_val);
            match (hi, lo) {
                (Some(h), Some(l)) => {
                    i += 3;
                    (h << 4) | l
                }
                _ => return Err(UriError::BadEscape),
            }
        } else {
            i += 1;
            c
        };
        *out.get_mut(n).ok_or(UriError::TooLong)? = byte;
        n += 1;
    }
    let out: &'o [u8] = out;
    Ok(out.get(..n).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(b: &[u8]) -> Uri<'_> {
        match Uri::parse(b) {
            Ok(u) => u,
            Err(e) => panic!("{:?} rejected: {e:?}", String::from_utf8_lossy(b)),
        }
    }

    fn err(b: &[u8]) -> UriError {
        match Uri::parse(b) {
            Ok(u) => panic!("{:?} accepted: {u:?}", String::from_utf8_lossy(b)),
            Err(e) => e,
        }
    }

    #[test]
    fn sip_user_host_port_params_headers() {
        let u =
            ok(b"sip:alice@atlanta.example.com:5060;transport=tcp;lr?subject=x&priority=urgent");
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user, Some(&b"alice"[..]));
        assert_eq!(u.password, None);
        assert_eq!(u.host, b"atlanta.example.com");
        assert_eq!(u.host_kind, HostKind::Name);
        assert_eq!(u.port, Some(5060));
        assert_eq!(u.params, b"transport=tcp;lr");
        assert_eq!(u.headers, b"subject=x&priority=urgent");
        assert_eq!(u.param(b"TRANSPORT"), Some(Some(&b"tcp"[..])));
        assert_eq!(u.param(b"lr"), Some(None));
        assert_eq!(u.param(b"maddr"), None);
        assert_eq!(u.header(b"Subject"), Some(&b"x"[..]));
        assert_eq!(u.header(b"priority"), Some(&b"urgent"[..]));
        assert_eq!(u.header(b"to"), None);
    }

    #[test]
    fn sips_password_ipv4() {
        let u = ok(b"SIPS:bob:secr%20et@192.0.2.4");
        assert_eq!(u.scheme, Scheme::Sips);
        assert_eq!(u.user, Some(&b"bob"[..]));
        assert_eq!(u.password, Some(&b"secr%20et"[..]));
        assert_eq!(u.host, b"192.0.2.4");
        assert_eq!(u.host_kind, HostKind::Ipv4);
        assert_eq!(u.port, None);
        assert_eq!(u.params, b"");
        let u = ok(b"sip:bob:@host");
        assert_eq!(u.password, Some(&b""[..]));
    }

    #[test]
    fn ipv6_references() {
        let u = ok(b"sip:alice@[2001:db8::1]:5060");
        assert_eq!(u.host, b"2001:db8::1");
        assert_eq!(u.host_kind, HostKind::Ipv6);
        assert_eq!(u.port, Some(5060));
        let u = ok(b"sip:[::1];transport=udp");
        assert_eq!(u.host, b"::1");
        assert_eq!(u.port, None);
        assert_eq!(u.param(b"transport"), Some(Some(&b"udp"[..])));
        ok(b"sip:[1:2:3:4:5:6:7:8]");
        ok(b"sip:[::ffff:192.0.2.1]");
        ok(b"sip:[1:2:3:4:5:6:192.0.2.1]");
        ok(b"sip:[::]");
        ok(b"sip:[fe80::]");
        assert_eq!(err(b"sip:[2001:db8::1"), UriError::BadHost);
        assert_eq!(err(b"sip:alice@[2001:db8::1]x"), UriError::BadHost);
        assert_eq!(err(b"sip:[1:2:3:4:5:6:7]"), UriError::BadHost);
        assert_eq!(err(b"sip:[1:2:3:4:5:6:7:8:9]"), UriError::BadHost);
        assert_eq!(err(b"sip:[1::2::3]"), UriError::BadHost);
        assert_eq!(err(b"sip:[12345::]"), UriError::BadHost);
        assert_eq!(err(b"sip:[::g]"), UriError::BadHost);
        assert_eq!(err(b"sip:[]"), UriError::BadHost);
        assert_eq!(err(b"sip:[1.2.3.4::]"), UriError::BadHost);
    }

    #[test]
    fn host_names() {
        assert_eq!(ok(b"sip:example.com.").host, b"example.com.");
        assert_eq!(ok(b"sip:a-b.c0m").host_kind, HostKind::Name);
        assert_eq!(ok(b"sip:localhost").host, b"localhost");
        assert_eq!(err(b"sip:-a.com"), UriError::BadHost);
        assert_eq!(err(b"sip:a-.com"), UriError::BadHost);
        assert_eq!(err(b"sip:a..com"), UriError::BadHost);
        assert_eq!(err(b"sip:a.1com"), UriError::BadHost);
        assert_eq!(err(b"sip:under_score.com"), UriError::BadHost);
        assert_eq!(err(b"sip:1.2.3.256"), UriError::BadHost);
        assert_eq!(err(b"sip:1.2.3"), UriError::BadHost);
        assert_eq!(err(b"sip:alice@"), UriError::BadHost);
        assert_eq!(err(b"sip:"), UriError::BadHost);
        assert_eq!(err(b"sip:alice@:5060"), UriError::BadHost);
    }

    #[test]
    fn ports() {
        assert_eq!(ok(b"sip:h:0").port, Some(0));
        assert_eq!(ok(b"sip:h:65535").port, Some(65535));
        assert_eq!(ok(b"sip:h:005060").port, Some(5060));
        assert_eq!(err(b"sip:h:65536"), UriError::BadPort);
        assert_eq!(err(b"sip:alice@host:99999"), UriError::BadPort);
        assert_eq!(err(b"sip:alice@host:"), UriError::BadPort);
        assert_eq!(err(b"sip:alice@host:;lr"), UriError::BadPort);
        assert_eq!(err(b"sip:alice@host:50a"), UriError::BadPort);
        assert_eq!(err(b"sip:h:1:2"), UriError::BadPort);
    }

    #[test]
    fn escapes() {
        let u = ok(b"sip:%61lice%20smith@example.com");
        let mut buf = [0u8; 32];
        assert_eq!(u.user_decoded(&mut buf), Some(Ok(&b"alice smith"[..])));
        let mut tiny = [0u8; 3];
        assert_eq!(u.user_decoded(&mut tiny), Some(Err(UriError::TooLong)));
        assert_eq!(ok(b"sip:host").user_decoded(&mut buf), None);
        assert_eq!(err(b"sip:al%zzice@host"), UriError::BadEscape);
        assert_eq!(err(b"sip:alice%4@host"), UriError::BadEscape);
        assert_eq!(err(b"sip:alice%4"), UriError::BadHost);
        assert_eq!(err(b"sip:a:p%g1@host"), UriError::BadEscape);
        assert_eq!(err(b"sip:host;x=%2"), UriError::BadEscape);
        assert_eq!(percent_decode(b"a%2", &mut buf), Err(UriError::BadEscape));
        assert_eq!(percent_decode(b"", &mut buf), Ok(&b""[..]));
        assert_eq!(percent_decode(b"%41%62", &mut buf), Ok(&b"Ab"[..]));
    }

    #[test]
    fn user_classes() {
        // user-unreserved allows ';' and '?' before the '@'.
        let u = ok(b"sip:a;b?c=d@host;maddr=[::1]");
        assert_eq!(u.user, Some(&b"a;b?c=d"[..]));
        assert_eq!(u.param(b"maddr"), Some(Some(&b"[::1]"[..])));
        let u = ok(b"sip:+1-212-555-1212:1234@gateway.com;user=phone");
        assert_eq!(u.user, Some(&b"+1-212-555-1212"[..]));
        assert_eq!(u.password, Some(&b"1234"[..]));
        assert_eq!(u.user_param(), Some(&b"phone"[..]));
        assert_eq!(err(b"sip:@host"), UriError::BadUser);
        assert_eq!(err(b"sip:a#b@host"), UriError::BadUser);
        assert_eq!(err(b"sip:a:p;w@host"), UriError::BadPassword);
        assert_eq!(err(b"sip:a<b@host"), UriError::BadUser);
    }

    #[test]
    fn params_and_headers() {
        assert_eq!(err(b"sip:host;"), UriError::BadParam);
        assert_eq!(err(b"sip:host;;lr"), UriError::BadParam);
        assert_eq!(err(b"sip:host;a="), UriError::BadParam);
        assert_eq!(err(b"sip:host;=a"), UriError::BadParam);
        assert_eq!(err(b"sip:host;a=b=c"), UriError::BadParam);
        assert_eq!(err(b"sip:host?"), UriError::BadParam);
        assert_eq!(err(b"sip:host?x"), UriError::BadParam);
        assert_eq!(err(b"sip:host?=x"), UriError::BadParam);
        assert_eq!(err(b"sip:host?a=b&"), UriError::BadParam);
        let u = ok(b"sip:host?subject=");
        assert_eq!(u.header(b"subject"), Some(&b""[..]));
        let u = ok(b"sip:bob@b.example?Replaces=abc%40h%3Bto-tag%3D1");
        assert_eq!(u.header(b"replaces"), Some(&b"abc%40h%3Bto-tag%3D1"[..]));
    }

    #[test]
    fn tel_uris() {
        let u = ok(b"tel:+1-201-555-0123");
        assert_eq!(u.scheme, Scheme::Tel);
        assert_eq!(u.user, Some(&b"+1-201-555-0123"[..]));
        assert_eq!(u.host, b"");
        assert_eq!(u.params, b"");
        let u = ok(b"TEL:7042;phone-context=example.com;ext=22");
        assert_eq!(u.user, Some(&b"7042"[..]));
        assert_eq!(u.params, b"phone-context=example.com;ext=22");
        assert_eq!(u.param(b"Phone-Context"), Some(Some(&b"example.com"[..])));
        ok(b"tel:*21#;phone-context=+1");
        ok(b"tel:+1234;isub=a/b?c");
        assert_eq!(err(b"tel:"), UriError::BadUser);
        assert_eq!(err(b"tel:+"), UriError::BadUser);
        assert_eq!(err(b"tel:+1x2"), UriError::BadUser);
        assert_eq!(err(b"tel:+12;"), UriError::BadParam);
        assert_eq!(err(b"tel:+12;a_b=1"), UriError::BadParam);
    }

    #[test]
    fn other_schemes_and_errors() {
        let u = ok(b"http://example.com/a?b=c");
        assert_eq!(u.scheme, Scheme::Other);
        assert_eq!(u.raw, b"http://example.com/a?b=c");
        assert_eq!(u.host, b"");
        assert_eq!(ok(b"urn:service:sos").scheme, Scheme::Other);
        assert_eq!(err(b""), UriError::Empty);
        assert_eq!(err(b"alice"), UriError::BadScheme);
        assert_eq!(err(b":alice"), UriError::BadScheme);
        assert_eq!(err(b"1sip:alice"), UriError::BadScheme);
        assert_eq!(err(b"si_p:alice"), UriError::BadScheme);
        assert_eq!(err(b"sip:alice @host"), UriError::BadChar);
        assert_eq!(err(b"sip:al\xc3\xa9@host"), UriError::BadChar);
        assert_eq!(err(b"http:"), UriError::BadChar);
        assert_eq!(err(b"http:a%x"), UriError::BadEscape);
        assert_eq!(UriError::BadPort.name(), "bad_port");
        assert_eq!(UriError::TooLong.to_string(), "too_long");
    }

    #[test]
    fn fast_path_covers_common_shapes() {
        for u in [
            &b"sip:alice0@secsip.test"[..],
            b"sip:alice0@10.77.0.1:5060",
            b"sip:secsip.test",
            b"sip:p1.example.com;lr",
            b"SIPS:bob@b.example:5061;transport=tls;maddr=192.0.2.1",
        ] {
            assert!(fast_sip(u).is_some(), "{:?}", String::from_utf8_lossy(u));
        }
        for u in [&b"sip:a:p@h"[..], b"sip:[::1]", b"sip:h?x=y", b"sip:%61@h", b"sip:h.", b"sip:1.2.3.4.5"] {
            assert!(fast_sip(u).is_none(), "{:?}", String::from_utf8_lossy(u));
        }
    }

    /// Whether `inner` lies within `outer` (empty slices included).
    fn within(outer: &[u8], inner: &[u8]) -> bool {
        let o = outer.as_ptr_range();
        let i = inner.as_ptr_range();
        o.start <= i.start && i.end <= o.end
    }

    fn check_slices(input: &[u8]) {
        if let Ok(u) = Uri::parse(input) {
            assert!(within(input, u.raw));
            assert!(within(input, u.host));
            assert!(within(input, u.params));
            assert!(within(input, u.headers));
            assert!(u.user.is_none_or(|s| within(input, s)));
            assert!(u.password.is_none_or(|s| within(input, s)));
            for name in [&b"lr"[..], b"transport", b"user", b""] {
                if let Some(Some(v)) = u.param(name) {
                    assert!(within(input, v));
                }
                if let Some(v) = u.header(name) {
                    assert!(within(input, v));
                }
            }
            let mut buf = [0u8; 16];
            let _ = u.user_decoded(&mut buf);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..128)) {
            check_slices(&input);
            let mut buf = [0u8; 8];
            let _ = percent_decode(&input, &mut buf);
        }

        #[test]
        fn fast_path_agrees(
            input in "(sip|SIPS|sIp|tel):([a-z0-9.;?=-]{1,8}@)?[a-zA-Z0-9.-]{0,12}(:[0-9]{0,6})?(;[a-z0-9=;:%.-]{0,12})?(@|\\?a=b|%4)?"
        ) {
            let b = input.as_bytes();
            if let Some(fast) = fast_sip(b) {
                let slow = Uri::parse_general(b);
                prop_assert_eq!(Ok(fast), slow);
                let slow = slow.unwrap();
                for (f, s) in [(fast.host, slow.host), (fast.params, slow.params), (fast.headers, slow.headers)] {
                    prop_assert_eq!(f.as_ptr_range(), s.as_ptr_range());
                }
                prop_assert_eq!(fast.user.map(<[u8]>::as_ptr_range), slow.user.map(<[u8]>::as_ptr_range));
            }
        }

        #[test]
        fn uri_shaped_input_never_panics(
            input in "(sip|SIPS|tel|http):[a-zA-Z0-9%@:;=?&.\\[\\]+#-]{0,40}"
        ) {
            check_slices(input.as_bytes());
        }
    }
}
