//! Realistic SIP messages, Ethernet frames and pcap files for tests, benchmarks and tools.
//!
//! Everything here is deterministic: the same [`CallParams`] always produce the same bytes,
//! so fixtures can be compared byte for byte and committed pcaps can be regenerated.
//!
//! Messages follow RFC 3261 over UDP: CRLF line ends, a correct `Content-Length`, a fresh
//! `z9hG4bK` branch per client transaction (CANCEL reuses its INVITE's branch, as 9.1
//! requires), `Max-Forwards: 70`, a From tag on every request and a To tag on every response
//! except `100 Trying`. Responses are built from the request bytes, copying Via, From, To,
//! Call-ID, CSeq and Record-Route like a real UAS would.
//!
//! This module depends only on std, `etherparse` and `pcap-file`, never on the rest of the
//! crate, so it can serve as an independent oracle for the parser, decoder and engine.
//!
//! The default addresses (10.77.0.1 and 10.77.0.2, fd77::1 and fd77::2) are the ones the
//! namespace capture script `tests/sipp/capture-call.sh` uses; they never leave a test.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use etherparse::{
    EtherType, Ethernet2Header, IpFragOffset, IpNumber, Ipv4Header, Ipv6FlowLabel,
    Ipv6FragmentHeader, Ipv6Header, PacketBuilder, UdpHeader, VlanId,
};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

/// MAC address used for the client (caller) side of generated frames.
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// MAC address used for the server (callee / registrar) side of generated frames.
pub const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// Who sent a message in a call flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the UAC (client, caller) to the UAS (server, callee, registrar).
    ClientToServer,
    /// From the UAS back to the UAC.
    ServerToClient,
}

/// Addresses, identities and dialog identifiers of one generated call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallParams {
    /// Call-ID shared by every message of the call.
    pub call_id: String,
    /// User part of the caller's AOR (From), also the Digest username.
    pub from_user: String,
    /// User part of the callee's AOR (To).
    pub to_user: String,
    /// SIP domain of both AORs, the REGISTER Request-URI and the Digest realm.
    pub domain: String,
    /// Caller's IP address (Via, Contact, SDP, frame source).
    pub client_ip: IpAddr,
    /// Caller's UDP port.
    pub client_port: u16,
    /// Callee's / registrar's IP address.
    pub server_ip: IpAddr,
    /// Callee's / registrar's UDP port.
    pub server_port: u16,
    /// First CSeq number the caller uses.
    pub cseq: u32,
    /// Caller's From tag.
    pub from_tag: String,
    /// Callee's To tag, used on the INVITE dialog's responses.
    pub to_tag: String,
    /// Registrar's To tag, used on responses to REGISTER.
    pub reg_tag: String,
    /// Digest password of `from_user`.
    pub password: String,
    /// Nonce the registrar challenges with.
    pub nonce: String,
    /// Caller's RTP port offered in SDP.
    pub client_rtp_port: u16,
    /// Callee's RTP port answered in SDP.
    pub server_rtp_port: u16,
    /// `User-Agent` header of requests.
    pub user_agent: String,
}

impl Default for CallParams {
    fn default() -> Self {
        CallParams {
            call_id: "3c26700b5f1e4a7c9d2f@10.77.0.1".into(),
            from_user: "alice".into(),
            to_user: "bob".into(),
            domain: "secsip.test".into(),
            client_ip: IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1)),
            client_port: 5060,
            server_ip: IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2)),
            server_port: 5060,
            cseq: 1,
            from_tag: "1928301774".into(),
            to_tag: "a6c85cf".into(),
            reg_tag: "37GkEhwl6".into(),
            password: "secret-alice".into(),
            nonce: "5f8a1c2e9b7d4e6f0a3b5c7d9e1f2a4b".into(),
            client_rtp_port: 49170,
            server_rtp_port: 30000,
            user_agent: "secsip-fixtures/0.1".into(),
        }
    }
}

impl CallParams {
    /// Default parameters moved to IPv6: client fd77::1, server fd77::2 (ULA, test only).
    pub fn ipv6() -> Self {
        let client = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1);
        CallParams {
            call_id: format!("3c26700b5f1e4a7c9d2f@{client}"),
            client_ip: IpAddr::V6(client),
            server_ip: IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2)),
            ..Self::default()
        }
    }

    /// The `n`th of a family of distinct calls: own Call-ID, tags, users, ports and nonce.
    pub fn numbered(n: u32) -> Self {
        Self::default().renumbered(n)
    }

    /// These parameters with identifiers made distinct for call `n`, keeping the IP family.
    pub fn renumbered(mut self, n: u32) -> Self {
        let h = fnv1a(&[b"call", &n.to_be_bytes()]);
        self.call_id = format!("{:016x}{:04x}@{}", h, n & 0xffff, self.client_ip);
        self.from_user = format!("alice{n}");
        self.to_user = format!("bob{n}");
        self.password = format!("secret-alice{n}");
        self.from_tag = format!("{:08x}", h as u32);
        self.to_tag = format!("{:08x}", (h >> 32) as u32);
        self.reg_tag = format!("r{:07x}", (h >> 8) as u32 & 0x0fff_ffff);
        self.nonce = format!("{:016x}{:016x}", h, fnv1a(&[b"nonce", &n.to_be_bytes()]));
        // Distinct source ports make distinct 5-tuples, the way many phones behind one
        // NAT look to a firewall.
        self.client_port = 5060u16.wrapping_add((n % 1000) as u16 * 2);
        self.client_rtp_port = 10000u16.wrapping_add((n % 20000) as u16 * 2);
        self.server_rtp_port = 30000u16.wrapping_add((n % 15000) as u16 * 2);
        self
    }

    /// Sets the Call-ID.
    pub fn with_call_id(mut self, call_id: impl Into<String>) -> Self {
        self.call_id = call_id.into();
        self
    }

    /// Sets caller and callee user parts.
    pub fn with_users(mut self, from_user: impl Into<String>, to_user: impl Into<String>) -> Self {
        self.from_user = from_user.into();
        self.to_user = to_user.into();
        self
    }

    /// Sets the SIP domain (and Digest realm).
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = domain.into();
        self
    }

    /// Sets the client's address and port.
    pub fn with_client(mut self, addr: SocketAddr) -> Self {
        self.client_ip = addr.ip();
        self.client_port = addr.port();
        self
    }

    /// Sets the server's address and port.
    pub fn with_server(mut self, addr: SocketAddr) -> Self {
        self.server_ip = addr.ip();
        self.server_port = addr.port();
        self
    }

    /// Sets the first CSeq number.
    pub fn with_cseq(mut self, cseq: u32) -> Self {
        self.cseq = cseq;
        self
    }

    /// Sets the From tag (caller) and the To tag (callee).
    pub fn with_tags(mut self, from_tag: impl Into<String>, to_tag: impl Into<String>) -> Self {
        self.from_tag = from_tag.into();
        self.to_tag = to_tag.into();
        self
    }

    /// Client socket address.
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::new(self.client_ip, self.client_port)
    }

    /// Server socket address.
    pub fn server_addr(&self) -> SocketAddr {
        SocketAddr::new(self.server_ip, self.server_port)
    }

    /// Source and destination socket addresses of a message sent in direction `dir`.
    pub fn endpoints(&self, dir: Direction) -> (SocketAddr, SocketAddr) {
        match dir {
            Direction::ClientToServer => (self.client_addr(), self.server_addr()),
            Direction::ServerToClient => (self.server_addr(), self.client_addr()),
        }
    }

    fn client_hostport(&self) -> String {
        self.client_addr().to_string()
    }

    fn server_hostport(&self) -> String {
        self.server_addr().to_string()
    }

    fn caller_header_value(&self) -> String {
        format!(
            "\"{}\" <sip:{}@{}>;tag={}",
            self.from_user, self.from_user, self.domain, self.from_tag
        )
    }

    fn callee_header_value(&self, to_tag: Option<&str>) -> String {
        match to_tag {
            Some(t) => format!("<sip:{}@{}>;tag={}", self.to_user, self.domain, t),
            None => format!("<sip:{}@{}>", self.to_user, self.domain),
        }
    }

    /// Remote target of the INVITE dialog: the Contact the callee puts in its 18x/2xx.
    fn callee_contact_uri(&self) -> String {
        format!("sip:{}@{}", self.to_user, self.server_hostport())
    }
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// The methods this module advertises in `Allow`.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, NOTIFY, UPDATE";

