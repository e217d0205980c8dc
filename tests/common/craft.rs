//! Crafted frames for end-to-end evasion tests: a builder for the frames an attacker sends
//! (VLAN stacks, IPv4 options, IPv6 extension chains, AH/ESP, fragments, TCP segments in any
//! order) and raw `AF_PACKET` ports inside the testbed's namespaces to send them from the
//! client and to see, at the server, exactly which frames the appliance let through.
//!
//! Include after `appliance.rs`:
//! `#[path = "common/craft.rs"] mod craft;` (it uses `appliance::{Testbed, Side}`).
//!
//! Every builder computes lengths and checksums the way a real stack would: a frame the
//! server's kernel would drop for a bad checksum proves nothing about the firewall.
#![allow(dead_code)]

use super::appliance::{Side, Testbed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// MAC of the client's eth0 (`tests/lib/testbed.sh`).
pub const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
/// MAC of the server's eth0.
pub const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// IPv4 protocol / IPv6 next-header numbers used here.
pub mod proto {
    /// Hop-by-hop options (IPv6).
    pub const HOPOPTS: u8 = 0;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// Routing header (IPv6).
    pub const ROUTING: u8 = 43;
    /// Fragment header (IPv6).
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating security payload.
    pub const ESP: u8 = 50;
    /// Authentication header.
    pub const AH: u8 = 51;
    /// No next header (IPv6).
    pub const NONE: u8 = 59;
    /// Destination options (IPv6).
    pub const DSTOPTS: u8 = 60;
}

/// An IPv6 extension header of the chain, in order.
#[derive(Clone, Debug)]
pub enum Ext {
    /// Hop-by-hop options (padding only), `len8` extra 8-octet units.
    HopByHop { len8: u8 },
    /// Destination options (padding only).
    DestOpts { len8: u8 },
    /// Routing header type 0 with no addresses left (segments_left 0).
    Routing,
    /// Fragment header.
    Fragment { offset8: u16, more: bool, id: u32 },
    /// Authentication header (RFC 4302) with an ICV of `icv_words` 32-bit words.
    Ah { spi: u32, seq: u32, icv_words: u8 },
}

/// The IP layer.
#[derive(Clone, Debug)]
pub enum Ip {
    /// IPv4; `options` are appended to the header (padded to 4 bytes with EOL), `ah` inserts
    /// an authentication header before the L4 header, `frag` = (offset in 8-byte units, MF, id).
    V4 { src: Ipv4Addr, dst: Ipv4Addr, options: Vec<u8>, ah: Option<(u32, u32)>, frag: Option<(u16, bool, u16)>, ttl: u8 },
    /// IPv6 with an extension header chain.
    V6 { src: Ipv6Addr, dst: Ipv6Addr, exts: Vec<Ext>, hop_limit: u8 },
}

impl Ip {
    /// Plain IPv4 between two addresses.
    pub fn v4(src: &str, dst: &str) -> Ip {
        Ip::V4 { src: src.parse().unwrap(), dst: dst.parse().unwrap(), options: vec![], ah: None, frag: None, ttl: 64 }
    }

    /// Plain IPv6 between two addresses.
    pub fn v6(src: &str, dst: &str) -> Ip {
        Ip::V6 { src: src.parse().unwrap(), dst: dst.parse().unwrap(), exts: vec![], hop_limit: 64 }
    }

    fn src(&self) -> IpAddr {
        match self {
            Ip::V4 { src, .. } => IpAddr::V4(*src),
            Ip::V6 { src, .. } => IpAddr::V6(*src),
        }
    }

    fn dst(&self) -> IpAddr {
        match self {
            Ip::V4 { dst, .. } => IpAddr::V4(*dst),
            Ip::V6 { dst, .. } => IpAddr::V6(*dst),
        }
    }
}

/// TCP flag bits.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// The layer-4 part.
#[derive(Clone, Debug)]
pub enum L4 {
    /// UDP with its payload.
    Udp { sport: u16, dport: u16, payload: Vec<u8> },
    /// A TCP segment.
    Tcp { sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, window: u16, payload: Vec<u8> },
    /// Any protocol's bytes as they are (ESP, a fragment's data, an unknown protocol).
    Raw { proto: u8, bytes: Vec<u8> },
}

impl L4 {
    /// UDP.
    pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> L4 {
        L4::Udp { sport, dport, payload: payload.to_vec() }
    }

    /// A TCP segment with ACK|PSH set and a 64 KiB window.
    pub fn tcp_data(sport: u16, dport: u16, seq: u32, ack: u32, payload: &[u8]) -> L4 {
        L4::Tcp { sport, dport, seq, ack, flags: tcp_flags::ACK | tcp_flags::PSH, window: 65535, payload: payload.to_vec() }
    }

    fn proto(&self) -> u8 {
        match self {
            L4::Udp { .. } => proto::UDP,
            L4::Tcp { .. } => proto::TCP,
            L4::Raw { proto, .. } => *proto,
        }
    }

    /// The L4 bytes with the checksum computed over the pseudo-header of `src`/`dst`.
    pub fn bytes(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        match self {
            L4::Udp { sport, dport, payload } => {
                let len = 8 + payload.len();
                let mut b = Vec::with_capacity(len);
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                b.extend_from_slice(&(len as u16).to_be_bytes());
                b.extend_from_slice(&[0, 0]);
                b.extend_from_slice(payload);
                let mut c = l4_checksum(src, dst, proto::UDP, &b);
                if c == 0 {
                    c = 0xffff; // RFC 768: zero means "no checksum"
                }
                b[6..8].copy_from_slice(&c.to_be_bytes());
                b
            }
            L4::Tcp { sport, dport, seq, ack, flags, window, payload } => {
                let mut b = Vec::with_capacity(20 + payload.len());
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                b.extend_from_slice(&seq.to_be_bytes());
                b.extend_from_slice(&ack.to_be_bytes());
                b.push(5 << 4);
                b.push(*flags);
                b.extend_from_slice(&window.to_be_bytes());
                b.extend_from_slice(&[0, 0, 0, 0]);
                b.extend_from_slice(payload);
                let c = l4_checksum(src, dst, proto::TCP, &b);
                b[16..18].copy_from_slice(&c.to_be_bytes());
                b
            }
            L4::Raw { bytes, .. } => bytes.clone(),
        }
    }
}

/// One frame: Ethernet, VLAN tags (TPID, VID) outermost first, IP, L4.
#[derive(Clone, Debug)]
pub struct FrameSpec {
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// VLAN tags as (TPID, VLAN id): 0x8100 (802.1Q) or 0x88a8 (802.1ad).
    pub vlans: Vec<(u16, u16)>,
    /// The IP layer.
    pub ip: Ip,
    /// The L4 layer.
    pub l4: L4,
}

impl FrameSpec {
    /// Client to server, no tags.
    pub fn client_to_server(ip: Ip, l4: L4) -> FrameSpec {
        FrameSpec { dst_mac: SERVER_MAC, src_mac: CLIENT_MAC, vlans: vec![], ip, l4 }
    }

    /// Adds a VLAN tag inside the ones already there.
    pub fn vlan(mut self, tpid: u16, vid: u16) -> FrameSpec {
        self.vlans.push((tpid, vid));
        self
    }

    /// The frame's bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut f = Vec::with_capacity(128);
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        for &(tpid, vid) in &self.vlans {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
        }
        let l4 = self.l4.bytes(self.ip.src(), self.ip.dst());
        match &self.ip {
            Ip::V4 { .. } => {
                f.extend_from_slice(&0x0800u16.to_be_bytes());
                f.extend_from_slice(&ipv4_packet(&self.ip, self.l4.proto(), &l4));
            }
            Ip::V6 { src, dst, exts, hop_limit } => {
                f.extend_from_slice(&0x86ddu16.to_be_bytes());
                f.extend_from_slice(&ipv6_packet(*src, *dst, exts, *hop_limit, self.l4.proto(), &l4));
            }
        }
        f
    }
}

