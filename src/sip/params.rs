//! `;name[=value]` parameter lists (`generic-param`, `via-params`, `contact-params`, ...).

use super::chars::{is_token, quoted_end, span_of, trim, Split, PARAM_VALUE, TOKEN};

/// A borrowed parameter list: the raw text from the first `;` on (may be empty).
///
/// Parsed on each call; lists are short, and nothing is allocated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Params<'a>(&'a [u8]);

impl<'a> Params<'a> {
    /// Wrap raw parameter text, e.g. `;branch=z9hG4bK1;rport`.
    pub fn new(raw: &'a [u8]) -> Params<'a> {
        Params(raw)
    }

    /// The raw text as given to [`Params::new`].
    pub fn raw(&self) -> &'a [u8] {
        self.0
    }

    /// Value of the first parameter called `name` (case-insensitive): `Some(None)` if it has
    /// no value, `Some(Some(v))` with quotes removed (escapes left raw) otherwise.
    pub fn get(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        self.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// How many parameters are called `name` (case-insensitive).
    pub fn count(&self, name: &[u8]) -> usize {
        self.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).count()
    }

    /// All `(name, value)` pairs in order, values unquoted as in [`Params::get`].
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        Split::new(self.0, b';').map(|p| {
            let (name, value) = split_param(p);
            (name, value.map(unquote))
        })
    }

    /// True if every parameter is `token [ EQUAL ( token / host / quoted-string ) ]` and the
    /// list is empty or starts with `;`.
    pub fn is_valid(&self) -> bool {
        self.scan_plain(b"").is_some() || self.is_valid_general()
    }

    /// [`Params::is_valid`], [`Params::count`] and [`Params::get`] of one name together, as
    /// validation wants them: one pass for a plain list, the general methods otherwise.
    pub(crate) fn check(&self, name: &[u8]) -> Checked<'a> {
        match self.scan_plain(name) {
            Some(c) => c,
            None => Checked { valid: self.is_valid_general(), count: self.count(name), first: self.get(name) },
        }
    }

    /// One pass over a list in the plain form that almost every message uses:
    ///
    /// ```text
    /// *( ";" token [ "=" 1*( token-char / "[" / "]" / ":" ) ] )
    /// ```
    /// with no LWS, quotes, `<` or empty elements. Such a list is valid, and splitting,
    /// trimming and unquoting it are all no-ops, so the general methods would report exactly
    /// what is gathered here. `None` if the list is not plain (it may still be valid).
    fn scan_plain(&self, name: &[u8]) -> Option<Checked<'a>> {
        let mut out = Checked { valid: true, count: 0, first: None };
        let mut p = self.0;
        while let Some((b';', rest)) = p.split_first() {
            let n = span_of(rest, &TOKEN);
            let (pname, after) = (rest.get(..n)?, rest.get(n..)?);
            if pname.is_empty() {
                return None;
            }
            p = after;
            let mut value = None;
            if let Some((b'=', v)) = p.split_first() {
                let m = span_of(v, &PARAM_VALUE);
                if m == 0 {
                    return None;
                }
                value = Some(v.get(..m)?);
                p = v.get(m..)?;
            }
            if pname.eq_ignore_ascii_case(name) {
                out.count += 1;
                out.first = out.first.or(Some(value));
            }
        }
        p.is_empty().then_some(out)
    }

    /// [`Params::is_valid`] for any list.
    fn is_valid_general(&self) -> bool {
        let raw = trim(self.0);
        if !(raw.is_empty() || raw.first() == Some(&b';')) {
            return false;
        }
        Split::new(raw, b';').all(|p| {
            let (name, value) = split_param(p);
            is_token(name)
                && match value {
                    None => true,
                    Some(v) if v.first() == Some(&b'"') => quoted_end(v) == Some(v.len() - 1),
                    Some(v) => !v.is_empty() && v.iter().all(|&b| PARAM_VALUE[b as usize]),
                }
        })
    }
}

/// What [`Params::check`] reports about a list and one parameter name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Checked<'a> {
    /// [`Params::is_valid`].
    pub valid: bool,
    /// [`Params::count`] of the name.
    pub count: usize,
    /// [`Params::get`] of the name.
    pub first: Option<Option<&'a [u8]>>,
}

fn split_param(p: &[u8]) -> (&[u8], Option<&[u8]>) {
    match memchr::memchr(b'=', p) {
        Some(i) => (
            trim(p.get(..i).unwrap_or(&[])),
            Some(trim(p.get(i + 1..).unwrap_or(&[]))),
        ),
        None => (trim(p), None),
    }
}

/// Strip the surrounding quotes of a complete quoted string; anything else is returned as is.
pub(crate) fn unquote(v: &[u8]) -> &[u8] {
    match quoted_end(v) {
        Some(e) if e + 1 == v.len() => v.get(1..e).unwrap_or(&[]),
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_and_iter() {
        let p = Params::new(b";branch=z9hG4bK776;RPORT; received = 192.0.2.1 ;q=\"a;b\\\"c\"");
        assert_eq!(p.get(b"branch"), Some(Some(&b"z9hG4bK776"[..])));
        assert_eq!(p.get(b"rport"), Some(None));
        assert_eq!(p.get(b"Received"), Some(Some(&b"192.0.2.1"[..])));
        assert_eq!(p.get(b"q"), Some(Some(&b"a;b\\\"c"[..])));
        assert_eq!(p.get(b"nope"), None);
        assert_eq!(p.iter().count(), 4);
        assert!(p.is_valid());
    }

    #[test]
    fn validity() {
        assert!(Params::new(b"").is_valid());
        assert!(Params::new(b";received=2001:db8::1;maddr=[2001:db8::2]").is_valid());
        assert!(!Params::new(b"x=1").is_valid());
        assert!(!Params::new(b";a b=1").is_valid());
        assert!(!Params::new(b";a=").is_valid());
        assert!(!Params::new(b";a=\"open").is_valid());
        assert!(!Params::new(b";a=x<y").is_valid());
        assert_eq!(Params::new(b";tag=1;TAG=2").count(b"tag"), 2);
    }

    fn general(p: &Params<'_>, name: &[u8]) -> (bool, usize, Option<Option<Vec<u8>>>) {
        (p.is_valid_general(), p.count(name), p.get(name).map(|v| v.map(<[u8]>::to_vec)))
    }

    #[test]
    fn plain_scan() {
        let p = Params::new(b";branch=z9hG4bK1;rport;Branch=x;received=[::1]:5");
        assert_eq!(p.check(b"branch"), Checked { valid: true, count: 2, first: Some(Some(b"z9hG4bK1")) });
        assert!(p.scan_plain(b"rport").is_some());
        for not_plain in [&b" ;a"[..], b";a ", b";;a", b";a=", b";a=\"q\"", b"x", b";a=b;", b";a=<b>"] {
            assert!(Params::new(not_plain).scan_plain(b"a").is_none(), "{not_plain:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn check_agrees_with_general(raw in "[ ;=a-cA\"<>\\[\\]:,.\t]{0,16}") {
            let p = Params::new(raw.as_bytes());
            let c = p.check(b"a");
            proptest::prop_assert_eq!(
                (c.valid, c.count, c.first.map(|v| v.map(<[u8]>::to_vec))),
                general(&p, b"a")
            );
            proptest::prop_assert_eq!(p.is_valid(), p.is_valid_general());
        }
    }
}
