use super::testutil::*;
use super::*;
use etherparse::{Ethernet2Header, IpNumber, Ipv4Header, Ipv4Options, PacketBuilder, VlanId};
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

const A4: [u8; 4] = [192, 0, 2, 1];
const B4: [u8; 4] = [192, 0, 2, 2];
const A6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const B6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const SIP: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n";
const ETH: usize = 14;

fn udp4(payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
        .ipv4(A4, B4, 64)
        .udp(5060, 5070);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

fn udp6(payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
        .ipv6(A6, B6, 33)
        .udp(5060, 5070);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

fn tcp4(payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
        .ipv4(A4, B4, 64)
        .tcp(40000, 5060, 1, 1000);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

fn ip(f: &[u8]) -> Decoded<'_> {
    match decode_with(f, &DecodeLimits::DEFAULT) {
        Ok(Frame::Ip(d)) => d,
        other => panic!("expected IP, got {other:?}"),
    }
}

fn err(f: &[u8]) -> DecodeError {
    match decode_with(f, &DecodeLimits::DEFAULT) {
        Err(e) => e,
        Ok(other) => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn plain_udp_v4() {
    let f = udp4(SIP);
    let d = ip(&f);
    assert_eq!(d.src, IpAddr::V4(Ipv4Addr::from(A4)));
    assert_eq!(d.dst, IpAddr::V4(Ipv4Addr::from(B4)));
    assert_eq!(
        (d.transport, d.src_port, d.dst_port),
        (Transport::Udp, 5060, 5070)
    );
    assert_eq!(d.payload, SIP);
    assert_eq!((d.vlan_count, d.frag, d.ttl), (0, None, 64));
    assert_eq!(
        (d.l3_offset, d.l4_offset, d.ip_header_len, d.ip_len),
        (14, 34, 20, 20 + 8 + SIP.len())
    );
    assert!(!d.is_ipv6());
    assert_eq!(d.frag_key(), None);
}

#[test]
fn plain_udp_v6() {
    let f = udp6(SIP);
    let d = ip(&f);
    assert_eq!(d.src, IpAddr::V6(Ipv6Addr::from(A6)));
    assert_eq!(
        (d.transport, d.src_port, d.dst_port),
        (Transport::Udp, 5060, 5070)
    );
    assert_eq!(
        (d.payload, d.ttl, d.l4_offset, d.ip_header_len),
        (SIP, 33, 54, 40)
    );
    assert!(d.is_ipv6());
}

#[test]
fn tcp_v4() {
    let f = tcp4(SIP);
    let d = ip(&f);
    assert_eq!(
        (d.transport, d.src_port, d.dst_port, d.payload),
        (Transport::Tcp, 40000, 5060, SIP)
    );
}

#[test]
fn single_vlan() {
    let b = PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
        .single_vlan(VlanId::try_new(100).unwrap())
        .ipv4(A4, B4, 64)
        .udp(5060, 5060);
    let mut f = Vec::new();
    b.write(&mut f, SIP).unwrap();
    let d = ip(&f);
    assert_eq!(
        (d.vlan_count, d.vlans[0], d.payload, d.l3_offset),
        (1, 100, SIP, 18)
    );
}

#[test]
fn qinq() {
    let b = PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
        .double_vlan(VlanId::try_new(10).unwrap(), VlanId::try_new(20).unwrap())
        .ipv6(A6, B6, 64)
        .udp(5060, 5060);
    let mut f = Vec::new();
    b.write(&mut f, SIP).unwrap();
    assert_eq!(u16::from_be_bytes([f[12], f[13]]), 0x88a8);
    let d = ip(&f);
    assert_eq!(
        (d.vlan_count, &d.vlans[..2], d.payload, d.l3_offset),
        (2, &[10, 20][..], SIP, 22)
    );
}

fn eth(ether_type: u16) -> Vec<u8> {
    let mut f = Vec::new();
    Ethernet2Header {
        source: SRC_MAC,
        destination: DST_MAC,
        ether_type: EtherType(ether_type),
    }
    .write(&mut f)
    .unwrap();
    f
}

#[test]
fn arp_is_not_ip() {
    let mut f = eth(0x0806);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.resize(60, 0);
    assert!(matches!(decode(&f), Ok(Frame::NotIp { ethertype: 0x0806 })));
    // Under a tag, the inner ethertype is reported.
    let mut t = eth(0x8100);
    t.extend_from_slice(&[0, 5, 0x08, 0x06]);
    t.extend_from_slice(&f[ETH..]);
    assert!(matches!(decode(&t), Ok(Frame::NotIp { ethertype: 0x0806 })));
}

/// `tags` VLAN tags (TPIDs cycling through 0x88a8, 0x8100, 0x9100) over an IPv4 SIP datagram.
fn tagged(tags: usize) -> Vec<u8> {
    let tpids = [0x88a8u16, 0x8100, 0x9100];
    let mut f = eth(tpids[0]);
    for i in 0..tags {
        let inner = if i + 1 == tags { 0x0800 } else { tpids[(i + 1) % 3] };
        f.extend_from_slice(&(i as u16 + 1).to_be_bytes());
        f.extend_from_slice(&u16::to_be_bytes(inner));
    }
    f.extend_from_slice(&udp4(SIP)[ETH..]);
    f
}

#[test]
fn vlan_stacks_up_to_the_limit_and_not_one_more() {
    let f = tagged(4);
    let d = ip(&f);
    assert_eq!((d.vlan_count, &d.vlans[..4], d.payload, d.l3_offset), (4, &[1, 2, 3, 4][..], SIP, ETH + 16));
    assert_eq!(err(&tagged(5)), DecodeError::TooManyVlans, "the default is 4 tags");
    let limits = |max_vlan_tags| DecodeLimits { max_vlan_tags, ..DecodeLimits::DEFAULT };
    assert!(matches!(decode_with(&tagged(3), &limits(2)), Err(DecodeError::TooManyVlans)));
    assert!(matches!(decode_with(&tagged(2), &limits(2)), Ok(Frame::Ip(_))));
    assert!(matches!(decode_with(&udp4(SIP), &limits(0)), Ok(Frame::Ip(_))));
    assert!(matches!(decode_with(&tagged(1), &limits(0)), Err(DecodeError::TooManyVlans)));
    match decode_with(&tagged(16), &limits(16)) {
        Ok(Frame::Ip(d)) => assert_eq!((d.vlan_count, d.vlans[15], d.payload), (16, 16, SIP)),
        other => panic!("{other:?}"),
    }
    // The widest decoder (sharding, logs) still stops after 16.
    assert_eq!(err(&tagged(17)), DecodeError::TooManyVlans);
}

fn v4_frame(h: &Ipv4Header, l4: &[u8]) -> Vec<u8> {
    let mut f = eth(0x0800);
    h.write(&mut f).unwrap();
    f.extend_from_slice(l4);
    f
}

#[test]
fn ipv4_with_options() {
    let l4 = udp_v4(A4, B4, 1, 5060, SIP);
    let mut h = Ipv4Header::new(l4.len() as u16, 9, IpNumber::UDP, A4, B4).unwrap();
    h.options = Ipv4Options::try_from(&[0x94, 4, 0, 0, 1, 1, 1, 0][..]).unwrap();
    h.set_payload_len(l4.len()).unwrap();
    h.header_checksum = h.calc_header_checksum();
    let f = v4_frame(&h, &l4);
    let d = ip(&f);
    assert_eq!(
        (d.ip_header_len, d.l4_offset, d.src_port, d.payload, d.ttl),
        (28, 42, 1, SIP, 9)
    );
}

/// An 8-byte IPv6 option header: next header, length 0, PadN over 6 bytes.
fn opt_header(next: u8) -> [u8; 8] {
    [next, 0, 1, 4, 0, 0, 0, 0]
}

fn v6_frame(next: u8, exts_and_l4: &[u8]) -> Vec<u8> {
    let mut f = eth(0x86dd);
    let h = etherparse::Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: exts_and_l4.len() as u16,
        next_header: IpNumber(next),
        hop_limit: 5,
        source: A6,
        destination: B6,
    };
    h.write(&mut f).unwrap();
    f.extend_from_slice(exts_and_l4);
    f
}

#[test]
fn ipv6_hop_by_hop_and_dest_options() {
    let body = [
        &opt_header(60)[..],
        &opt_header(17),
        &udp_v6(A6, B6, 7, 5060, SIP),
    ]
    .concat();
    let f = v6_frame(0, &body);
    let d = ip(&f);
    assert_eq!(
        (d.ip_header_len, d.src_port, d.payload, d.ttl),
        (56, 7, SIP, 5)
    );
    // Hop-by-hop anywhere but first is malformed (RFC 8200 §4.3).
    let body = [
        &opt_header(0)[..],
        &opt_header(17),
        &udp_v6(A6, B6, 7, 5060, SIP),
    ]
    .concat();
    assert_eq!(err(&v6_frame(60, &body)), DecodeError::BadIpv6ExtHeader);
    // An extension header cut by the payload length.
    assert_eq!(
        err(&v6_frame(60, &opt_header(17)[..5])),
        DecodeError::BadIpv6ExtHeader
    );
}

#[test]
fn ipv6_no_next_header_and_other_protocols() {
    let f = v6_frame(59, &[]);
    let d = ip(&f);
    assert_eq!((d.transport, d.payload.len()), (Transport::Other(59), 0));
    let f = v6_frame(58, &[128, 0, 0, 0, 1, 2, 3, 4]);
    let d = ip(&f);
    assert_eq!(
        (d.transport, d.payload.len(), d.src_port),
        (Transport::Other(58), 8, 0)
    );
}

#[test]
fn ethernet_padding_is_ignored() {
    let mut f = udp4(b"hi");
    assert!(f.len() < 60);
    f.resize(60, 0xee);
    let d = ip(&f);
    assert_eq!((d.payload, d.ip_len), (&b"hi"[..], 30));
    let mut f = udp6(b"");
    f.extend_from_slice(&[0xee; 4]);
    assert_eq!(ip(&f).payload, b"");
}

#[test]
fn truncated_at_each_layer() {
    let f = udp4(SIP);
    assert_eq!(err(&f[..0]), DecodeError::TruncatedEthernet);
    assert_eq!(err(&f[..13]), DecodeError::TruncatedEthernet);
    assert_eq!(err(&f[..ETH + 19]), DecodeError::TruncatedIpv4);
    assert_eq!(err(&f[..ETH + 20]), DecodeError::BadIpv4TotalLength);
    assert_eq!(err(&f[..f.len() - 1]), DecodeError::BadIpv4TotalLength);
    let f6 = udp6(SIP);
    assert_eq!(err(&f6[..ETH + 39]), DecodeError::TruncatedIpv6);
    assert_eq!(err(&f6[..f6.len() - 1]), DecodeError::BadIpv6PayloadLength);
    let mut t = eth(0x8100);
    t.extend_from_slice(&[0, 5, 8]);
    assert_eq!(err(&t), DecodeError::TruncatedVlan);
    // The IP length itself cuts the UDP / TCP header.
    let h = Ipv4Header::new(4, 64, IpNumber::UDP, A4, B4).unwrap();
    assert_eq!(err(&v4_frame(&h, &[0, 1, 0, 2])), DecodeError::TruncatedUdp);
    let h = Ipv4Header::new(12, 64, IpNumber::TCP, A4, B4).unwrap();
    assert_eq!(err(&v4_frame(&h, &[0; 12])), DecodeError::TruncatedTcp);
}

#[test]
fn bad_ipv4_headers() {
    let f = udp4(SIP);
    let mut g = f.clone();
    g[ETH] = 0x44; // IHL 4
    assert_eq!(err(&g), DecodeError::BadIpv4Header);
    let mut g = f.clone();
    g[ETH] = 0x65; // version 6 under the IPv4 ethertype
    assert_eq!(err(&g), DecodeError::BadIpVersion);
    let mut g = f.clone();
    g[ETH + 2..ETH + 4].copy_from_slice(&19u16.to_be_bytes());
    assert_eq!(err(&g), DecodeError::BadIpv4TotalLength);
    let mut g = f.clone();
    g[ETH + 2..ETH + 4].copy_from_slice(&((f.len() - ETH + 1) as u16).to_be_bytes());
    assert_eq!(err(&g), DecodeError::BadIpv4TotalLength);
    let mut g = udp6(SIP);
    g[ETH] = 0x45;
    assert_eq!(err(&g), DecodeError::BadIpVersion);
}

#[test]
fn udp_length_must_match_ip_payload() {
    for delta in [-1i32, 1, -(SIP.len() as i32) - 8] {
        for mut f in [udp4(SIP), udp6(SIP)] {
            let at = if f[12] == 0x08 {
                ETH + 20 + 4
            } else {
                ETH + 40 + 4
            };
            let len = u16::from_be_bytes([f[at], f[at + 1]]) as i32 + delta;
            f[at..at + 2].copy_from_slice(&(len as u16).to_be_bytes());
            assert_eq!(err(&f), DecodeError::BadUdpLength, "delta {delta}");
        }
    }
}

#[test]
fn bad_tcp_data_offset() {
    let mut f = tcp4(SIP);
    f[ETH + 20 + 12] = 0x30;
    assert_eq!(err(&f), DecodeError::BadTcpHeader);
}

#[test]
fn udp_datagram_checks_length() {
    let d = udp_v4(A4, B4, 1, 2, SIP);
    assert_eq!(udp_datagram(&d), Ok((1, 2, SIP)));
    assert_eq!(udp_datagram(&d[..7]), Err(DecodeError::TruncatedUdp));
    assert_eq!(
        udp_datagram(&d[..d.len() - 1]),
        Err(DecodeError::BadUdpLength)
    );
}

#[test]
fn ipv4_fragments_decode_without_transport() {
    let big = vec![b'a'; 3000];
    let frames = sip_fragments_v4(A4, B4, (5060, 5080), 0x1234, &big, 1480);
    assert_eq!(frames.len(), 3);
    let d0 = ip(&frames[0]);
    let f0 = d0.frag.unwrap();
    assert_eq!((f0.id, f0.offset, f0.more), (0x1234, 0, true));
    assert_eq!(
        (d0.transport, d0.src_port, d0.dst_port, d0.payload.len()),
        (Transport::Udp, 5060, 5080, 1480)
    );
    // The first fragment's payload starts with the UDP header, unparsed.
    assert_eq!(&d0.payload[..2], &5060u16.to_be_bytes());
    let d2 = ip(&frames[2]);
    let f2 = d2.frag.unwrap();
    assert_eq!(
        (f2.offset, f2.more, d2.src_port, d2.payload.len()),
        (2960, false, 0, 3008 - 2960)
    );
    let key = d2.frag_key().unwrap();
    assert_eq!((key.id, key.proto, key.src), (0x1234, 17, d2.src));
}

#[test]
fn ipv6_fragments_and_atomic_fragment() {
    let big = vec![b'b'; 3000];
    let frames = sip_fragments_v6(A6, B6, (5060, 5080), 0xdead_beef, &big, 1448);
    assert_eq!(frames.len(), 3);
    let d0 = ip(&frames[0]);
    assert_eq!(
        d0.frag,
        Some(FragInfo {
            id: 0xdead_beef,
            offset: 0,
            more: true
        })
    );
    assert_eq!(
        (d0.src_port, d0.payload.len(), d0.ip_header_len),
        (5060, 1448, 48)
    );
    let d1 = ip(&frames[1]);
    assert_eq!(
        d1.frag,
        Some(FragInfo {
            id: 0xdead_beef,
            offset: 1448,
            more: true
        })
    );
    assert_eq!(d1.src_port, 0);
    // An atomic fragment is a whole packet.
    let one = sip_fragments_v6(A6, B6, (5060, 5080), 9, SIP, 1448);
    assert_eq!(one.len(), 1);
    let d = ip(&one[0]);
    assert_eq!(
        (d.frag, d.src_port, d.payload, d.ip_header_len),
        (None, 5060, SIP, 48)
    );
}

#[test]
fn non_first_v6_fragment_data_is_not_parsed_as_headers() {
    // Next header = destination options, but this is a non-first fragment: data follows.
    let mut body = vec![60, 0, 0, 8 | 1, 0, 0, 0, 7];
    body.extend_from_slice(&[0xff; 16]);
    let f = v6_frame(44, &body);
    let d = ip(&f);
    assert_eq!(
        d.frag,
        Some(FragInfo {
            id: 7,
            offset: 8,
            more: true
        })
    );
    assert_eq!(
        (d.transport, d.payload),
        (Transport::Other(60), &[0xff; 16][..])
    );
}

/// An AH header (RFC 4302) of 24 bytes (a 96-bit ICV): a multiple of 8, valid over both families.
fn ah_header(next: u8) -> [u8; 24] {
    let mut h = [0u8; 24];
    (h[0], h[1]) = (next, 4); // length in 32-bit words minus 2
    h[4..8].copy_from_slice(&0x1000u32.to_be_bytes()); // SPI
    h[11] = 1; // sequence number
    h
}

/// `n` extension headers (cycling through destination options, routing, AH and an
/// experimental one in the generic format) before a UDP SIP datagram.
fn v6_chain(n: usize) -> Vec<u8> {
    let kinds = [60u8, 43, 51, 253];
    let mut body = Vec::new();
    for i in 0..n {
        let next = if i + 1 == n { 17 } else { kinds[(i + 1) % 4] };
        match kinds[i % 4] {
            51 => body.extend_from_slice(&ah_header(next)),
            43 => body.extend_from_slice(&[next, 0, 0, 0, 0, 0, 0, 0]),
            _ => body.extend_from_slice(&opt_header(next)),
        }
    }
    body.extend_from_slice(&udp_v6(A6, B6, 7, 5060, SIP));
    v6_frame(if n == 0 { 17 } else { kinds[0] }, &body)
}

#[test]
fn ipv6_extension_chains_with_ah_up_to_the_limit_and_not_one_more() {
    for n in [1, 4, 8] {
        let f = v6_chain(n);
        let d = ip(&f);
        assert_eq!((d.transport, d.dst_port, d.payload), (Transport::Udp, 5060, SIP), "{n} headers");
    }
    assert_eq!(err(&v6_chain(9)), DecodeError::TooManyExtHeaders, "the default is 8 headers");
    let limits = |max_ext_headers| DecodeLimits { max_ext_headers, ..DecodeLimits::DEFAULT };
    let f = v6_chain(64);
    assert!(matches!(decode_with(&f, &limits(64)), Ok(Frame::Ip(d)) if d.payload == SIP));
    assert!(matches!(decode_with(&f, &limits(63)), Err(DecodeError::TooManyExtHeaders)));
    assert!(matches!(decode_with(&v6_chain(1), &limits(0)), Err(DecodeError::TooManyExtHeaders)));
    assert!(matches!(decode_with(&v6_chain(0), &limits(0)), Ok(Frame::Ip(_))));
    // A truncated AH is a bad extension header, not a payload.
    let f = v6_frame(51, &ah_header(17)[..12]);
    assert_eq!(err(&f), DecodeError::BadIpv6ExtHeader);
}

fn v4_ah_frame(ahs: usize, l4_proto: IpNumber, l4: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..ahs {
        body.extend_from_slice(&ah_header(if i + 1 == ahs { l4_proto.0 } else { 51 }));
    }
    body.extend_from_slice(l4);
    let first = if ahs == 0 { l4_proto } else { IpNumber::AUTHENTICATION_HEADER };
    let mut h = Ipv4Header::new(body.len() as u16, 64, first, A4, B4).unwrap();
    h.header_checksum = h.calc_header_checksum();
    v4_frame(&h, &body)
}

#[test]
fn ipv4_ah_chains_up_to_the_limit() {
    let l4 = udp_v4(A4, B4, 9, 5060, SIP);
    for n in [1, 2, 8] {
        let f = v4_ah_frame(n, IpNumber::UDP, &l4);
        let d = ip(&f);
        assert_eq!((d.transport, d.dst_port, d.payload, d.ip_header_len), (Transport::Udp, 5060, SIP, 20 + 24 * n), "{n} AH");
    }
    assert_eq!(err(&v4_ah_frame(9, IpNumber::UDP, &l4)), DecodeError::TooManyExtHeaders);
    let f = v4_ah_frame(1, IpNumber::UDP, &l4);
    let cut = &f[..ETH + 20 + 10];
    let mut g = cut.to_vec();
    g[ETH + 2..ETH + 4].copy_from_slice(&30u16.to_be_bytes());
    assert_eq!(err(&g), DecodeError::BadIpv4ExtHeader);
    // IPv6 headers mean nothing over IPv4: a destination-options "header" is a protocol.
    let h = Ipv4Header::new(8, 64, IpNumber(60), A4, B4).unwrap();
    assert_eq!(ip(&v4_frame(&h, &opt_header(17))).transport, Transport::Other(60));
}

#[test]
fn esp_is_its_own_error_in_both_families_and_in_fragments() {
    let esp = [0u8, 0, 0x10, 0, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
    let h = Ipv4Header::new(esp.len() as u16, 64, IpNumber(50), A4, B4).unwrap();
    assert_eq!(err(&v4_frame(&h, &esp)), DecodeError::Esp);
    assert_eq!(err(&v4_ah_frame(1, IpNumber(50), &esp)), DecodeError::Esp);
    assert_eq!(err(&v6_frame(50, &esp)), DecodeError::Esp);
    assert_eq!(err(&v6_frame(60, &[&opt_header(50)[..], &esp].concat())), DecodeError::Esp);
    let mut h = Ipv4Header::new(esp.len() as u16, 64, IpNumber(50), A4, B4).unwrap();
    h.more_fragments = true;
    assert_eq!(err(&v4_frame(&h, &esp)), DecodeError::Esp);
    let frag = [50u8, 0, 0, 1, 0, 0, 0, 7]; // offset 0, M=1
    assert_eq!(err(&v6_frame(44, &[&frag[..], &esp].concat())), DecodeError::Esp);
}

#[test]
fn error_names_are_unique_snake_case() {
    let mut names: Vec<_> = DecodeError::ALL.iter().map(|e| e.name()).collect();
    assert!(names.iter().all(|n| n
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())));
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), DecodeError::ALL.len());
    assert_eq!(DecodeError::BadUdpLength.to_string(), "bad_udp_length");
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decode_of_mutated_frames_stays_in_bounds(
        which in 0usize..4,
        flips in proptest::collection::vec((0usize..120, any::<u8>()), 1..6),
        cut in 0usize..200,
    ) {
        let mut f = match which {
            0 => udp4(SIP),
            1 => udp6(SIP),
            2 => tcp4(SIP),
            _ => sip_fragments_v6(A6, B6, (1, 2), 3, &[7; 600], 256)[1].clone(),
        };
        for (at, v) in flips {
            if let Some(b) = f.get_mut(at) { *b = v; }
        }
        f.truncate(cut.max(1) * f.len() / 200 + 1);
        if let Ok(Frame::Ip(d)) = decode(&f) {
            let base = f.as_ptr() as usize;
            let p = d.payload.as_ptr() as usize;
            prop_assert!(p >= base && p + d.payload.len() <= base + f.len());
            prop_assert!(d.l4_offset <= f.len() && d.l3_offset + d.ip_header_len == d.l4_offset);
        }
    }
}
