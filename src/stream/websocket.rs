//! SIP over WebSocket (RFC 7118) framing of a reassembled TCP stream, sans-IO.
//!
//! On a `sip_ws_ports` connection the stream is HTTP/1.1 until the upgrade, then RFC 6455
//! frames. Policy, stated once:
//! - The first bytes must be the client's `GET` upgrade request (`Upgrade: websocket`,
//!   `Connection: Upgrade`, `Sec-WebSocket-Key`, `Sec-WebSocket-Version: 13`, and `sip` among
//!   `Sec-WebSocket-Protocol`), with no body; the answer must be `101` choosing `sip` and no
//!   extension (a compressed payload could not be read). Anything else — a stream that never
//!   upgrades, a 101 nobody asked for, another subprotocol, an HTTP error answer, data from the
//!   client before the 101 — resets the connection: there is no uninspected byte stream.
//! - After the upgrade, client frames must be masked and server frames must not be
//!   (RFC 6455 §5.1); reserved bits and opcodes are refused. A text or binary message,
//!   reassembled from its continuation frames and unmasked, is one SIP message (RFC 7118 §5),
//!   judged whole. Control frames (ping, pong, close; at most 125 bytes, never fragmented) pass;
//!   one inside a fragmented message goes out with the message. After a close a side may send
//!   nothing more.
//! - A connection first seen mid-stream (after a restart) has no handshake to see, so its
//!   first bytes are refused: live WebSocket connections are reset once and reconnect.

use super::StreamError;

/// Bounds and ports of WebSocket inspection (`[engine] sip_ws_ports`, `[engine.websocket]`).
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct WsLimits {
    /// Largest upgrade request or response, headers included (default 8192).
    pub max_handshake_bytes: usize,
}

impl Default for WsLimits {
    fn default() -> Self {
        WsLimits { max_handshake_bytes: 8192 }
    }
}

/// Where a WebSocket connection is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// Nothing seen yet: the client's upgrade request must come first.
    #[default]
    Http,
    /// The request passed; the server's 101 must come next.
    Requested,
    /// Upgraded: RFC 6455 frames both ways.
    Open,
}

/// The WebSocket state of one connection.
#[derive(Clone, Copy, Debug, Default)]
pub struct WsFlow {
    phase: Phase,
    /// The direction of the client (the one that sent the upgrade request).
    client: usize,
    /// A close frame was seen from this direction.
    closed: [bool; 2],
    /// Raw bytes of the message last handed out per direction, for `accept`.
    pub(super) pending_raw: [usize; 2],
}

/// What [`WsFlow::next`] found at the start of a direction's unjudged bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsFramed {
    /// Not enough bytes yet.
    Need,
    /// This many bytes of handshake or control frames, judged already: pass them.
    Pass(usize, WsPass),
    /// A whole message of this many raw bytes; its unmasked payload is in `out`.
    Message(usize),
    /// The stream breaks the policy.
    Error(StreamError),
}

/// What a [`WsFramed::Pass`] carried, for counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsPass {
    /// The upgrade request or its 101.
    Handshake,
    /// A ping, pong or close frame.
    Control,
}

/// One frame header (RFC 6455 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHead {
    /// FIN bit.
    pub fin: bool,
    /// Opcode.
    pub opcode: u8,
    /// Masking key, when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// Header length in bytes.
    pub header_len: usize,
    /// Payload length in bytes.
    pub payload_len: u64,
}

const OP_CONT: u8 = 0;
const OP_TEXT: u8 = 1;
const OP_BINARY: u8 = 2;
const OP_CLOSE: u8 = 8;
const OP_PING: u8 = 9;
const OP_PONG: u8 = 10;