fn ipv4_packet(ip: &Ip, l4_proto: u8, l4: &[u8]) -> Vec<u8> {
    let Ip::V4 { src, dst, options, ah, frag, ttl } = ip else { unreachable!("called for IPv4 only") };
    let mut opts = options.to_vec();
    while opts.len() % 4 != 0 {
        opts.push(0); // EOL padding
    }
    assert!(opts.len() <= 40, "IPv4 options are at most 40 bytes");
    let mut payload = Vec::new();
    let proto = match ah {
        Some((spi, seq)) => {
            payload.extend_from_slice(&ah_header(l4_proto, *spi, *seq, 3));
            proto::AH
        }
        None => l4_proto,
    };
    payload.extend_from_slice(l4);
    let ihl = 20 + opts.len();
    let total = ihl + payload.len();
    let (off, mf, id) = (*frag).unwrap_or((0, false, 0x1234));
    let mut h = Vec::with_capacity(total);
    h.push(0x40 | (ihl / 4) as u8);
    h.push(0);
    h.extend_from_slice(&(total as u16).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    let flags = (off & 0x1fff) | if mf { 0x2000 } else { 0 };
    h.extend_from_slice(&flags.to_be_bytes());
    h.push(*ttl);
    h.push(proto);
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(&opts);
    let c = fold(sum16(&h));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(&payload);
    h
}

/// An AH header of `icv_words` 32-bit ICV words (zeros: nobody here checks it).
fn ah_header(next: u8, spi: u32, seq: u32, icv_words: u8) -> Vec<u8> {
    // Payload Len is the AH length in 32-bit words minus 2 (RFC 4302 §2.2).
    let words = 3 + icv_words;
    let mut b = vec![next, words - 2, 0, 0];
    b.extend_from_slice(&spi.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.resize(words as usize * 4, 0);
    b
}

fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, exts: &[Ext], hop_limit: u8, l4_proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut chain = Vec::new();
    let codes: Vec<u8> = exts
        .iter()
        .map(|e| match e {
            Ext::HopByHop { .. } => proto::HOPOPTS,
            Ext::DestOpts { .. } => proto::DSTOPTS,
            Ext::Routing => proto::ROUTING,
            Ext::Fragment { .. } => proto::FRAGMENT,
            Ext::Ah { .. } => proto::AH,
        })
        .collect();
    for (i, e) in exts.iter().enumerate() {
        let next = codes.get(i + 1).copied().unwrap_or(l4_proto);
        match e {
            Ext::HopByHop { len8 } | Ext::DestOpts { len8 } => {
                let len = 8 * (*len8 as usize + 1);
                let mut b = vec![next, *len8];
                // PadN covering the rest of the header.
                b.push(1);
                b.push((len - 4) as u8);
                b.resize(len, 0);
                chain.extend_from_slice(&b);
            }
            Ext::Routing => chain.extend_from_slice(&[next, 0, 0, 0, 0, 0, 0, 0]),
            Ext::Fragment { offset8, more, id } => {
                chain.extend_from_slice(&[next, 0]);
                let v = (offset8 << 3) | (*more as u16);
                chain.extend_from_slice(&v.to_be_bytes());
                chain.extend_from_slice(&id.to_be_bytes());
            }
            Ext::Ah { spi, seq, icv_words } => {
                // Over IPv6 the AH length must be a multiple of 8 octets.
                let icv = if (3 + *icv_words) % 2 == 0 { *icv_words } else { *icv_words + 1 };
                chain.extend_from_slice(&ah_header(next, *spi, *seq, icv));
            }
        }
    }
    let first = codes.first().copied().unwrap_or(l4_proto);
    let plen = chain.len() + l4.len();
    let mut p = Vec::with_capacity(40 + plen);
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&(plen as u16).to_be_bytes());
    p.push(first);
    p.push(hop_limit);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&chain);
    p.extend_from_slice(l4);
    p
}

