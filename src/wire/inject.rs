//! Reply frames: the SIP response the firewall sends back when a rule says `reject`.
//!
//! [`build_reply`] turns the request's frame around. The appliance is a transparent bridge with
//! no MAC or IP address of its own, so the reply speaks as the host the request was addressed
//! to: MACs, IP addresses and UDP ports are swapped, and the request's VLAN tags are kept
//! (same TPIDs, same TCIs, same order) so the reply goes back on the segment it came from.
//! Slicing the request is etherparse's ([`SlicedPacket`]); so are the header serialisation
//! and the checksums.
//!
//! Rules that hold for every input:
//! - `build_reply` never panics and never allocates; it writes only into `out`, and any
//!   `Ok(n)` has `n <= out.len()`. On [`InjectError::TooLarge`] `out` may be partly written.
//! - Only a whole UDP datagram is answered. TCP is refused: a segment would need sequence
//!   numbers the firewall does not track. Fragments are refused, the first fragment of a
//!   reassembled datagram included: etherparse does not slice a fragment's UDP header.
//! - Replies are never fragmented: IP packets over [`MAX_IP_LEN`] are refused.
//! - Frames are not padded to the 60-byte Ethernet minimum: a SIP response, with its
//!   mandatory headers, is far longer than the 18 bytes that would need it.

use etherparse::{
    IpNumber, Ipv4Header, Ipv4HeaderSlice, Ipv6Header, Ipv6HeaderSlice, LinkExtSlice, LinkSlice,
    NetSlice, SlicedPacket, TcpHeader, TransportSlice, UdpHeader,
};

/// Why a response could not be injected (counted by the data path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectError {
    /// The request is an IP packet but not UDP (TCP or any other protocol).
    NotUdp,
    /// A reset was asked for a frame that is not a TCP segment.
    NotTcp,
    /// No IP packet could be sliced out of the request: malformed or truncated headers, a
    /// non-IP ethertype, MACsec, or more VLAN tags than etherparse reads.
    Undecodable,
    /// The reply does not fit `out`, or its IP packet exceeds [`MAX_IP_LEN`].
    TooLarge,
    /// The request is an IP fragment (IPv4 MF or offset, IPv6 fragment header with M or offset).
    Fragmented,
}

impl InjectError {
    /// Every variant, in declaration order (for counter tables).
    pub const ALL: &'static [InjectError] = &[
        InjectError::NotUdp,
        InjectError::NotTcp,
        InjectError::Undecodable,
        InjectError::TooLarge,
        InjectError::Fragmented,
    ];

    /// Counter name of the variant.
    pub fn name(&self) -> &'static str {
        match self {
            InjectError::NotUdp => "not_udp",
            InjectError::NotTcp => "not_tcp",
            InjectError::Undecodable => "undecodable",
            InjectError::TooLarge => "too_large",
            InjectError::Fragmented => "fragmented",
        }
    }
}

impl core::fmt::Display for InjectError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for InjectError {}

/// Largest IP packet of a reply: the Ethernet MTU, as replies are never fragmented.
pub const MAX_IP_LEN: usize = 1500;

/// TTL / hop limit of replies: what a host's stack starts a fresh packet with.
const TTL: u8 = 64;

/// Offset of the ethertype in an Ethernet II header, after the two MACs.
const ETHER_TYPE_AT: usize = 12;

