// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// secsip's XDP program: one instance per NIC (each with its own maps, because xsks_map is
// keyed by queue index and both NICs have a queue 0).
//
//   SIP (UDP/TCP on a configured port) and IP fragments -> xsks_map[rx queue] (userspace engine)
//   everything else                                     -> peer[0], the other NIC (kernel bridge)
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
#define MAX_VLAN_TAGS 2
#define MAX_V6_EXT 6

// Keep in step with src/dataplane/xdp.rs.
enum counter {
    C_RX = 0,          // frames seen
    C_BRIDGED,         // non-SIP frames redirected to the peer NIC
    C_TO_USER,         // SIP frames redirected to the AF_XDP socket
    C_FAIL_OPEN,       // SIP frames bridged because no socket was bound
    C_FAIL_CLOSED,     // SIP frames dropped because no socket was bound
    C_BANNED,          // SIP frames dropped because the source is banned
    C_REDIRECT_FAILED, // bpf_redirect_map to the peer failed (frame dropped)
    C_COUNT,
};

#define F_FAIL_OPEN 1u    // no socket bound: bridge SIP instead of dropping it
#define F_BANS 2u         // look up sources in `bans`
#define F_FRAGMENTS 4u    // steer IP fragments to userspace (SIP may hide in them)

struct settings {
    __u32 flags;
    __u32 _pad;
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

// 1 if the L4 header at l4 carries SIP on a configured port, 0 if not, -1 if truncated.
static __always_inline int l4_is_sip(void *l4, void *end, __u8 proto)
{
    if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
        return 0;
    // UDP and TCP both start with source and destination ports.
    __u16 *ports = l4;
    if ((void *)(ports + 2) > end)
        return -1;
    return is_sip_port(ports[0], ports[1], proto == IPPROTO_UDP ? 1 : 2);
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

    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end)
        return bridge();
    __u16 proto = eth->h_proto;
    void *l3 = eth + 1;

#pragma unroll
    for (int i = 0; i < MAX_VLAN_TAGS; i++) {
        if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
            break;
        // TCI then the encapsulated ethertype.
        __u16 *tag = l3;
        if ((void *)(tag + 2) > end)
            return bridge();
        proto = tag[1];
        l3 = tag + 2;
    }

    int sip = 0;
    struct ban_key key = {};

    if (proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = l3;
        if ((void *)(ip + 1) > end)
            return bridge();
        __u32 ihl = ip->ihl * 4;
        if (ihl < sizeof(*ip))
            return bridge(); // userspace would only count it as undecodable; not SIP
        int frag = (ip->frag_off & bpf_htons(0x3fff)) != 0; // MF or offset
        if (frag) {
            sip = (flags & F_FRAGMENTS) && (ip->protocol == IPPROTO_UDP || ip->protocol == IPPROTO_TCP);
        } else {
            sip = l4_is_sip((void *)ip + ihl, end, ip->protocol);
            if (sip < 0)
                sip = 1; // truncated on a SIP-capable protocol: let the engine judge it
        }
        if (sip) {
            key.family = 4;
            __builtin_memcpy(key.addr, &ip->saddr, 4);
        }
    } else if (proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = l3;
        if ((void *)(ip6 + 1) > end)
            return bridge();
        __u8 next = ip6->nexthdr;
        void *p = ip6 + 1;
#pragma unroll
        for (int i = 0; i < MAX_V6_EXT; i++) {
            if (next == IPPROTO_FRAGMENT) {
                sip = (flags & F_FRAGMENTS) != 0;
                break;
            }
            if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS)
                break;
            __u8 *ext = p;
            if ((void *)(ext + 2) > end)
                return bridge();
            next = ext[0];
            p = ext + (ext[1] + 1) * 8;
        }
        if (!sip && next != IPPROTO_FRAGMENT) {
            sip = l4_is_sip(p, end, next);
            if (sip < 0)
                sip = 1;
        }
        if (sip) {
            key.family = 6;
            __builtin_memcpy(key.addr, &ip6->saddr, 16);
        }
    }

    if (!sip)
        return bridge();

    if ((flags & F_BANS) && banned(&key)) {
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