fn sum16(b: &[u8]) -> u32 {
    let mut s = 0u32;
    for c in b.chunks(2) {
        s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    s
}

fn fold(mut s: u32) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// The TCP/UDP checksum over the pseudo-header (RFC 768, RFC 8200 §8.1).
pub fn l4_checksum(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(40);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, proto]);
            pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&(l4.len() as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, proto]);
        }
        _ => panic!("mixed address families"),
    }
    fold(sum16(&pseudo) + sum16(l4))
}

/// Runs `f` on a thread that has entered network namespace `ns` (sockets it opens stay
/// there) and returns its result.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a descriptor we own; CLONE_NEWNET changes only this thread.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("netns thread panicked")
}

/// A raw `AF_PACKET` socket on one interface of a namespace.
pub struct RawPort {
    fd: OwnedFd,
    ifindex: i32,
}

impl RawPort {
    /// Opens `iface` (usually `eth0`) in `side`'s namespace.
    pub fn open(tb: &Testbed, side: Side, iface: &str) -> RawPort {
        let iface = iface.to_string();
        let (fd, ifindex) = in_netns(&tb.ns(side), move || {
            let name = std::ffi::CString::new(iface.clone()).unwrap();
            // SAFETY: a plain syscall with a NUL-terminated name.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) } as i32;
            assert!(ifindex > 0, "no interface {iface}");
            let all = (libc::ETH_P_ALL as u16).to_be() as i32;
            // SAFETY: plain syscall; the result is checked.
            let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, all) };
            assert!(raw >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
            // SAFETY: we own the new descriptor.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: zeroed sockaddr_ll is a valid value; the fields set below are plain data.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = all as u16;
            sll.sll_ifindex = ifindex;
            // SAFETY: sll lives through the call and the size is its own.
            let r = unsafe {
                libc::bind(fd.as_raw_fd(), (&sll as *const libc::sockaddr_ll).cast(), std::mem::size_of::<libc::sockaddr_ll>() as u32)
            };
            assert_eq!(r, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
            (fd, ifindex)
        });
        RawPort { fd, ifindex }
    }

