//! Zero-copy parser for SIP authentication header values (RFC 3261 §22 / §25.1, RFC 2617,
//! RFC 7616): `Authorization`, `Proxy-Authorization`, `WWW-Authenticate`, `Proxy-Authenticate`.
//!
//! ```text
//! credentials    =  ("Digest" LWS digest-response) / other-response
//! other-response =  auth-scheme LWS auth-param *(COMMA auth-param)
//! auth-param     =  auth-param-name EQUAL ( token / quoted-string )
//! EQUAL          =  SWS "=" SWS
//! COMMA          =  SWS "," SWS
//! LWS            =  [*WSP CRLF] 1*WSP
//! ```

/// Upper bound on auth-params per value; keeps the duplicate check bounded without allocating
/// (RFC 7616 defines 13 directives for a response).
const MAX_PARAMS: usize = 64;

/// Why an authentication header value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// Value is empty or whitespace only.
    Empty,
    /// Scheme is not a token or is not followed by LWS.
    BadScheme,
    /// Malformed auth-param list (missing `=`, bad token, stray comma, too many params).
    BadParam,
    /// A quoted-string or quoted-pair runs off the end of the value.
    UnterminatedQuote,
    /// The same auth-param name appears twice (case-insensitively).
    DuplicateParam,
}

impl AuthError {
    /// Stable snake_case name for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            AuthError::Empty => "empty",
            AuthError::BadScheme => "bad_scheme",
            AuthError::BadParam => "bad_param",
            AuthError::UnterminatedQuote => "unterminated_quote",
            AuthError::DuplicateParam => "duplicate_param",
        }
    }
}

impl core::fmt::Display for AuthError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// ```text
/// token  =  1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
/// ```
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0usize;
    while c < 256 {
        t[c] = (c as u8).is_ascii_alphanumeric();
        c += 1;
    }
    let extra = b"-.!%*_+`'~";
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
};

/// RFC 7235 `token68` (used by e.g. `Bearer`):
/// ```text
/// token68  =  1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
/// ```
static TOKEN68: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0usize;
    while c < 256 {
        t[c] = (c as u8).is_ascii_alphanumeric();
        c += 1;
    }
    let extra = b"-._~+/";
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
};

/// Whether `c` is SP or HTAB.
fn is_wsp(c: Option<&u8>) -> bool {
    matches!(c, Some(b' ' | b'\t'))
}

/// Skips `SWS` from `i`: blanks plus CRLF (or bare LF) folds that continue with a blank.
fn skip_lws(s: &[u8], mut i: usize) -> usize {
    loop {
        match s.get(i) {
            Some(b' ' | b'\t') => i += 1,
            Some(b'\r') if s.get(i + 1) == Some(&b'\n') && is_wsp(s.get(i + 2)) => i += 3,
            Some(b'\n') if is_wsp(s.get(i + 1)) => i += 2,
            _ => return i,
        }
    }
}

/// End of the run of `class` bytes starting at `i`.
fn scan(s: &[u8], mut i: usize, class: &[bool; 256]) -> usize {
    while s.get(i).is_some_and(|&c| class[usize::from(c)]) {
        i += 1;
    }
    i
}

/// `s[a..b]`, or an empty slice at the end of `s` if the range is invalid.
fn sub(s: &[u8], a: usize, b: usize) -> &[u8] {
    s.get(a..b)
        .unwrap_or_else(|| s.get(s.len()..).unwrap_or_default())
}

