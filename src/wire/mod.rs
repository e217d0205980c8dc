//! Frame decoding: Ethernet II (+ 802.1Q / 802.1ad tags), IPv4, IPv6, UDP, TCP.
//!
//! [`decode_with`] turns a received frame into a [`Frame`] of borrowed slices, with no
//! allocation and no copy, within [`DecodeLimits`] (VLAN tags, extension headers); [`decode`] is
//! the same with the widest limits, for code that only routes or logs a frame the engine judges. The per-header parsing is etherparse's (its `*Slice` types); this module only
//! composes the layers, applies the firewall's stricter length rules and maps etherparse's
//! errors onto the small `Copy` enum [`DecodeError`], whose [`DecodeError::name`] is a
//! counter name.
//!
//! Rules that hold for every input:
//! - `decode` never panics and never allocates; a malformed frame yields a typed reason.
//! - Lengths come from the headers, not the frame: Ethernet padding after the IP packet is
//!   ignored; an IP length that does not fit the frame, or a UDP length that does not equal the
//!   IP payload length, is an error (a host and the firewall must see the same bytes).
//! - A fragment is not parsed past the IP layer: its IP payload is handed to [`reasm`], and
//!   [`udp_datagram`] parses the reassembled datagram.
//! - Nothing is skipped: every VLAN tag, IPv6 extension header and AH header (IPv4 or IPv6) is
//!   walked up to its limit, and one more is [`DecodeError::TooManyVlans`] /
//!   [`DecodeError::TooManyExtHeaders`], never "the rest is payload". ESP, whose transport
//!   header is encrypted, is [`DecodeError::Esp`].

pub mod classify;
pub mod inject;
pub mod reasm;
#[doc(hidden)]
pub mod testutil;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use etherparse::{
    err, ip_number, EtherType, Ethernet2Slice, IpAuthHeaderSlice, IpNumber, Ipv4HeaderSlice,
    Ipv6FragmentHeaderSlice, Ipv6HeaderSlice, Ipv6RawExtHeaderSlice, SingleVlanSlice,
    TcpSlice, UdpHeaderSlice,
};

/// Why a frame could not be decoded; one counter per variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// Catch-all truncation, for callers outside the layered decoder.
    Truncated,
    /// Frame shorter than an Ethernet II header.
    TruncatedEthernet,
    /// Frame ends inside an 802.1Q / 802.1ad tag.
    TruncatedVlan,
    /// More VLAN tags than `engine.decode.max_vlan_tags`: refused rather than skipped, so
    /// nothing hides under one more tag.
    TooManyVlans,
    /// IP version nibble does not match the ethertype.
    BadIpVersion,
    /// Frame ends inside the IPv4 header (fixed part or options).
    TruncatedIpv4,
    /// IPv4 IHL below 5.
    BadIpv4Header,
    /// IPv4 total length smaller than the header or larger than the frame.
    BadIpv4TotalLength,
    /// Malformed IPv4 authentication header.
    BadIpv4ExtHeader,
    /// Frame ends inside the fixed IPv6 header.
    TruncatedIpv6,
    /// IPv6 payload length larger than the frame.
    BadIpv6PayloadLength,
    /// Truncated or misplaced IPv6 extension header (including hop-by-hop not first).
    BadIpv6ExtHeader,
    /// IP payload shorter than a UDP header.
    TruncatedUdp,
    /// UDP length field differs from the IP payload length.
    BadUdpLength,
    /// IP payload shorter than the TCP header (fixed part or options).
    TruncatedTcp,
    /// TCP data offset below 5.
    BadTcpHeader,
    /// More IPv6 extension headers or AH headers than `engine.decode.max_ext_headers`.
    TooManyExtHeaders,
    /// ESP (RFC 4303): the transport header is encrypted, nothing can be inspected. Judged by
    /// `engine.esp`, not `engine.undecodable`.
    Esp,
    /// An IP fragment of TCP: only UDP datagrams are reassembled, so its SIP cannot be seen.
    FragmentedTcp,
    /// An IP fragment whose protocol is AH: the UDP header sits behind the AH header inside the
    /// reassembled datagram, which is not walked.
    FragmentedAh,
}