/// Top-Via branch of a client transaction of `method` with CSeq number `cseq`.
///
/// Derived from the call so the same parameters give the same bytes. CANCEL shares the
/// branch of the INVITE it cancels; every other (method, cseq) pair gets its own.
pub fn branch(p: &CallParams, method: &str, cseq: u32) -> String {
    let key = if method.eq_ignore_ascii_case("CANCEL") {
        "INVITE"
    } else {
        method
    };
    let h = fnv1a(&[
        p.call_id.as_bytes(),
        p.from_tag.as_bytes(),
        key.as_bytes(),
        &cseq.to_be_bytes(),
    ]);
    format!("z9hG4bK{h:016x}")
}

/// A complete request from the client, the general form behind the named builders.
///
/// `to_tag` is `Some` for in-dialog requests; `extra` headers go after the common ones
/// (before Content-Type); `body` is `(content type, bytes)`.
pub fn request(
    p: &CallParams,
    method: &str,
    request_uri: &str,
    cseq: u32,
    to_tag: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let mut h = String::with_capacity(512);
    let _ = write!(h, "{method} {request_uri} SIP/2.0\r\n");
    let _ = write!(
        h,
        "Via: SIP/2.0/UDP {};branch={};rport\r\n",
        p.client_hostport(),
        branch(p, method, cseq)
    );
    h.push_str("Max-Forwards: 70\r\n");
    let _ = write!(h, "From: {}\r\n", p.caller_header_value());
    let _ = write!(h, "To: {}\r\n", p.callee_header_value(to_tag));
    let _ = write!(h, "Call-ID: {}\r\n", p.call_id);
    let _ = write!(h, "CSeq: {cseq} {method}\r\n");
    for (name, value) in extra {
        let _ = write!(h, "{name}: {value}\r\n");
    }
    let _ = write!(h, "User-Agent: {}\r\n", p.user_agent);
    finish(h, body)
}

/// REGISTER without credentials (the first attempt, which a registrar challenges).
pub fn register(p: &CallParams, cseq: u32) -> Vec<u8> {
    register_inner(p, cseq, None)
}

/// REGISTER answering a 401: `Authorization: Digest` with a real MD5 `qop=auth` response.
///
/// `nonce` is the one from the challenge (see [`unauthorized`]); the cnonce is derived from
/// the call so the bytes stay reproducible.
pub fn register_with_digest(p: &CallParams, cseq: u32, nonce: &str) -> Vec<u8> {
    let uri = format!("sip:{}", p.domain);
    let cnonce = format!(
        "{:016x}",
        fnv1a(&[b"cnonce", p.call_id.as_bytes(), &cseq.to_be_bytes()])
    );
    let nc = "00000001";
    let response = digest_response(
        &p.from_user,
        &p.domain,
        &p.password,
        "REGISTER",
        &uri,
        nonce,
        nc,
        &cnonce,
    );
    let auth = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", \
         algorithm=MD5, cnonce=\"{}\", qop=auth, nc={}",
        p.from_user, p.domain, nonce, uri, response, cnonce, nc
    );
    register_inner(p, cseq, Some(&auth))
}

fn register_inner(p: &CallParams, cseq: u32, authorization: Option<&str>) -> Vec<u8> {
    // A registering UA's To is its own AOR, unlike a call's To (the callee).
    let mut me = p.clone();
    me.to_user = p.from_user.clone();
    let contact = format!("<sip:{}@{}>", p.from_user, p.client_hostport());
    let mut extra = vec![
        ("Contact", contact.as_str()),
        ("Expires", "3600"),
        ("Allow", ALLOW),
    ];
    if let Some(a) = authorization {
        extra.push(("Authorization", a));
    }
    request(
        &me,
        "REGISTER",
        &format!("sip:{}", p.domain),
        cseq,
        None,
        &extra,
        None,
    )
}

/// INVITE with a realistic SDP offer (PCMU, PCMA, telephone-event), CSeq `p.cseq`.
pub fn invite_with_sdp(p: &CallParams) -> Vec<u8> {
    invite_with_sdp_cseq(p, p.cseq)
}

/// INVITE with SDP offer and an explicit CSeq number.
pub fn invite_with_sdp_cseq(p: &CallParams, cseq: u32) -> Vec<u8> {
    let contact = format!("<sip:{}@{}>", p.from_user, p.client_hostport());
    let sdp = sdp_offer(p);
    request(
        p,
        "INVITE",
        &format!("sip:{}@{}", p.to_user, p.domain),
        cseq,
        None,
        &[
            ("Contact", &contact),
            ("Allow", ALLOW),
            ("Allow-Events", "talk, hold, refer"),
            ("Supported", "replaces, timer"),
            ("Session-Expires", "1800"),
            ("Min-SE", "90"),
            ("Accept", "application/sdp"),
        ],
        Some(("application/sdp", sdp.as_bytes())),
    )
}

/// ACK for a 2xx to the INVITE with CSeq `cseq`: in-dialog, sent to the callee's Contact.
///
/// A 2xx ACK is its own transaction, so it has a new branch (RFC 3261 13.2.2.4).
pub fn ack(p: &CallParams, cseq: u32, to_tag: &str) -> Vec<u8> {
    request(
        p,
        "ACK",
        &p.callee_contact_uri(),
        cseq,
        Some(to_tag),
        &[],
        None,
    )
}

/// BYE from the caller inside the INVITE dialog.
pub fn bye(p: &CallParams, cseq: u32, to_tag: &str) -> Vec<u8> {
    request(
        p,
        "BYE",
        &p.callee_contact_uri(),
        cseq,
        Some(to_tag),
        &[],
        None,
    )
}

/// BYE from the callee (it hangs up): From carries the callee's tag, To the caller's, and it
/// goes to the caller's Contact with the callee's own Via and CSeq space.
pub fn callee_bye(p: &CallParams) -> Vec<u8> {
    let mut h = String::with_capacity(512);
    let _ = write!(h, "BYE sip:{}@{} SIP/2.0\r\n", p.from_user, p.client_hostport());
    let _ = write!(h, "Via: SIP/2.0/UDP {};branch=z9hG4bK-callee-bye-{}\r\n", p.server_hostport(), p.to_tag);
    h.push_str("Max-Forwards: 70\r\n");
    let _ = write!(h, "From: {}\r\n", p.callee_header_value(Some(&p.to_tag)));
    let _ = write!(h, "To: \"{}\" <sip:{}@{}>;tag={}\r\n", p.from_user, p.from_user, p.domain, p.from_tag);
    let _ = write!(h, "Call-ID: {}\r\n", p.call_id);
    h.push_str("CSeq: 1 BYE\r\n");
    let _ = write!(h, "User-Agent: {}\r\n", p.user_agent);
    finish(h, None)
}

/// Grows a message's body by `extra` bytes (SDP `a=` lines) and fixes its Content-Length, to
/// make messages that need IP fragmentation.
pub fn pad_body(msg: &mut Vec<u8>, extra: usize) {
    let head_end = msg.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).unwrap_or(msg.len());
    let mut body = msg[head_end..].to_vec();
    let mut n = 0;
    while n < extra {
        let line = format!("a=x-pad:{:0>60}\r\n", n);
        n += line.len();
        body.extend_from_slice(line.as_bytes());
    }
    let head = String::from_utf8_lossy(&msg[..head_end]).into_owned();
    let mut out = String::with_capacity(head.len() + 32);
    let mut had_type = false;
    for line in head.split("\r\n") {
        if line.is_empty() {
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("content-length:") || lower.starts_with("l:") {
            continue;
        }
        had_type |= lower.starts_with("content-type:");
        out.push_str(line);
        out.push_str("\r\n");
    }
    if !had_type {
        out.push_str("Content-Type: application/sdp\r\n");
    }
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
    let mut v = out.into_bytes();
    v.extend_from_slice(&body);
    *msg = v;
}

/// Out-of-dialog OPTIONS (a keep-alive / capability probe) to the server.
pub fn options(p: &CallParams, cseq: u32) -> Vec<u8> {
    request(
        p,
        "OPTIONS",
        &format!("sip:{}@{}", p.to_user, p.domain),
        cseq,
        None,
        &[("Accept", "application/sdp")],
        None,
    )
}

/// CANCEL of the INVITE with CSeq `cseq`: same Request-URI, branch, From, To and CSeq number.
pub fn cancel(p: &CallParams, cseq: u32) -> Vec<u8> {
    request(
        p,
        "CANCEL",
        &format!("sip:{}@{}", p.to_user, p.domain),
        cseq,
        None,
        &[],
        None,
    )
}

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

