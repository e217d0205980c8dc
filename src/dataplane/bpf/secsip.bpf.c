// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// secsip's XDP program: one instance per NIC (each with its own maps, because xsks_map is
// keyed by queue index and both NICs have a queue 0).
//
//   proven not SIP (listed ethertype or IP protocol, UDP/TCP off the SIP ports) -> peer[0],
//                                                        the other NIC (kernel bridge)
//   SIP (UDP/TCP on a configured port)                  -> xsks_map[rx queue] (userspace engine)
//   anything it cannot classify (deeper VLAN stacks or extension chains than it walks,
//   fragments, ESP, unknown protocols, truncated or odd headers) -> userspace as well, or
//   dropped with F_UNCLASSIFIED_DROP; counted per cause in `unclassified` either way.
//
// The lists of what is proven not SIP live in src/wire/classify.rs and are copied into
// `not_sip_ethertypes` / `not_sip_protos` at attach. The walk bounds are compile-time
// (XDP_MAX_*) and narrowed at run time by `settings` to the userspace decoder's limits.
//
// When the queue's XSKMAP slot is empty (daemon gone, socket not yet bound) the settings
// decide: fail-open bridges SIP uninspected, fail-closed drops it. Sources in `bans` (filled
// by the daemon from the engines' host table) are dropped here before userspace sees them.
//
// Everything is read with explicit bounds checks against data_end: the verifier insists, and
// the packet is attacker-controlled anyway.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define MAX_QUEUES 64
// Keep in step with XDP_MAX_VLAN_TAGS / XDP_MAX_EXT_HEADERS in src/wire/classify.rs.
#define XDP_MAX_VLAN 4
#define XDP_MAX_EXT 8

// Keep in step with src/dataplane/xdp.rs.
enum counter {
    C_RX = 0,          // frames seen
    C_BRIDGED,         // non-SIP frames redirected to the peer NIC
    C_TO_USER,         // SIP frames redirected to the AF_XDP socket
    C_FAIL_OPEN,       // SIP frames bridged because no socket was bound
    C_FAIL_CLOSED,     // SIP frames dropped because no socket was bound
    C_BANNED,          // SIP frames dropped because the source is banned
    C_REDIRECT_FAILED, // bpf_redirect_map to the peer failed (frame dropped)
    C_UNCLASSIFIED_DROPPED, // frames it could not classify, dropped by policy
    C_COUNT,
};

// Keep in step with `Unclassified` in src/wire/classify.rs.
enum unclassified {
    U_VLAN_DEPTH = 0,
    U_EXT_DEPTH,
    U_FRAGMENT,
    U_ESP,
    U_ETHERTYPE,
    U_PROTOCOL,
    U_TRUNCATED,
    U_MALFORMED,
    U_COUNT,
};

// What classify() concluded.
enum class {
    CL_NOT_SIP = 0,
    CL_SIP,
    CL_UNCLASSIFIED,
};

#define F_FAIL_OPEN 1u    // no socket bound: bridge SIP instead of dropping it
#define F_BANS 2u         // look up sources in `bans`
// Bit 4 (steer fragments) is retired: fragments are always unclassified.
#define F_UNCLASSIFIED_DROP 8u // drop what it cannot classify instead of sending it up

struct settings {
    __u32 flags;
    __u8 max_vlan; // tags walked, <= XDP_MAX_VLAN
    __u8 max_ext;  // extension / AH headers walked, <= XDP_MAX_EXT
    __u16 _pad;
};

// Ban key: family (4 or 6) and the address, v4 in the first 4 bytes.
struct ban_key {
    __u32 family;
    __u8 addr[16];
};

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, MAX_QUEUES);
    __type(key, __u32);
    __type(value, __u32);
} xsks_map SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_DEVMAP);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} peer SEC(".maps");

// Index = port; value bit 0 = SIP over UDP, bit 1 = SIP over TCP.
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 65536);
    __type(key, __u32);
    __type(value, __u8);
} sip_ports SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct settings);
} settings SEC(".maps");

// Index = ethertype (host order); value 1 = proven not SIP.
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 65536);
    __type(key, __u32);
    __type(value, __u8);
} not_sip_ethertypes SEC(".maps");

// Index = IP protocol / IPv6 next header; value 1 = proven not SIP.
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, __u8);
} not_sip_protos SEC(".maps");