/// Scans a quoted-string whose opening quote is at `open`; returns (content end, after quote).
///
/// ```text
/// quoted-string  =  SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
/// qdtext         =  LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
/// quoted-pair    =  "\" (%x00-09 / %x0B-0C / %x0E-7F)
/// ```
///
/// Non-ASCII bytes are accepted without checking UTF-8 sequence structure.
fn scan_quoted(s: &[u8], open: usize) -> Result<(usize, usize), AuthError> {
    let mut j = open + 1;
    loop {
        match s.get(j) {
            None => return Err(AuthError::UnterminatedQuote),
            Some(b'"') => return Ok((j, j + 1)),
            Some(b'\\') => match s.get(j + 1) {
                None => return Err(AuthError::UnterminatedQuote),
                Some(b'\r' | b'\n') => return Err(AuthError::BadParam),
                Some(&c) if c <= 0x7f => j += 2,
                Some(_) => return Err(AuthError::BadParam),
            },
            Some(b'\r') if s.get(j + 1) == Some(&b'\n') && is_wsp(s.get(j + 2)) => j += 3,
            Some(b'\n') if is_wsp(s.get(j + 1)) => j += 2,
            Some(&c) if c == b' ' || c == b'\t' || (0x21..=0x7e).contains(&c) || c >= 0x80 => {
                j += 1
            }
            Some(_) => return Err(AuthError::BadParam),
        }
    }
}

/// `(name, value, next position)` of one auth-param.
type Param<'a> = (&'a [u8], &'a [u8], usize);

/// Parses the auth-param starting at `pos` (already past any SWS); returns name, value
/// (unquoted, escapes raw) and the position of the next param, or `None` at the end.
fn next_param(s: &[u8], pos: usize) -> Result<Option<Param<'_>>, AuthError> {
    if pos >= s.len() {
        return Ok(None);
    }
    let name_end = scan(s, pos, &TOKEN);
    if name_end == pos {
        return Err(AuthError::BadParam);
    }
    let name = sub(s, pos, name_end);
    let mut i = skip_lws(s, name_end);
    if s.get(i) != Some(&b'=') {
        return Err(AuthError::BadParam);
    }
    i = skip_lws(s, i + 1);
    let value = if s.get(i) == Some(&b'"') {
        let (end, after) = scan_quoted(s, i)?;
        let v = sub(s, i + 1, end);
        i = after;
        v
    } else {
        let end = scan(s, i, &TOKEN);
        if end == i {
            return Err(AuthError::BadParam);
        }
        let v = sub(s, i, end);
        i = end;
        v
    };
    i = skip_lws(s, i);
    match s.get(i) {
        None => Ok(Some((name, value, i))),
        Some(b',') => {
            let next = skip_lws(s, i + 1);
            if next >= s.len() {
                return Err(AuthError::BadParam);
            }
            Ok(Some((name, value, next)))
        }
        Some(_) => Err(AuthError::BadParam),
    }
}

/// Validates a whole auth-param list and rejects duplicate names.
fn validate_params(s: &[u8]) -> Result<(), AuthError> {
    let mut seen: [&[u8]; MAX_PARAMS] = [&[]; MAX_PARAMS];
    let mut count = 0;
    let mut pos = 0;
    while let Some((name, _, next)) = next_param(s, pos)? {
        let prior = seen.get(..count).unwrap_or_default();
        if prior.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(AuthError::DuplicateParam);
        }
        *seen.get_mut(count).ok_or(AuthError::BadParam)? = name;
        count += 1;
        pos = next;
    }
    Ok(())
}

/// Whether `s` is exactly one RFC 7235 `token68`.
fn is_token68(s: &[u8]) -> bool {
    let body = scan(s, 0, &TOKEN68);
    body > 0 && s.get(body..).unwrap_or_default().iter().all(|&c| c == b'=')
}

/// A parsed credentials or challenge value; slices borrow from the header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest<'a> {
    /// The auth-scheme token (`Digest`, `Bearer`, ...), case preserved.
    pub scheme: &'a [u8],
    /// Raw auth-param list (or token68) after the scheme, surrounding whitespace trimmed.
    pub params: &'a [u8],
}

