//! Normal forms of URI parts: the values rules match, read as the endpoint behind the
//! firewall will read them.
//!
//! - user: percent-decoded (RFC 3986 §2.1); for a number (a `tel:` URI, or a sip/sips URI
//!   with `user=phone`, RFC 3261 §19.1.1) also without visual separators (`-` `.` `(` `)`
//!   and space, RFC 3966 §5.1.1) and parameters (`;isub`, `;ext`), and with a global
//!   `phone-context` (`;phone-context=+882`) put in front of a local number (RFC 3966
//!   §5.1.5: the context is the number's prefix);
//! - host: percent-decoded, ASCII lower case (RFC 3986 §6.2.2.1), without a trailing dot;
//! - URI: lower-case scheme, then the normal user and host, the rest as written.
//!
//! Each function appends to a caller's buffer only when the normal form differs from the
//! raw bytes ([`Norm::Raw`] otherwise), so the common case copies nothing and a warm buffer
//! never allocates. A value that cannot be decoded unambiguously is a [`NormError`], which
//! validation reports as `bad_encoding`.

use super::uri::{HostKind, Scheme, Uri};
use std::ops::Range;

/// Where a normal form is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Norm {
    /// The raw bytes already are the normal form.
    Raw,
    /// This range of the caller's buffer holds it.
    Written(Range<usize>),
}

/// Why a value has no normal form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormError {
    /// `%` not followed by two hex digits.
    BadEscape,
    /// Decodes to a control byte other than NUL (CR, LF, ...), which splits the value for a
    /// line-based reader behind us.
    Control,
    /// Decodes to bytes that are not UTF-8 (RFC 3986 §2.5: escapes encode UTF-8).
    BadUtf8,
    /// An IPv4 host with a leading zero in an octet: decimal to us, octal to `inet_aton`.
    AmbiguousIpv4,
}

