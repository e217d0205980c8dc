//! What the XDP program may bridge in the kernel without userspace seeing it, declared once.
//!
//! The XDP program (`dataplane/bpf/secsip.bpf.c`) bridges a frame only when it has proven the
//! frame is not SIP: a non-IP ethertype listed in [`NOT_SIP_ETHERTYPES`], an IP protocol listed
//! in [`NOT_SIP_PROTOCOLS`], or UDP/TCP whose whole fixed header was read and whose ports are
//! not SIP ports. Everything else it sends to userspace (or drops, by policy) and counts under
//! one [`Unclassified`] cause. The lists are copied into the program's maps when it is attached,
//! so this file is the only place they are written down.
//!
//! Nothing on these lists can carry an IP packet the way the frame is laid out: a protocol that
//! can (MPLS, PPPoE, GRE, IP-in-IP, SCTP, anything unknown) is not on them and goes up.

/// Ethertypes of frames that cannot carry SIP: bridged in the kernel.
pub const NOT_SIP_ETHERTYPES: &[(u16, &str)] = &[
    (0x0806, "ARP"),
    (0x8035, "RARP"),
    (0x8808, "Ethernet flow control (PAUSE)"),
    (0x8809, "slow protocols (LACP, OAM)"),
    (0x888e, "802.1X EAPOL"),
    (0x88cc, "LLDP"),
    (0x88f7, "PTP"),
];

/// IP protocol numbers (IPv4 protocol, IPv6 last next header) that cannot carry SIP.
pub const NOT_SIP_PROTOCOLS: &[(u8, &str)] = &[
    (1, "ICMP"),
    (2, "IGMP"),
    (58, "ICMPv6"),
    (59, "IPv6 no next header"),
    (89, "OSPF"),
    (103, "PIM"),
    (112, "VRRP"),
];

/// VLAN tag protocol identifiers walked by both the XDP program and the decoder:
/// 802.1Q, 802.1ad (QinQ S-tag) and the pre-standard QinQ 0x9100.
pub const VLAN_TPIDS: [u16; 3] = [0x8100, 0x88a8, 0x9100];

/// VLAN tags the XDP program can walk (its loop bound). The tags it walks at run time are the
/// smaller of this and `engine.decode.max_vlan_tags`, so it never proves more than the decoder
/// would accept.
pub const XDP_MAX_VLAN_TAGS: u8 = 4;

/// IPv6 extension headers (AH included) or IPv4 AH headers the XDP program can walk; at run
/// time the smaller of this and `engine.decode.max_ext_headers`.
pub const XDP_MAX_EXT_HEADERS: u8 = 8;

/// Why the XDP program could not prove a frame is not SIP. In the order of
/// `enum unclassified` in the C source; one per-CPU counter each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unclassified {
    /// More VLAN tags than it walks.
    VlanDepth,
    /// More extension headers (or AH headers) than it walks.
    ExtDepth,
    /// An IPv4 or IPv6 fragment: the ports are in the first fragment at best.
    Fragment,
    /// ESP: the transport header is encrypted.
    Esp,
    /// A non-IP ethertype not on [`NOT_SIP_ETHERTYPES`] (802.3 frames included).
    Ethertype,
    /// An IP protocol / next header neither walked nor on [`NOT_SIP_PROTOCOLS`].
    Protocol,
    /// The frame ends inside a header the program had to read.
    Truncated,
    /// A header field the program cannot make sense of (IP version, IHL below 5).
    Malformed,
}

impl Unclassified {
    /// Every cause, in C enum order.
    pub const ALL: [Unclassified; 8] = [
        Unclassified::VlanDepth,
        Unclassified::ExtDepth,
        Unclassified::Fragment,
        Unclassified::Esp,
        Unclassified::Ethertype,
        Unclassified::Protocol,
        Unclassified::Truncated,
        Unclassified::Malformed,
    ];

    /// Stable snake_case name (the `cause` label of the counter).
    pub fn name(self) -> &'static str {
        match self {
            Unclassified::VlanDepth => "vlan_depth",
            Unclassified::ExtDepth => "ext_depth",
            Unclassified::Fragment => "fragment",
            Unclassified::Esp => "esp",
            Unclassified::Ethertype => "ethertype",
            Unclassified::Protocol => "protocol",
            Unclassified::Truncated => "truncated",
            Unclassified::Malformed => "malformed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::{DST_MAC, SRC_MAC};
    use crate::wire::{decode, Frame, Transport};

    fn frame(ethertype: u16, rest: &[u8]) -> Vec<u8> {
        [&DST_MAC[..], &SRC_MAC[..], &ethertype.to_be_bytes(), rest].concat()
    }

    /// A proven ethertype must be one the decoder sees as not IP: otherwise the kernel would
    /// bridge what userspace would have inspected.
    #[test]
    fn proven_ethertypes_are_not_ip_to_the_decoder() {
        for &(t, what) in NOT_SIP_ETHERTYPES {
            let f = frame(t, &[0; 46]);
            assert!(matches!(decode(&f), Ok(Frame::NotIp { ethertype }) if ethertype == t), "{what}");
            assert!(!VLAN_TPIDS.contains(&t) && t >= 0x0600, "{what}");
        }
    }

    /// A proven protocol must be a leaf for the decoder: not UDP/TCP, not a header it walks.
    #[test]
    fn proven_protocols_are_leaves_to_the_decoder() {
        for &(p, what) in NOT_SIP_PROTOCOLS {
            let ip = etherparse::Ipv4Header::new(8, 64, etherparse::IpNumber(p), [10, 0, 0, 1], [10, 0, 0, 2]).unwrap();
            let mut f = frame(0x0800, &[]);
            ip.write(&mut f).unwrap();
            f.extend_from_slice(&[0; 8]);
            match decode(&f) {
                Ok(Frame::Ip(d)) => assert_eq!(d.transport, Transport::Other(p), "{what}"),
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn names_are_unique_snake_case() {
        let mut names: Vec<_> = Unclassified::ALL.iter().map(|c| c.name()).collect();
        assert!(names.iter().all(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Unclassified::ALL.len());
    }
}
