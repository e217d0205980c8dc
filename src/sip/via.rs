//! The Via header (RFC 3261 §20.42).
//!
//! ```text
//! via-parm      = sent-protocol LWS sent-by *( SEMI via-params )
//! sent-protocol = protocol-name SLASH protocol-version SLASH transport
//! sent-by       = host [ COLON port ]
//! ```

use super::chars::{is_lws, parse_u32, span_of, trim, trim_start, HOST, TOKEN};
use super::params::Params;

/// One Via hop (a header may hold several, comma-separated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    /// `protocol-name`, normally `SIP`.
    pub protocol_name: &'a [u8],
    /// `protocol-version`, normally `2.0`.
    pub protocol_version: &'a [u8],
    /// `transport`: `UDP`, `TCP`, `TLS`, `SCTP`, `WS`, `WSS` or an extension token.
    pub transport: &'a [u8],
    /// Host name, IPv4 address, or IPv6 address without its brackets.
    pub host: &'a [u8],
    /// Port, if given.
    pub port: Option<u16>,
    /// Via parameters.
    pub params: Params<'a>,
}

impl<'a> Via<'a> {
    /// Parse one via-parm; `None` if it does not match the grammar.
    pub fn parse(s: &'a [u8]) -> Option<Via<'a>> {
        let s = trim(s);
        let (protocol_name, s) = token(s)?;
        let s = slash(s)?;
        let (protocol_version, s) = token(s)?;
        let s = slash(s)?;
        let (transport, s) = token(s)?;
        if !s.first().is_some_and(|&b| is_lws(b)) {
            return None;
        }
        let s = trim_start(s);
        let (host, s) = if s.first() == Some(&b'[') {
            let close = memchr::memchr(b']', s)?;
            let inner = s.get(1..close)?;
            let ok = !inner.is_empty()
                && inner.iter().all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
            if !ok {
                return None;
            }
            (inner, s.get(close + 1..)?)
        } else {
            let n = span_of(s, &HOST);
            if n == 0 {
                return None;
            }
            (s.get(..n)?, s.get(n..)?)
        };
        let mut s = trim_start(s);
        let mut port = None;
        if s.first() == Some(&b':') {
            let rest = trim_start(s.get(1..)?);
            let n = rest.iter().position(|b| !b.is_ascii_digit()).unwrap_or(rest.len());
            port = Some(u16::try_from(parse_u32(rest.get(..n)?)?).ok()?);
            s = trim_start(rest.get(n..)?);
        }
        if !(s.is_empty() || s.first() == Some(&b';')) {
            return None;
        }
        Some(Via { protocol_name, protocol_version, transport, host, port, params: Params::new(s) })
    }

    /// True if the protocol is `SIP/2.0` (case-insensitive name).
    pub fn is_sip2(&self) -> bool {
        self.protocol_name.eq_ignore_ascii_case(b"SIP") && self.protocol_version == b"2.0"
    }

    /// True if the transport is one of UDP, TCP, TLS, SCTP, TLS-SCTP, WS, WSS.
    pub fn known_transport(&self) -> bool {
        [&b"UDP"[..], b"TCP", b"TLS", b"SCTP", b"TLS-SCTP", b"WS", b"WSS"]
            .iter()
            .any(|t| self.transport.eq_ignore_ascii_case(t))
    }

    /// The `branch` parameter value.
    pub fn branch(&self) -> Option<&'a [u8]> {
        self.params.get(b"branch").flatten()
    }

    /// The `received` parameter value.
    pub fn received(&self) -> Option<&'a [u8]> {
        self.params.get(b"received").flatten()
    }

    /// `rport` (RFC 3581): `None` if absent, `Some(None)` if present without a (valid) value.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get(b"rport")
            .map(|v| v.and_then(parse_u32).and_then(|p| u16::try_from(p).ok()))
    }

    /// The `maddr` parameter value.
    pub fn maddr(&self) -> Option<&'a [u8]> {
        self.params.get(b"maddr").flatten()
    }

    /// The `ttl` parameter, if present and in 0..=255.
    pub fn ttl(&self) -> Option<u8> {
        self.params.get(b"ttl").flatten().and_then(parse_u32).and_then(|t| u8::try_from(t).ok())
    }
}

fn token(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = span_of(s, &TOKEN);
    if n == 0 {
        return None;
    }
    Some((s.get(..n)?, s.get(n..)?))
}

/// `SLASH = SWS "/" SWS`
fn slash(s: &[u8]) -> Option<&[u8]> {
    let s = trim_start(s);
    if s.first() != Some(&b'/') {
        return None;
    }
    Some(trim_start(s.get(1..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic() {
        let v = Via::parse(b"SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds").unwrap();
        assert_eq!(v.transport, b"UDP");
        assert_eq!(v.host, b"pc33.atlanta.com");
        assert_eq!(v.port, None);
        assert_eq!(v.branch(), Some(&b"z9hG4bK776asdhds"[..]));
        assert!(v.is_sip2() && v.known_transport());
    }

    #[test]
    fn ipv6_port_params_and_lws() {
        let v = Via::parse(
            b"SIP / 2.0 / TCP\r\n  [2001:db8::1] : 5061 ;received=2001:db8::9;rport=5062;maddr=224.2.0.1;ttl=16;branch=z9hG4bKx",
        )
        .unwrap();
        assert_eq!(v.transport, b"TCP");
        assert_eq!(v.host, b"2001:db8::1");
        assert_eq!(v.port, Some(5061));
        assert_eq!(v.received(), Some(&b"2001:db8::9"[..]));
        assert_eq!(v.rport(), Some(Some(5062)));
        assert_eq!(v.maddr(), Some(&b"224.2.0.1"[..]));
        assert_eq!(v.ttl(), Some(16));
        assert!(v.params.is_valid());
        let v = Via::parse(b"SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bK1").unwrap();
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.host, b"192.0.2.1");
        assert_eq!(Via::parse(b"SIP/2.0/UDP h").unwrap().rport(), None);
    }

    #[test]
    fn malformed() {
        for bad in [
            &b""[..],
            b"SIP/2.0/UDP",
            b"SIP/2.0 host",
            b"SIP/2.0/UDPhost",
            b"SIP/2.0/UDP [2001:db8::1",
            b"SIP/2.0/UDP []",
            b"SIP/2.0/UDP [zz]",
            b"SIP/2.0/UDP host:99999",
            b"SIP/2.0/UDP host:",
            b"SIP/2.0/UDP host junk",
            b"SIP/2.0/UDP ho_st",
        ] {
            assert!(Via::parse(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
        let v = Via::parse(b"SIP/3.0/FOO host").unwrap();
        assert!(!v.is_sip2() && !v.known_transport());
    }
}