/// Writes into `out` (a frame buffer of out.len() capacity) an Ethernet frame that answers
/// `request` (the complete Ethernet frame that carried the SIP request) with UDP payload
/// `sip_response`; returns the frame length.
///
/// A fragment, such as the first fragment of a reassembled datagram, is refused with
/// [`InjectError::Fragmented`].
pub fn build_reply(
    request: &[u8],
    sip_response: &[u8],
    out: &mut [u8],
) -> Result<usize, InjectError> {
    let req = SlicedPacket::from_ethernet(request).map_err(|_| InjectError::Undecodable)?;
    let (eth, tags) = link_of(&req, request)?;
    if req.is_ip_payload_fragmented() {
        return Err(InjectError::Fragmented);
    }
    let Some(TransportSlice::Udp(udp)) = &req.transport else {
        return Err(InjectError::NotUdp);
    };
    let (src_port, dst_port) = (udp.destination_port(), udp.source_port());

    let cap = out.len();
    let rest = put(out, &eth.source()).ok_or(InjectError::TooLarge)?;
    let rest = put(rest, &eth.destination()).ok_or(InjectError::TooLarge)?;
    let rest = put(rest, tags).ok_or(InjectError::TooLarge)?;
    let rest = match &req.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ipv4_header(&ip.header(), IpNumber::UDP, udp_len(Ipv4Header::MIN_LEN, sip_response.len())?, true)?;
            let udp = UdpHeader::with_ipv4_checksum(src_port, dst_port, &h, sip_response)
                .map_err(|_| InjectError::TooLarge)?;
            put(rest, &h.to_bytes()).and_then(|r| put(r, &udp.to_bytes()))
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ipv6_header(&ip.header(), IpNumber::UDP, udp_len(Ipv6Header::LEN, sip_response.len())?, true);
            let udp = UdpHeader::with_ipv6_checksum(src_port, dst_port, &h, sip_response)
                .map_err(|_| InjectError::TooLarge)?;
            put(rest, &h.to_bytes()).and_then(|r| put(r, &udp.to_bytes()))
        }
        // Ruled out above; kept for the match to be exhaustive.
        Some(NetSlice::Arp(_)) | None => return Err(InjectError::Undecodable),
    };
    let rest = rest
        .and_then(|r| put(r, sip_response))
        .ok_or(InjectError::TooLarge)?;
    Ok(cap - rest.len())
}

/// The reply's IPv4 header (addresses swapped when `back`): no options, TTL 64, DF, checksum set.
fn ipv4_header(req: &Ipv4HeaderSlice<'_>, proto: IpNumber, l4_len: u16, back: bool) -> Result<Ipv4Header, InjectError> {
    let (src, dst) = if back { (req.destination(), req.source()) } else { (req.source(), req.destination()) };
    let mut h = Ipv4Header::new(l4_len, TTL, proto, src, dst).map_err(|_| InjectError::TooLarge)?;
    // The reply rides the QoS class of the signalling it answers. ECN stays Not-ECT: the
    // firewall is not an ECN-capable transport and must not echo a CE mark.
    h.dscp = req.dcp();
    // Deterministic (the same request gets the same reply bytes), and never 0 so that a
    // capture does not show the reply with what looks like an unset id.
    h.identification = match req.identification().wrapping_add(1) {
        0 => 1,
        id => id,
    };
    h.dont_fragment = true;
    h.header_checksum = h.calc_header_checksum();
    Ok(h)
}

/// The reply's IPv6 header (addresses swapped when `back`): `proto` right after it, hop limit 64.
fn ipv6_header(req: &Ipv6HeaderSlice<'_>, proto: IpNumber, l4_len: u16, back: bool) -> Ipv6Header {
    let (source, destination) = if back { (req.destination(), req.source()) } else { (req.source(), req.destination()) };
    let mut h = Ipv6Header {
        traffic_class: 0,
        // Reflected, as a stateless responder does, so the reply is seen as the same flow.
        flow_label: req.flow_label(),
        payload_length: l4_len,
        // The request's extension headers are the sender's (routing, options): not echoed.
        next_header: proto,
        hop_limit: TTL,
        source,
        destination,
    };
    // The DSCP half of the traffic class only, for the same reasons as IPv4's ECN bits.
    h.set_dscp(req.dscp());
    h
}

/// The Ethernet II header of `req` and the bytes from its ethertype to the IP header (the
/// VLAN tags, kept as they are); refuses frames that are not Ethernet II over IP.
fn link_of<'a>(req: &SlicedPacket<'a>, frame: &'a [u8]) -> Result<(etherparse::Ethernet2Slice<'a>, &'a [u8]), InjectError> {
    let Some(LinkSlice::Ethernet2(eth)) = &req.link else {
        return Err(InjectError::Undecodable);
    };
    // Ethertype and VLAN tags are copied as they are: the reply is the same IP version, so
    // even the innermost ethertype stays right. MACsec could not be re-emitted (its ICV).
    let mut l2_len = ETHER_TYPE_AT + 2;
    for ext in &req.link_exts {
        match ext {
            LinkExtSlice::Vlan(v) => l2_len += v.header_len(),
            LinkExtSlice::Macsec(_) => return Err(InjectError::Undecodable),
        }
    }
    let tags = frame.get(ETHER_TYPE_AT..l2_len).ok_or(InjectError::Undecodable)?;
    match &req.net {
        Some(NetSlice::Ipv4(_) | NetSlice::Ipv6(_)) => Ok((eth.clone(), tags)),
        Some(NetSlice::Arp(_)) | None => Err(InjectError::Undecodable),
    }
}