/// A response to `req` that copies Via, From, To, Call-ID, CSeq and Record-Route from it.
///
/// `to_tag` is added to To unless the request already carries one (in-dialog requests).
pub fn response(req: &[u8], code: u16, reason: &str, to_tag: Option<&str>) -> Vec<u8> {
    response_with(req, code, reason, to_tag, &[], None)
}

/// [`response`] with extra headers and an optional `(content type, body)`.
pub fn response_with(
    req: &[u8],
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let mut h = String::with_capacity(512);
    let _ = write!(h, "SIP/2.0 {code} {reason}\r\n");
    for (name, value) in copied_headers(req) {
        let lname = name.to_ascii_lowercase();
        if (lname == "to" || lname == "t") && !has_tag(value) {
            match to_tag {
                Some(t) => {
                    let _ = write!(h, "{name}: {value};tag={t}\r\n");
                }
                None => {
                    let _ = write!(h, "{name}: {value}\r\n");
                }
            }
        } else {
            let _ = write!(h, "{name}: {value}\r\n");
        }
    }
    for (name, value) in extra {
        let _ = write!(h, "{name}: {value}\r\n");
    }
    h.push_str("Server: secsip-fixtures-uas/0.1\r\n");
    finish(h, body)
}

/// `100 Trying`: no To tag, as a UAS sends it before it has chosen one.
pub fn trying(req: &[u8]) -> Vec<u8> {
    response(req, 100, "Trying", None)
}

/// `180 Ringing` with the callee's Contact (it creates the early dialog).
pub fn ringing(p: &CallParams, req: &[u8], to_tag: &str) -> Vec<u8> {
    let contact = format!("<{}>", p.callee_contact_uri());
    response_with(
        req,
        180,
        "Ringing",
        Some(to_tag),
        &[("Contact", &contact)],
        None,
    )
}

/// `200 OK` to an INVITE: callee's Contact and an SDP answer (PCMU + telephone-event).
pub fn ok_invite(p: &CallParams, req: &[u8], to_tag: &str) -> Vec<u8> {
    let contact = format!("<{}>", p.callee_contact_uri());
    let sdp = sdp_answer(p);
    response_with(
        req,
        200,
        "OK",
        Some(to_tag),
        &[
            ("Contact", &contact),
            ("Allow", ALLOW),
            ("Supported", "replaces, timer"),
        ],
        Some(("application/sdp", sdp.as_bytes())),
    )
}

/// `200 OK` to a REGISTER: echoes the binding with its expiry.
pub fn ok_register(p: &CallParams, req: &[u8]) -> Vec<u8> {
    let contact = format!("<sip:{}@{}>;expires=3600", p.from_user, p.client_hostport());
    response_with(
        req,
        200,
        "OK",
        Some(&p.reg_tag),
        &[("Contact", &contact)],
        None,
    )
}

/// Plain `200 OK` (BYE, OPTIONS, CANCEL ...), To tag added when the request lacks one.
pub fn ok(req: &[u8], to_tag: &str) -> Vec<u8> {
    response(req, 200, "OK", Some(to_tag))
}

/// `200 OK` to OPTIONS with Allow, Accept and Supported, as a real UAS answers a probe.
pub fn ok_options(req: &[u8], to_tag: &str) -> Vec<u8> {
    response_with(
        req,
        200,
        "OK",
        Some(to_tag),
        &[
            ("Allow", ALLOW),
            ("Accept", "application/sdp"),
            ("Supported", "replaces, timer"),
        ],
        None,
    )
}

/// `401 Unauthorized` challenging with `WWW-Authenticate: Digest` (realm = domain, MD5, auth).
pub fn unauthorized(p: &CallParams, req: &[u8], nonce: &str) -> Vec<u8> {
    let challenge = format!(
        "Digest realm=\"{}\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"",
        p.domain, nonce
    );
    response_with(
        req,
        401,
        "Unauthorized",
        Some(&p.reg_tag),
        &[("WWW-Authenticate", &challenge)],
        None,
    )
}

/// `404 Not Found`.
pub fn not_found(req: &[u8], to_tag: &str) -> Vec<u8> {
    response(req, 404, "Not Found", Some(to_tag))
}

/// `487 Request Terminated`, the final response to a cancelled INVITE.
pub fn request_terminated(req: &[u8], to_tag: &str) -> Vec<u8> {
    response(req, 487, "Request Terminated", Some(to_tag))
}

fn finish(mut h: String, body: Option<(&str, &[u8])>) -> Vec<u8> {
    let body = match body {
        Some((ctype, bytes)) => {
            let _ = write!(h, "Content-Type: {ctype}\r\n");
            bytes
        }
        None => &[],
    };
    let _ = write!(h, "Content-Length: {}\r\n\r\n", body.len());
    let mut out = h.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Headers a UAS copies into its response, in request order, as (name, value) pairs.
///
/// Kept independent of the crate's parser on purpose: fixtures must not inherit its bugs.
fn copied_headers(req: &[u8]) -> Vec<(&str, &str)> {
    let head_end = find(req, b"\r\n\r\n").unwrap_or(req.len());
    let head = std::str::from_utf8(&req[..head_end]).expect("request head must be UTF-8");
    let mut out = Vec::new();
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let copied = [
            "via",
            "v",
            "from",
            "f",
            "to",
            "t",
            "call-id",
            "i",
            "cseq",
            "record-route",
        ]
        .iter()
        .any(|c| name.eq_ignore_ascii_case(c));
        if copied {
            out.push((name, value.trim()));
        }
    }
    out
}

fn has_tag(to_value: &str) -> bool {
    // Parameters of a name-addr follow the closing '>'; a ";tag=" inside the URI is a URI
    // parameter, not the header's tag.
    let params = match to_value.rfind('>') {
        Some(i) => &to_value[i..],
        None => to_value,
    };
    params.to_ascii_lowercase().contains(";tag=")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------
// SDP
// ---------------------------------------------------------------------------------------

/// SDP connection address: "IN IP4 a.b.c.d" or "IN IP6 x::y" (RFC 4566: no brackets).
fn sdp_addr(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => format!("IN IP4 {a}"),
        IpAddr::V6(a) => format!("IN IP6 {a}"),
    }
}

/// SDP offer of the caller: PCMU, PCMA, telephone-event, 20 ms packets.
pub fn sdp_offer(p: &CallParams) -> String {
    let sess = fnv1a(&[b"sdp", p.call_id.as_bytes()]) as u32 & 0x7fff_ffff;
    let a = sdp_addr(p.client_ip);
    format!(
        "v=0\r\n\
         o={user} {sess} {sess} {a}\r\n\
         s=secsip call\r\n\
         c={a}\r\n\
         b=AS:84\r\n\
         t=0 0\r\n\
         m=audio {port} RTP/AVP 0 8 101\r\n\
         a=rtcp:{rtcp}\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:20\r\n\
         a=maxptime:150\r\n\
         a=sendrecv\r\n",
        user = p.from_user,
        port = p.client_rtp_port,
        rtcp = p.client_rtp_port.wrapping_add(1),
    )
}

/// SDP answer of the callee: PCMU and telephone-event chosen from the offer.
pub fn sdp_answer(p: &CallParams) -> String {
    let sess = fnv1a(&[b"sdp-answer", p.call_id.as_bytes()]) as u32 & 0x7fff_ffff;
    let a = sdp_addr(p.server_ip);
    format!(
        "v=0\r\n\
         o={user} {sess} {sess} {a}\r\n\
         s=secsip call\r\n\
         c={a}\r\n\
         t=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n",
        user = p.to_user,
        port = p.server_rtp_port,
    )
}

// ---------------------------------------------------------------------------------------
// Call flows
// ---------------------------------------------------------------------------------------

