//! SIP responses the firewall sends itself (the `reject` action), built from the request as a
//! UAS would (RFC 3261 §8.2.6): every Via in order, From, To with a tag added when it has none,
//! Call-ID and CSeq copied.

use crate::sip::{HeaderName, Message, Method};
use std::io::Write;

/// Writes a `status reason` response to `req` into `out`. Returns false (and writes nothing)
/// for messages that must never be answered: responses and ACKs (§17.1.1.3).
pub fn build_response(req: &Message<'_>, status: u16, reason: &str, to_tag: &str, out: &mut Vec<u8>) -> bool {
    out.clear();
    if !req.is_request() || req.method() == Some(Method::Ack) {
        return false;
    }
    let reason: String = reason.chars().filter(|c| !c.is_control()).collect();
    let _ = write!(out, "SIP/2.0 {status} {reason}\r\n");
    for v in req.headers_named(HeaderName::Via) {
        line(out, b"Via", v);
    }
    if let Some(f) = req.header(HeaderName::From) {
        line(out, b"From", f);
    }
    if let Some(t) = req.header(HeaderName::To) {
        out.extend_from_slice(b"To: ");
        out.extend_from_slice(t);
        if req.to().and_then(|t| t.tag()).is_none() {
            out.extend_from_slice(b";tag=");
            out.extend_from_slice(to_tag.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    if let Some(c) = req.header(HeaderName::CallId) {
        line(out, b"Call-ID", c);
    }
    if let Some(c) = req.header(HeaderName::CSeq) {
        line(out, b"CSeq", c);
    }
    out.extend_from_slice(b"Server: secsip\r\nContent-Length: 0\r\n\r\n");
    true
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    // Folded values are unfolded: a response must not carry the request's line breaks.
    for &b in value {
        out.push(if b == b'\r' || b == b'\n' { b' ' } else { b });
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{Limits, Parser};

    #[test]
    fn response_copies_the_transaction_and_dialog_headers() {
        let req = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n\
Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: c1@host\r\n\
CSeq: 5 INVITE\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n";
        let mut p = Parser::new(Limits::default());
        let m = p.parse(req);
        let mut out = vec![];
        assert!(build_response(&m, 403, "Forbidden", "fw1", &mut out));
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("SIP/2.0 403 Forbidden\r\n"));
        assert!(text.contains("Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\n"));
        assert!(text.contains("To: <sip:bob@example.com>;tag=fw1\r\n"));
        assert!(text.contains("CSeq: 5 INVITE\r\n"));
        // The response is itself valid SIP that matches the request's transaction.
        let mut p2 = Parser::new(Limits::default());
        let r = p2.parse(&out);
        assert!(r.reasons().is_empty(), "{:?}", r.reasons().iter().map(|x| x.name()).collect::<Vec<_>>());
        assert_eq!(r.status(), Some(403));
        assert_eq!(r.top_via().unwrap().branch(), Some(&b"z9hG4bK1"[..]));
    }

    #[test]
    fn acks_and_responses_are_never_answered() {
        let mut p = Parser::new(Limits::default());
        let ack = b"ACK sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\r\n";
        let m = p.parse(ack);
        let mut out = vec![1];
        assert!(!build_response(&m, 403, "x", "t", &mut out));
        assert!(out.is_empty());
    }
}