/// Writes into `out` a TCP RST|ACK of the connection `segment` (an Ethernet frame carrying a
/// TCP segment) belongs to, with sequence number `seq` and acknowledgement `ack`; returns the
/// frame length. `back` sends it to the segment's sender (as its peer), otherwise on to its
/// receiver (as the sender). The firewall has no address of its own, like [`build_reply`].
pub fn build_tcp_reset(segment: &[u8], back: bool, seq: u32, ack: u32, out: &mut [u8]) -> Result<usize, InjectError> {
    let req = SlicedPacket::from_ethernet(segment).map_err(|_| InjectError::Undecodable)?;
    let (eth, tags) = link_of(&req, segment)?;
    if req.is_ip_payload_fragmented() {
        return Err(InjectError::Fragmented);
    }
    let Some(TransportSlice::Tcp(tcp)) = &req.transport else {
        return Err(InjectError::NotTcp);
    };
    let (sport, dport) = (tcp.source_port(), tcp.destination_port());
    let mut t = if back { TcpHeader::new(dport, sport, seq, 0) } else { TcpHeader::new(sport, dport, seq, 0) };
    (t.rst, t.ack, t.acknowledgment_number) = (true, true, ack);
    let (smac, dmac) = if back { (eth.destination(), eth.source()) } else { (eth.source(), eth.destination()) };
    let cap = out.len();
    let rest = put(out, &dmac).and_then(|r| put(r, &smac)).and_then(|r| put(r, tags)).ok_or(InjectError::TooLarge)?;
    let l4_len = TcpHeader::MIN_LEN as u16;
    let rest = match &req.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ipv4_header(&ip.header(), IpNumber::TCP, l4_len, back)?;
            t.checksum = t.calc_checksum_ipv4(&h, &[]).map_err(|_| InjectError::TooLarge)?;
            put(rest, &h.to_bytes())
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ipv6_header(&ip.header(), IpNumber::TCP, l4_len, back);
            t.checksum = t.calc_checksum_ipv6(&h, &[]).map_err(|_| InjectError::TooLarge)?;
            put(rest, &h.to_bytes())
        }
        Some(NetSlice::Arp(_)) | None => return Err(InjectError::Undecodable),
    };
    let rest = rest.and_then(|r| put(r, &t.to_bytes())).ok_or(InjectError::TooLarge)?;
    Ok(cap - rest.len())
}

/// UDP length of a reply whose IP header is `ip_header_len` bytes, within [`MAX_IP_LEN`].
fn udp_len(ip_header_len: usize, sip_len: usize) -> Result<u16, InjectError> {
    let room = MAX_IP_LEN - ip_header_len - UdpHeader::LEN;
    if sip_len > room {
        return Err(InjectError::TooLarge);
    }
    u16::try_from(UdpHeader::LEN + sip_len).map_err(|_| InjectError::TooLarge)
}

