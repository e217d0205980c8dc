//! RFC 3261 §18.3 framing of a SIP byte stream.
//!
//! Over a stream, the end of a message is found from its header block and its Content-Length:
//! "the Content-Length header field MUST be used with stream oriented transports". Between
//! messages, CRLFs are keepalives: RFC 5626 §3.5.1 sends a double CRLF as a ping and a single
//! CRLF as its pong, and RFC 3261 §7.5 lets a receiver ignore CRLFs before a start line. The
//! keepalive bytes are consumed on their own, so a message that follows them in the same
//! segment is framed and judged like any other.

use super::StreamError;

/// What [`frame`] found at the start of a buffer that begins at a message boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framed {
    /// Not enough bytes yet to delimit anything.
    Need,
    /// This many bytes of CRLF keepalive (pings and pongs), to pass on.
    Keepalive(usize),
    /// A whole SIP message of this many bytes (headers, blank line, body).
    Message(usize),
    /// The stream cannot be framed: what it carries cannot be delimited safely.
    Error(StreamError),
}

/// Frames the start of `buf`, which begins at a message boundary; no message may exceed
/// `max_message` bytes.
pub fn frame(buf: &[u8], max_message: usize) -> Framed {
    let crlfs = keepalive_len(buf);
    if crlfs > 0 {
        return Framed::Keepalive(crlfs);
    }
    if buf.is_empty() || buf == b"\r" {
        return Framed::Need;
    }
    let window = &buf[..buf.len().min(max_message)];
    let Some(head_end) = memchr::memmem::find(window, b"\r\n\r\n").map(|i| i + 4) else {
        return if buf.len() >= max_message { Framed::Error(StreamError::MessageTooLarge) } else { Framed::Need };
    };
    let body = match content_length(&buf[..head_end]) {
        Ok(n) => n,
        Err(e) => return Framed::Error(e),
    };
    let total = match head_end.checked_add(body) {
        Some(t) if t <= max_message => t,
        _ => return Framed::Error(StreamError::MessageTooLarge),
    };
    if buf.len() >= total {
        Framed::Message(total)
    } else {
        Framed::Need
    }
}

/// Length of the run of whole CRLFs at the start of `buf`.
fn keepalive_len(buf: &[u8]) -> usize {
    buf.chunks_exact(2).take_while(|c| *c == b"\r\n").count() * 2
}

/// The Content-Length of a header block (start line to blank line). Every occurrence is read:
/// two that disagree would let the firewall and the endpoint cut the stream differently.
fn content_length(head: &[u8]) -> Result<usize, StreamError> {
    let mut found: Option<usize> = None;
    // Skip the start line; header lines follow, each after a CRLF. A folded continuation line
    // starts with SP/HT and cannot name a header, so it never matches.
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let name = trim(&line[..colon]);
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = trim(&line[colon + 1..]);
        if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
            return Err(StreamError::BadContentLength);
        }
        let n = value.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
        match found {
            Some(prev) if prev != n => return Err(StreamError::BadContentLength),
            _ => found = Some(n),
        }
    }
    found.ok_or(StreamError::MissingContentLength)
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !matches!(c, b' ' | b'\t')).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !matches!(c, b' ' | b'\t')).map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 65535;
    const OPTIONS: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn a_whole_message_is_framed_by_its_content_length() {
        assert_eq!(frame(OPTIONS, MAX), Framed::Message(OPTIONS.len()));
        let with_body = b"MESSAGE sip:a@b SIP/2.0\r\nl: 5\r\n\r\nhelloINVITE";
        assert_eq!(frame(with_body, MAX), Framed::Message(with_body.len() - 6));
    }

    #[test]
    fn every_prefix_of_a_message_needs_more() {
        for n in 0..OPTIONS.len() {
            assert_eq!(frame(&OPTIONS[..n], MAX), Framed::Need, "prefix {n}");
        }
        let body = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length:  3 \r\n\r\nab";
        assert_eq!(frame(body, MAX), Framed::Need);
    }

    #[test]
    fn keepalives_are_consumed_without_hiding_what_follows() {
        assert_eq!(frame(b"\r\n\r\n", MAX), Framed::Keepalive(4));
        assert_eq!(frame(b"\r\n", MAX), Framed::Keepalive(2));
        assert_eq!(frame(b"\r", MAX), Framed::Need);
        let mut s = b"\r\n\r\n".to_vec();
        s.extend_from_slice(OPTIONS);
        assert_eq!(frame(&s, MAX), Framed::Keepalive(4));
        assert_eq!(frame(&s[4..], MAX), Framed::Message(OPTIONS.len()));
        // A lone CR then a letter is not a keepalive: it is the (malformed) start of a message.
        assert_eq!(frame(b"\rOPTIONS", MAX), Framed::Need);
    }

    #[test]
    fn content_length_is_required_and_must_be_one_number() {
        let missing = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n";
        assert_eq!(frame(missing, MAX), Framed::Error(StreamError::MissingContentLength));
        let two = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\nl: 4\r\n\r\nabcd";
        assert_eq!(frame(two, MAX), Framed::Error(StreamError::BadContentLength));
        let same = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\nl: 0\r\n\r\n";
        assert_eq!(frame(same, MAX), Framed::Message(same.len()));
        for bad in [&b"-1"[..], b"1a", b"", b"99999999999"] {
            let mut m = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: ".to_vec();
            m.extend_from_slice(bad);
            m.extend_from_slice(b"\r\n\r\n");
            assert_eq!(frame(&m, MAX), Framed::Error(StreamError::BadContentLength), "{bad:?}");
        }
    }

    #[test]
    fn the_largest_message_is_enforced_before_and_after_the_headers() {
        let mut endless = b"OPTIONS sip:a@b SIP/2.0\r\nX: ".to_vec();
        endless.resize(1000, b'a');
        assert_eq!(frame(&endless, 1000), Framed::Error(StreamError::MessageTooLarge));
        assert_eq!(frame(&endless[..999], 1000), Framed::Need);
        let big = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 2000\r\n\r\n";
        assert_eq!(frame(big, 1000), Framed::Error(StreamError::MessageTooLarge));
    }
}