impl<'a> Digest<'a> {
    /// Parses and fully validates one authentication header value.
    ///
    /// Non-Digest schemes may also carry a single RFC 7235 `token68` (e.g. `Bearer`); such a
    /// value validates but yields no auth-params.
    pub fn parse(value: &'a [u8]) -> Result<Digest<'a>, AuthError> {
        let start = skip_lws(value, 0);
        let end = value
            .iter()
            .rposition(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
            .map_or(0, |p| p + 1);
        if start >= end {
            return Err(AuthError::Empty);
        }
        let v = sub(value, start, end);
        let scheme_end = scan(v, 0, &TOKEN);
        if scheme_end == 0 {
            return Err(AuthError::BadScheme);
        }
        let scheme = sub(v, 0, scheme_end);
        let is_digest = scheme.eq_ignore_ascii_case(b"Digest");
        let params_start = skip_lws(v, scheme_end);
        let params = sub(v, params_start, v.len());
        if params_start == scheme_end {
            if scheme_end == v.len() && !is_digest {
                // RFC 7235 allows a bare scheme; Digest needs at least one directive.
                return Ok(Digest { scheme, params });
            }
            return Err(if scheme_end == v.len() {
                AuthError::BadParam
            } else {
                AuthError::BadScheme
            });
        }
        match validate_params(params) {
            Ok(()) => Ok(Digest { scheme, params }),
            Err(_) if !is_digest && is_token68(params) => Ok(Digest { scheme, params }),
            Err(e) => Err(e),
        }
    }

    /// Whether the scheme is `Digest` (case-insensitive).
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case(b"Digest")
    }

    /// Value of the first auth-param named `name` (case-insensitive), quotes stripped.
    pub fn get(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The auth-params in order; stops at the first malformed one.
    pub fn iter(&self) -> AuthParams<'a> {
        AuthParams {
            s: self.params,
            pos: 0,
        }
    }

    /// `username` directive.
    pub fn username(&self) -> Option<&'a [u8]> {
        self.get(b"username")
    }
    /// `realm` directive.
    pub fn realm(&self) -> Option<&'a [u8]> {
        self.get(b"realm")
    }
    /// `nonce` directive.
    pub fn nonce(&self) -> Option<&'a [u8]> {
        self.get(b"nonce")
    }
    /// `uri` (digest-uri) directive.
    pub fn uri(&self) -> Option<&'a [u8]> {
        self.get(b"uri")
    }
    /// `response` directive.
    pub fn response(&self) -> Option<&'a [u8]> {
        self.get(b"response")
    }
    /// `algorithm` directive.
    pub fn algorithm(&self) -> Option<&'a [u8]> {
        self.get(b"algorithm")
    }
    /// `qop` directive (a single value in credentials, a list in challenges).
    pub fn qop(&self) -> Option<&'a [u8]> {
        self.get(b"qop")
    }
    /// `opaque` directive.
    pub fn opaque(&self) -> Option<&'a [u8]> {
        self.get(b"opaque")
    }
    /// `cnonce` directive.
    pub fn cnonce(&self) -> Option<&'a [u8]> {
        self.get(b"cnonce")
    }
    /// `nc` (nonce-count) directive.
    pub fn nc(&self) -> Option<&'a [u8]> {
        self.get(b"nc")
    }
    /// `stale` directive (challenges only).
    pub fn stale(&self) -> Option<&'a [u8]> {
        self.get(b"stale")
    }
}

