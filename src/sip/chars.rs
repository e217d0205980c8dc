//! RFC 3261 §25.1 byte classes as 256-entry tables, plus the small scanning helpers every
//! typed header parser shares (trimming, quoted strings, top-level splitting).
//!
//! Tables rather than `match` chains: one load per byte, and the ABNF sits next to the data.

/// ```text
/// token = 1*(alphanum / "-" / "." / "!" / "%" / "*"
///            / "_" / "+" / "`" / "'" / "~" )
/// ```
pub static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~');
        i += 1;
    }
    t
};

/// ```text
/// word = 1*(alphanum / "-" / "." / "!" / "%" / "*" /
///           "_" / "+" / "`" / "'" / "~" /
///           "(" / ")" / "<" / ">" /
///           ":" / "\" / DQUOTE /
///           "/" / "[" / "]" / "?" /
///           "{" / "}" )
/// callid = word [ "@" word ]
/// ```
pub static WORD: [bool; 256] = {
    let mut t = TOKEN;
    let extra = b"()<>:\\\"/[]?{}";
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
};

/// Unquoted generic parameter value:
/// ```text
/// gen-value = token / host / quoted-string
/// host      = hostname / IPv4address / IPv6reference
/// ```
/// i.e. token characters plus `[`, `]` and `:`. RFC 3261 `via-received` is a bare
/// `IPv6address`, hence `:` outside brackets.
pub static PARAM_VALUE: [bool; 256] = {
    let mut t = TOKEN;
    t[b'[' as usize] = true;
    t[b']' as usize] = true;
    t[b':' as usize] = true;
    t
};

/// ```text
/// hostname    = *( domainlabel "." ) toplabel [ "." ]
/// domainlabel = alphanum / alphanum *( alphanum / "-" ) alphanum
/// IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT
/// ```
/// Character class only (alphanum, `-`, `.`); label structure is not enforced.
pub static HOST: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || b == b'-' || b == b'.';
        i += 1;
    }
    t
};

/// Linear white space as seen inside an indexed header value: `SP`, `HTAB`, and the `CR`/`LF`
/// of a folded continuation line (`LWS = [*WSP CRLF] 1*WSP`).
#[inline]
pub fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// True if `s` is a non-empty `token`.
#[inline]
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| TOKEN[b as usize])
}

/// Strip LWS (including folding CRLFs) from both ends.
#[inline]
pub fn trim(s: &[u8]) -> &[u8] {
    trim_end(trim_start(s))
}

/// Strip leading LWS.
#[inline]
pub fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().position(|&b| !is_lws(b)).unwrap_or(s.len());
    s.get(n..).unwrap_or(&[])
}

/// Strip trailing LWS.
#[inline]
pub fn trim_end(s: &[u8]) -> &[u8] {
    let n = s.iter().rposition(|&b| !is_lws(b)).map_or(0, |p| p + 1);
    s.get(..n).unwrap_or(&[])
}

/// True if `s` holds a control byte other than HTAB (NUL, bare CR/LF, ESC, DEL, ...).
///
/// Written as a branch-free fold so it vectorises; it runs over every header line.
#[inline]
pub fn has_ctl(s: &[u8]) -> bool {
    s.iter()
        .fold(0u8, |acc, &b| acc | (((b < 0x20) & (b != b'\t')) | (b == 0x7f)) as u8)
        != 0
}

/// Length of the leading run of bytes in `class`.
#[inline]
pub fn span_of(s: &[u8], class: &[bool; 256]) -> usize {
    s.iter().position(|&b| !class[b as usize]).unwrap_or(s.len())
}

/// `1*DIGIT` as a `u32`; `None` on empty input, any non-digit, or overflow.
#[inline]
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    u32::try_from(n).ok()
}

/// Given `s` starting with `"`, the index of the closing `"` honouring `quoted-pair`
/// (`"\" (%x00-09 / %x0B-0C / %x0E-7F)`); `None` if unterminated.
#[inline]
pub fn quoted_end(s: &[u8]) -> Option<usize> {
    if s.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while let Some(&b) = s.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Index of the first `delim` that is outside a quoted string and outside `<...>`.
///
/// Commas and semicolons inside display names (`"Smith, Bob"`) or bracketed URIs
/// (`<sip:a@b;lr>`) must not split a list. An unterminated quote or angle swallows the rest.
#[inline]
pub fn find_top(s: &[u8], delim: u8) -> Option<usize> {
    let mut i = 0;
    loop {
        // memchr3 skips plain runs at SIMD speed; only the three interesting bytes branch.
        i += memchr::memchr3(delim, b'"', b'<', s.get(i..)?)?;
        let rest = s.get(i..)?;
        match rest.first() {
            Some(&b) if b == delim => return Some(i),
            Some(b'"') => i += quoted_end(rest)? + 1,
            _ => i += memchr::memchr(b'>', rest)? + 1,
        }
    }
}

/// Iterator over the trimmed, non-empty elements of a `delim`-separated list, splitting only
/// at top level (see [`find_top`]).
#[derive(Clone, Debug)]
pub struct Split<'a> {
    rest: Option<&'a [u8]>,
    delim: u8,
}

impl<'a> Split<'a> {
    /// Split `s` at top-level `delim` bytes.
    pub fn new(s: &'a [u8], delim: u8) -> Split<'a> {
        Split { rest: Some(s), delim }
    }
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let s = self.rest?;
            let (head, tail) = match find_top(s, self.delim) {
                Some(i) => (s.get(..i).unwrap_or(&[]), s.get(i + 1..)),
                None => (s, None),
            };
            self.rest = tail;
            let t = trim(head);
            if !t.is_empty() {
                return Some(t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables() {
        assert!(is_token(b"INVITE"));
        assert!(is_token(b"a-b.c!%*_+`'~"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a b"));
        assert!(!is_token(b"a:b"));
        assert!(!WORD[b'@' as usize] && WORD[b'<' as usize]);
        assert!(HOST[b'a' as usize] && !HOST[b'_' as usize]);
        assert!(PARAM_VALUE[b':' as usize] && !PARAM_VALUE[b';' as usize]);
    }

    #[test]
    fn helpers() {
        assert_eq!(trim(b" \t\r\n x y \r\n "), b"x y");
        assert_eq!(trim(b"   "), b"");
        assert!(has_ctl(b"a\0b"));
        assert!(has_ctl(b"a\x7fb"));
        assert!(has_ctl(b"a\rb"));
        assert!(!has_ctl(b"a\tb \xc3\xa9"));
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b"12a"), None);
        assert_eq!(parse_u32(b""), None);
        assert_eq!(quoted_end(b"\"a\\\"b\" x"), Some(5));
        assert_eq!(quoted_end(b"\"abc"), None);
        assert_eq!(quoted_end(b"\"ab\\"), None);
    }

    #[test]
    fn split_top_level() {
        let v: Vec<&[u8]> =
            Split::new(b"\"Smith, \\\"B\\\"\" <sip:a@b;x=1,2>;tag=1 , <sip:c>,, ", b',').collect();
        assert_eq!(v, vec![&b"\"Smith, \\\"B\\\"\" <sip:a@b;x=1,2>;tag=1"[..], b"<sip:c>"]);
        let v: Vec<&[u8]> = Split::new(b";a;b=\"x;y\";", b';').collect();
        assert_eq!(v, vec![&b"a"[..], b"b=\"x;y\""]);
        assert_eq!(Split::new(b"\"unterminated, x", b',').count(), 1);
    }
}