/// Parses a frame header; `Ok(None)` when `buf` is too short to hold it.
pub fn frame_head(buf: &[u8]) -> Result<Option<FrameHead>, StreamError> {
    let [b0, b1, ..] = *buf else { return Ok(None) };
    if b0 & 0x70 != 0 {
        return Err(StreamError::WsBadFrame); // RSV bits: no extension is ever negotiated
    }
    let opcode = b0 & 0x0f;
    if !matches!(opcode, OP_CONT | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG) {
        return Err(StreamError::WsBadFrame);
    }
    let (len_bytes, short) = match b1 & 0x7f {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    let masked = b1 & 0x80 != 0;
    let header_len = 2 + len_bytes + if masked { 4 } else { 0 };
    if buf.len() < header_len {
        return Ok(None);
    }
    let payload_len = short.unwrap_or_else(|| buf[2..2 + len_bytes].iter().fold(0u64, |n, &b| n << 8 | u64::from(b)));
    if payload_len >> 63 != 0 {
        return Err(StreamError::WsBadFrame);
    }
    let fin = b0 & 0x80 != 0;
    if opcode >= OP_CLOSE && (!fin || payload_len > 125) {
        return Err(StreamError::WsBadFrame); // control frames: whole and short (§5.5)
    }
    let mask = masked.then(|| {
        let m = &buf[2 + len_bytes..header_len];
        [m[0], m[1], m[2], m[3]]
    });
    Ok(Some(FrameHead { fin, opcode, mask, header_len, payload_len }))
}

impl WsFlow {
    /// Frames the start of `buf` (direction `dir`'s unjudged bytes, at a message boundary);
    /// a message's unmasked payload goes into `out` (cleared first).
    pub fn next(&mut self, dir: usize, buf: &[u8], max_message: usize, limits: &WsLimits, out: &mut Vec<u8>) -> WsFramed {
        if buf.is_empty() {
            return WsFramed::Need;
        }
        match self.phase {
            Phase::Http => match http_head(buf, limits.max_handshake_bytes) {
                Err(e) => WsFramed::Error(e),
                Ok(None) => WsFramed::Need,
                Ok(Some(n)) => match check_request(&buf[..n]) {
                    Err(e) => WsFramed::Error(e),
                    Ok(()) => {
                        (self.phase, self.client) = (Phase::Requested, dir);
                        WsFramed::Pass(n, WsPass::Handshake)
                    }
                },
            },
            Phase::Requested if dir == self.client => WsFramed::Error(StreamError::WsEarlyData),
            Phase::Requested => match http_head(buf, limits.max_handshake_bytes) {
                Err(e) => WsFramed::Error(e),
                Ok(None) => WsFramed::Need,
                Ok(Some(n)) => match check_response(&buf[..n]) {
                    Err(e) => WsFramed::Error(e),
                    Ok(()) => {
                        self.phase = Phase::Open;
                        WsFramed::Pass(n, WsPass::Handshake)
                    }
                },
            },
            Phase::Open if self.closed[dir] => WsFramed::Error(StreamError::WsAfterClose),
            Phase::Open => self.frames(dir, buf, max_message, out),
        }
    }

    /// Upgraded: a control frame, or a data message with everything interleaved in it.
    fn frames(&mut self, dir: usize, buf: &[u8], max_message: usize, out: &mut Vec<u8>) -> WsFramed {
        let mut at = 0usize;
        let mut payload = 0usize;
        loop {
            let h = match frame_head(&buf[at..]) {
                Err(e) => return WsFramed::Error(e),
                Ok(None) => return WsFramed::Need,
                Ok(Some(h)) => h,
            };
            if h.mask.is_some() != (dir == self.client) {
                return WsFramed::Error(if dir == self.client { StreamError::WsUnmasked } else { StreamError::WsMasked });
            }
            let control = h.opcode >= OP_CLOSE;
            let first = at == 0;
            if !control && first == (h.opcode == OP_CONT) {
                return WsFramed::Error(StreamError::WsBadFrame); // a lone continuation, or a new message inside one
            }
            if control && h.opcode == OP_CLOSE && !first {
                return WsFramed::Error(StreamError::WsBadFrame); // a close would cut the message short
            }
            if !control && payload as u64 + h.payload_len > max_message as u64 {
                return WsFramed::Error(StreamError::MessageTooLarge);
            }
            let end = at + h.header_len + h.payload_len as usize;
            if buf.len() < end {
                return WsFramed::Need;
            }
            if control && first {
                self.closed[dir] |= h.opcode == OP_CLOSE;
                return WsFramed::Pass(end, WsPass::Control);
            }
            if !control {
                payload += h.payload_len as usize;
                if h.fin {
                    unmask_message(self.client == dir, &buf[..end], out);
                    return WsFramed::Message(end);
                }
            }
            at = end;
        }
    }
}

/// Copies the unmasked payloads of the data frames of a whole message into `out`.
fn unmask_message(masked: bool, raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut at = 0;
    while at < raw.len() {
        let Ok(Some(h)) = frame_head(&raw[at..]) else { return };
        let p = &raw[at + h.header_len..at + h.header_len + h.payload_len as usize];
        if h.opcode < OP_CLOSE {
            let from = out.len();
            out.extend_from_slice(p);
            if let (true, Some(m)) = (masked, h.mask) {
                for (i, b) in out[from..].iter_mut().enumerate() {
                    *b ^= m[i & 3];
                }
            }
        }
        at += h.header_len + p.len();
    }
}

/// Length of the HTTP head (through the blank line) at the start of `buf`.
fn http_head(buf: &[u8], max: usize) -> Result<Option<usize>, StreamError> {
    // Not even the start of a request or status line: refused at once, whatever follows (so
    // that where the stream was cut never changes the verdict).
    let (get, status) = (&buf[..buf.len().min(4)], &buf[..buf.len().min(9)]);
    if !(b"GET ".starts_with(get) || b"HTTP/1.1 ".starts_with(status)) {
        return Err(StreamError::WsNoUpgrade);
    }
    let window = &buf[..buf.len().min(max)];
    match memchr::memmem::find(window, b"\r\n\r\n") {
        Some(i) => Ok(Some(i + 4)),
        None if buf.len() >= max => Err(StreamError::WsHandshakeTooLarge),
        None => Ok(None),
    }
}

/// The header lines of an HTTP head, after its start line, as (name, value).
fn headers(head: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    head.split(|&b| b == b'\n').skip(1).filter_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        Some((trim(&line[..colon]), trim(&line[colon + 1..])))
    })
}