/// Iterator over `(name, value)` auth-params of a [`Digest`].
#[derive(Debug, Clone)]
pub struct AuthParams<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for AuthParams<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let start = skip_lws(self.s, self.pos);
        match next_param(self.s, start) {
            Ok(Some((name, value, next))) => {
                self.pos = next;
                Some((name, value))
            }
            _ => {
                self.pos = self.s.len();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(b: &[u8]) -> Digest<'_> {
        match Digest::parse(b) {
            Ok(d) => d,
            Err(e) => panic!("{:?} rejected: {e:?}", String::from_utf8_lossy(b)),
        }
    }

    fn err(b: &[u8]) -> AuthError {
        match Digest::parse(b) {
            Ok(d) => panic!("{:?} accepted: {d:?}", String::from_utf8_lossy(b)),
            Err(e) => e,
        }
    }

    const AUTHORIZATION: &[u8] = b"Digest username=\"bob\", realm=\"biloxi.com\", \
        nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"sip:bob@biloxi.com\", qop=auth, \
        nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", \
        opaque=\"5ccc069c403ebaf9f0171e9517f40e41\", algorithm=MD5";

    #[test]
    fn authorization_rfc3261() {
        let d = ok(AUTHORIZATION);
        assert!(d.is_digest());
        assert_eq!(d.scheme, b"Digest");
        assert_eq!(d.username(), Some(&b"bob"[..]));
        assert_eq!(d.realm(), Some(&b"biloxi.com"[..]));
        assert_eq!(d.nonce(), Some(&b"dcd98b7102dd2f0e8b11d0f600bfb0c093"[..]));
        assert_eq!(d.uri(), Some(&b"sip:bob@biloxi.com"[..]));
        assert_eq!(d.qop(), Some(&b"auth"[..]));
        assert_eq!(d.nc(), Some(&b"00000001"[..]));
        assert_eq!(d.cnonce(), Some(&b"0a4f113b"[..]));
        assert_eq!(d.response(), Some(&b"6629fae49393a05397450978507c4ef1"[..]));
        assert_eq!(d.opaque(), Some(&b"5ccc069c403ebaf9f0171e9517f40e41"[..]));
        assert_eq!(d.algorithm(), Some(&b"MD5"[..]));
        assert_eq!(d.stale(), None);
        assert_eq!(d.get(b"USERNAME"), Some(&b"bob"[..]));
        assert_eq!(d.iter().count(), 10);
    }

    #[test]
    fn www_authenticate_challenge() {
        let d = ok(
            b"digest realm=\"atlanta.com\",domain=\"sip:ss1.carrier.com\",qop=\"auth,auth-int\",\
            nonce=\"f84f1cec41e6cbe5aea9c8e88d359\",opaque=\"\",stale=FALSE,algorithm=SHA-256",
        );
        assert!(d.is_digest());
        assert_eq!(d.qop(), Some(&b"auth,auth-int"[..]));
        assert_eq!(d.opaque(), Some(&b""[..]));
        assert_eq!(d.stale(), Some(&b"FALSE"[..]));
        assert_eq!(d.algorithm(), Some(&b"SHA-256"[..]));
        assert_eq!(d.get(b"domain"), Some(&b"sip:ss1.carrier.com"[..]));
    }

    #[test]
    fn quoted_commas_escapes_and_folding() {
        let d = ok(b"Digest realm=\"a, b\", username=\"say \\\"hi\\\"\"");
        assert_eq!(d.realm(), Some(&b"a, b"[..]));
        assert_eq!(d.username(), Some(&br#"say \"hi\""#[..]));
        let d = ok(b"  Digest\r\n username = \"bob\"\r\n\t,\r\n realm\t=\r\n \"x\"  \r\n");
        assert_eq!(d.username(), Some(&b"bob"[..]));
        assert_eq!(d.realm(), Some(&b"x"[..]));
        let d = ok(b"Digest nonce=\"multi\r\n line\"");
        assert_eq!(d.nonce(), Some(&b"multi\r\n line"[..]));
        let d = ok(b"Digest realm=\"caf\xc3\xa9\"");
        assert_eq!(d.realm(), Some(&b"caf\xc3\xa9"[..]));
    }

    #[test]
    fn malformed() {
        assert_eq!(err(b""), AuthError::Empty);
        assert_eq!(err(b" \r\n "), AuthError::Empty);
        assert_eq!(err(b"\"Digest\" realm=x"), AuthError::BadScheme);
        assert_eq!(err(b"Digest,realm=x"), AuthError::BadScheme);
        assert_eq!(err(b"Digest"), AuthError::BadParam);
        assert_eq!(err(b"Digest realm"), AuthError::BadParam);
        assert_eq!(err(b"Digest realm x"), AuthError::BadParam);
        assert_eq!(err(b"Digest realm=x, nonce"), AuthError::BadParam);
        assert_eq!(err(b"Digest realm="), AuthError::BadParam);
        assert_eq!(err(b"Digest =x"), AuthError::BadParam);
        assert_eq!(err(b"Digest realm=x,"), AuthError::BadParam);
        assert_eq!(err(b"Digest realm=x,,nonce=y"), AuthError::BadParam);
        assert_eq!(err(b"Digest realm=a b"), AuthError::BadParam);
        assert_eq!(err(b"Digest realm=sip:x"), AuthError::BadParam);
        assert_eq!(err(b"Digest realm=\"x\"y"), AuthError::BadParam);
        assert_eq!(err(b"Digest realm=\"x"), AuthError::UnterminatedQuote);
        assert_eq!(err(b"Digest realm=\"x\\\""), AuthError::UnterminatedQuote);
        assert_eq!(err(b"Digest realm=\"x\\"), AuthError::UnterminatedQuote);
        assert_eq!(err(b"Digest realm=\"a\rb\""), AuthError::BadParam);
        assert_eq!(err(b"Digest realm=\"a\x01b\""), AuthError::BadParam);
        assert_eq!(err(b"Digest realm\r\n=x"), AuthError::BadParam);
        assert_eq!(
            err(b"Digest realm=x, REALM=\"y\""),
            AuthError::DuplicateParam
        );
        assert_eq!(
            err(b"Digest nonce=a, realm=x, nonce=b"),
            AuthError::DuplicateParam
        );
        assert_eq!(AuthError::UnterminatedQuote.name(), "unterminated_quote");
    }

    #[test]
    fn too_many_params() {
        let mut buf = Vec::new();
        buf.extend_from_slice(b"Digest ");
        for i in 0..MAX_PARAMS + 1 {
            buf.extend_from_slice(format!("p{i}=v,").as_bytes());
        }
        buf.pop();
        assert_eq!(Digest::parse(&buf), Err(AuthError::BadParam));
    }

    #[test]
    fn other_schemes() {
        let d = ok(b"Bearer eyJhbGciOi.eyJzdWIi.c2ln==");
        assert!(!d.is_digest());
        assert_eq!(d.params, b"eyJhbGciOi.eyJzdWIi.c2ln==");
        assert_eq!(d.iter().count(), 0);
        let d = ok(b"Basic");
        assert_eq!(d.params, b"");
        let d = ok(b"Custom a=1, b=\"2\"");
        assert_eq!(d.get(b"b"), Some(&b"2"[..]));
        assert_eq!(err(b"Digest abc=="), AuthError::BadParam);
        assert_eq!(err(b"Bearer a b"), AuthError::BadParam);
    }

    /// Whether `inner` lies within `outer` (empty slices included).
    fn within(outer: &[u8], inner: &[u8]) -> bool {
        let o = outer.as_ptr_range();
        let i = inner.as_ptr_range();
        o.start <= i.start && i.end <= o.end
    }

    fn check_slices(input: &[u8]) {
        if let Ok(d) = Digest::parse(input) {
            assert!(within(input, d.scheme));
            assert!(within(input, d.params));
            for (n, v) in d.iter() {
                assert!(within(input, n) && within(input, v));
            }
            for v in [d.username(), d.realm(), d.nonce(), d.get(b"")]
                .into_iter()
                .flatten()
            {
                assert!(within(input, v));
            }
        }
        // The iterator must also be safe on unvalidated values.
        let d = Digest {
            scheme: input,
            params: input,
        };
        for (n, v) in d.iter() {
            assert!(within(input, n) && within(input, v));
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..128)) {
            check_slices(&input);
        }

        #[test]
        fn auth_shaped_input_never_panics(
            input in "(Digest|Bearer) [a-z]{0,3}[ =,\"\\\\\r\n\ta-z0-9]{0,40}"
        ) {
            check_slices(input.as_bytes());
        }
    }
}