// Value: ban expiry in CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns's clock).
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, struct ban_key);
    __type(value, __u64);
} bans SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, C_COUNT);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, U_COUNT);
    __type(key, __u32);
    __type(value, __u64);
} unclassified SEC(".maps");

static __always_inline void count(__u32 c)
{
    __u64 *v = bpf_map_lookup_elem(&counters, &c);
    if (v)
        *v += 1;
}

static __always_inline int bridge(void)
{
    int r = bpf_redirect_map(&peer, 0, 0);
    if (r == XDP_REDIRECT)
        count(C_BRIDGED);
    else
        count(C_REDIRECT_FAILED);
    return r;
}

static __always_inline int is_sip_port(__u16 sport_be, __u16 dport_be, __u8 bit)
{
    __u32 s = bpf_ntohs(sport_be), d = bpf_ntohs(dport_be);
    __u8 *vs = bpf_map_lookup_elem(&sip_ports, &s);
    __u8 *vd = bpf_map_lookup_elem(&sip_ports, &d);
    return (vs && (*vs & bit)) || (vd && (*vd & bit));
}

static __always_inline int listed(void *map, __u32 key)
{
    __u8 *v = bpf_map_lookup_elem(map, &key);
    return v && *v;
}

static __always_inline int unclassified_as(__u32 *cause, __u32 c)
{
    *cause = c;
    return CL_UNCLASSIFIED;
}

// The transport layer, after every header before it was walked: UDP/TCP are classified by
// port once their whole fixed header is in the frame; other protocols only if listed.
static __always_inline int l4_class(void *l4, void *end, __u8 proto, __u32 *cause)
{
    if (proto == IPPROTO_UDP || proto == IPPROTO_TCP) {
        // UDP and TCP both start with source and destination ports.
        __u16 *ports = l4;
        if ((void *)(ports + 2) > end)
            return unclassified_as(cause, U_TRUNCATED);
        // The whole fixed header, not just the ports: a host would not take less as UDP/TCP.
        if ((proto == IPPROTO_UDP && l4 + 8 > end) || (proto == IPPROTO_TCP && l4 + 20 > end))
            return unclassified_as(cause, U_TRUNCATED);
        return is_sip_port(ports[0], ports[1], proto == IPPROTO_UDP ? 1 : 2) ? CL_SIP : CL_NOT_SIP;
    }
    if (proto == IPPROTO_ESP)
        return unclassified_as(cause, U_ESP);
    if (listed(&not_sip_protos, proto))
        return CL_NOT_SIP;
    return unclassified_as(cause, U_PROTOCOL);
}

// IPv4: options are skipped by IHL (they never move the transport header), AH walked.
static __always_inline int ipv4_class(void *l3, void *end, __u8 max_ext, struct ban_key *key, __u32 *cause)
{
    struct iphdr *ip = l3;
    if ((void *)(ip + 1) > end)
        return unclassified_as(cause, U_TRUNCATED);
    if (ip->version != 4 || ip->ihl < 5)
        return unclassified_as(cause, U_MALFORMED);
    key->family = 4;
    __builtin_memcpy(key->addr, &ip->saddr, 4);
    if (ip->frag_off & bpf_htons(0x3fff)) // MF or offset
        return unclassified_as(cause, U_FRAGMENT);
    void *p = l3 + ip->ihl * 4;
    __u8 next = ip->protocol;
#pragma unroll
    for (int i = 0; i < XDP_MAX_EXT; i++) {
        if (next != IPPROTO_AH || i >= max_ext)
            break;
        __u8 *ah = p;
        if ((void *)(ah + 2) > end)
            return unclassified_as(cause, U_TRUNCATED);
        next = ah[0];
        p = ah + ((__u32)ah[1] + 2) * 4; // RFC 4302: length in 32-bit words minus 2
    }
    if (next == IPPROTO_AH)
        return unclassified_as(cause, U_EXT_DEPTH);
    return l4_class(p, end, next, cause);
}

static __always_inline int v6_ext(__u8 next)
{
    // RFC 8200 §4 and the generic-format headers of RFC 6564 (mobility, HIP, shim6, tests).
    return next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS ||
           next == IPPROTO_AH || next == 135 || next == 139 || next == 140 || next == 253 || next == 254;
}

