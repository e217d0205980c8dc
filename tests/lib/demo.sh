#!/usr/bin/env bash
# `make run`: the appliance between two namespaces, with real traffic through it.
#
# Builds the testbed (tests/lib/testbed.sh), starts `secsip run` with the shipped config and
# rules in the middle, places SIPp calls through it, runs a sipvicious scan and extension
# sweep against the same server, then prints what passed, what was stopped (the appliance's
# counters and a few security events) and tears everything down, even on failure.
#
# Usage: demo.sh BINARY [CALLS] [RATE]      (root; make deps installs the tools)
set -euo pipefail

BIN=$(realpath "${1:?usage: demo.sh BINARY [CALLS] [RATE]}")
CALLS=${2:-200}
RATE=${3:-50}
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
NAME=secsip-demo
WORK="$ROOT/target/demo"
# shellcheck source=tests/lib/testbed.sh
source "$HERE/testbed.sh"

status=0
tb_check || status=$?
if ((status)); then
    echo "make run: cannot build the testbed here (status $status); see above" >&2
    exit "$status"
fi

rm -rf "$WORK"
mkdir -p "$WORK"
DAEMON=
cleanup() {
    local s=$?
    if [[ -n "$DAEMON" ]]; then
        kill -TERM "$DAEMON" 2>/dev/null || true
        wait "$DAEMON" 2>/dev/null || true
    fi
    tb_down "$NAME"
    echo "make run: testbed removed; logs in $WORK"
    exit "$s"
}
trap cleanup EXIT
trap 'exit 124' INT TERM

step() { printf '\n== %s\n' "$*"; }

step "testbed"
tb_up "$NAME" none
C="$NAME-client" F="$NAME-fw" S="$NAME-server"

step "appliance: secsip run -c config/secsip.toml (shipped rules) between outside and inside"
cd "$ROOT"
ip netns exec "$F" "$BIN" run -c config/secsip.toml --outside outside --inside inside \
    --run-dir "$WORK/run" --bpffs "/run/secsip-testbed/$NAME/bpffs/secsip" \
    --events "$WORK/events.json" 2>"$WORK/secsip.log" &
DAEMON=$!
for _ in $(seq 100); do
    "$BIN" stats --run-dir "$WORK/run" >/dev/null 2>&1 && break
    kill -0 "$DAEMON" 2>/dev/null || { cat "$WORK/secsip.log" >&2; exit 1; }
    sleep 0.1
done
sed 's/^/   /' "$WORK/secsip.log"

step "SIPp: $CALLS calls at $RATE/s from the client (10.99.0.1) to the server (10.99.0.2)"
ip netns exec "$S" timeout 120 sipp -sn uas -i 10.99.0.2 -p 5060 -nostdin -aa \
    >"$WORK/uas.log" 2>&1 &
disown  # torn down with the namespaces; no "Killed" notice
sleep 0.5
ip netns exec "$C" timeout 90 sipp -sn uac 10.99.0.2:5060 -i 10.99.0.1 -p 5060 \
    -m "$CALLS" -r "$RATE" -nostdin -timeout 80s -trace_stat -fd 1 -stf "$WORK/uac.csv" \
    >"$WORK/uac.log" 2>&1 || true
python3 - "$WORK/uac.csv" <<'EOF'
import sys
rows = [l.rstrip("\n").split(";") for l in open(sys.argv[1]) if l.strip()]
h, last = rows[0], rows[-1]
get = lambda n: last[h.index(n)] if n in h else "?"
print(f"   calls: {get('SuccessfulCall(C)')} successful, {get('FailedCall(C)')} failed, "
      f"{get('Retransmissions(C)')} retransmissions")
EOF

sv() {
    if sipvicious_svmap --version >/dev/null 2>&1; then echo "sipvicious_$1"; else echo "python3 -m sipvicious.$1"; fi
}
step "sipvicious: svmap scan and svwar extension sweep from the client"
# shellcheck disable=SC2046 # the command may be several words
ip netns exec "$C" timeout 40 $(sv svmap) -x 10.99.0.1 10.99.0.2 >"$WORK/svmap.log" 2>&1 || true
# shellcheck disable=SC2046
ip netns exec "$C" timeout 40 $(sv svwar) -x 10.99.0.1 -e 100-140 10.99.0.2 >"$WORK/svwar.log" 2>&1 || true
if grep -q "10.99.0.2:5060" "$WORK/svmap.log"; then
    echo "   svmap FOUND the server (it should not have):"; sed 's/^/     /' "$WORK/svmap.log"
else
    echo "   svmap found nothing: the scan got no answer through the appliance"
fi
echo "   svwar: $(grep -c '^| [0-9]' "$WORK/svwar.log" || true) extensions found"

step "what the appliance saw (secsip stats)"
"$BIN" stats --run-dir "$WORK/run" | sed 's/^/   /'

if [[ -s "$WORK/events.json" ]]; then
    step "security events ($(wc -l <"$WORK/events.json") in $WORK/events.json), the first five"
    head -n 5 "$WORK/events.json" | sed 's/^/   /'
fi