/// Copies `bytes` to the start of `buf` and returns the rest; `None` when `buf` is too short.
fn put<'a>(buf: &'a mut [u8], bytes: &[u8]) -> Option<&'a mut [u8]> {
    let (head, rest) = buf.split_at_mut_checked(bytes.len())?;
    head.copy_from_slice(bytes);
    Some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::{sip_fragments_v4, sip_fragments_v6, DST_MAC, SRC_MAC};
    use crate::wire::{decode, Frame};
    use etherparse::{
        DoubleVlanHeader, EtherType, IpDscp, IpEcn, IpHeaders, Ipv4Options, Ipv6Extensions,
        Ipv6FlowLabel, Ipv6RawExtHeader, PacketBuilder, SingleVlanHeader, VlanHeader, VlanId,
        VlanPcp,
    };
    use proptest::prelude::*;
    use std::net::IpAddr;

    const A4: [u8; 4] = [192, 0, 2, 1];
    const B4: [u8; 4] = [192, 0, 2, 2];
    const A6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const B6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const INVITE: &[u8] = b"INVITE sip:b@example.com SIP/2.0\r\nCall-ID: x\r\n\r\n";
    const RESPONSE: &[u8] = b"SIP/2.0 403 Forbidden\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n";
    const ETH: usize = 14;

    /// A request's IPv4 header: DSCP EF, ECN ECT(1), id 0x1234, one 4-byte option.
    fn v4_header() -> Ipv4Header {
        let mut h = Ipv4Header::new(0, 9, IpNumber::UDP, A4, B4).unwrap();
        h.dscp = IpDscp::try_new(46).unwrap();
        h.ecn = IpEcn::try_new(1).unwrap();
        h.identification = 0x1234;
        h.options = Ipv4Options::try_from(&[0x94, 4, 0, 0][..]).unwrap();
        h
    }

    /// A request's IPv6 header (traffic class EF + ECT(1), flow label set) with a hop-by-hop
    /// options header.
    fn v6_headers() -> IpHeaders {
        let h = Ipv6Header {
            traffic_class: (46 << 2) | 1,
            flow_label: Ipv6FlowLabel::try_new(0x1_2345).unwrap(),
            payload_length: 0,
            next_header: IpNumber::UDP,
            hop_limit: 9,
            source: A6,
            destination: B6,
        };
        let exts = Ipv6Extensions {
            hop_by_hop_options: Some(
                Ipv6RawExtHeader::new_raw(IpNumber::UDP, &[1, 4, 0, 0, 0, 0]).unwrap(),
            ),
            ..Default::default()
        };
        IpHeaders::Ipv6(h, exts)
    }

    fn tag(pcp: u8, dei: bool, vid: u16) -> SingleVlanHeader {
        SingleVlanHeader {
            pcp: VlanPcp::try_new(pcp).unwrap(),
            drop_eligible_indicator: dei,
            vlan_id: VlanId::try_new(vid).unwrap(),
            ether_type: EtherType(0),
        }
    }

    /// A SIP request frame from A (SRC_MAC) to B (DST_MAC), port 5070 to 5060.
    fn request(vlan: Option<VlanHeader>, ip: IpHeaders) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(SRC_MAC, DST_MAC);
        let b = match vlan {
            Some(v) => b.vlan(v).ip(ip),
            None => b.ip(ip),
        };
        let mut f = Vec::new();
        b.udp(5070, 5060).write(&mut f, INVITE).unwrap();
        f
    }

    fn v4_request(vlan: Option<VlanHeader>) -> Vec<u8> {
        request(vlan, IpHeaders::Ipv4(v4_header(), Default::default()))
    }

    fn v6_request(vlan: Option<VlanHeader>) -> Vec<u8> {
        request(vlan, v6_headers())
    }

    fn reply(req: &[u8], sip: &[u8]) -> Vec<u8> {
        let mut out = [0u8; 1600];
        let n = build_reply(req, sip, &mut out).unwrap();
        out[..n].to_vec()
    }

    fn reply_err(req: &[u8], sip: &[u8]) -> InjectError {
        let mut out = [0u8; 1600];
        build_reply(req, sip, &mut out).unwrap_err()
    }

    /// Checks what every reply must be, against the request it answers.
    fn check_reply(req: &[u8], rep: &[u8], sip: &[u8]) {
        let q = SlicedPacket::from_ethernet(req).unwrap();
        let r = SlicedPacket::from_ethernet(rep).unwrap();
        let (Some(LinkSlice::Ethernet2(qe)), Some(LinkSlice::Ethernet2(re))) = (&q.link, &r.link)
        else {
            panic!("not Ethernet II");
        };
        assert_eq!((re.source(), re.destination()), (DST_MAC, SRC_MAC));
        assert_eq!(
            (re.source(), re.destination()),
            (qe.destination(), qe.source())
        );
        assert_eq!(re.ether_type(), qe.ether_type());
        let tags = |p: &SlicedPacket<'_>| -> Vec<_> {
            p.link_exts.iter().map(|e| e.to_header()).collect()
        };
        assert_eq!(tags(&r), tags(&q));

        let Some(TransportSlice::Udp(qu)) = &q.transport else {
            panic!("request not UDP");
        };
        let Some(TransportSlice::Udp(ru)) = &r.transport else {
            panic!("reply not UDP");
        };
        let ru = ru.to_header();
        assert_eq!(
            (ru.source_port, ru.destination_port),
            (qu.destination_port(), qu.source_port())
        );
        assert_eq!(usize::from(ru.length), UdpHeader::LEN + sip.len());
        assert_eq!(
            r.ip_payload().unwrap().payload,
            &rep[rep.len() - sip.len() - 8..]
        );

        match (&q.net, &r.net) {
            (Some(NetSlice::Ipv4(qi)), Some(NetSlice::Ipv4(ri))) => {
                let (qh, rh) = (qi.header(), ri.header().to_header());
                assert_eq!((rh.source, rh.destination), (qh.destination(), qh.source()));
                assert_eq!(rh.header_len(), Ipv4Header::MIN_LEN);
                assert_eq!((rh.time_to_live, rh.protocol), (TTL, IpNumber::UDP));
                assert!(rh.dont_fragment && !rh.more_fragments);
                assert_eq!(rh.fragment_offset.value(), 0);
                assert_ne!(rh.identification, 0);
                assert_eq!((rh.dscp, rh.ecn), (qh.dcp(), IpEcn::ZERO));
                assert_eq!(rh.header_checksum, rh.calc_header_checksum());
                assert_eq!(ru.checksum, ru.calc_checksum_ipv4(&rh, sip).unwrap());
                assert_ne!(ru.checksum, 0);
            }
            (Some(NetSlice::Ipv6(qi)), Some(NetSlice::Ipv6(ri))) => {
                let (qh, rh) = (qi.header(), ri.header().to_header());
                assert_eq!((rh.source, rh.destination), (qh.destination(), qh.source()));
                assert_eq!((rh.hop_limit, rh.next_header), (TTL, IpNumber::UDP));
                assert!(ri.extensions().is_empty());
                assert_eq!((rh.dscp(), rh.ecn()), (qh.dscp(), IpEcn::ZERO));
                assert_eq!(rh.flow_label, qh.flow_label());
                assert_eq!(ru.checksum, ru.calc_checksum_ipv6(&rh, sip).unwrap());
            }
            other => panic!("IP versions differ: {other:?}"),
        }

        // The firewall's own strict decoder agrees, down to the payload.
        let (Ok(Frame::Ip(qd)), Ok(Frame::Ip(rd))) = (decode(req), decode(rep)) else {
            panic!("decode failed");
        };
        assert_eq!((rd.src, rd.dst), (qd.dst, qd.src));
        assert_eq!((rd.src_port, rd.dst_port), (qd.dst_port, qd.src_port));
        assert_eq!((rd.vlans, rd.vlan_count), (qd.vlans, qd.vlan_count));
        assert_eq!((rd.payload, rd.frag, rd.ttl), (sip, None, TTL));
    }

    #[test]
    fn reply_to_udp_v4() {
        let req = v4_request(None);
        let rep = reply(&req, RESPONSE);
        check_reply(&req, &rep, RESPONSE);
        assert_eq!(rep.len(), ETH + 20 + 8 + RESPONSE.len());
        // DSCP EF and the request id + 1 (the request had an option: IHL 6).
        assert_eq!((rep[ETH], rep[ETH + 1]), (0x45, 46 << 2));
        assert_eq!(&rep[ETH + 4..ETH + 6], &[0x12, 0x35]);
        assert_eq!(rep[ETH + 8], TTL);
        assert_eq!(&rep[ETH + 12..ETH + 20], &[B4, A4].concat()[..]);
    }

    #[test]
    fn reply_to_udp_v6_drops_extension_headers() {
        let req = v6_request(None);
        let rep = reply(&req, RESPONSE);
        check_reply(&req, &rep, RESPONSE);
        assert_eq!(rep.len(), ETH + 40 + 8 + RESPONSE.len());
        // Version 6, traffic class 0xb8 (EF, Not-ECT), flow label 0x12345, next header UDP.
        assert_eq!(&rep[ETH..ETH + 4], &[0x6b, 0x81, 0x23, 0x45]);
        assert_eq!((rep[ETH + 6], rep[ETH + 7]), (17, TTL));
        assert_eq!(&rep[ETH + 8..ETH + 40], &[B6, A6].concat()[..]);
    }

    #[test]
    fn reply_keeps_vlan_tag() {
        let req = v4_request(Some(VlanHeader::Single(tag(5, true, 100))));
        let rep = reply(&req, RESPONSE);
        check_reply(&req, &rep, RESPONSE);
        assert_eq!(&rep[12..18], &[0x81, 0x00, 0xb0, 100, 0x08, 0x00]);
    }

    #[test]
    fn reply_keeps_qinq_tags() {
        let vlan = VlanHeader::Double(DoubleVlanHeader {
            outer: tag(3, false, 0x123),
            inner: tag(6, true, 0x456),
        });
        for req in [
            v4_request(Some(vlan.clone())),
            v6_request(Some(vlan.clone())),
        ] {
            let rep = reply(&req, RESPONSE);
            check_reply(&req, &rep, RESPONSE);
            // 802.1ad outer (PCP 3, VID 0x123), then 802.1Q inner (PCP 6, DEI, VID 0x456).
            assert_eq!(
                &rep[12..20],
                &[0x88, 0xa8, 0x61, 0x23, 0x81, 0x00, 0xd4, 0x56]
            );
            assert_eq!(&rep[20..22], &req[20..22]);
        }
    }

    #[test]
    fn ipv4_id_skips_zero() {
        for (id, want) in [(0xfffe, 0xffff), (0xffff, 1), (0, 1)] {
            let mut h = v4_header();
            h.identification = id;
            let req = request(None, IpHeaders::Ipv4(h, Default::default()));
            let rep = reply(&req, RESPONSE);
            check_reply(&req, &rep, RESPONSE);
            assert_eq!(u16::from_be_bytes([rep[ETH + 4], rep[ETH + 5]]), want);
        }
    }

    #[test]
    fn empty_payload_is_answered() {
        for req in [v4_request(None), v6_request(None)] {
            check_reply(&req, &reply(&req, b""), b"");
        }
    }

    #[test]
    fn tcp_and_other_protocols_are_not_udp() {
        let mut tcp = Vec::new();
        PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
            .ipv4(A4, B4, 64)
            .tcp(40000, 5060, 1, 1000)
            .write(&mut tcp, INVITE)
            .unwrap();
        assert_eq!(reply_err(&tcp, RESPONSE), InjectError::NotUdp);
        let mut tcp6 = Vec::new();
        PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
            .ipv6(A6, B6, 64)
            .tcp(40000, 5060, 1, 1000)
            .write(&mut tcp6, INVITE)
            .unwrap();
        assert_eq!(reply_err(&tcp6, RESPONSE), InjectError::NotUdp);
        // SCTP (132): an IP packet etherparse leaves unsliced.
        let mut h = Ipv4Header::new(4, 64, IpNumber(132), A4, B4).unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut sctp = v4_request(None)[..ETH].to_vec();
        sctp.extend_from_slice(&h.to_bytes());
        sctp.extend_from_slice(&[0; 4]);
        assert_eq!(reply_err(&sctp, RESPONSE), InjectError::NotUdp);
    }

    #[test]
    fn non_ip_is_undecodable() {
        let mut arp = v4_request(None);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(reply_err(&arp, RESPONSE), InjectError::Undecodable);
        let mut lldp = v4_request(None);
        lldp[12..14].copy_from_slice(&[0x88, 0xcc]);
        assert_eq!(reply_err(&lldp, RESPONSE), InjectError::Undecodable);
    }

    #[test]
    fn fragments_are_refused() {
        let big = [b'x'; 3000];
        let v4 = sip_fragments_v4(A4, B4, (5070, 5060), 7, &big, 1480);
        let v6 = sip_fragments_v6(A6, B6, (5070, 5060), 7, &big, 1400);
        for f in v4.iter().chain(&v6) {
            assert_eq!(reply_err(f, RESPONSE), InjectError::Fragmented);
        }
        // An atomic fragment (offset 0, M clear, RFC 6946) is a whole datagram.
        let atomic = &sip_fragments_v6(A6, B6, (5070, 5060), 7, INVITE, 1400)[0];
        check_reply(atomic, &reply(atomic, RESPONSE), RESPONSE);
    }

    #[test]
    fn oversized_replies_are_refused() {
        let sip = [b'x'; MAX_IP_LEN];
        let v4 = v4_request(None);
        let fits = MAX_IP_LEN - 20 - 8;
        check_reply(&v4, &reply(&v4, &sip[..fits]), &sip[..fits]);
        assert_eq!(reply_err(&v4, &sip[..fits + 1]), InjectError::TooLarge);
        let v6 = v6_request(None);
        let fits = MAX_IP_LEN - 40 - 8;
        check_reply(&v6, &reply(&v6, &sip[..fits]), &sip[..fits]);
        assert_eq!(reply_err(&v6, &sip[..fits + 1]), InjectError::TooLarge);
        assert_eq!(
            build_reply(&v6, &vec![0; 70_000], &mut [0; 1600]),
            Err(InjectError::TooLarge)
        );
    }

    #[test]
    fn reply_must_fit_out() {
        let req = v4_request(Some(VlanHeader::Single(tag(0, false, 7))));
        let need = ETH + 4 + 20 + 8 + RESPONSE.len();
        let mut out = vec![0; need];
        assert_eq!(build_reply(&req, RESPONSE, &mut out), Ok(need));
        check_reply(&req, &out, RESPONSE);
        for short in [0, 6, ETH, need - RESPONSE.len() - 1, need - 1] {
            let mut out = vec![0; short];
            assert_eq!(
                build_reply(&req, RESPONSE, &mut out),
                Err(InjectError::TooLarge),
                "{short}"
            );
        }
    }

    #[test]
    fn truncated_requests_are_undecodable() {
        let qinq = VlanHeader::Double(DoubleVlanHeader {
            outer: tag(0, false, 1),
            inner: tag(0, false, 2),
        });
        for req in [v4_request(None), v6_request(Some(qinq))] {
            for n in 0..req.len() {
                assert_eq!(
                    reply_err(&req[..n], RESPONSE),
                    InjectError::Undecodable,
                    "{n}"
                );
            }
        }
    }

    #[test]
    fn macsec_is_undecodable() {
        // An unencrypted MACsec SecTAG (TCI/AN 0, short length 0, PN 1) before IPv4.
        let v4 = v4_request(None);
        let mut f = v4[..12].to_vec();
        f.extend_from_slice(&[0x88, 0xe5, 0, 0, 0, 0, 0, 1, 0x08, 0x00]);
        f.extend_from_slice(&v4[ETH..]);
        let sliced = SlicedPacket::from_ethernet(&f).unwrap();
        assert!(matches!(sliced.link_exts[..], [LinkExtSlice::Macsec(_)]));
        assert!(matches!(sliced.transport, Some(TransportSlice::Udp(_))));
        assert_eq!(reply_err(&f, RESPONSE), InjectError::Undecodable);
    }

    #[test]
    fn error_names_are_distinct() {
        let names: std::collections::HashSet<_> =
            InjectError::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(names.len(), InjectError::ALL.len());
        assert_eq!(InjectError::Fragmented.to_string(), "fragmented");
    }

    #[test]
    fn reply_to_the_reply_is_the_request_turned_around_twice() {
        let req = v6_request(Some(VlanHeader::Single(tag(2, false, 9))));
        let rep = reply(&req, RESPONSE);
        let back = reply(&rep, INVITE);
        let (Ok(Frame::Ip(q)), Ok(Frame::Ip(b))) = (decode(&req), decode(&back)) else {
            panic!("decode failed");
        };
        assert_eq!(
            (b.src, b.dst, b.src_port, b.dst_port),
            (q.src, q.dst, q.src_port, q.dst_port)
        );
        assert_eq!(&back[..ETH + 4], &req[..ETH + 4]);
        assert!(matches!(q.src, IpAddr::V6(_)));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            req in proptest::collection::vec(any::<u8>(), 0..1600),
            sip in proptest::collection::vec(any::<u8>(), 0..1600),
            cap in 0usize..1700,
        ) {
            let mut out = vec![0u8; cap];
            if let Ok(n) = build_reply(&req, &sip, &mut out) {
                prop_assert!(n <= cap);
            }
        }

        #[test]
        fn mutated_requests_never_panic(
            which in 0usize..4,
            flips in proptest::collection::vec((0usize..120, any::<u8>()), 1..6),
            cut in proptest::option::of(0usize..200),
            sip_len in 0usize..1600,
            cap in 0usize..1700,
        ) {
            let qinq = VlanHeader::Double(DoubleVlanHeader {
                outer: tag(1, false, 10),
                inner: tag(2, true, 20),
            });
            let mut f = match which {
                0 => v4_request(None),
                1 => v6_request(None),
                2 => v4_request(Some(qinq)),
                _ => v6_request(Some(qinq)),
            };
            for (at, v) in flips {
                if let Some(b) = f.get_mut(at) { *b = v; }
            }
            if let Some(cut) = cut {
                f.truncate(cut * f.len() / 200);
            }
            let sip = vec![b's'; sip_len];
            let mut out = vec![0u8; cap];
            if let Ok(n) = build_reply(&f, &sip, &mut out) {
                prop_assert!(n <= cap);
                prop_assert!(n >= ETH + 20 + 8 + sip_len);
                // Whatever was answered is a frame the firewall itself decodes (a third
                // VLAN tag aside, which `decode` refuses by design).
                let three_tags = SlicedPacket::from_ethernet(&f)
                    .is_ok_and(|p| p.link_exts.len() > 2);
                if !three_tags {
                    prop_assert!(matches!(decode(&out[..n]), Ok(Frame::Ip(_))), "{:?}", decode(&out[..n]));
                }
            }
        }
    }

    #[test]
    fn a_tcp_reset_goes_either_way_with_the_given_numbers_and_a_valid_checksum() {
        use crate::fixtures::{tcp_frame, tcp_flags::ACK};
        for (c, s) in [("10.77.0.1:40000", "10.77.0.2:5060"), ("[2001:db8::1]:40000", "[2001:db8::2]:5060")] {
            let (c, s): (std::net::SocketAddr, std::net::SocketAddr) = (c.parse().unwrap(), s.parse().unwrap());
            let seg = tcp_frame(c, s, 1000, 2000, ACK, b"OPTIONS sip:x SIP/2.0\r\n");
            for back in [false, true] {
                let mut out = [0u8; 256];
                let n = build_tcp_reset(&seg, back, 7, 9, &mut out).unwrap();
                let p = SlicedPacket::from_ethernet(&out[..n]).unwrap();
                let Some(TransportSlice::Tcp(t)) = &p.transport else { panic!("not TCP") };
                let (src, dst) = if back { (s, c) } else { (c, s) };
                assert_eq!((t.source_port(), t.destination_port()), (src.port(), dst.port()));
                assert!(t.rst() && t.ack() && !t.syn() && t.payload().is_empty());
                assert_eq!((t.sequence_number(), t.acknowledgment_number()), (7, 9));
                let h = t.to_header();
                let sum = match &p.net {
                    Some(NetSlice::Ipv4(ip)) => {
                        assert_eq!(std::net::IpAddr::from(ip.header().source_addr()), src.ip());
                        h.calc_checksum_ipv4(&ip.header().to_header(), &[]).unwrap()
                    }
                    Some(NetSlice::Ipv6(ip)) => {
                        assert_eq!(std::net::IpAddr::from(ip.header().source_addr()), src.ip());
                        h.calc_checksum_ipv6(&ip.header().to_header(), &[]).unwrap()
                    }
                    _ => panic!("not IP"),
                };
                assert_eq!(sum, t.checksum());
                let Some(LinkSlice::Ethernet2(eth)) = &p.link else { panic!() };
                let seg_eth = etherparse::Ethernet2Slice::from_slice_without_fcs(&seg).unwrap();
                let want_src = if back { seg_eth.destination() } else { seg_eth.source() };
                assert_eq!(eth.source(), want_src);
            }
        }
        let udp = crate::fixtures::udp_frame("10.0.0.1:5060".parse().unwrap(), "10.0.0.2:5060".parse().unwrap(), b"x");
        assert_eq!(build_tcp_reset(&udp, true, 1, 1, &mut [0u8; 256]), Err(InjectError::NotTcp));
    }
}