/// A registration and a complete call, exactly 11 messages in wire order.
///
/// ```text
///  #  dir  message                        CSeq        top Via branch
///  0  C→S  REGISTER                       c   REGISTER  b1
///  1  S→C  401 Unauthorized (Digest)      c   REGISTER  b1
///  2  C→S  REGISTER + Authorization       c+1 REGISTER  b2
///  3  S→C  200 OK                         c+1 REGISTER  b2
///  4  C→S  INVITE + SDP offer             c+2 INVITE    b3
///  5  S→C  100 Trying (no To tag)         c+2 INVITE    b3
///  6  S→C  180 Ringing                    c+2 INVITE    b3
///  7  S→C  200 OK + SDP answer            c+2 INVITE    b3
///  8  C→S  ACK                            c+2 ACK       b4
///  9  C→S  BYE                            c+3 BYE       b5
/// 10  S→C  200 OK                         c+3 BYE       b5
/// ```
///
/// where `c = p.cseq`. Expected counts, with a transaction being a distinct
/// (top Via branch, CSeq method) pair among requests: **5 transactions** (REGISTER b1,
/// REGISTER b2, INVITE b3, ACK b4 — the ACK of a 2xx is its own transaction — and BYE b5)
/// and **1 dialog** (Call-ID `p.call_id`, From tag `p.from_tag`, To tag `p.to_tag`);
/// REGISTER creates no dialog. All 11 messages share `p.call_id`, as SIPp's
/// registration-plus-call scenarios (and `tests/pcaps/sipp-call.pcap`) do; the registrar
/// answers with To tag `p.reg_tag`, distinct from the callee's.
pub fn complete_call(p: &CallParams) -> Vec<(Direction, Vec<u8>)> {
    use Direction::{ClientToServer as C2S, ServerToClient as S2C};
    let c = p.cseq;
    let reg1 = register(p, c);
    let chal = unauthorized(p, &reg1, &p.nonce);
    let reg2 = register_with_digest(p, c + 1, &p.nonce);
    let reg_ok = ok_register(p, &reg2);
    let inv = invite_with_sdp_cseq(p, c + 2);
    let r100 = trying(&inv);
    let r180 = ringing(p, &inv, &p.to_tag);
    let r200 = ok_invite(p, &inv, &p.to_tag);
    let ack = ack(p, c + 2, &p.to_tag);
    let bye = bye(p, c + 3, &p.to_tag);
    let bye_ok = ok(&bye, &p.to_tag);
    vec![
        (C2S, reg1),
        (S2C, chal),
        (C2S, reg2),
        (S2C, reg_ok),
        (C2S, inv),
        (S2C, r100),
        (S2C, r180),
        (S2C, r200),
        (C2S, ack),
        (C2S, bye),
        (S2C, bye_ok),
    ]
}

/// Number of calls in [`message_mix`].
pub const MIX_CALLS: u32 = 4;

/// A realistic benchmark mix: 44 messages from [`MIX_CALLS`] distinct calls (the last one
/// over IPv6).
///
/// Per call, 11 messages: REGISTER with Digest, its 200, INVITE with SDP, 100, 180, 200
/// with SDP, ACK, BYE, its 200, then an out-of-dialog OPTIONS (own Call-ID) and its 200.
/// The 401 round trip is left out because registration refreshes, not first
/// registrations, dominate real traffic.
pub fn message_mix() -> Vec<Vec<u8>> {
    (0..MIX_CALLS)
        .flat_map(|n| mix_call(&mix_base(n).renumbered(n)))
        .map(|(_, m)| m)
        .collect()
}

/// Variant `v` of [`message_mix`] as UDP frames: the same messages for calls numbered
/// `v * MIX_CALLS ..` (own Call-IDs, tags and branches), requests from client to server and
/// responses back; variant 0 carries [`message_mix`] byte for byte.
///
/// The callers keep the users of the original calls, so per-user and per-Request-URI state
/// does not grow with the number of variants a benchmark cycles through.
pub fn mix_variant(v: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(11 * MIX_CALLS as usize);
    for n in 0..MIX_CALLS {
        let p = mix_base(n)
            .renumbered(v * MIX_CALLS + n)
            .with_users(format!("alice{n}"), format!("bob{n}"));
        let (c, s) = (p.client_addr(), p.server_addr());
        out.extend(mix_call(&p).into_iter().map(|(dir, m)| match dir {
            Direction::ClientToServer => udp_frame(c, s, &m),
            Direction::ServerToClient => udp_frame(s, c, &m),
        }));
    }
    out
}

/// Parameters call `n` of the mix starts from: the last call is over IPv6.
fn mix_base(n: u32) -> CallParams {
    if n == MIX_CALLS - 1 {
        CallParams::ipv6()
    } else {
        CallParams::default()
    }
}

/// The 11 messages of one call of the mix, in order, with who sends each.
fn mix_call(p: &CallParams) -> Vec<(Direction, Vec<u8>)> {
    use Direction::{ClientToServer as C2S, ServerToClient as S2C};
    let reg = register_with_digest(p, 1, &p.nonce);
    let reg_ok = ok_register(p, &reg);
    let inv = invite_with_sdp_cseq(p, 2);
    let r100 = trying(&inv);
    let r180 = ringing(p, &inv, &p.to_tag);
    let r200 = ok_invite(p, &inv, &p.to_tag);
    let bye_req = bye(p, 3, &p.to_tag);
    let bye_ok = ok(&bye_req, &p.to_tag);
    let probe = p.clone().with_call_id(format!("opt-{}", p.call_id));
    let opt = options(&probe, 1);
    let opt_ok = ok_options(&opt, &format!("o{}", p.to_tag));
    vec![
        (C2S, reg),
        (S2C, reg_ok),
        (C2S, inv),
        (S2C, r100),
        (S2C, r180),
        (S2C, r200),
        (C2S, ack(p, 2, &p.to_tag)),
        (C2S, bye_req),
        (S2C, bye_ok),
        (C2S, opt),
        (S2C, opt_ok),
    ]
}