/// Whether the comma-separated list `value` holds `token` (case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|t| trim(t).eq_ignore_ascii_case(token))
}

/// Every value of header `name`, joined as one list check: true if any holds `token`.
fn any_has(head: &[u8], name: &[u8], token: &[u8]) -> bool {
    headers(head).any(|(n, v)| n.eq_ignore_ascii_case(name) && has_token(v, token))
}

fn present(head: &[u8], name: &[u8]) -> bool {
    headers(head).any(|(n, v)| n.eq_ignore_ascii_case(name) && !v.is_empty())
}

/// The client's opening handshake (RFC 6455 §4.1, RFC 7118 §4).
fn check_request(head: &[u8]) -> Result<(), StreamError> {
    let line = head.split(|&b| b == b'\r').next().unwrap_or(b"");
    if !(line.starts_with(b"GET ") && line.ends_with(b" HTTP/1.1")) {
        return Err(StreamError::WsNoUpgrade);
    }
    if !any_has(head, b"upgrade", b"websocket") || !any_has(head, b"connection", b"upgrade") || !present(head, b"sec-websocket-key") {
        return Err(StreamError::WsBadHandshake);
    }
    if !any_has(head, b"sec-websocket-version", b"13") || has_body(head) {
        return Err(StreamError::WsBadHandshake);
    }
    if !any_has(head, b"sec-websocket-protocol", b"sip") {
        return Err(StreamError::WsSubprotocol);
    }
    Ok(())
}

/// The server's answer: 101 choosing `sip` and no extension.
fn check_response(head: &[u8]) -> Result<(), StreamError> {
    let line = head.split(|&b| b == b'\r').next().unwrap_or(b"");
    if !line.starts_with(b"HTTP/1.1 ") {
        return Err(StreamError::WsNoUpgrade);
    }
    if !line[9..].starts_with(b"101") {
        return Err(StreamError::WsUpgradeRefused);
    }
    if !any_has(head, b"upgrade", b"websocket") || !any_has(head, b"connection", b"upgrade") || !present(head, b"sec-websocket-accept") {
        return Err(StreamError::WsBadHandshake);
    }
    let mut protocols = headers(head).filter(|(n, _)| n.eq_ignore_ascii_case(b"sec-websocket-protocol")).map(|(_, v)| v);
    let (first, second) = (protocols.next(), protocols.next());
    if second.is_some() || !first.is_some_and(|p| p.eq_ignore_ascii_case(b"sip")) {
        return Err(StreamError::WsSubprotocol);
    }
    if present(head, b"sec-websocket-extensions") || has_body(head) {
        return Err(StreamError::WsBadHandshake);
    }
    Ok(())
}

/// A body (or chunked encoding) on a handshake would be bytes nobody frames.
fn has_body(head: &[u8]) -> bool {
    headers(head).any(|(n, v)| {
        (n.eq_ignore_ascii_case(b"content-length") && v != b"0") || n.eq_ignore_ascii_case(b"transfer-encoding")
    })
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !matches!(c, b' ' | b'\t')).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !matches!(c, b' ' | b'\t')).map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// Builders of handshakes and frames, for tests and the fuzz seeds.
pub mod build {
    /// A client upgrade request offering `protocol`.
    pub fn request(protocol: &str) -> Vec<u8> {
        format!(
            "GET / HTTP/1.1\r\nHost: ws.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: {protocol}\r\n\r\n"
        )
        .into_bytes()
    }