impl DecodeError {
    /// Every variant, in declaration order (for counter tables).
    pub const ALL: &'static [DecodeError] = &[
        DecodeError::Truncated,
        DecodeError::TruncatedEthernet,
        DecodeError::TruncatedVlan,
        DecodeError::TooManyVlans,
        DecodeError::BadIpVersion,
        DecodeError::TruncatedIpv4,
        DecodeError::BadIpv4Header,
        DecodeError::BadIpv4TotalLength,
        DecodeError::BadIpv4ExtHeader,
        DecodeError::TruncatedIpv6,
        DecodeError::BadIpv6PayloadLength,
        DecodeError::BadIpv6ExtHeader,
        DecodeError::TruncatedUdp,
        DecodeError::BadUdpLength,
        DecodeError::TruncatedTcp,
        DecodeError::BadTcpHeader,
        DecodeError::TooManyExtHeaders,
        DecodeError::Esp,
        DecodeError::FragmentedTcp,
        DecodeError::FragmentedAh,
    ];

    /// Stable snake_case name, used as a counter / metric label.
    pub fn name(&self) -> &'static str {
        match self {
            DecodeError::Truncated => "truncated",
            DecodeError::TruncatedEthernet => "truncated_ethernet",
            DecodeError::TruncatedVlan => "truncated_vlan",
            DecodeError::TooManyVlans => "too_many_vlans",
            DecodeError::BadIpVersion => "bad_ip_version",
            DecodeError::TruncatedIpv4 => "truncated_ipv4",
            DecodeError::BadIpv4Header => "bad_ipv4_header",
            DecodeError::BadIpv4TotalLength => "bad_ipv4_total_length",
            DecodeError::BadIpv4ExtHeader => "bad_ipv4_ext_header",
            DecodeError::TruncatedIpv6 => "truncated_ipv6",
            DecodeError::BadIpv6PayloadLength => "bad_ipv6_payload_length",
            DecodeError::BadIpv6ExtHeader => "bad_ipv6_ext_header",
            DecodeError::TruncatedUdp => "truncated_udp",
            DecodeError::BadUdpLength => "bad_udp_length",
            DecodeError::TruncatedTcp => "truncated_tcp",
            DecodeError::BadTcpHeader => "bad_tcp_header",
            DecodeError::TooManyExtHeaders => "too_many_ext_headers",
            DecodeError::Esp => "esp",
            DecodeError::FragmentedTcp => "fragmented_tcp",
            DecodeError::FragmentedAh => "fragmented_ah",
        }
    }
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for DecodeError {}

/// Layer-4 protocol of an IP packet (from the protocol / last next-header field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP (17).
    Udp,
    /// TCP (6).
    Tcp,
    /// SIP over WebSocket (RFC 7118) on TCP (6): never decoded from a frame, named by the
    /// stream a message came from, so that `transport` and Via `SIP/2.0/WS` agree.
    Ws,
    /// Any other IP protocol number.
    Other(u8),
}

impl Transport {
    /// `udp`, `tcp`, `ws` or `other`, as reports and rules (`transport`) name it.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Ws => "ws",
            Transport::Other(_) => "other",
        }
    }

    /// Maps an IP protocol number.
    pub fn from_proto(p: u8) -> Transport {
        match p {
            17 => Transport::Udp,
            6 => Transport::Tcp,
            p => Transport::Other(p),
        }
    }

    /// The IP protocol number.
    pub fn proto(self) -> u8 {
        match self {
            Transport::Udp => 17,
            Transport::Tcp | Transport::Ws => 6,
            Transport::Other(p) => p,
        }
    }
}

/// Fragment header fields of an IP fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragInfo {
    /// IPv4 identification (widened) or IPv6 fragment identification.
    pub id: u32,
    /// Offset of this fragment's data in the datagram, in bytes.
    pub offset: u32,
    /// More-fragments flag.
    pub more: bool,
}