/// Ethernet frames of a message flow, timestamped from `start_ns` every `step_ns`.
///
/// Client frames go from [`CLIENT_MAC`] to [`SERVER_MAC`] and server frames back, so
/// the result can go straight to [`write_pcap`].
pub fn flow_frames(
    p: &CallParams,
    flow: &[(Direction, Vec<u8>)],
    start_ns: u64,
    step_ns: u64,
) -> Vec<(u64, Vec<u8>)> {
    flow.iter()
        .enumerate()
        .map(|(i, (dir, msg))| {
            let (src, dst) = p.endpoints(*dir);
            let macs = match dir {
                Direction::ClientToServer => (CLIENT_MAC, SERVER_MAC),
                Direction::ServerToClient => (SERVER_MAC, CLIENT_MAC),
            };
            (
                start_ns + i as u64 * step_ns,
                udp_frame_with(macs, None, src, dst, msg),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------

/// Ethernet II + IPv4/IPv6 + UDP frame from [`CLIENT_MAC`] to [`SERVER_MAC`], checksums set.
///
/// Panics if `src` and `dst` are of different IP families or the payload exceeds 65507 bytes.
pub fn udp_frame(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    udp_frame_with((CLIENT_MAC, SERVER_MAC), None, src, dst, payload)
}

/// [`udp_frame`] with one 802.1Q tag carrying VLAN id `vlan` (0..=4095).
pub fn udp_frame_vlan(src: SocketAddr, dst: SocketAddr, payload: &[u8], vlan: u16) -> Vec<u8> {
    udp_frame_with((CLIENT_MAC, SERVER_MAC), Some(vlan), src, dst, payload)
}

/// UDP frame with explicit `(source, destination)` MACs and optional VLAN id.
pub fn udp_frame_with(
    macs: ([u8; 6], [u8; 6]),
    vlan: Option<u16>,
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(macs.0, macs.1);
    let ip = match (vlan, src.ip(), dst.ip()) {
        (None, IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (None, IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        (Some(v), IpAddr::V4(s), IpAddr::V4(d)) => {
            eth.single_vlan(vlan_id(v)).ipv4(s.octets(), d.octets(), 64)
        }
        (Some(v), IpAddr::V6(s), IpAddr::V6(d)) => {
            eth.single_vlan(vlan_id(v)).ipv6(s.octets(), d.octets(), 64)
        }
        _ => panic!("udp_frame: {src} and {dst} are of different IP families"),
    };
    let builder = ip.udp(src.port(), dst.port());
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut out, payload)
        .expect("UDP payload too large for one datagram");
    out
}

/// TCP flags of [`tcp_frame`]: RFC 9293 bit values (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10).
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// An Ethernet frame carrying one TCP segment (same MACs as [`udp_frame`]); `flags` is a
/// union of [`tcp_flags`], `ack` is sent only with the ACK flag.
pub fn tcp_frame(src: SocketAddr, dst: SocketAddr, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(CLIENT_MAC, SERVER_MAC);
    let ip = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("tcp_frame: {src} and {dst} are of different IP families"),
    };
    let mut b = ip.tcp(src.port(), dst.port(), seq, 65535);
    if flags & tcp_flags::ACK != 0 {
        b = b.ack(ack);
    }
    if flags & tcp_flags::SYN != 0 {
        b = b.syn();
    }
    if flags & tcp_flags::FIN != 0 {
        b = b.fin();
    }
    if flags & tcp_flags::RST != 0 {
        b = b.rst();
    }
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("TCP payload too large for one segment");
    out
}

fn vlan_id(v: u16) -> VlanId {
    VlanId::try_new(v).unwrap_or_else(|_| panic!("VLAN id {v} exceeds 4095"))
}

/// A UDP datagram split into IP fragments, each a complete Ethernet frame.
///
/// `mtu` is the IP MTU (IP header included, Ethernet header excluded), e.g. 1500. IPv4
/// fragments carry identification `ip_id as u16`; IPv6 ones a Fragment extension header
/// with identification `ip_id`. The UDP checksum covers the whole datagram, so the
/// reassembled datagram is exactly what [`udp_frame`] would carry. A datagram that fits
/// yields one unfragmented frame. Panics if the MTU leaves no room for 8 data bytes.
pub fn fragment_udp(
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
    mtu: usize,
    ip_id: u32,
) -> Vec<Vec<u8>> {
    let mut udp = UdpHeader {
        source_port: src.port(),
        destination_port: dst.port(),
        length: u16::try_from(UdpHeader::LEN + payload.len()).expect("UDP payload too large"),
        checksum: 0,
    };
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            udp.checksum = udp
                .calc_checksum_ipv4_raw(s.octets(), d.octets(), payload)
                .expect("UDP payload too large");
            let datagram = [&udp.to_bytes()[..], payload].concat();
            fragment_v4(s, d, &datagram, mtu, ip_id as u16)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            udp.checksum = udp
                .calc_checksum_ipv6_raw(s.octets(), d.octets(), payload)
                .expect("UDP payload too large");
            let datagram = [&udp.to_bytes()[..], payload].concat();
            fragment_v6(s, d, &datagram, mtu, ip_id)
        }
        _ => panic!("fragment_udp: {src} and {dst} are of different IP families"),
    }
}

/// Largest multiple of 8 not above `room`: every fragment but the last must be one.
fn chunk_len(room: usize) -> usize {
    let n = room & !7;
    assert!(n >= 8, "MTU too small to carry fragments");
    n
}

fn fragment_v4(s: Ipv4Addr, d: Ipv4Addr, datagram: &[u8], mtu: usize, id: u16) -> Vec<Vec<u8>> {
    let step = if Ipv4Header::MIN_LEN + datagram.len() <= mtu {
        datagram.len()
    } else {
        chunk_len(mtu.saturating_sub(Ipv4Header::MIN_LEN))
    };
    datagram
        .chunks(step.max(1))
        .enumerate()
        .map(|(i, chunk)| {
            let offset = i * step;
            let mut ip = Ipv4Header::new(
                chunk.len() as u16,
                64,
                IpNumber::UDP,
                s.octets(),
                d.octets(),
            )
            .expect("fragment fits an IPv4 packet");
            ip.identification = id;
            ip.dont_fragment = false;
            ip.more_fragments = offset + chunk.len() < datagram.len();
            ip.fragment_offset =
                IpFragOffset::try_new((offset / 8) as u16).expect("fragment offset in range");
            ip.header_checksum = ip.calc_header_checksum();
            let mut f = Vec::with_capacity(Ethernet2Header::LEN + ip.header_len() + chunk.len());
            eth_header(EtherType::IPV4, &mut f);
            ip.write(&mut f).expect("write to Vec");
            f.extend_from_slice(chunk);
            f
        })
        .collect()
}

fn fragment_v6(s: Ipv6Addr, d: Ipv6Addr, datagram: &[u8], mtu: usize, id: u32) -> Vec<Vec<u8>> {
    let room = mtu.saturating_sub(Ipv6Header::LEN + Ipv6FragmentHeader::LEN);
    let step = if room >= datagram.len() {
        datagram.len()
    } else {
        chunk_len(room)
    };
    datagram
        .chunks(step.max(1))
        .enumerate()
        .map(|(i, chunk)| {
            let offset = i * step;
            let frag = Ipv6FragmentHeader::new(
                IpNumber::UDP,
                IpFragOffset::try_new((offset / 8) as u16).expect("fragment offset in range"),
                offset + chunk.len() < datagram.len(),
                id,
            );
            let ip = Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: (Ipv6FragmentHeader::LEN + chunk.len()) as u16,
                next_header: IpNumber::IPV6_FRAGMENTATION_HEADER,
                hop_limit: 64,
                source: s.octets(),
                destination: d.octets(),
            };
            let mut f = Vec::with_capacity(
                Ethernet2Header::LEN + Ipv6Header::LEN + Ipv6FragmentHeader::LEN + chunk.len(),
            );
            eth_header(EtherType::IPV6, &mut f);
            ip.write(&mut f).expect("write to Vec");
            frag.write(&mut f).expect("write to Vec");
            f.extend_from_slice(chunk);
            f
        })
        .collect()
}

fn eth_header(ether_type: EtherType, out: &mut Vec<u8>) {
    let eth = Ethernet2Header {
        source: CLIENT_MAC,
        destination: SERVER_MAC,
        ether_type,
    };
    eth.write(out).expect("write to Vec");
}

// ---------------------------------------------------------------------------------------
// pcap
// ---------------------------------------------------------------------------------------

/// Writes Ethernet frames with nanosecond timestamps to a pcap file (nanosecond resolution).
pub fn write_pcap(path: &Path, frames: &[(u64, Vec<u8>)]) -> io::Result<()> {
    let file = io::BufWriter::new(std::fs::File::create(path)?);
    let mut file = write_pcap_to(file, frames)?;
    file.flush()
}

/// [`write_pcap`] into any writer; returns the writer so callers can flush or inspect it.
pub fn write_pcap_to<W: Write>(writer: W, frames: &[(u64, Vec<u8>)]) -> io::Result<W> {
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::NanoSecond,
        endianness: Endianness::Little,
        snaplen: 65535,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(writer, header).map_err(io::Error::other)?;
    for (ts, data) in frames {
        let packet = PcapPacket::new(Duration::from_nanos(*ts), data.len() as u32, data);
        w.write_packet(&packet).map_err(io::Error::other)?;
    }
    Ok(w.into_writer())
}

// ---------------------------------------------------------------------------------------
// Digest (RFC 2617) and hashing helpers
// ---------------------------------------------------------------------------------------

/// RFC 2617 `qop=auth` Digest response: MD5(HA1:nonce:nc:cnonce:auth:HA2), lowercase hex.
#[allow(clippy::too_many_arguments)]
pub fn digest_response(
    user: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
) -> String {
    let ha1 = md5_hex(format!("{user}:{realm}:{password}").as_bytes());
    let ha2 = md5_hex(format!("{method}:{uri}").as_bytes());
    md5_hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}").as_bytes())
}

/// MD5 of `data` as 32 lowercase hex digits (RFC 1321; only for Digest fixtures).
pub fn md5_hex(data: &[u8]) -> String {
    md5(data)
        .iter()
        .fold(String::with_capacity(32), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn md5(data: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    // K[i] = floor(abs(sin(i + 1)) * 2^32), computed rather than tabulated: f64 sin is exact
    // enough for all 64 values and a typo in a 64-entry table would be silent.
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4294967296.0) as u32)
        .collect();
    let mut st: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_le_bytes());
    for block in msg.chunks_exact(64) {
        let m: Vec<u32> = block
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = st;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        st[0] = st[0].wrapping_add(a);
        st[1] = st[1].wrapping_add(b);
        st[2] = st[2].wrapping_add(c);
        st[3] = st[3].wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, w) in st.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// FNV-1a over several byte strings, separated so ("ab","c") and ("a","bc") differ, then