    /// Sends one frame as it is.
    pub fn send(&self, frame: &[u8]) {
        // SAFETY: the buffer is live for the call; the socket is bound to the interface.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(n, frame.len() as isize, "AF_PACKET send: {}", std::io::Error::last_os_error());
    }

    /// Receives one incoming frame (frames this host sends are skipped), waiting at most
    /// until `deadline`.
    pub fn recv_until(&self, deadline: Instant) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one live pollfd.
            if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
                continue;
            }
            // SAFETY: zeroed sockaddr_ll is a valid value for recvfrom to fill.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut flen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: buf and from are live and sized as passed.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut flen,
                )
            };
            if n <= 0 || from.sll_pkttype == libc::PACKET_OUTGOING || from.sll_ifindex != self.ifindex {
                continue;
            }
            return Some(buf[..n as usize].to_vec());
        }
    }
}

/// Frames with the time they were seen.
type Seen = Arc<Mutex<Vec<(Instant, Vec<u8>)>>>;

/// Records every frame arriving on an interface, from a background thread, until dropped.
pub struct Sniffer {
    frames: Seen,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sniffer {
    /// Starts recording `iface` of `side`.
    pub fn start(tb: &Testbed, side: Side, iface: &str) -> Sniffer {
        let port = RawPort::open(tb, side, iface);
        let frames: Seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (f, s) = (Arc::clone(&frames), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(fr) = port.recv_until(Instant::now() + Duration::from_millis(50)) {
                    f.lock().unwrap().push((Instant::now(), fr));
                }
            }
        });
        Sniffer { frames, stop, thread: Some(thread) }
    }

    /// The frames recorded so far that contain `needle` anywhere.
    pub fn with(&self, needle: &[u8]) -> Vec<Vec<u8>> {
        self.frames.lock().unwrap().iter().filter(|(_, f)| contains(f, needle)).map(|(_, f)| f.clone()).collect()
    }

    /// Waits up to `timeout` for a frame containing `needle`; true when one came.
    pub fn wait_for(&self, needle: &[u8], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.with(needle).is_empty() {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every frame recorded so far.
    pub fn all(&self) -> Vec<Vec<u8>> {
        self.frames.lock().unwrap().iter().map(|(_, f)| f.clone()).collect()
    }

    /// Sequence numbers of the TCP RSTs seen from port `port` (`from`) or to it.
    pub fn resets(&self, port: u16, from: bool) -> Vec<u32> {
        self.all()
            .iter()
            .filter_map(|f| match etherparse::SlicedPacket::from_ethernet(f) {
                Ok(p) => match p.transport {
                    Some(etherparse::TransportSlice::Tcp(t)) if t.rst() && port == if from { t.source_port() } else { t.destination_port() } => Some(t.sequence_number()),
                    _ => None,
                },
                Err(_) => None,
            })
            .collect()
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// True when `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A minimal SIP OPTIONS request carrying `token` (in Call-ID and Subject, so a sniffer can
/// tell which copy arrived) with the given User-Agent.
pub fn options_with(token: &str, user_agent: &str, src: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:100@10.99.0.2 SIP/2.0\r\n\
Via: SIP/2.0/UDP {src}:5060;branch=z9hG4bK-{token}\r\n\
Max-Forwards: 70\r\n\
From: <sip:probe@{src}>;tag={token}\r\n\
To: <sip:100@10.99.0.2>\r\n\
Call-ID: {token}@{src}\r\n\
CSeq: 1 OPTIONS\r\n\
Subject: {token}\r\n\
User-Agent: {user_agent}\r\n\
Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}
