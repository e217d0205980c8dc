#!/usr/bin/env bash
# The testbed of DESIGN §8: three network namespaces, a bridge's worth of veths.
#
#   NAME-client (eth0: 10.99.0.1, 10.99.0.3, fd99::1)
#        |  veth
#   NAME-fw     (outside, inside: no addresses; the appliance or a Linux bridge goes here)
#        |  veth
#   NAME-server (eth0: 10.99.0.2, fd99::2)
#
# Usage:
#   testbed.sh up NAME [--middle none|bridge] [--queues N]
#                                               make it (tears down an older NAME first);
#                                               N queues on every veth (default 1)
#   testbed.sh down NAME                        kill what runs inside, delete everything
#   testbed.sh check                            exit 77 with the reason if it cannot run here
#
# NAME is at most 20 characters. A bpf filesystem for the appliance's pinned XDP links is
# mounted at /run/secsip-testbed/NAME/bpffs (in the root mount namespace: `ip netns exec`
# hides /sys/fs/bpf). Traffic stays inside: no namespace has a route anywhere else.
# Can also be sourced; the functions are tb_up, tb_down, tb_check.
set -euo pipefail

readonly TB_ROOT=/run/secsip-testbed

tb_check() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "testbed: needs root (network namespaces)" >&2
        return 77
    fi
    local t
    for t in ip ethtool sipp python3 mount; do
        command -v "$t" >/dev/null 2>&1 || { echo "testbed: $t not found (make deps)" >&2; return 77; }
    done
    if ! ip netns add secsip-probe-$$ 2>/dev/null; then
        echo "testbed: cannot create network namespaces here" >&2
        return 77
    fi
    ip netns del secsip-probe-$$
}

tb_down() {
    local name=$1 ns pid
    for ns in "$name-client" "$name-fw" "$name-server"; do
        if ip netns list | grep -qw "^$ns"; then
            for pid in $(ip netns pids "$ns" 2>/dev/null); do
                kill -KILL "$pid" 2>/dev/null || true
            done
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
    if mountpoint -q "$TB_ROOT/$name/bpffs" 2>/dev/null; then
        umount "$TB_ROOT/$name/bpffs" || umount -l "$TB_ROOT/$name/bpffs" || true
    fi
    rm -rf "${TB_ROOT:?}/$name"
}

tb_up() {
    local name=$1 middle=${2:-none} queues=${3:-1}
    [[ ${#name} -le 20 && $name =~ ^[a-z0-9-]+$ ]] || { echo "testbed: NAME must be 1-20 of [a-z0-9-]" >&2; return 2; }
    [[ $middle == none || $middle == bridge ]] || { echo "testbed: --middle none|bridge" >&2; return 2; }
    [[ $queues =~ ^[1-8]$ ]] || { echo "testbed: --queues 1..8" >&2; return 2; }
    tb_down "$name"
    local c="$name-client" f="$name-fw" s="$name-server"
    ip netns add "$c"
    ip netns add "$f"
    ip netns add "$s"
    local q=(numtxqueues "$queues" numrxqueues "$queues")
    ip link add eth0 address 02:00:00:00:00:01 netns "$c" "${q[@]}" type veth peer name outside netns "$f" "${q[@]}"
    ip link add eth0 address 02:00:00:00:00:02 netns "$s" "${q[@]}" type veth peer name inside netns "$f" "${q[@]}"
    ip -n "$c" addr add 10.99.0.1/24 dev eth0
    ip -n "$c" addr add 10.99.0.3/24 dev eth0
    ip -n "$c" addr add fd99::1/64 dev eth0 nodad
    ip -n "$s" addr add 10.99.0.2/24 dev eth0
    ip -n "$s" addr add fd99::2/64 dev eth0 nodad
    local ns
    for ns in "$c" "$s"; do
        ip -n "$ns" link set lo up
        ip -n "$ns" link set eth0 up
        # Frames forwarded raw through AF_XDP keep whatever checksum the sender left: with
        # offload on, a partial one that the receiver drops.
        ip netns exec "$ns" ethtool -K eth0 tx off >/dev/null
        # A frame redirected by XDP into a veth is only received if the peer runs NAPI,
        # which GRO turns on.
        ip netns exec "$ns" ethtool -K eth0 gro on >/dev/null 2>&1 || true
    done
    ip -n "$f" link set lo up
    ip -n "$f" link set outside up
    ip -n "$f" link set inside up
    if [[ $middle == bridge ]]; then
        ip -n "$f" link add br0 type bridge stp_state 0 forward_delay 0
        ip -n "$f" link set outside master br0
        ip -n "$f" link set inside master br0
        ip -n "$f" link set br0 up
    fi
    mkdir -p "$TB_ROOT/$name/bpffs"
    mount -t bpf bpf "$TB_ROOT/$name/bpffs"
    echo "testbed $name: $c (10.99.0.1, 10.99.0.3, fd99::1) -- $f [outside|inside, middle: $middle, $queues queue(s)] -- $s (10.99.0.2, fd99::2); bpffs $TB_ROOT/$name/bpffs"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    case "${1:-}" in
        up)
            [[ $# -ge 2 ]] || { echo "usage: $0 up NAME [--middle none|bridge] [--queues N]" >&2; exit 2; }
            name=$2 middle=none queues=1
            shift 2
            while [[ $# -gt 0 ]]; do
                case "$1" in
                    --middle) middle="${2:-}"; shift 2 ;;
                    --queues) queues="${2:-}"; shift 2 ;;
                    *) echo "testbed: unknown option $1" >&2; exit 2 ;;
                esac
            done
            tb_check
            tb_up "$name" "$middle" "$queues"
            ;;
        down)
            [[ $# -eq 2 ]] || { echo "usage: $0 down NAME" >&2; exit 2; }
            tb_down "$2"
            ;;
        check)
            tb_check
            ;;
        *)
            echo "usage: $0 up NAME [--middle none|bridge] [--queues N] | down NAME | check" >&2
            exit 2
            ;;
    esac
fi