/// A decoded IP frame: borrowed views, no copies.
#[derive(Clone, Debug)]
pub struct Decoded<'a> {
    /// VLAN ids, outermost first; only the first `vlan_count` are meaningful.
    pub vlans: [u16; MAX_VLAN_TAGS as usize],
    /// Number of VLAN tags (0..=[`MAX_VLAN_TAGS`]).
    pub vlan_count: u8,
    /// IP source address.
    pub src: IpAddr,
    /// IP destination address.
    pub dst: IpAddr,
    /// Layer-4 protocol.
    pub transport: Transport,
    /// UDP/TCP source port (0 for other protocols and non-first fragments).
    pub src_port: u16,
    /// UDP/TCP destination port (0 for other protocols and non-first fragments).
    pub dst_port: u16,
    /// L4 payload (UDP/TCP payload) when not a fragment; the whole IP payload fragment when `frag` is set.
    /// For other protocols, the IP payload after all extension headers.
    pub payload: &'a [u8],
    /// Set when the packet is a fragment (IPv4 MF/offset, IPv6 fragment header with M/offset).
    pub frag: Option<FragInfo>,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// Offset of the IP header in the frame.
    pub l3_offset: usize,
    /// Offset in the frame of the L4 header (of the fragment data for a fragment).
    pub l4_offset: usize,
    /// IP header length including options / extension headers up to `l4_offset`.
    pub ip_header_len: usize,
    /// IP packet length from the header (excludes Ethernet padding).
    pub ip_len: usize,
}

impl Decoded<'_> {
    /// True for an IPv6 packet.
    pub fn is_ipv6(&self) -> bool {
        self.src.is_ipv6()
    }

    /// The reassembly key of a fragment, `None` for a whole packet.
    ///
    /// The protocol is part of the key for IPv6 too (RFC 8200 keys on addresses and id only):
    /// fragments of one datagram that disagree on it are kept apart and time out, which
    /// drops them — failing closed.
    pub fn frag_key(&self) -> Option<reasm::FragKey> {
        self.frag.map(|f| reasm::FragKey {
            src: self.src,
            dst: self.dst,
            id: f.id,
            proto: self.transport.proto(),
        })
    }
}

/// Result of [`decode`].
#[derive(Clone, Debug)]
pub enum Frame<'a> {
    /// An IPv4 or IPv6 packet.
    Ip(Decoded<'a>),
    /// Anything else (ARP, LLDP, 802.3 length frames, ...), by its innermost ethertype.
    NotIp {
        /// Innermost ethertype (or 802.3 length).
        ethertype: u16,
    },
}

/// Most VLAN tags `engine.decode.max_vlan_tags` may allow (the size of [`Decoded::vlans`]).
pub const MAX_VLAN_TAGS: u8 = 16;
/// Most extension headers `engine.decode.max_ext_headers` may allow.
pub const MAX_EXT_HEADERS: u8 = 64;

/// How deep the decoder walks (`[engine.decode]`). One more tag or header than allowed is a
/// decode error, so an attacker cannot stack his way past inspection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeLimits {
    /// VLAN tags (802.1Q, 802.1ad, 0x9100) walked before the IP header. Default 4, at most
    /// [`MAX_VLAN_TAGS`]. Costs nothing until frames carry them.
    #[serde(deserialize_with = "de_max_vlan_tags")]
    pub max_vlan_tags: u8,
    /// IPv6 extension headers (AH included) or IPv4 AH headers walked before the transport
    /// header. Default 8, at most [`MAX_EXT_HEADERS`]. Each costs a few bounds checks.
    #[serde(deserialize_with = "de_max_ext_headers")]
    pub max_ext_headers: u8,
}

impl DecodeLimits {
    /// The defaults (4 tags, 8 extension headers).
    pub const DEFAULT: DecodeLimits = DecodeLimits { max_vlan_tags: 4, max_ext_headers: 8 };
    /// The widest limits there are.
    pub const WIDEST: DecodeLimits = DecodeLimits { max_vlan_tags: MAX_VLAN_TAGS, max_ext_headers: MAX_EXT_HEADERS };
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits::DEFAULT
    }
}

/// Reads an integer and refuses it above `max`; a refusal carries the value's location
/// (the TOML decoder adds the span), so the error names file, line and field.
fn at_most<'de, D: serde::Deserializer<'de>>(d: D, field: &str, max: u8) -> Result<u8, D::Error> {
    let v = u64::deserialize(d)?;
    match u8::try_from(v) {
        Ok(v) if v <= max => Ok(v),
        _ => Err(serde::de::Error::custom(format!("{field} = {v}: must be at most {max}"))),
    }
}