static __always_inline int ipv6_class(void *l3, void *end, __u8 max_ext, struct ban_key *key, __u32 *cause)
{
    struct ipv6hdr *ip6 = l3;
    if ((void *)(ip6 + 1) > end)
        return unclassified_as(cause, U_TRUNCATED);
    if (ip6->version != 6)
        return unclassified_as(cause, U_MALFORMED);
    key->family = 6;
    __builtin_memcpy(key->addr, &ip6->saddr, 16);
    __u8 next = ip6->nexthdr;
    void *p = ip6 + 1;
#pragma unroll
    for (int i = 0; i < XDP_MAX_EXT; i++) {
        if (next == IPPROTO_FRAGMENT)
            return unclassified_as(cause, U_FRAGMENT);
        if (!v6_ext(next) || i >= max_ext)
            break;
        __u8 *ext = p;
        if ((void *)(ext + 2) > end)
            return unclassified_as(cause, U_TRUNCATED);
        __u32 len = next == IPPROTO_AH ? ((__u32)ext[1] + 2) * 4 : ((__u32)ext[1] + 1) * 8;
        next = ext[0];
        p = ext + len;
    }
    if (next == IPPROTO_FRAGMENT)
        return unclassified_as(cause, U_FRAGMENT);
    if (v6_ext(next))
        return unclassified_as(cause, U_EXT_DEPTH);
    return l4_class(p, end, next, cause);
}

// Walks up to max_vlan tags, then IPv4 / IPv6 down to the transport header. Returns CL_*;
// for CL_UNCLASSIFIED, *cause says why. key gets the IP source when there is one.
static __always_inline int classify(void *data, void *end, struct settings *cfg, struct ban_key *key, __u32 *cause)
{
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end)
        return unclassified_as(cause, U_TRUNCATED);
    __u16 proto = eth->h_proto;
    void *l3 = eth + 1;
    __u8 max_vlan = cfg ? cfg->max_vlan : 0, max_ext = cfg ? cfg->max_ext : 0;

#pragma unroll
    for (int i = 0; i < XDP_MAX_VLAN; i++) {
        if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD) && proto != bpf_htons(0x9100))
            break;
        if (i >= max_vlan)
            return unclassified_as(cause, U_VLAN_DEPTH);
        // TCI then the encapsulated ethertype.
        __u16 *tag = l3;
        if ((void *)(tag + 2) > end)
            return unclassified_as(cause, U_TRUNCATED);
        proto = tag[1];
        l3 = tag + 2;
    }
    if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD) || proto == bpf_htons(0x9100))
        return unclassified_as(cause, U_VLAN_DEPTH);
    if (proto == bpf_htons(ETH_P_IP))
        return ipv4_class(l3, end, max_ext, key, cause);
    if (proto == bpf_htons(ETH_P_IPV6))
        return ipv6_class(l3, end, max_ext, key, cause);
    if (listed(&not_sip_ethertypes, bpf_ntohs(proto)))
        return CL_NOT_SIP;
    return unclassified_as(cause, U_ETHERTYPE);
}

static __always_inline int banned(struct ban_key *k)
{
    __u64 *until = bpf_map_lookup_elem(&bans, k);
    return until && *until > bpf_ktime_get_ns();
}

SEC("xdp")
int secsip_xdp(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    __u32 zero = 0;
    struct settings *cfg = bpf_map_lookup_elem(&settings, &zero);
    __u32 flags = cfg ? cfg->flags : F_FAIL_OPEN;

    count(C_RX);

    struct ban_key key = {};
    __u32 cause = U_MALFORMED;
    int class = classify(data, end, cfg, &key, &cause);
    if (class == CL_NOT_SIP)
        return bridge();
    if (class == CL_UNCLASSIFIED) {
        __u64 *v = bpf_map_lookup_elem(&unclassified, &cause);
        if (v)
            *v += 1;
        if (flags & F_UNCLASSIFIED_DROP) {
            count(C_UNCLASSIFIED_DROPPED);
            return XDP_DROP;
        }
    }

    if ((flags & F_BANS) && key.family && banned(&key)) {
        count(C_BANNED);
        return XDP_DROP;
    }

    // With the slot empty, bpf_redirect_map returns the low bits of flags (XDP_PASS here),
    // which this program never returns otherwise: it means "no socket bound".
    __u32 q = ctx->rx_queue_index;
    int r = bpf_redirect_map(&xsks_map, q, XDP_PASS);
    if (r == XDP_REDIRECT) {
        count(C_TO_USER);
        return r;
    }
    if (flags & F_FAIL_OPEN) {
        count(C_FAIL_OPEN);
        return bridge();
    }
    count(C_FAIL_CLOSED);
    return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
