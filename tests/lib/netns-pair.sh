# Sourced by the capture scripts: two network namespaces joined by one veth pair, torn down on
# exit. The caller sets NS_C, NS_S, VETH_C, VETH_S (veth names are limited to 15 characters),
# WORK (a scratch directory), PIDS=() and KEEP_WORK= before calling these functions.

# Installs the EXIT trap that kills the recorded processes, deletes both namespaces (and so the
# veth pair) and the scratch directory; INT and TERM exit 124, like `timeout`.
pair_traps() {
    local name=$1
    trap pair_cleanup EXIT
    # shellcheck disable=SC2064 # the name is fixed now on purpose
    trap "echo '$name: interrupted or timed out' >&2; exit 124" INT TERM
}

pair_cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    ip netns del "$NS_C" 2>/dev/null || true
    ip netns del "$NS_S" 2>/dev/null || true
    [[ -n "$KEEP_WORK" ]] || rm -rf "$WORK"
    exit "$status"
}

# pair_up CLIENT_IP SERVER_IP: creates the namespaces and the veth pair (fixed MACs
# 02:00:00:00:00:01 and :02), addresses them in one /24 and brings everything up.
pair_up() {
    ip netns add "$NS_C"
    ip netns add "$NS_S"
    ip link add "$VETH_C" address 02:00:00:00:00:01 netns "$NS_C" type veth \
        peer name "$VETH_S" address 02:00:00:00:00:02 netns "$NS_S"
    ip -n "$NS_C" addr add "$1/24" dev "$VETH_C"
    ip -n "$NS_S" addr add "$2/24" dev "$VETH_S"
    local ns_if ns ifc
    for ns_if in "$NS_C:$VETH_C" "$NS_S:$VETH_S"; do
        ns="${ns_if%%:*}" ifc="${ns_if#*:}"
        ip -n "$ns" link set lo up
        ip -n "$ns" link set "$ifc" up
        # Without this the kernel leaves UDP checksums to the "hardware", and the capture
        # would hold partial checksums that any decoder verifying them rejects.
        ip netns exec "$ns" ethtool -K "$ifc" tx off >/dev/null
    done
}

# pair_tcpdump NS IF OUT: captures UDP port 5060 on IF into OUT and waits until tcpdump
# listens; sets TCPDUMP_PID (also recorded in PIDS). Returns 1 if it never starts.
pair_tcpdump() {
    # -Z root: tcpdump would otherwise drop to its own user and may not write OUT.
    # -U --immediate-mode: every packet reaches the file as it arrives.
    ip netns exec "$1" tcpdump -i "$2" -w "$3" -U --immediate-mode -nn -Z root \
        udp port 5060 2>"$WORK/tcpdump.log" &
    TCPDUMP_PID=$!
    PIDS+=("$TCPDUMP_PID")
    for _ in $(seq 50); do
        grep -q "listening on" "$WORK/tcpdump.log" 2>/dev/null && return 0
        sleep 0.1
    done
    grep -q "listening on" "$WORK/tcpdump.log"
}

# pair_keep_or_hint NAME WHAT: on failure, keeps WORK when SECSIP_CAPTURE_KEEP is set, or
# says how to keep it.
pair_keep_or_hint() {
    if [[ -n "${SECSIP_CAPTURE_KEEP:-}" ]]; then
        KEEP_WORK=1
        echo "$1: all logs kept in $WORK" >&2
    else
        echo "$1: set SECSIP_CAPTURE_KEEP=1 to keep $2" >&2
    fi
}
