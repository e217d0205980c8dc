//! `;name[=value]` parameter lists (`generic-param`, `via-params`, `contact-params`, ...).

use super::chars::{is_token, quoted_end, trim, Split, PARAM_VALUE};

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
}
