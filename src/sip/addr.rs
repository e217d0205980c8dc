//! name-addr / addr-spec with header parameters: From, To, Contact, Route, Record-Route,
//! Refer-To, Referred-By.
//!
//! ```text
//! from-spec    = ( name-addr / addr-spec ) *( SEMI from-param )
//! name-addr    = [ display-name ] LAQUOT addr-spec RAQUOT
//! display-name = *(token LWS) / quoted-string
//! ```
//! In the addr-spec form, parameters after the URI belong to the header, not the URI
//! (RFC 3261 §20.10), so the URI ends at the first `;`.

use super::chars::{is_lws, parse_u32, quoted_end, trim, trim_start, TOKEN};
use super::params::Params;

/// One address with its header parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name: quoted-string content without the quotes (escapes left raw), or the
    /// token display name; `None` if absent.
    pub display: Option<&'a [u8]>,
    /// The URI: inside `<>`, or the addr-spec up to the first `;`.
    pub uri: &'a [u8],
    /// Header parameters after the address (`tag`, `expires`, `q`, ...).
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// Parse one element (already split from its comma list); `None` if malformed.
    pub fn parse(s: &'a [u8]) -> Option<NameAddr<'a>> {
        let s = trim(s);
        if s.first() == Some(&b'"') {
            let e = quoted_end(s)?;
            let display = s.get(1..e)?;
            let rest = trim_start(s.get(e + 1..)?);
            return angle(Some(display), rest);
        }
        if let Some(lt) = memchr::memchr(b'<', s) {
            let prefix = s.get(..lt)?;
            // Only tokens and LWS may precede `<`; anything else means `<` sits inside an
            // addr-spec's parameters, which is malformed below.
            if prefix.iter().all(|&b| TOKEN[b as usize] || is_lws(b)) {
                let d = trim(prefix);
                return angle((!d.is_empty()).then_some(d), s.get(lt..)?);
            }
        }
        let semi = memchr::memchr(b';', s).unwrap_or(s.len());
        let uri = trim(s.get(..semi)?);
        let params = Params::new(s.get(semi..)?);
        if !uri_ok(uri) || uri.iter().any(|&b| matches!(b, b'<' | b'>' | b'"' | b',' | b'?')) {
            return None;
        }
        Some(NameAddr { display: None, uri, params })
    }

    /// The `tag` parameter (From/To).
    pub fn tag(&self) -> Option<&'a [u8]> {
        self.params.get(b"tag").flatten()
    }

    /// The `expires` parameter (Contact), if present and numeric.
    pub fn expires(&self) -> Option<u32> {
        self.params.get(b"expires").flatten().and_then(parse_u32)
    }

    /// Any parameter by name (case-insensitive); see [`Params::get`].
    pub fn param(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        self.params.get(name)
    }
}

/// `s` starts at `<`.
fn angle<'a>(display: Option<&'a [u8]>, s: &'a [u8]) -> Option<NameAddr<'a>> {
    if s.first() != Some(&b'<') {
        return None;
    }
    let body = s.get(1..)?;
    let gt = memchr::memchr(b'>', body)?;
    let uri = body.get(..gt)?;
    let rest = trim_start(body.get(gt + 1..)?);
    if !uri_ok(uri) || !(rest.is_empty() || rest.first() == Some(&b';')) {
        return None;
    }
    Some(NameAddr { display, uri, params: Params::new(rest) })
}

/// Cheap shape check; full URI grammar is `Uri::parse`'s job: non-empty, no control byte
/// (`has_ctl`), no LWS, and a `:`.
///
/// Control bytes other than HTAB plus the LWS bytes (SP, HTAB, CR, LF) are exactly the bytes
/// up to 0x20 and DEL, so one branch-free fold (which vectorises) does all three checks.
fn uri_ok(uri: &[u8]) -> bool {
    let (bad, colon) = uri
        .iter()
        .fold((false, false), |(bad, colon), &b| (bad | (b <= b' ') | (b == 0x7f), colon | (b == b':')));
    !uri.is_empty() && !bad && colon
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[u8]) -> NameAddr<'_> {
        NameAddr::parse(s).unwrap_or_else(|| panic!("{:?}", String::from_utf8_lossy(s)))
    }

    #[test]
    fn forms() {
        let a = p(b"Bob <sip:bob@biloxi.com>;tag=a6c85cf");
        assert_eq!(a.display, Some(&b"Bob"[..]));
        assert_eq!(a.uri, b"sip:bob@biloxi.com");
        assert_eq!(a.tag(), Some(&b"a6c85cf"[..]));

        let a = p(b"\"Smith, \\\"Bob\\\" <x>\" <sip:bob@[2001:db8::1]:5060;transport=tcp>;tag=1");
        assert_eq!(a.display, Some(&b"Smith, \\\"Bob\\\" <x>"[..]));
        assert_eq!(a.uri, b"sip:bob@[2001:db8::1]:5060;transport=tcp");
        assert_eq!(a.tag(), Some(&b"1"[..]));

        // addr-spec: params belong to the header.
        let a = p(b"sip:alice@[2001:db8::2];tag=88sja8x;expires=60");
        assert_eq!(a.display, None);
        assert_eq!(a.uri, b"sip:alice@[2001:db8::2]");
        assert_eq!(a.tag(), Some(&b"88sja8x"[..]));
        assert_eq!(a.expires(), Some(60));

        let a = p(b"  Mr  Watson\r\n <tel:+1-201-555-0123>  ;q=0.7; expires=3600");
        assert_eq!(a.display, Some(&b"Mr  Watson"[..]));
        assert_eq!(a.param(b"Q"), Some(Some(&b"0.7"[..])));
        assert_eq!(a.expires(), Some(3600));

        let a = p(b"<sip:p1.example.com;lr>");
        assert_eq!(a.display, None);
        assert_eq!(a.uri, b"sip:p1.example.com;lr");
        assert_eq!(p(b"\"\" <sip:a@b>").display, Some(&b""[..]));
    }

    #[test]
    fn malformed() {
        for bad in [
            &b""[..],
            b"<sip:a@b",
            b"\"open <sip:a@b>",
            b"Bob sip:bob@b",
            b"<>",
            b"<sip:a b@c>",
            b"<sip:a@b> junk",
            b"\"x\" sip:a@b",
            b"nocolon",
            b"Bob@x <sip:a@b>",
        ] {
            assert!(NameAddr::parse(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