    /// The server's 101 choosing `protocol`.
    pub fn response(protocol: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
        )
        .into_bytes()
    }

    /// One frame; masked with `mask` when given.
    pub fn frame(fin: bool, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![(u8::from(fin) << 7) | opcode];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => f.push(m | n as u8),
            n if n <= 0xffff => {
                f.push(m | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(m | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(k) => {
                f.extend_from_slice(&k);
                f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i & 3]));
            }
            None => f.extend_from_slice(payload),
        }
        f
    }

    /// `msg` as a text message cut into frames at `cuts` (payload offsets).
    pub fn message(msg: &[u8], cuts: &[usize], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut points = vec![0];
        points.extend_from_slice(cuts);
        points.push(msg.len());
        let n = points.len() - 1;
        let mut out = Vec::new();
        for (i, w) in points.windows(2).enumerate() {
            let op = if i == 0 { 1 } else { 0 };
            out.extend(frame(i + 1 == n, op, mask, &msg[w[0]..w[1]]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    const MAX: usize = 65535;
    const KEY: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);
    const SIP: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/WS x.invalid\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n";

    /// A flow past its handshake, client in direction 0.
    fn open() -> WsFlow {
        let mut f = WsFlow::default();
        let l = WsLimits::default();
        let (req, resp) = (request("sip"), response("sip"));
        assert_eq!(f.next(0, &req, MAX, &l, &mut vec![]), WsFramed::Pass(req.len(), WsPass::Handshake));
        assert_eq!(f.next(1, &resp, MAX, &l, &mut vec![]), WsFramed::Pass(resp.len(), WsPass::Handshake));
        f
    }

    fn next(f: &mut WsFlow, dir: usize, buf: &[u8]) -> (WsFramed, Vec<u8>) {
        let mut out = vec![];
        let r = f.next(dir, buf, MAX, &WsLimits::default(), &mut out);
        (r, out)
    }

    #[test]
    fn a_masked_client_message_is_unmasked_and_an_unmasked_server_one_read_as_is() {
        let mut f = open();
        let m = message(SIP, &[], KEY);
        assert_ne!(&m[6..], SIP, "the wire bytes are masked");
        assert_eq!(next(&mut f, 0, &m), (WsFramed::Message(m.len()), SIP.to_vec()));
        let m = message(SIP, &[], None);
        assert_eq!(next(&mut f, 1, &m), (WsFramed::Message(m.len()), SIP.to_vec()));
    }

    #[test]
    fn masking_in_the_wrong_direction_is_refused() {
        let mut f = open();
        assert_eq!(next(&mut f, 0, &message(SIP, &[], None)).0, WsFramed::Error(StreamError::WsUnmasked));
        assert_eq!(next(&mut f, 1, &message(SIP, &[], KEY)).0, WsFramed::Error(StreamError::WsMasked));
    }

    #[test]
    fn fragments_are_one_message_and_every_prefix_needs_more() {
        let mut f = open();
        let mut m = message(SIP, &[5, 30, 31, 60], KEY);
        let ping = frame(true, OP_PING, KEY, b"hi");
        // A ping between fragments goes with the message.
        let second = m.len() - frame(true, 0, KEY, &SIP[60..]).len();
        m.splice(second..second, ping.iter().copied());
        for n in 0..m.len() {
            assert_eq!(next(&mut f, 0, &m[..n]).0, WsFramed::Need, "prefix {n}");
        }
        let mut two = m.clone();
        two.extend_from_slice(&message(SIP, &[], KEY));
        assert_eq!(next(&mut f, 0, &two), (WsFramed::Message(m.len()), SIP.to_vec()));
        assert_eq!(next(&mut f, 0, &two[m.len()..]), (WsFramed::Message(two.len() - m.len()), SIP.to_vec()));
    }

    #[test]
    fn control_frames_pass_and_a_close_ends_the_side() {
        let mut f = open();
        let ping = frame(true, OP_PING, KEY, b"x");
        assert_eq!(next(&mut f, 0, &ping).0, WsFramed::Pass(ping.len(), WsPass::Control));
        let pong = frame(true, OP_PONG, None, b"x");
        assert_eq!(next(&mut f, 1, &pong).0, WsFramed::Pass(pong.len(), WsPass::Control));
        let close = frame(true, OP_CLOSE, KEY, &[3, 232]);
        assert_eq!(next(&mut f, 0, &close).0, WsFramed::Pass(close.len(), WsPass::Control));
        assert_eq!(next(&mut f, 0, &message(SIP, &[], KEY)).0, WsFramed::Error(StreamError::WsAfterClose));
        assert_eq!(next(&mut f, 1, &message(SIP, &[], None)).0, WsFramed::Message(SIP.len() + 2), "the other side may finish");
    }

    #[test]
    fn bad_frames_are_refused() {
        let mut f = open();
        let cases: [(Vec<u8>, StreamError); 6] = [
            (frame(true, 0, KEY, SIP), StreamError::WsBadFrame),      // lone continuation
            (frame(true, 3, KEY, SIP), StreamError::WsBadFrame),      // reserved opcode
            (frame(false, OP_PING, KEY, b""), StreamError::WsBadFrame), // fragmented control
            (frame(true, OP_PING, KEY, &[0; 126]), StreamError::WsBadFrame),
            ([frame(false, 1, KEY, b"a"), frame(true, 1, KEY, b"b")].concat(), StreamError::WsBadFrame),
            ([frame(false, 1, KEY, b"a"), frame(true, OP_CLOSE, KEY, b"")].concat(), StreamError::WsBadFrame),
        ];
        for (bytes, e) in cases {
            assert_eq!(next(&mut f, 0, &bytes).0, WsFramed::Error(e), "{bytes:?}");
        }
        let mut rsv = frame(true, 1, KEY, SIP);
        rsv[0] |= 0x40; // RSV1: permessage-deflate was never negotiated
        assert_eq!(next(&mut f, 0, &rsv).0, WsFramed::Error(StreamError::WsBadFrame));
    }

    #[test]
    fn a_message_over_the_bound_is_refused_from_its_header() {
        let mut f = open();
        let mut out = vec![];
        let big = frame(true, 1, KEY, &[b'a'; 200]);
        assert_eq!(f.next(0, &big[..8], 100, &WsLimits::default(), &mut out), WsFramed::Error(StreamError::MessageTooLarge));
        let two = message(&[b'a'; 120], &[60], KEY);
        assert_eq!(f.next(0, &two, 100, &WsLimits::default(), &mut out), WsFramed::Error(StreamError::MessageTooLarge));
        let mut huge = vec![0x81, 0xff];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        huge.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(next(&mut f, 0, &huge).0, WsFramed::Error(StreamError::WsBadFrame));
    }

    #[test]
    fn the_handshake_is_required_whole_and_for_sip() {
        let l = WsLimits::default();
        let try_first = |b: &[u8]| WsFlow::default().next(0, b, MAX, &l, &mut vec![]);
        assert_eq!(try_first(&message(SIP, &[], KEY)), WsFramed::Error(StreamError::WsNoUpgrade));
        assert_eq!(try_first(SIP), WsFramed::Error(StreamError::WsNoUpgrade), "plain SIP on a WS port");
        assert_eq!(try_first(&response("sip")), WsFramed::Error(StreamError::WsNoUpgrade), "a 101 without a request");
        assert_eq!(try_first(&request("chat")), WsFramed::Error(StreamError::WsSubprotocol));
        assert_eq!(try_first(&request("chat, sip")), WsFramed::Pass(request("chat, sip").len(), WsPass::Handshake));
        assert_eq!(try_first(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), WsFramed::Error(StreamError::WsBadHandshake));
        let req = request("sip");
        for n in 0..req.len() {
            assert_eq!(try_first(&req[..n]), WsFramed::Need, "prefix {n}");
        }
        let mut padded = req[..req.len() - 2].to_vec();
        padded.extend(std::iter::repeat_n(b'x', 9000));
        assert_eq!(try_first(&padded), WsFramed::Error(StreamError::WsHandshakeTooLarge));
        let mut f = WsFlow::default();
        assert!(matches!(f.next(0, &req, MAX, &l, &mut vec![]), WsFramed::Pass(..)));
        assert_eq!(f.next(0, &message(SIP, &[], KEY), MAX, &l, &mut vec![]), WsFramed::Error(StreamError::WsEarlyData));
        for (resp, e) in [
            (response("chat"), StreamError::WsSubprotocol),
            (String::from_utf8(response("sip")).unwrap().replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat\r\n\r\n").into_bytes(), StreamError::WsSubprotocol),
            (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_vec(), StreamError::WsUpgradeRefused),
            (String::from_utf8(response("sip")).unwrap().replace("\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n").into_bytes(), StreamError::WsBadHandshake),
        ] {
            let mut g = f;
            assert_eq!(g.next(1, &resp, MAX, &l, &mut vec![]), WsFramed::Error(e));
        }
    }
}
