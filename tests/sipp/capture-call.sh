#!/usr/bin/env bash
# Capture real SIP traffic between two SIPp instances into a pcap file.
#
# Usage: capture-call.sh OUT.pcap [CALLS] [RATE]
#
# CALLS (default 1) calls are placed at RATE calls per second (default 10), at most RATE
# at once: 1000 calls at RATE 100 take about 10 s.
#
# Creates two private network namespaces joined by a veth pair (client 10.77.0.1,
# server 10.77.0.2, MACs 02:00:00:00:00:01/02 as in secsip::fixtures), runs the SIPp UAS
# scenario uas.xml in the server namespace and uac.xml in the client namespace, and records
# UDP port 5060 on the client veth with tcpdump. One call is 11 SIP messages: REGISTER,
# 401, REGISTER with Digest, 200, INVITE, 100, 180, 200, ACK, BYE, 200.
#
# Traffic never leaves the two namespaces: the veth pair is their only link and neither
# has a route anywhere else. Needs root (namespaces), sipp, tcpdump, ip and ethtool.
# Exit status: 0 on success, 77 when a tool or privilege is missing (test skipped),
# non-zero otherwise. Everything is torn down on exit, even on failure or timeout.
set -euo pipefail

readonly SKIP=77
SELF="${BASH_SOURCE[0]}"
[[ "$SELF" == */* ]] || SELF="./$SELF"
readonly HERE="$(cd "${SELF%/*}" && pwd)"

usage() {
    echo "usage: $0 OUT.pcap [CALLS] [RATE]" >&2
    exit 2
}

[[ $# -ge 1 && $# -le 3 ]] || usage
OUT="$1"
CALLS="${2:-1}"
RATE="${3:-10}"
[[ "$CALLS" =~ ^[1-9][0-9]*$ ]] || { echo "CALLS must be a positive integer, got '$CALLS'" >&2; exit 2; }
[[ "$RATE" =~ ^[1-9][0-9]*$ ]] || { echo "RATE must be a positive integer, got '$RATE'" >&2; exit 2; }
# Calls in flight at once: one second's worth (each call takes milliseconds on a veth).
LIMIT=$(( RATE > 10 ? RATE : 10 ))
# Seconds the calls take to place at RATE; SIPp's global -timeout and our own hard limit
# grow with it so a long run at a low rate is not cut short.
SPAN=$(( (CALLS + RATE - 1) / RATE ))
SIPP_TIMEOUT=$(( SPAN + 30 ))

for tool in sipp tcpdump ip ethtool timeout; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "capture-call: '$tool' not found (Debian: sip-tester, tcpdump, iproute2, ethtool)" >&2
        exit "$SKIP"
    fi
done
if [[ $EUID -ne 0 ]]; then
    echo "capture-call: needs root to create network namespaces" >&2
    exit "$SKIP"
fi

# A hung sipp or tcpdump must not hang CI: re-run ourselves under a hard limit
# (SECSIP_CAPTURE_TIMEOUT seconds, default 60 + the time the calls take at RATE); SIPp
# itself gives up 30 s after the calls should have been placed.
if [[ -z "${SECSIP_CAPTURE_INNER:-}" ]]; then
    SECSIP_CAPTURE_INNER=1 exec timeout --kill-after=5 "${SECSIP_CAPTURE_TIMEOUT:-$(( SPAN + 60 ))}" \
        bash "$SELF" "$@"
fi

# Resolve OUT before changing directory; the directory must already exist.
OUT_DIR="$(cd "$(dirname "$OUT")" && pwd)"
OUT="$OUT_DIR/$(basename "$OUT")"

# Unique per run so parallel runs and leftovers of a killed run do not collide.
NS_C="secsip-c-$$"
NS_S="secsip-s-$$"
VETH_C="sscc$$"   # interface names are limited to 15 characters
VETH_S="sscs$$"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/secsip-capture.XXXXXX")"
PIDS=()
KEEP_WORK=

# shellcheck source=../lib/netns-pair.sh
source "$(dirname "$SELF")/../lib/netns-pair.sh"
pair_traps capture-call

fail() {
    echo "capture-call: $*" >&2
    for log in "$WORK"/tcpdump.log "$WORK"/*-errors.log; do
        [[ -s "$log" ]] || continue
        echo "---- $(basename "$log") ----" >&2
        tail -n 30 "$log" >&2
    done
    pair_keep_or_hint capture-call "the SIPp screens and logs"
    exit 1
}

pair_up 10.77.0.1 10.77.0.2

pair_tcpdump "$NS_C" "$VETH_C" "$OUT" || fail "tcpdump did not start"

# Logs go to $WORK: SIPp writes them next to the scenario or in the cwd otherwise.
cd "$WORK"
ip netns exec "$NS_S" sipp -sf "$HERE/uas.xml" -i 10.77.0.2 -p 5060 -mi 10.77.0.2 \
    -m "$CALLS" -timeout "${SIPP_TIMEOUT}s" -timeout_error -nostdin \
    -trace_err -error_file "$WORK/uas-errors.log" \
    -trace_screen -screen_file "$WORK/uas-screen.log" \
    >"$WORK/uas-stdout.log" 2>&1 &
UAS_PID=$!
PIDS+=("$UAS_PID")
sleep 0.5
kill -0 "$UAS_PID" 2>/dev/null || fail "SIPp UAS exited at start"

uac_status=0
ip netns exec "$NS_C" sipp 10.77.0.2:5060 -sf "$HERE/uac.xml" -i 10.77.0.1 -p 5060 -mi 10.77.0.1 \
    -s bob -au alice -ap secret-alice \
    -m "$CALLS" -r "$RATE" -l "$LIMIT" -timeout "${SIPP_TIMEOUT}s" -timeout_error -nostdin \
    -trace_err -error_file "$WORK/uac-errors.log" \
    -trace_screen -screen_file "$WORK/uac-screen.log" \
    >"$WORK/uac-stdout.log" 2>&1 &
UAC_PID=$!
PIDS+=("$UAC_PID")
wait "$UAC_PID" || uac_status=$?
[[ $uac_status -eq 0 ]] || fail "SIPp UAC failed (exit $uac_status): not all $CALLS call(s) completed"

uas_status=0
wait "$UAS_PID" || uas_status=$?
[[ $uas_status -eq 0 ]] || fail "SIPp UAS failed (exit $uas_status)"

# Stop the capture only once it holds every message (or after 3 s): packets still in the
# kernel ring when tcpdump gets SIGINT are never written. --immediate-mode and -U make each
# packet reach the file as it arrives.
expected=$((CALLS * 11))
for _ in $(seq 30); do
    [[ "$(tcpdump -r "$OUT" -nn 2>/dev/null | wc -l)" -ge "$expected" ]] && break
    sleep 0.1
done
kill -INT "$TCPDUMP_PID"
wait "$TCPDUMP_PID" || true

got="$(tcpdump -r "$OUT" -nn 2>/dev/null | wc -l)"
echo "capture-call: $CALLS call(s) at $RATE/s, $got packets in $OUT (expected $expected without retransmissions)"
[[ "$got" -ge "$expected" ]] || fail "capture has $got packets, expected at least $expected"