fn de_max_vlan_tags<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    at_most(d, "engine.decode.max_vlan_tags", MAX_VLAN_TAGS)
}

fn de_max_ext_headers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    at_most(d, "engine.decode.max_ext_headers", MAX_EXT_HEADERS)
}

/// [`decode_with`] the widest limits: for routing (sharding) and logging a frame whose verdict
/// the engine reaches with its configured limits.
pub fn decode(frame: &[u8]) -> Result<Frame<'_>, DecodeError> {
    decode_with(frame, &DecodeLimits::WIDEST)
}

/// Decodes an Ethernet II frame (without FCS) down to the UDP/TCP payload, walking at most
/// `limits` VLAN tags and extension headers.
pub fn decode_with<'a>(frame: &'a [u8], limits: &DecodeLimits) -> Result<Frame<'a>, DecodeError> {
    let eth = Ethernet2Slice::from_slice_without_fcs(frame)
        .map_err(|_| DecodeError::TruncatedEthernet)?;
    let mut ether_type = eth.ether_type();
    let mut rest = eth.payload_slice();
    let mut vlans = [0u16; MAX_VLAN_TAGS as usize];
    let mut vlan_count = 0u8;
    let max_vlans = limits.max_vlan_tags.min(MAX_VLAN_TAGS);
    loop {
        match ether_type {
            t if classify::VLAN_TPIDS.contains(&t.0) => {
                if vlan_count >= max_vlans {
                    return Err(DecodeError::TooManyVlans);
                }
                let vlan =
                    SingleVlanSlice::from_slice(rest).map_err(|_| DecodeError::TruncatedVlan)?;
                vlans[usize::from(vlan_count)] = vlan.vlan_identifier().value();
                vlan_count += 1;
                ether_type = vlan.ether_type();
                rest = vlan.payload_slice();
            }
            EtherType::IPV4 => {
                let mut d = ipv4(frame, rest, limits)?;
                (d.vlans, d.vlan_count) = (vlans, vlan_count);
                return Ok(Frame::Ip(d));
            }
            EtherType::IPV6 => {
                let mut d = ipv6(frame, rest, limits)?;
                (d.vlans, d.vlan_count) = (vlans, vlan_count);
                return Ok(Frame::Ip(d));
            }
            other => return Ok(Frame::NotIp { ethertype: other.0 }),
        }
    }
}

/// Parses a UDP header + payload (a reassembled datagram): returns (src_port, dst_port, payload).
///
/// Only meaningful when the datagram's [`reasm::FragKey::proto`] is 17 (UDP).
pub fn udp_datagram(d: &[u8]) -> Result<(u16, u16, &[u8]), DecodeError> {
    let h = UdpHeaderSlice::from_slice(d).map_err(|_| DecodeError::TruncatedUdp)?;
    // Strict equality: a length shorter than the IP payload would let the firewall and
    // the host disagree on where the datagram ends.
    if usize::from(h.length()) != d.len() {
        return Err(DecodeError::BadUdpLength);
    }
    Ok((h.source_port(), h.destination_port(), &d[UDP_HEADER_LEN..]))
}

const UDP_HEADER_LEN: usize = 8;

/// Offset of `inner` in `outer`; `inner` is always a subslice produced by etherparse.
fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    (inner.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize)
}

/// Layer-3 facts gathered before the transport layer is read.
struct L3<'a> {
    frame: &'a [u8],
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    l3_offset: usize,
    ip_len: usize,
}

