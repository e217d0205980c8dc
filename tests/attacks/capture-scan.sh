#!/usr/bin/env bash
# Capture a real sipvicious attack (scan, extension enumeration, password cracking) against
# a PBX-like SIP target into a pcap file.
#
# Usage: capture-scan.sh OUT.pcap [PHASES]
#
# Creates two private network namespaces joined by a veth pair (attacker 10.77.0.1, target
# 10.77.0.2, MACs 02:00:00:00:00:01/02 as in secsip::fixtures), runs target.py (registrar
# and UAS; extensions 100-109, extension 101's password is 1050) on 10.77.0.2:5060, records
# UDP port 5060 on the target's veth with tcpdump, and runs from the attacker namespace, in
# order and each under `timeout`:
#   1. sipvicious_svmap   10.77.0.2                       (OPTIONS scan)
#   2. sipvicious_svwar   -e 90-130 10.77.0.2             (REGISTER extension enumeration)
#   3. sipvicious_svcrack -u 101 -r 1000-1100 10.77.0.2   (Digest password cracking)
# then prints what each tool reported and what the capture holds per tool.
# PHASES, a comma-separated list, picks other runs (default svmap,svwar,svcrack); two more
# are available: svwar-invite (svwar -m INVITE -e 98-111) and svwar-options
# (svwar -m OPTIONS -e 98-111).
#
# Traffic never leaves the two namespaces: the veth pair is their only link and neither
# has a route anywhere else. Needs root, python3, sipvicious (tests/install-deps.sh
# installs it), tcpdump, ip and ethtool. The sipvicious console scripts are used when they
# work, else `python3 -m sipvicious.svmap` etc. (SECSIP_PYTHON picks the interpreter).
# Exit status: 0 when every tool ran and found what it should (the target; extensions
# 100-109 and nothing else; password 1050), 77 when a tool or privilege is missing (test
# skipped), non-zero otherwise. Everything is torn down on exit, even on failure or timeout.
set -euo pipefail

