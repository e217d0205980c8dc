//! Frame builders for tests and fixture pcaps: UDP datagrams and their IPv4 / IPv6 fragments.
//!
//! Not used on the data path; these allocate and panic on impossible sizes.
//!
//! ```
//! use secsip::wire::testutil::*;
//! let invite = vec![b'x'; 3000];
//! let udp = udp_v4([10, 0, 0, 1], [10, 0, 0, 2], 5060, 5060, &invite);
//! let frames = fragment_v4([10, 0, 0, 1], [10, 0, 0, 2], 7, &udp, 1480);
//! assert_eq!(frames.len(), 3);
//! ```

use etherparse::{
    EtherType, Ethernet2Header, IpFragOffset, IpNumber, Ipv4Header, Ipv6FragmentHeader, Ipv6Header,
    UdpHeader,
};

/// Source MAC of built frames.
pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
/// Destination MAC of built frames.
pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];
/// TTL / hop limit of built frames.
pub const TTL: u8 = 64;

/// A UDP header (with IPv4 pseudo-header checksum) followed by `payload`.
pub fn udp_v4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len() + UdpHeader::LEN).expect("UDP datagram too big");
    let ip = Ipv4Header::new(len, TTL, IpNumber::UDP, src, dst).expect("IPv4 payload too big");
    let udp = UdpHeader::with_ipv4_checksum(sport, dport, &ip, payload).expect("UDP too big");
    [&udp.to_bytes()[..], payload].concat()
}

/// A UDP header (with IPv6 pseudo-header checksum) followed by `payload`.
pub fn udp_v6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let ip = v6_header(src, dst, IpNumber::UDP, payload.len() + UdpHeader::LEN);
    let udp = UdpHeader::with_ipv6_checksum(sport, dport, &ip, payload).expect("UDP too big");
    [&udp.to_bytes()[..], payload].concat()
}

/// Ethernet II + IPv4 frames carrying `ip_payload` (a UDP datagram) split into fragments
/// of at most `frag_data` bytes (rounded down to a multiple of 8), all with id `id`.
///
/// A payload that fits in one fragment yields one unfragmented frame.
pub fn fragment_v4(
    src: [u8; 4],
    dst: [u8; 4],
    id: u16,
    ip_payload: &[u8],
    frag_data: usize,
) -> Vec<Vec<u8>> {
    fragment_v4_proto(src, dst, id, IpNumber::UDP, ip_payload, frag_data)
}

/// [`fragment_v4`] with an explicit IP protocol number.
pub fn fragment_v4_proto(
    src: [u8; 4],
    dst: [u8; 4],
    id: u16,
    proto: IpNumber,
    ip_payload: &[u8],
    frag_data: usize,
) -> Vec<Vec<u8>> {
    split(ip_payload, frag_data)
        .map(|(offset, chunk, more)| {
            let len = u16::try_from(chunk.len()).expect("fragment too big");
            let mut ip = Ipv4Header::new(len, TTL, proto, src, dst).expect("fragment too big");
            ip.identification = id;
            ip.more_fragments = more;
            ip.fragment_offset = frag_offset(offset);
            ip.header_checksum = ip.calc_header_checksum();
            let mut f = ethernet(EtherType::IPV4);
            ip.write(&mut f).expect("write to Vec");
            f.extend_from_slice(chunk);
            f
        })
        .collect()
}

/// Ethernet II + IPv6 frames carrying `ip_payload` (a UDP datagram) split into fragments
/// of at most `frag_data` bytes (rounded down to a multiple of 8), each with a fragment
/// header of identification `id`.
///
/// A payload that fits in one fragment yields one frame with an atomic fragment header.
pub fn fragment_v6(
    src: [u8; 16],
    dst: [u8; 16],
    id: u32,
    ip_payload: &[u8],
    frag_data: usize,
) -> Vec<Vec<u8>> {
    split(ip_payload, frag_data)
        .map(|(offset, chunk, more)| {
            let ip = v6_header(
                src,
                dst,
                IpNumber::IPV6_FRAGMENTATION_HEADER,
                Ipv6FragmentHeader::LEN + chunk.len(),
            );
            let fh = Ipv6FragmentHeader::new(IpNumber::UDP, frag_offset(offset), more, id);
            let mut f = ethernet(EtherType::IPV6);
            ip.write(&mut f).expect("write to Vec");
            fh.write(&mut f).expect("write to Vec");
            f.extend_from_slice(chunk);
            f
        })
        .collect()
}

/// Fragments of a whole SIP-over-UDP/IPv4 datagram: [`udp_v4`] then [`fragment_v4`].
pub fn sip_fragments_v4(
    src: [u8; 4],
    dst: [u8; 4],
    ports: (u16, u16),
    id: u16,
    sip: &[u8],
    frag_data: usize,
) -> Vec<Vec<u8>> {
    fragment_v4(
        src,
        dst,
        id,
        &udp_v4(src, dst, ports.0, ports.1, sip),
        frag_data,
    )
}

/// Fragments of a whole SIP-over-UDP/IPv6 datagram: [`udp_v6`] then [`fragment_v6`].
pub fn sip_fragments_v6(
    src: [u8; 16],
    dst: [u8; 16],
    ports: (u16, u16),
    id: u32,
    sip: &[u8],
    frag_data: usize,
) -> Vec<Vec<u8>> {
    fragment_v6(
        src,
        dst,
        id,
        &udp_v6(src, dst, ports.0, ports.1, sip),
        frag_data,
    )
}

/// (offset, data, more) of each fragment.
fn split(payload: &[u8], frag_data: usize) -> impl Iterator<Item = (usize, &[u8], bool)> {
    let step = (frag_data & !7).max(8);
    let n = payload.len().div_ceil(step).max(1);
    (0..n).map(move |i| {
        let start = i * step;
        let end = (start + step).min(payload.len());
        (start, &payload[start..end], i + 1 < n)
    })
}

fn frag_offset(bytes: usize) -> IpFragOffset {
    let units = u16::try_from(bytes / 8).expect("fragment offset too big");
    IpFragOffset::try_new(units).expect("fragment offset too big")
}

fn ethernet(ether_type: EtherType) -> Vec<u8> {
    let mut f = Vec::with_capacity(1600);
    Ethernet2Header {
        source: SRC_MAC,
        destination: DST_MAC,
        ether_type,
    }
    .write(&mut f)
    .expect("write to Vec");
    f
}

fn v6_header(
    src: [u8; 16],
    dst: [u8; 16],
    next_header: IpNumber,
    payload_len: usize,
) -> Ipv6Header {
    Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: u16::try_from(payload_len).expect("IPv6 payload too big"),
        next_header,
        hop_limit: TTL,
        source: src,
        destination: dst,
    }
}