/// RFC 3966 §5.1.1 visual separators, plus space (a decoded `%20`).
fn is_separator(b: u8) -> bool {
    matches!(b, b'-' | b'.' | b'(' | b')' | b' ')
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Appends the percent-decoding of `s` to `out`.
fn decode_into(s: &[u8], out: &mut Vec<u8>) -> Result<(), NormError> {
    let start = out.len();
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c == b'%' {
            let h = s.get(i + 1).copied().and_then(hex);
            let l = s.get(i + 2).copied().and_then(hex);
            let (Some(h), Some(l)) = (h, l) else { return Err(NormError::BadEscape) };
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    let decoded = out.get(start..).unwrap_or_default();
    if decoded.iter().any(|&b| is_control(b)) {
        return Err(NormError::Control);
    }
    if std::str::from_utf8(decoded).is_err() {
        return Err(NormError::BadUtf8);
    }
    // An escaped NUL is legal (RFC 4475 §3.1.1.4, escnull), but a C-string reader behind us
    // stops there: the value is matched as that reader sees it, so `100%00x` is `100`.
    if let Some(nul) = decoded.iter().position(|&b| b == 0) {
        out.truncate(start + nul);
    }
    Ok(())
}

/// A decoded byte no value may hold (NUL is handled apart: see [`decode_into`]).
fn is_control(b: u8) -> bool {
    (b != 0 && b < 0x20) || b == 0x7f
}

/// True when the URI names a telephone number: `tel:`, or sip/sips with `user=phone`.
pub fn is_number(uri: &Uri<'_>) -> bool {
    uri.scheme == Scheme::Tel
        || (matches!(uri.scheme, Scheme::Sip | Scheme::Sips) && uri.user_param().is_some_and(|p| p.eq_ignore_ascii_case(b"phone")))
}

/// Runs `f` writing at the end of `out`; on error `out` is restored.
fn written(out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>) -> Result<(), NormError>) -> Result<Norm, NormError> {
    let start = out.len();
    match f(out) {
        Ok(()) => Ok(Norm::Written(start..out.len())),
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// The normal form of the URI's user part (the number of a `tel:` URI).
pub fn user(uri: &Uri<'_>, out: &mut Vec<u8>) -> Result<Norm, NormError> {
    let Some(raw) = uri.user else { return Ok(Norm::Raw) };
    if !is_number(uri) {
        if !raw.contains(&b'%') {
            return Ok(Norm::Raw);
        }
        return written(out, |o| decode_into(raw, o));
    }
    // A tel URI's parameters follow the number in `params`; a sip number's are inside the
    // user part (`+1-212-555;phone-context=example.com@host;user=phone`).
    let (params, inside) = match uri.scheme {
        Scheme::Tel => (uri.params, false),
        _ => (&[][..], true),
    };
    let plain = !raw.iter().any(|&b| b == b'%' || b == b';' || is_separator(b)) && !has_param(params, b"phone-context");
    if plain {
        return Ok(Norm::Raw);
    }
    written(out, |o| {
        // Decoded at the end of `o`, then rebuilt after it and moved down: no allocation.
        let start = o.len();
        decode_into(raw, o)?;
        let end = o.len();
        let semi = match inside {
            true => o[start..end].iter().position(|&b| b == b';').map_or(end, |p| start + p),
            false => end,
        };
        let global = o.get(start) == Some(&b'+');
        let ctx = {
            let (holder, base): (&[u8], usize) = if inside { (&o[..end], (semi + 1).min(end)) } else { (params, 0) };
            param_range(&holder[base..], b"phone-context")
                .map(|r| (base + r.start, base + r.end))
                .filter(|&(a, _)| !global && holder.get(a) == Some(&b'+'))
        };
        match ctx {
            Some((a, b)) if inside => {
                for i in a..b {
                    let c = o[i];
                    if !is_separator(c) {
                        o.push(c);
                    }
                }
            }
            Some((a, b)) => o.extend(params[a..b].iter().copied().filter(|&c| !is_separator(c))),
            None => {}
        }
        for i in start..semi {
            let c = o[i];
            if !is_separator(c) {
                o.push(c);
            }
        }
        let len = o.len() - end;
        o.copy_within(end.., start);
        o.truncate(start + len);
        Ok(())
    })
}

/// Range of the value of parameter `name` in `params` (`a=1;b=2`).
fn param_range(params: &[u8], name: &[u8]) -> Option<Range<usize>> {
    let mut at = 0;
    for p in params.split(|&b| b == b';') {
        let eq = p.iter().position(|&b| b == b'=').unwrap_or(p.len());
        if p[..eq].eq_ignore_ascii_case(name) {
            return Some(at + (eq + 1).min(p.len())..at + p.len());
        }
        at += p.len() + 1;
    }
    None
}

fn has_param(params: &[u8], name: &[u8]) -> bool {
    param_range(params, name).is_some()
}

/// The normal form of the URI's host.
pub fn host(uri: &Uri<'_>, out: &mut Vec<u8>) -> Result<Norm, NormError> {
    let h = uri.host;
    if uri.host_kind == HostKind::Ipv4 && h.split(|&b| b == b'.').any(|o| o.len() > 1 && o[0] == b'0') {
        return Err(NormError::AmbiguousIpv4);
    }
    if !h.iter().any(|&b| b == b'%' || b.is_ascii_uppercase()) && h.last() != Some(&b'.') {
        return Ok(Norm::Raw);
    }
    written(out, |o| {
        let start = o.len();
        decode_into(h, o)?;
        o[start..].make_ascii_lowercase();
        if o.len() > start + 1 && o.last() == Some(&b'.') {
            o.pop();
        }
        Ok(())
    })
}

/// The normal form of the whole URI: scheme in lower case, normal user and host, the rest
/// (password, port, parameters, headers) as written.
pub fn uri(uri: &Uri<'_>, out: &mut Vec<u8>) -> Result<Norm, NormError> {
    let raw = uri.raw;
    let colon = raw.iter().position(|&b| b == b':').unwrap_or(0);
    let scheme = &raw[..colon];
    let scratch = out.len();
    let u = user(uri, out)?;
    let h = host(uri, out)?;
    if u == Norm::Raw && h == Norm::Raw && !scheme.iter().any(u8::is_ascii_uppercase) {
        out.truncate(scratch);
        return Ok(Norm::Raw);
    }
    // Offsets of the user and host inside `raw` (both borrow from it).
    let off = |s: &[u8]| (s.as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize);
    let start = out.len();
    out.extend(scheme.iter().map(u8::to_ascii_lowercase));
    let mut at = colon;
    let piece = |out: &mut Vec<u8>, part: &[u8], n: &Norm, at: &mut usize| {
        let o = off(part);
        if o < *at || o > raw.len() {
            return;
        }
        out.extend_from_slice(&raw[*at..o]);
        match n {
            Norm::Raw => out.extend_from_slice(part),
            Norm::Written(r) => out.extend_from_within(r.clone()),
        }
        *at = o + part.len();
    };
    if let Some(us) = uri.user {
        piece(out, us, &u, &mut at);
    }
    if uri.scheme != Scheme::Tel {
        piece(out, uri.host, &h, &mut at);
    }
    out.extend_from_slice(&raw[at..]);
    // The user and host pieces stay in front; only the URI's own range is returned.
    let end = out.len();
    Ok(Norm::Written(start..end))
}

/// Checks that the URI's user and host have normal forms, without writing them (validation
/// runs this on every URI it reads, before any rule).
pub fn check(uri: &Uri<'_>) -> Result<(), NormError> {
    if uri.host_kind == HostKind::Ipv4 && uri.host.split(|&b| b == b'.').any(|o| o.len() > 1 && o[0] == b'0') {
        return Err(NormError::AmbiguousIpv4);
    }
    for part in [uri.user.unwrap_or_default(), uri.host] {
        if part.contains(&b'%') {
            check_decoded(part)?;
        }
    }
    Ok(())
}

/// [`decode_into`]'s checks, one UTF-8 sequence at a time in a 4-byte window.
fn check_decoded(s: &[u8]) -> Result<(), NormError> {
    let mut seq = [0u8; 4];
    let (mut have, mut want) = (0usize, 0usize);
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        let b = if c == b'%' {
            let h = s.get(i + 1).copied().and_then(hex);
            let l = s.get(i + 2).copied().and_then(hex);
            let (Some(h), Some(l)) = (h, l) else { return Err(NormError::BadEscape) };
            i += 3;
            h << 4 | l
        } else {
            i += 1;
            c
        };
        if is_control(b) {
            return Err(NormError::Control);
        }
        if want == 0 {
            want = match b {
                0x00..=0x7f => continue,
                0xc2..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf4 => 4,
                _ => return Err(NormError::BadUtf8),
            };
        }
        seq[have] = b;
        have += 1;
        if have == want {
            std::str::from_utf8(&seq[..have]).map_err(|_| NormError::BadUtf8)?;
            (have, want) = (0, 0);
        }
    }
    if want != 0 {
        return Err(NormError::BadUtf8);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(f: fn(&Uri<'_>, &mut Vec<u8>) -> Result<Norm, NormError>, s: &str) -> Result<String, NormError> {
        let u = Uri::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"));
        // Written after what the buffer already holds, which stays untouched.
        let mut out = b"junk".to_vec();
        Ok(match f(&u, &mut out)? {
            Norm::Raw => {
                assert_eq!(out, b"junk");
                format!("raw:{s}")
            }
            Norm::Written(r) => {
                assert_eq!(&out[..4], b"junk");
                String::from_utf8(out[r].to_vec()).unwrap()
            }
        })
    }

    #[test]
    fn users_are_decoded_and_numbers_lose_separators() {
        assert_eq!(norm(user, "sip:alice@example.com").unwrap(), "raw:sip:alice@example.com");
        assert_eq!(norm(user, "sip:%2B88216555@gw").unwrap(), "+88216555");
        assert_eq!(norm(user, "sip:%61dmin@gw").unwrap(), "admin");
        // Separators stay in a plain user (it is a name), go in a number.
        assert_eq!(norm(user, "sip:+882-16-555@gw").unwrap(), "raw:sip:+882-16-555@gw");
        assert_eq!(norm(user, "sip:+882-16-555@gw;user=phone").unwrap(), "+88216555");
        assert_eq!(norm(user, "sip:+882.(16)-555;isub=9@gw;user=PHONE").unwrap(), "+88216555");
        assert_eq!(norm(user, "tel:+882-16-555").unwrap(), "+88216555");
        assert_eq!(norm(user, "tel:+88216555").unwrap(), "raw:tel:+88216555");
        assert_eq!(norm(user, "tel:16-555;phone-context=+882").unwrap(), "+88216555");
        assert_eq!(norm(user, "tel:16555;phone-context=example.com").unwrap(), "16555");
        assert_eq!(norm(user, "sip:16555;phone-context=+8-82@gw;user=phone").unwrap(), "+88216555");
        assert_eq!(norm(user, "sip:%2B882%2D16%2D555@gw;user=phone").unwrap(), "+88216555");
    }

    #[test]
    fn hosts_lose_case_and_trailing_dot() {
        assert_eq!(norm(host, "sip:a@Example.COM").unwrap(), "example.com");
        assert_eq!(norm(host, "sip:a@example.com").unwrap(), "raw:sip:a@example.com");
        assert_eq!(norm(host, "sip:a@[2001:DB8::1]").unwrap(), "2001:db8::1");
        assert_eq!(norm(host, "sip:a@192.0.2.010"), Err(NormError::AmbiguousIpv4));
        assert_eq!(norm(host, "sip:a@192.0.2.0").unwrap(), "raw:sip:a@192.0.2.0");
    }

    #[test]
    fn whole_uris() {
        assert_eq!(norm(uri, "SIP:%2B88216@GW.example;user=phone").unwrap(), "sip:+88216@gw.example;user=phone");
        assert_eq!(norm(uri, "sip:bob@gw:5060;transport=udp").unwrap(), "raw:sip:bob@gw:5060;transport=udp");
        assert_eq!(norm(uri, "TEL:+882-16;x=1").unwrap(), "tel:+88216;x=1");
        assert_eq!(norm(uri, "sip:gw.EXAMPLE").unwrap(), "sip:gw.example");
    }

    #[test]
    fn undecodable_values_are_errors() {
        let mut out = Vec::new();
        for (s, e) in [("%01", NormError::Control), ("%0d%0a", NormError::Control), ("%ff", NormError::BadUtf8), ("%C0%AF", NormError::BadUtf8), ("%4", NormError::BadEscape)] {
            out.clear();
            assert_eq!(decode_into(s.as_bytes(), &mut out), Err(e), "{s}");
        }
        assert_eq!(decode_into("caf%C3%A9".as_bytes(), &mut out), Ok(()));
        for s in ["%1f", "%0d%0a", "%ff", "%C0%AF", "%4", "%E2%82", "%ED%A0%80"] {
            out.clear();
            assert!(decode_into(s.as_bytes(), &mut out).is_err(), "{s}");
            assert_eq!(check_decoded(s.as_bytes()), decode_into(s.as_bytes(), &mut Vec::new()), "{s}");
        }
        for s in ["caf%C3%A9", "%F0%9F%98%80x", "plain", "%2B1", "null-%00-null"] {
            assert_eq!(check_decoded(s.as_bytes()), Ok(()), "{s}");
        }
        out.clear();
        assert_eq!((decode_into(b"100%00x", &mut out), out.as_slice()), (Ok(()), &b"100"[..]), "read as a C string reads it");
        out.clear();
        assert_eq!(decode_into(b"100%00%ff", &mut out), Err(NormError::BadUtf8), "what follows a NUL is still checked");
    }

    #[test]
    fn arbitrary_uris_never_panic_and_validation_agrees_with_the_normalisers() {
        use proptest::prelude::*;
        let uri_like = "(sip|SIP|sips|tel):[-+%0-9a-fA-F.();=@:A-Za-z]{0,40}(;user=phone)?";
        // The same invariants as the `normal` fuzz target, on URI-shaped strings it may take
        // long to reach: one body asserts them for both.
        proptest!(|(s in uri_like)| {
            crate::fuzz::normal(s.as_bytes());
        });
    }
}