impl<'a> L3<'a> {
    /// Builds the result for a fragment: its IP payload is not parsed, except that the
    /// ports are read when the first fragment holds a whole UDP / TCP header.
    fn fragment(self, proto: IpNumber, payload: &'a [u8], frag: FragInfo) -> Result<Decoded<'a>, DecodeError> {
        if proto.0 == next::ESP {
            return Err(DecodeError::Esp);
        }
        let transport = Transport::from_proto(proto.0);
        let mut ports = (0, 0);
        if frag.offset == 0 {
            match transport {
                Transport::Udp => {
                    if let Ok(u) = UdpHeaderSlice::from_slice(payload) {
                        ports = (u.source_port(), u.destination_port());
                    }
                }
                Transport::Tcp => {
                    if let Ok(t) = TcpSlice::from_slice(payload) {
                        ports = (t.source_port(), t.destination_port());
                    }
                }
                Transport::Ws | Transport::Other(_) => {}
            }
        }
        Ok(self.finish(transport, ports, payload, payload, Some(frag)))
    }

    /// Parses the transport layer of a whole (unfragmented) packet.
    fn transport(self, proto: IpNumber, ip_payload: &'a [u8]) -> Result<Decoded<'a>, DecodeError> {
        match proto {
            ip_number::UDP => {
                let (sp, dp, payload) = udp_datagram(ip_payload)?;
                Ok(self.finish(Transport::Udp, (sp, dp), ip_payload, payload, None))
            }
            ip_number::TCP => {
                let t = TcpSlice::from_slice(ip_payload).map_err(|e| match e {
                    err::tcp::HeaderSliceError::Len(_) => DecodeError::TruncatedTcp,
                    err::tcp::HeaderSliceError::Content(_) => DecodeError::BadTcpHeader,
                })?;
                let ports = (t.source_port(), t.destination_port());
                Ok(self.finish(Transport::Tcp, ports, ip_payload, t.payload(), None))
            }
            p if p.0 == next::ESP => Err(DecodeError::Esp),
            p => Ok(self.finish(Transport::Other(p.0), (0, 0), ip_payload, ip_payload, None)),
        }
    }

    fn finish(
        self,
        transport: Transport,
        (src_port, dst_port): (u16, u16),
        l4: &'a [u8],
        payload: &'a [u8],
        frag: Option<FragInfo>,
    ) -> Decoded<'a> {
        let l4_offset = offset_in(self.frame, l4);
        Decoded {
            vlans: [0; MAX_VLAN_TAGS as usize],
            vlan_count: 0,
            src: self.src,
            dst: self.dst,
            transport,
            src_port,
            dst_port,
            payload,
            frag,
            ttl: self.ttl,
            l3_offset: self.l3_offset,
            l4_offset,
            ip_header_len: l4_offset.saturating_sub(self.l3_offset),
            ip_len: self.ip_len,
        }
    }
}

fn ipv4<'a>(frame: &'a [u8], ip: &'a [u8], limits: &DecodeLimits) -> Result<Decoded<'a>, DecodeError> {
    let h = Ipv4HeaderSlice::from_slice(ip).map_err(|e| match e {
        err::ipv4::HeaderSliceError::Len(_) => DecodeError::TruncatedIpv4,
        err::ipv4::HeaderSliceError::Content(err::ipv4::HeaderError::UnexpectedVersion {
            ..
        }) => DecodeError::BadIpVersion,
        err::ipv4::HeaderSliceError::Content(_) => DecodeError::BadIpv4Header,
    })?;
    let header_len = h.slice().len();
    let total = usize::from(h.total_len());
    if total < header_len || total > ip.len() {
        return Err(DecodeError::BadIpv4TotalLength);
    }
    // Drops Ethernet padding: the IP length is authoritative.
    let ip = &ip[..total];
    let l3 = L3 {
        frame,
        src: IpAddr::V4(h.source_addr()),
        dst: IpAddr::V4(h.destination_addr()),
        ttl: h.ttl(),
        l3_offset: offset_in(frame, ip),
        ip_len: total,
    };
    if h.is_fragmenting_payload() {
        // The fragment data is everything after the IPv4 header (options included): an AH
        // header in a non-first fragment's data is data.
        let frag = FragInfo {
            id: u32::from(h.identification()),
            offset: u32::from(h.fragments_offset().byte_offset()),
            more: h.more_fragments(),
        };
        return l3.fragment(h.protocol(), &ip[header_len..], frag);
    }
    l3.chain(h.protocol(), &ip[header_len..], false, limits.max_ext_headers)
}

fn ipv6<'a>(frame: &'a [u8], ip: &'a [u8], limits: &DecodeLimits) -> Result<Decoded<'a>, DecodeError> {
    let h = Ipv6HeaderSlice::from_slice(ip).map_err(|e| match e {
        err::ipv6::HeaderSliceError::Len(_) => DecodeError::TruncatedIpv6,
        err::ipv6::HeaderSliceError::Content(_) => DecodeError::BadIpVersion,
    })?;
    let total = IPV6_HEADER_LEN + usize::from(h.payload_length());
    // A zero payload length would announce a jumbogram, which cannot cross an Ethernet
    // link: it is taken literally (an empty payload), never as "the rest of the frame".
    if total > ip.len() {
        return Err(DecodeError::BadIpv6PayloadLength);
    }
    let ip = &ip[..total];
    let l3 = L3 {
        frame,
        src: IpAddr::V6(h.source_addr()),
        dst: IpAddr::V6(h.destination_addr()),
        ttl: h.hop_limit(),
        l3_offset: offset_in(frame, ip),
        ip_len: total,
    };
    l3.chain(h.next_header(), &ip[IPV6_HEADER_LEN..], true, limits.max_ext_headers)
}

/// IP protocol numbers of the headers [`L3::chain`] walks.
mod next {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const DEST_OPTIONS: u8 = 60;
    /// Mobility (RFC 6275), HIP (RFC 7401), shim6 (RFC 5533), experiments (RFC 3692): IPv6
    /// extension headers in the generic format of RFC 8200 §4 (RFC 6564), walked like the rest.
    pub const GENERIC: [u8; 5] = [135, 139, 140, 253, 254];
}

impl<'a> L3<'a> {
    /// Walks the headers between the IP header and the transport header: over IPv4, AH
    /// (RFC 4302); over IPv6, every extension header including AH and a fragment header.
    ///
    /// The chain is walked here rather than with etherparse's `Ipv6ExtensionsSlice` /
    /// `Ipv4Slice`, which read on past a fragment header (in a non-first fragment what follows
    /// it is fragment data, RFC 8200 §4.5) and do not bound the chain's length.
    fn chain(self, mut proto: IpNumber, mut rest: &'a [u8], v6: bool, max: u8) -> Result<Decoded<'a>, DecodeError> {
        let bad = if v6 { DecodeError::BadIpv6ExtHeader } else { DecodeError::BadIpv4ExtHeader };
        let mut walked = 0u8;
        loop {
            let p = proto.0;
            let is_ext = p == next::AH
                || (v6 && (matches!(p, next::HOP_BY_HOP | next::ROUTING | next::FRAGMENT | next::DEST_OPTIONS) || next::GENERIC.contains(&p)));
            if !is_ext {
                return self.transport(proto, rest);
            }
            if walked >= max {
                return Err(DecodeError::TooManyExtHeaders);
            }
            // RFC 8200 §4.1: hop-by-hop only right after the IPv6 header.
            if p == next::HOP_BY_HOP && walked > 0 {
                return Err(bad);
            }
            walked += 1;
            match p {
                next::AH => {
                    let e = IpAuthHeaderSlice::from_slice(rest).map_err(|_| bad)?;
                    proto = e.next_header();
                    rest = &rest[e.slice().len()..];
                }
                next::FRAGMENT => {
                    let f = Ipv6FragmentHeaderSlice::from_slice(rest).map_err(|_| bad)?;
                    proto = f.next_header();
                    rest = &rest[f.slice().len()..];
                    // An atomic fragment (offset 0, M=0, RFC 6946) is a whole packet.
                    if f.is_fragmenting_payload() {
                        let frag = FragInfo {
                            id: f.identification(),
                            offset: u32::from(f.fragment_offset().byte_offset()),
                            more: f.more_fragments(),
                        };
                        return self.fragment(proto, rest, frag);
                    }
                }
                _ => {
                    let e = Ipv6RawExtHeaderSlice::from_slice(rest).map_err(|_| bad)?;
                    proto = e.next_header();
                    rest = &rest[e.slice().len()..];
                }
            }
        }
    }
}

const IPV6_HEADER_LEN: usize = 40;

#[cfg(test)]
mod tests;