/// a splitmix64 finalizer so inputs differing in one byte give unrelated-looking values.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain(std::iter::once(&0xffu8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    use pcap_file::pcap::PcapReader;

    /// Minimal independent view of a message: start line, headers (name, value), body.
    struct Msg<'a> {
        start: &'a str,
        headers: Vec<(&'a str, &'a str)>,
        body: &'a [u8],
    }

    impl<'a> Msg<'a> {
        fn parse(raw: &'a [u8]) -> Msg<'a> {
            let split = find(raw, b"\r\n\r\n").expect("header/body separator");
            let head = std::str::from_utf8(&raw[..split]).expect("UTF-8 head");
            std::str::from_utf8(&raw[split + 4..]).expect("UTF-8 body");
            // Every line break must be CRLF: no bare LF or CR anywhere.
            for (i, &b) in raw.iter().enumerate() {
                if b == b'\n' {
                    assert!(i > 0 && raw[i - 1] == b'\r', "bare LF at {i}");
                }
                if b == b'\r' {
                    assert_eq!(raw.get(i + 1), Some(&b'\n'), "bare CR at {i}");
                }
            }
            let mut lines = head.split("\r\n");
            let start = lines.next().unwrap();
            let headers = lines
                .map(|l| {
                    let (n, v) = l.split_once(':').expect("header line has a colon");
                    assert!(!n.contains(' '), "header name without spaces: {n:?}");
                    (n, v.trim())
                })
                .collect();
            Msg {
                start,
                headers,
                body: &raw[split + 4..],
            }
        }

        fn all(&self, name: &str) -> Vec<&'a str> {
            self.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
                .collect()
        }

        fn one(&self, name: &str) -> &'a str {
            let v = self.all(name);
            assert_eq!(v.len(), 1, "exactly one {name} in {:?}", self.start);
            v[0]
        }

        /// Method of a request, status code of a response.
        fn kind(&self) -> &'a str {
            self.start
                .split(' ')
                .nth(usize::from(!self.is_request()))
                .unwrap()
        }

        fn is_request(&self) -> bool {
            !self.start.starts_with("SIP/2.0 ")
        }

        fn branch(&self) -> &'a str {
            let via = self.all("Via")[0];
            via.split(';')
                .find_map(|p| p.strip_prefix("branch="))
                .expect("branch")
        }

        fn tag(&self, name: &str) -> Option<&'a str> {
            let v = self.one(name);
            let params = &v[v.rfind('>').unwrap_or(0)..];
            params.split(';').find_map(|p| p.strip_prefix("tag="))
        }

        fn cseq(&self) -> (u32, &'a str) {
            let (n, m) = self.one("CSeq").split_once(' ').unwrap();
            (n.parse().unwrap(), m)
        }
    }

    fn check_message(raw: &[u8]) {
        let m = Msg::parse(raw);
        let cl: usize = m.one("Content-Length").parse().unwrap();
        assert_eq!(cl, m.body.len(), "Content-Length of {:?}", m.start);
        assert!(!m.all("Via").is_empty());
        m.one("From");
        m.one("To");
        m.one("Call-ID");
        m.cseq();
        assert!(m.tag("From").is_some(), "From tag");
        assert!(m.branch().starts_with("z9hG4bK"));
        if m.is_request() {
            assert_eq!(m.one("Max-Forwards"), "70");
            m.one("User-Agent");
            let method = m.start.split(' ').next().unwrap();
            assert_eq!(m.cseq().1, method);
            assert!(m.start.ends_with(" SIP/2.0"));
        } else if !m.start.starts_with("SIP/2.0 100 ") {
            assert!(m.tag("To").is_some(), "To tag on {:?}", m.start);
        }
        if cl > 0 {
            assert_eq!(m.one("Content-Type"), "application/sdp");
            let body = std::str::from_utf8(m.body).unwrap();
            assert!(body.starts_with("v=0\r\n") && body.ends_with("\r\n"));
            for field in [
                "o=",
                "s=",
                "c=IN IP",
                "t=0 0",
                "m=audio ",
                "a=rtpmap:0 PCMU/8000",
            ] {
                assert!(body.contains(field), "SDP has {field}");
            }
        }
    }

    #[test]
    fn md5_known_vectors() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            md5_hex(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            ),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn digest_matches_rfc2617_example() {
        // RFC 2617 section 3.5, with the errata-corrected response value.
        let r = digest_response(
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "00000001",
            "0a4f113b",
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn every_message_is_well_formed() {
        for m in message_mix() {
            check_message(&m);
        }
        for p in [
            CallParams::default(),
            CallParams::ipv6(),
            CallParams::numbered(7),
        ] {
            for (_, m) in complete_call(&p) {
                check_message(&m);
            }
            let inv = invite_with_sdp(&p);
            for m in [
                options(&p, 9),
                cancel(&p, p.cseq),
                not_found(&inv, "nf1"),
                request_terminated(&inv, "rt1"),
                ok(&cancel(&p, p.cseq), "c1"),
            ] {
                check_message(&m);
            }
        }
    }

    #[test]
    fn complete_call_flow_is_consistent() {
        let p = CallParams::default().with_cseq(10);
        let flow = complete_call(&p);
        let expect = [
            (Direction::ClientToServer, "REGISTER", 10, "REGISTER"),
            (Direction::ServerToClient, "SIP/2.0 401", 10, "REGISTER"),
            (Direction::ClientToServer, "REGISTER", 11, "REGISTER"),
            (Direction::ServerToClient, "SIP/2.0 200", 11, "REGISTER"),
            (Direction::ClientToServer, "INVITE", 12, "INVITE"),
            (Direction::ServerToClient, "SIP/2.0 100", 12, "INVITE"),
            (Direction::ServerToClient, "SIP/2.0 180", 12, "INVITE"),
            (Direction::ServerToClient, "SIP/2.0 200", 12, "INVITE"),
            (Direction::ClientToServer, "ACK", 12, "ACK"),
            (Direction::ClientToServer, "BYE", 13, "BYE"),
            (Direction::ServerToClient, "SIP/2.0 200", 13, "BYE"),
        ];
        assert_eq!(flow.len(), expect.len());
        let msgs: Vec<Msg> = flow.iter().map(|(_, m)| Msg::parse(m)).collect();
        for ((dir, m), (edir, start, n, method)) in
            flow.iter().map(|(d, _)| d).zip(&msgs).zip(expect)
        {
            assert_eq!(*dir, edir);
            assert!(m.start.starts_with(start), "{} vs {start}", m.start);
            assert_eq!(m.cseq(), (n, method));
            assert_eq!(m.one("Call-ID"), p.call_id);
            assert_eq!(m.tag("From"), Some(p.from_tag.as_str()));
        }
        // Responses carry their request's branch and exact Via.
        for (req, resp) in [(0, 1), (2, 3), (4, 5), (4, 6), (4, 7), (9, 10)] {
            assert_eq!(msgs[req].all("Via"), msgs[resp].all("Via"));
        }
        // Five transactions: distinct (branch, method) pairs among requests.
        let mut tx: Vec<(&str, &str)> = msgs
            .iter()
            .filter(|m| m.is_request())
            .map(|m| (m.branch(), m.cseq().1))
            .collect();
        let requests = tx.len();
        tx.sort();
        tx.dedup();
        assert_eq!((requests, tx.len()), (5, 5));
        let mut branches: Vec<&str> = tx.iter().map(|t| t.0).collect();
        branches.dedup();
        assert_eq!(branches.len(), 5, "every transaction has its own branch");
        // To tags: registrar's on REGISTER responses, callee's from 180 on, none on 100.
        assert_eq!(msgs[1].tag("To"), Some(p.reg_tag.as_str()));
        assert_eq!(msgs[3].tag("To"), Some(p.reg_tag.as_str()));
        assert_eq!(msgs[4].tag("To"), None);
        assert_eq!(msgs[5].tag("To"), None);
        for (i, m) in msgs.iter().enumerate().skip(6) {
            assert_eq!(m.tag("To"), Some(p.to_tag.as_str()), "message {i}");
        }
        // Digest on the second REGISTER answers the 401's nonce and verifies.
        assert!(msgs[0].all("Authorization").is_empty());
        assert!(msgs[1]
            .one("WWW-Authenticate")
            .contains(&format!("nonce=\"{}\"", p.nonce)));
        let auth = msgs[2].one("Authorization");
        let field = |k: &str| {
            auth.trim_start_matches("Digest ")
                .split(", ")
                .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                .map(|v| v.trim_matches('"'))
                .unwrap_or_else(|| panic!("{k} in {auth}"))
        };
        assert_eq!(field("algorithm"), "MD5");
        assert_eq!(field("qop"), "auth");
        let resp = field("response");
        assert_eq!(resp.len(), 32);
        assert!(resp.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            resp,
            digest_response(
                &p.from_user,
                &p.domain,
                &p.password,
                "REGISTER",
                field("uri"),
                field("nonce"),
                field("nc"),
                field("cnonce")
            )
        );
        // The INVITE is about 900 bytes, like a real phone's.
        let len = flow[4].1.len();
        assert!((800..=1000).contains(&len), "INVITE is {len} bytes");
    }

    #[test]
    fn cancel_shares_invite_branch() {
        let p = CallParams::default();
        let inv = invite_with_sdp(&p);
        let can = cancel(&p, p.cseq);
        let (inv, can) = (Msg::parse(&inv), Msg::parse(&can));
        assert_eq!(inv.branch(), can.branch());
        assert_eq!(can.cseq(), (p.cseq, "CANCEL"));
        assert_eq!(inv.start.replace("INVITE", "CANCEL"), can.start);
        assert_eq!(inv.one("To"), can.one("To"));
    }

    #[test]
    fn ipv6_addresses_are_bracketed_in_sip_not_in_sdp() {
        let p = CallParams::ipv6();
        let inv = invite_with_sdp(&p);
        let m = Msg::parse(&inv);
        assert!(m
            .one("Via")
            .starts_with("SIP/2.0/UDP [fd77::1]:5060;branch="));
        assert_eq!(m.one("Contact"), "<sip:alice@[fd77::1]:5060>");
        let body = std::str::from_utf8(m.body).unwrap();
        assert!(body.contains("c=IN IP6 fd77::1\r\n"));
        let ok = ok_invite(&p, &inv, "t");
        assert_eq!(Msg::parse(&ok).one("Contact"), "<sip:bob@[fd77::2]:5060>");
    }

    #[test]
    fn mix_has_distinct_calls() {
        let mix = message_mix();
        assert_eq!(mix.len(), 11 * MIX_CALLS as usize);
        let mut ids: Vec<String> = mix
            .iter()
            .map(|m| Msg::parse(m).one("Call-ID").to_string())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len(),
            2 * MIX_CALLS as usize,
            "one call + one OPTIONS probe each"
        );
        let starts: Vec<String> = mix[..11]
            .iter()
            .map(|m| {
                Msg::parse(m)
                    .start
                    .split(' ')
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        assert_eq!(
            starts,
            [
                "REGISTER sip:secsip.test",
                "SIP/2.0 200",
                "INVITE sip:bob0@secsip.test",
                "SIP/2.0 100",
                "SIP/2.0 180",
                "SIP/2.0 200",
                "ACK sip:bob0@10.77.0.2:5060",
                "BYE sip:bob0@10.77.0.2:5060",
                "SIP/2.0 200",
                "OPTIONS sip:bob0@secsip.test",
                "SIP/2.0 200",
            ]
        );
    }

    #[test]
    fn mix_variant_zero_is_the_mix_and_variants_are_distinct_calls() {
        let v0 = mix_variant(0);
        let msgs: Vec<Vec<u8>> = v0.iter().map(|f| udp_of(f).2).collect();
        assert!(msgs == message_mix(), "variant 0 must be message_mix() byte for byte");
        for (i, f) in v0.iter().enumerate() {
            let n = (i / 11) as u32;
            let p = mix_base(n).renumbered(n);
            let (src, dst, m) = udp_of(f);
            let want = if m.starts_with(b"SIP/2.0 ") {
                (p.server_port, p.client_port)
            } else {
                (p.client_port, p.server_port)
            };
            assert_eq!((src, dst), want, "message {i} goes the wrong way");
        }
        let call_ids = |v: u32| -> std::collections::HashSet<String> {
            mix_variant(v)
                .iter()
                .map(|f| Msg::parse(&udp_of(f).2).one("Call-ID").to_string())
                .collect()
        };
        let (a, b) = (call_ids(0), call_ids(1));
        assert_eq!(a.len(), 2 * MIX_CALLS as usize);
        assert!(a.is_disjoint(&b), "variants share a Call-ID");
        let reg = udp_of(&mix_variant(5)[0]).2;
        assert!(
            Msg::parse(&reg).one("From").contains("<sip:alice0@"),
            "variants keep the users of the mix"
        );
    }

    fn udp_of(frame: &[u8]) -> (u16, u16, Vec<u8>) {
        let s = SlicedPacket::from_ethernet(frame).expect("frame decodes");
        match s.transport {
            Some(TransportSlice::Udp(u)) => {
                (u.source_port(), u.destination_port(), u.payload().to_vec())
            }
            other => panic!("not UDP: {other:?}"),
        }
    }

    #[test]
    fn frames_decode_v4_v6_vlan() {
        let msg = invite_with_sdp(&CallParams::default());
        let a: SocketAddr = "10.77.0.1:5062".parse().unwrap();
        let b: SocketAddr = "10.77.0.2:5060".parse().unwrap();
        let f = udp_frame(a, b, &msg);
        assert_eq!(udp_of(&f), (5062, 5060, msg.clone()));
        let s = SlicedPacket::from_ethernet(&f).unwrap();
        match s.net {
            Some(NetSlice::Ipv4(ip)) => {
                assert_eq!(ip.header().source_addr(), Ipv4Addr::new(10, 77, 0, 1));
                assert_eq!(
                    ip.header().header_checksum(),
                    ip.header().to_header().calc_header_checksum()
                );
            }
            other => panic!("not IPv4: {other:?}"),
        }
        // The UDP checksum etherparse wrote must verify.
        let (h, rest) = Ethernet2Header::from_slice(&f).unwrap();
        assert_eq!(h.source, CLIENT_MAC);
        let (ip, rest) = Ipv4Header::from_slice(rest).unwrap();
        let (udp, payload) = UdpHeader::from_slice(rest).unwrap();
        assert_eq!(udp.checksum, udp.calc_checksum_ipv4(&ip, payload).unwrap());

        let a6: SocketAddr = "[fd77::1]:5060".parse().unwrap();
        let b6: SocketAddr = "[fd77::2]:5060".parse().unwrap();
        let f6 = udp_frame(a6, b6, &msg);
        assert_eq!(udp_of(&f6), (5060, 5060, msg.clone()));
        assert!(matches!(
            SlicedPacket::from_ethernet(&f6).unwrap().net,
            Some(NetSlice::Ipv6(_))
        ));

        for (src, dst) in [(a, b), (a6, b6)] {
            let fv = udp_frame_vlan(src, dst, &msg, 42);
            let s = SlicedPacket::from_ethernet(&fv).unwrap();
            assert_eq!(s.link_exts.len(), 1);
            assert_eq!(fv[12..14], [0x81, 0x00]);
            assert_eq!(u16::from_be_bytes([fv[14], fv[15]]) & 0x0fff, 42);
            assert_eq!(udp_of(&fv), (src.port(), dst.port(), msg.clone()));
        }
    }

    /// Reassembles fragments by offset into the UDP datagram (header + payload).
    fn reassemble(frames: &[Vec<u8>]) -> (Vec<u8>, u32) {
        let mut parts: Vec<(usize, bool, Vec<u8>)> = Vec::new();
        let mut ids = Vec::new();
        for f in frames {
            let (eth, rest) = Ethernet2Header::from_slice(f).unwrap();
            if eth.ether_type == EtherType::IPV4 {
                let (ip, data) = Ipv4Header::from_slice(rest).unwrap();
                assert_eq!(ip.header_checksum, ip.calc_header_checksum());
                assert_eq!(ip.total_len as usize, ip.header_len() + data.len());
                assert!(!ip.dont_fragment);
                ids.push(u32::from(ip.identification));
                parts.push((
                    ip.fragment_offset.byte_offset() as usize,
                    ip.more_fragments,
                    data.to_vec(),
                ));
            } else {
                let (ip, rest) = Ipv6Header::from_slice(rest).unwrap();
                assert_eq!(ip.next_header, IpNumber::IPV6_FRAGMENTATION_HEADER);
                assert_eq!(ip.payload_length as usize, rest.len());
                let (fh, data) = Ipv6FragmentHeader::from_slice(rest).unwrap();
                assert_eq!(fh.next_header, IpNumber::UDP);
                ids.push(fh.identification);
                parts.push((
                    fh.fragment_offset.byte_offset() as usize,
                    fh.more_fragments,
                    data.to_vec(),
                ));
            }
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "one identification");
        // Only the last fragment may be short of a multiple of 8 or lack MF.
        for (i, (_, more, data)) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            assert_eq!(*more, !last);
            if !last {
                assert_eq!(data.len() % 8, 0);
            }
        }
        let total = parts.iter().map(|(o, _, d)| o + d.len()).max().unwrap();
        let mut out = vec![0u8; total];
        let mut covered = 0;
        for (o, _, d) in &parts {
            assert_eq!(*o, covered, "fragments contiguous");
            out[*o..o + d.len()].copy_from_slice(d);
            covered += d.len();
        }
        (out, ids[0])
    }

    #[test]
    fn fragments_reassemble_v4_and_v6() {
        let big = invite_with_sdp(&CallParams::default());
        for (src, dst) in [
            (
                "10.77.0.1:5060".parse::<SocketAddr>().unwrap(),
                "10.77.0.2:5060".parse().unwrap(),
            ),
            (
                "[fd77::1]:5060".parse().unwrap(),
                "[fd77::2]:5060".parse().unwrap(),
            ),
        ] {
            for mtu in [300usize, 576, 1500] {
                let frags = fragment_udp(src, dst, &big, mtu, 0x1234_5678);
                for f in &frags {
                    assert!(
                        f.len() - Ethernet2Header::LEN <= mtu,
                        "fragment fits MTU {mtu}"
                    );
                }
                let whole = udp_frame(src, dst, &big);
                if frags.len() == 1 {
                    // Fits: a plain datagram the decoder sees whole.
                    assert_eq!(udp_of(&frags[0]), (src.port(), dst.port(), big.clone()));
                    if src.is_ipv4() {
                        assert_eq!(
                            frags[0][Ethernet2Header::LEN + 14..],
                            whole[Ethernet2Header::LEN + 14..]
                        );
                    }
                    continue;
                }
                let (datagram, id) = reassemble(&frags);
                assert_eq!(id, if src.is_ipv4() { 0x5678 } else { 0x1234_5678 });
                // Same UDP header (checksum included) and payload as the unfragmented frame.
                let ip_len = if src.is_ipv4() {
                    Ipv4Header::MIN_LEN
                } else {
                    Ipv6Header::LEN
                };
                assert_eq!(
                    datagram,
                    whole[Ethernet2Header::LEN + ip_len..],
                    "mtu {mtu}"
                );
            }
        }
    }

    #[test]
    fn pcap_round_trip() {
        let p = CallParams::default();
        let frames = flow_frames(
            &p,
            &complete_call(&p),
            1_700_000_000_123_456_789,
            20_000_000,
        );
        let path =
            std::env::temp_dir().join(format!("secsip-fixtures-{}.pcap", std::process::id()));
        write_pcap(&path, &frames).unwrap();
        let data = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let mut r = PcapReader::new(&data[..]).unwrap();
        assert_eq!(r.header().datalink, DataLink::ETHERNET);
        let mut n = 0;
        while let Some(pkt) = r.next_packet() {
            let pkt = pkt.unwrap();
            assert_eq!(pkt.timestamp.as_nanos() as u64, frames[n].0);
            assert_eq!(&pkt.data[..], &frames[n].1[..]);
            assert_eq!(pkt.orig_len as usize, frames[n].1.len());
            n += 1;
        }
        assert_eq!(n, 11);
        // Directions map to MACs and ports.
        let (eth, _) = Ethernet2Header::from_slice(&frames[1].1).unwrap();
        assert_eq!((eth.source, eth.destination), (SERVER_MAC, CLIENT_MAC));
    }

    /// Reads a committed capture as (source address, UDP payload) pairs, verifying the
    /// IPv4 header and UDP checksums on the way.
    fn read_capture(name: &str) -> Vec<(SocketAddr, Vec<u8>)> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/pcaps")
            .join(name);
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut r = PcapReader::new(&data[..]).unwrap();
        assert_eq!(r.header().datalink, DataLink::ETHERNET);
        let mut out = Vec::new();
        while let Some(pkt) = r.next_packet() {
            let pkt = pkt.unwrap();
            let (_, rest) = Ethernet2Header::from_slice(&pkt.data).unwrap();
            let (ip, rest) = Ipv4Header::from_slice(rest).unwrap();
            assert_eq!(ip.header_checksum, ip.calc_header_checksum());
            let (udp, payload) = UdpHeader::from_slice(rest).unwrap();
            assert_eq!(
                udp.checksum,
                udp.calc_checksum_ipv4(&ip, payload).unwrap(),
                "UDP checksum"
            );
            out.push((
                SocketAddr::new(IpAddr::V4(ip.source.into()), udp.source_port),
                payload.to_vec(),
            ));
        }
        out
    }

    #[test]
    fn sipp_capture_has_the_fixture_call_shape() {
        let capture = read_capture("sipp-call.pcap");
        let p = CallParams::default();
        let fixture = complete_call(&p);
        assert_eq!(capture.len(), fixture.len());
        let msgs: Vec<Msg> = capture.iter().map(|(_, m)| Msg::parse(m)).collect();
        for ((src, raw), (dir, fx)) in capture.iter().zip(&fixture) {
            check_message(raw);
            let (m, f) = (Msg::parse(raw), Msg::parse(fx));
            assert_eq!(*src, p.endpoints(*dir).0, "{}", m.start);
            // Same method or status code, same CSeq, one Call-ID and From tag throughout.
            // Method for requests, status code for responses.
            assert_eq!(m.kind(), f.kind(), "{} vs {}", m.start, f.start);
            assert_eq!(m.cseq(), f.cseq());
            assert_eq!(m.one("Call-ID"), msgs[0].one("Call-ID"));
            assert_eq!(m.tag("From"), msgs[0].tag("From"));
        }
        let mut tx: Vec<(&str, &str)> = msgs
            .iter()
            .filter(|m| m.is_request())
            .map(|m| (m.branch(), m.cseq().1))
            .collect();
        tx.sort();
        tx.dedup();
        assert_eq!(tx.len(), 5, "five transactions");
        let dialog_tags: Vec<_> = msgs[6..].iter().map(|m| m.tag("To")).collect();
        assert!(
            dialog_tags
                .iter()
                .all(|t| t.is_some() && *t == dialog_tags[0]),
            "one dialog"
        );
        assert_ne!(
            msgs[3].tag("To"),
            dialog_tags[0],
            "registrar tag differs from callee tag"
        );
        // SIPp's Digest, computed by another implementation, verifies with ours.
        let auth = msgs[2].one("Authorization").trim_start_matches("Digest ");
        let field = |k: &str| {
            auth.split(',')
                .find_map(|kv| kv.trim().strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                .map(|v| v.trim_matches('"'))
                .unwrap_or_else(|| panic!("{k} in {auth}"))
        };
        let expected = digest_response(
            field("username"),
            field("realm"),
            "secret-alice",
            "REGISTER",
            field("uri"),
            field("nonce"),
            field("nc"),
            field("cnonce"),
        );
        assert_eq!(field("response"), expected);
        assert_eq!(
            field("uri"),
            msgs[2].start.split(' ').nth(1).unwrap(),
            "Digest uri = R-URI"
        );
    }

    type TimedFrames = Vec<(u64, Vec<u8>)>;

    /// The fixture captures committed in tests/pcaps, by file name, as written by
    /// `regenerate_fixture_pcaps`.
    fn fixture_pcaps() -> Vec<(&'static str, TimedFrames)> {
        // 2024-01-01T00:00:00Z, 20 ms between messages: readable timestamps in Wireshark.
        const T0: u64 = 1_704_067_200_000_000_000;
        const STEP: u64 = 20_000_000;
        let v4 = CallParams::default();
        let v6 = CallParams::ipv6();
        let mut frag = Vec::new();
        for (i, p) in [&v4, &v6].into_iter().enumerate() {
            let inv = invite_with_sdp(p);
            let (src, dst) = p.endpoints(Direction::ClientToServer);
            // 576 is the smallest MTU every IPv4 host must accept (RFC 791); the INVITE
            // needs two fragments there, in IPv4 and IPv6 alike.
            for f in fragment_udp(src, dst, &inv, 576, 0x5ec0 + i as u32) {
                frag.push((T0 + frag.len() as u64 * STEP, f));
            }
            frag.push((
                T0 + frag.len() as u64 * STEP,
                udp_frame_vlan(src, dst, &inv, 100),
            ));
        }
        vec![
            (
                "fixture-call-v4.pcap",
                flow_frames(&v4, &complete_call(&v4), T0, STEP),
            ),
            (
                "fixture-call-v6.pcap",
                flow_frames(&v6, &complete_call(&v6), T0, STEP),
            ),
            ("fixture-invite-frag-vlan.pcap", frag),
        ]
    }

    /// Rewrites the fixture captures: `cargo test --lib fixtures -- --ignored regenerate`.
    #[test]
    #[ignore = "writes into tests/pcaps"]
    fn regenerate_fixture_pcaps() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pcaps");
        for (name, frames) in fixture_pcaps() {
            write_pcap(&dir.join(name), &frames).unwrap();
        }
    }

    #[test]
    fn committed_fixture_pcaps_are_current() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pcaps");
        for (name, frames) in fixture_pcaps() {
            let committed = std::fs::read(dir.join(name)).unwrap();
            let fresh = write_pcap_to(Vec::new(), &frames).unwrap();
            assert!(
                committed == fresh,
                "tests/pcaps/{name} is stale: cargo test --lib fixtures -- --ignored regenerate"
            );
        }
    }

    #[test]
    fn deterministic() {
        assert_eq!(message_mix(), message_mix());
        assert_ne!(CallParams::numbered(1), CallParams::numbered(2));
    }
}