readonly SKIP=77
SELF="${BASH_SOURCE[0]}"
[[ "$SELF" == */* ]] || SELF="./$SELF"
readonly HERE="$(cd "${SELF%/*}" && pwd)"
PY="${SECSIP_PYTHON:-python3}"

# What the target knows and what the tools are asked to try.
readonly CLIENT=10.77.0.1 SERVER=10.77.0.2
readonly KNOWN_USERS=100-109 EXPECTED_EXTENSIONS="100 101 102 103 104 105 106 107 108 109"
readonly WAR_RANGE=90-130 WAR_METHOD_RANGE=98-111
readonly CRACK_USER=101 CRACK_PASSWORD=1050 CRACK_RANGE=1000-1100

usage() {
    echo "usage: $0 OUT.pcap [svmap,svwar,svcrack,svwar-invite,svwar-options]" >&2
    exit 2
}
[[ $# -ge 1 && $# -le 2 ]] || usage
OUT="$1"
IFS=, read -r -a RUN_PHASES <<<"${2:-svmap,svwar,svcrack}"
for phase in "${RUN_PHASES[@]}"; do
    case "$phase" in
        svmap|svwar|svcrack|svwar-invite|svwar-options) ;;
        *) echo "capture-scan: unknown phase '$phase'" >&2; usage ;;
    esac
done

for tool in tcpdump ip ethtool timeout "$PY"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "capture-scan: '$tool' not found (Debian: tcpdump, iproute2, ethtool, python3)" >&2
        exit "$SKIP"
    fi
done
if [[ $EUID -ne 0 ]]; then
    echo "capture-scan: needs root to create network namespaces" >&2
    exit "$SKIP"
fi

# How sipvicious is invoked here: the console script (0.3.x: sipvicious_svmap; before:
# svmap.py) if it runs, else the module through the interpreter.
sv_resolve() {
    local name="$1" c
    for c in "sipvicious_$name" "$name.py"; do
        if command -v "$c" >/dev/null 2>&1 && "$c" --version >/dev/null 2>&1; then
            echo "$(command -v "$c")"
            return 0
        fi
    done
    if "$PY" -c "import sipvicious.$name" >/dev/null 2>&1; then
        echo "$PY -m sipvicious.$name"
        return 0
    fi
    return 1
}
for name in svmap svwar svcrack; do
    if ! cmd="$(sv_resolve "$name")"; then
        echo "capture-scan: sipvicious $name not found (bash tests/install-deps.sh installs it)" >&2
        exit "$SKIP"
    fi
    # Word splitting is wanted: "python3 -m sipvicious.svmap" is three words.
    read -r -a "SV_${name^^}" <<<"$cmd"
done

# A hung tool must not hang CI: re-run ourselves under a hard limit
# (SECSIP_CAPTURE_TIMEOUT seconds, default 120); each tool has its own smaller limit.
if [[ -z "${SECSIP_CAPTURE_INNER:-}" ]]; then
    SECSIP_CAPTURE_INNER=1 exec timeout --kill-after=5 "${SECSIP_CAPTURE_TIMEOUT:-120}" \
        bash "$SELF" "$@"
fi

OUT_DIR="$(cd "$(dirname "$OUT")" && pwd)"
OUT="$OUT_DIR/$(basename "$OUT")"

NS_C="secsip-ac-$$"
NS_S="secsip-as-$$"
VETH_C="ssac$$"   # interface names are limited to 15 characters
VETH_S="ssas$$"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/secsip-scan.XXXXXX")"
PIDS=()
KEEP_WORK=

# shellcheck source=../lib/netns-pair.sh
source "$(dirname "$SELF")/../lib/netns-pair.sh"
pair_traps capture-scan

show_logs() {
    local log
    for log in "$WORK"/*.log; do
        [[ -s "$log" ]] || continue
        echo "---- $(basename "$log") ----" >&2
        tail -n 30 "$log" >&2
    done
}

fail() {
    echo "capture-scan: $*" >&2
    show_logs
    pair_keep_or_hint capture-scan "the tool logs"
    exit 1
}

pair_up "$CLIENT" "$SERVER"

# The capture is taken where the firewall would sit: on the target's side.
pair_tcpdump "$NS_S" "$VETH_S" "$OUT" || fail "tcpdump did not start"

cd "$WORK"
ip netns exec "$NS_S" "$PY" "$HERE/target.py" --bind "$SERVER:5060" --users "$KNOWN_USERS" \
    --password "$CRACK_USER=$CRACK_PASSWORD" --max-seconds 110 >"$WORK/target.log" 2>&1 &
TARGET_PID=$!
PIDS+=("$TARGET_PID")
for _ in $(seq 50); do
    grep -q "listening on" "$WORK/target.log" 2>/dev/null && break
    kill -0 "$TARGET_PID" 2>/dev/null || break
    sleep 0.1
done
grep -q "listening on" "$WORK/target.log" || fail "target.py did not start"

now() { date +%s.%N; }
# run_tool NAME SECONDS COMMAND...: runs in the attacker namespace, output in NAME.log.
run_tool() {
    local name="$1" limit="$2" status=0
    shift 2
    PHASES+=("$name=$(now)")
    echo "capture-scan: running $*" >&2
    # In the background and waited for, so that a signal reaches the trap at once (bash
    # runs traps only after a foreground command ends) and cleanup can stop the tool.
    ip netns exec "$NS_C" timeout --kill-after=2 "$limit" "$@" >"$WORK/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait "$pid" || status=$?
    # sipvicious exits 0 (nothing found), 40 (found something) or 20/30 (errors), and
    # timeout 124/137: the reports are judged from the output below, the status is shown.
    echo "$status" >"$WORK/$name.status"
}
PHASES=()
# -x: the address written in Via and Contact (otherwise whatever the host name resolves to).
for phase in "${RUN_PHASES[@]}"; do
    case "$phase" in
        svmap) run_tool svmap 20 "${SV_SVMAP[@]}" -x "$CLIENT" "$SERVER" ;;
        svwar) run_tool svwar 40 "${SV_SVWAR[@]}" -x "$CLIENT" -e "$WAR_RANGE" "$SERVER" ;;
        svcrack) run_tool svcrack 40 "${SV_SVCRACK[@]}" -x "$CLIENT" -u "$CRACK_USER" -r "$CRACK_RANGE" "$SERVER" ;;
        svwar-invite) run_tool svwar-invite 30 "${SV_SVWAR[@]}" -x "$CLIENT" -m INVITE -e "$WAR_METHOD_RANGE" "$SERVER" ;;
        svwar-options) run_tool svwar-options 30 "${SV_SVWAR[@]}" -x "$CLIENT" -m OPTIONS -e "$WAR_METHOD_RANGE" "$SERVER" ;;
    esac
done

# The target prints how many datagrams it received and sent when it stops: the capture
# must hold them all before tcpdump is stopped (packets still in the kernel ring when
# tcpdump gets SIGINT are never written).
kill -TERM "$TARGET_PID"
wait "$TARGET_PID" || true
summary_json="$(sed -n 's/^target: summary //p' "$WORK/target.log")"
[[ -n "$summary_json" ]] || fail "target.py printed no summary"
expected="$("$PY" -c 'import json,sys; s=json.loads(sys.argv[1]); print(s["received"] + s["sent"])' "$summary_json")"
for _ in $(seq 30); do
    [[ "$(tcpdump -r "$OUT" -nn 2>/dev/null | wc -l)" -ge "$expected" ]] && break
    sleep 0.1
done
kill -INT "$TCPDUMP_PID"
wait "$TCPDUMP_PID" || true
got="$(tcpdump -r "$OUT" -nn 2>/dev/null | wc -l)"

# ---- what the tools reported ----
# svmap prints a table "| 10.77.0.2:5060 | <Server or User-Agent> |".
svmap_report() {
    grep -E "^\| *$SERVER:5060 *\|" "$WORK/$1.log" |
        awk -F'|' '{gsub(/^ +| +$/,"",$2); gsub(/^ +| +$/,"",$3); print $2 " (" $3 ")"}' || true
}
# svwar prints "| <extension> | reqauth |" (noauth, or weird for a 486 to INVITE) for each
# extension it believes exists.
svwar_report() {
    grep -E '^\| *[0-9]+ *\| *(reqauth|noauth|weird) *\|' "$WORK/$1.log" |
        awk -F'|' '{gsub(/ /,"",$2); print $2}' | sort -n | tr '\n' ' ' | sed 's/ $//' || true
}
svwar_kinds() {
    grep -E '^\| *[0-9]+ *\| *(reqauth|noauth|weird) *\|' "$WORK/$1.log" |
        awk -F'|' '{gsub(/ /,"",$3); print $3}' | sort -u | tr '\n' ' ' | sed 's/ $//' || true
}
# svcrack prints "| <extension> | <password> |".
svcrack_report() {
    grep -E "^\| *$CRACK_USER *\| *[^ |]+ *\|" "$WORK/$1.log" |
        awk -F'|' '{gsub(/ /,"",$3); print $3}' | head -n1 || true
}

echo "capture-scan: sipvicious: ${SV_SVMAP[*]} | ${SV_SVWAR[*]} | ${SV_SVCRACK[*]}"
problems=()
for phase in "${RUN_PHASES[@]}"; do
    status="$(cat "$WORK/$phase.status")"
    case "$phase" in
        svmap)
            found="$(svmap_report "$phase")"
            echo "capture-scan: $phase (exit $status): found ${found:-nothing}"
            [[ "$found" == "$SERVER:5060 "* ]] || problems+=("$phase did not report $SERVER:5060")
            ;;
        svwar*)
            found="$(svwar_report "$phase")"
            range="$WAR_RANGE"; [[ "$phase" == svwar ]] || range="$WAR_METHOD_RANGE"
            echo "capture-scan: $phase (exit $status): extensions ${found:-none} ($(svwar_kinds "$phase")) in $range"
            [[ "$found" == "$EXPECTED_EXTENSIONS" ]] ||
                problems+=("$phase reported extensions '$found', expected '$EXPECTED_EXTENSIONS'")
            ;;
        svcrack)
            found="$(svcrack_report "$phase")"
            echo "capture-scan: $phase (exit $status): password of $CRACK_USER: ${found:-not found} (range $CRACK_RANGE)"
            [[ "$found" == "$CRACK_PASSWORD" ]] ||
                problems+=("$phase reported password '$found' for $CRACK_USER, expected '$CRACK_PASSWORD'")
            ;;
    esac
done
echo "capture-scan: target: $summary_json"
echo "capture-scan: $got packets in $OUT ($expected sent or received by the target), $(stat -c %s "$OUT") bytes"
"$PY" "$HERE/pcap-summary.py" "$OUT" "${PHASES[@]}" | sed 's/^/capture-scan: /'

[[ "$got" -ge "$expected" ]] || problems+=("capture has $got packets, the target handled $expected")
if ((${#problems[@]})); then
    fail "$(printf '%s; ' "${problems[@]}")"
fi
echo "capture-scan: ok"
