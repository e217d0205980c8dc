#!/usr/bin/env bash
# The web manager in a real browser against a running appliance (issue 7, part 2).
#
# Builds the testbed (tests/lib/testbed.sh: client -- fw -- server namespaces), runs the
# appliance in NAME-fw with the shipped rules minus rules/20-scanners.toml (which would already
# drop sipvicious) and its management API on 127.0.0.1:10000 there, behind a bearer token; a
# SIPp UAS answers in the server namespace. A baseline sipvicious scan must find the server.
# Then headless Chromium (Debian's, driven by playwright-core, in NAME-fw) runs
# tests/web/manager.mjs: dashboard, candidate editor, a new rule with a typo flagged at its
# line, fixed, saved, committed; the same scan is now blocked and the rule's hit counter in the
# page goes up. Screenshots and logs in target/web-test/.
#
#   tests/web/run.sh BINARY          (root; SECSIP_REQUIRE_NETNS=1 makes "cannot run" a failure)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BIN=$(realpath "${1:?usage: tests/web/run.sh target/debug/secsip}")
WORK="$REPO/target/web-test"
# shellcheck source=tests/lib/testbed.sh
source "$REPO/tests/lib/testbed.sh"
# shellcheck source=tests/lib/require.sh
source "$REPO/tests/lib/require.sh"

fail() { echo "web-test: FAILED: $*" >&2; exit 1; }

mkdir -p "$REPO/target"
reason=$(tb_check 2>&1) || { skip_unless_required "web manager browser test" "$reason"; exit 0; }
[[ -x /usr/bin/chromium ]] || fail "/usr/bin/chromium not found (make deps installs Debian's chromium)"
command -v node >/dev/null || fail "node not found (make deps)"
[[ -f "$HERE/node_modules/playwright-core/package.json" ]] || fail "playwright-core not installed in tests/web (make deps runs npm ci there)"

NAME=secsip-web
CLIENT="$NAME-client" FW="$NAME-fw" SERVER="$NAME-server"
API=http://127.0.0.1:10000
start=$(date +%s)

daemon_pid=""
cleanup() {
  local s=$?
  if [[ -n $daemon_pid ]]; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  tb_down "$NAME" >/dev/null 2>&1 || true
  ((s == 0)) || echo "web-test: logs in $WORK (secsip.log, uas.log, scan-*.log, shots/)" >&2
  exit "$s"
}
trap cleanup EXIT
trap 'exit 124' INT TERM

rm -rf "$WORK"
mkdir -p "$WORK/shots" "$WORK/run"
tb_up "$NAME" none 1 >"$WORK/testbed.log"

# The rules: the shipped set without the scanner file, so only the user's new rule stops svmap.
cp -r "$REPO/rules" "$WORK/rules"
rm "$WORK/rules/20-scanners.toml"
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$WORK/token"
chmod 600 "$WORK/token"
cat >"$WORK/secsip.toml" <<CFG
[rules]
dir = "$WORK/rules"

[management]
bind = "127.0.0.1:10000"
token_file = "$WORK/token"
CFG
"$BIN" --check -c "$WORK/secsip.toml" >"$WORK/check.log" 2>&1 || { cat "$WORK/check.log"; fail "secsip --check refused the test configuration"; }

ip netns exec "$FW" "$BIN" run -c "$WORK/secsip.toml" --outside outside --inside inside \
  --run-dir "$WORK/run" --bpffs "$TB_ROOT/$NAME/bpffs/secsip" 2>"$WORK/secsip.log" &
daemon_pid=$!
for _ in $(seq 150); do
  "$BIN" stats --run-dir "$WORK/run" >/dev/null 2>&1 && break
  kill -0 "$daemon_pid" 2>/dev/null || { cat "$WORK/secsip.log"; fail "secsip exited at start"; }
  sleep 0.1
done
"$BIN" stats --run-dir "$WORK/run" >/dev/null 2>&1 || { cat "$WORK/secsip.log"; fail "secsip did not answer secsip stats in 15 s"; }

# api PATH: GET with the token, in the fw namespace (where the API listens).
api() { ip netns exec "$FW" curl -sS --max-time 5 -H "Authorization: Bearer $(cat "$WORK/token")" "$API$1"; }
for _ in $(seq 50); do api /api/health >/dev/null 2>&1 && break; sleep 0.1; done
api /api/health >/dev/null || { cat "$WORK/secsip.log"; fail "the management API did not answer on $API in the fw namespace"; }
# Without the token the API refuses (the page must ask for it).
code=$(ip netns exec "$FW" curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$API/api/stats")
[[ $code == 401 ]] || fail "GET /api/stats without the token answered $code, not 401"
echo "web-test: appliance up in $FW ($(api /api/rules | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["rules"]))') running rules, without 20-scanners.toml); API on $API with a token"

ip netns exec "$SERVER" timeout 600 sipp -sn uas -i 10.99.0.2 -p 5060 -nostdin -aa \
  >"$WORK/uas.log" 2>&1 &
disown  # torn down with the namespaces
sleep 0.5

if sipvicious_svmap --version >/dev/null 2>&1; then svmap=sipvicious_svmap; else svmap="python3 -m sipvicious.svmap"; fi
scan_cmd="ip netns exec $CLIENT timeout 40 $svmap -x 10.99.0.1 10.99.0.2"

# Baseline: without the new rule the scan gets through and finds the SIPp server.
# shellcheck disable=SC2086 # the command is several words
$scan_cmd >"$WORK/scan-before.log" 2>&1 || true
grep -q "10.99.0.2:5060" "$WORK/scan-before.log" \
  || { cat "$WORK/scan-before.log"; fail "the baseline scan did not find the server (the scan must pass before the rule is added)"; }
echo "web-test: baseline: svmap finds the server through the appliance ($(grep -m1 '10.99.0.2:5060' "$WORK/scan-before.log" | tr -s ' |' ' '))"

# The browser, in the fw namespace next to the API.
ip netns exec "$FW" env HOME="$WORK" timeout --kill-after=5 300 node "$HERE/manager.mjs" \
  --url "$API/" --out "$WORK/shots" --token-file "$WORK/token" \
  --scan "$scan_cmd > '$WORK/scan-after.log' 2>&1; cat '$WORK/scan-after.log'" \
  || fail "the browser test failed (screenshots in $WORK/shots)"

# The appliance agrees: the rule counted the scan's messages.
hits=$(api /api/rules | python3 -c 'import json,sys
r = [x for x in json.load(sys.stdin)["rules"] if x["id"] == "block-friendly-scanner"]
print(r[0]["hits"] if r else -1)')
((hits > 0)) || fail "the API says block-friendly-scanner has $hits hits"
# The live /metrics of this appliance, as a scraper gets it, through promtool.
PROMTOOL=${PROMTOOL:-/var/cache/secsip-promtool/usr/bin/promtool}
api /metrics >"$WORK/metrics.txt" || fail "GET /metrics failed"
grep -q '^secsip_rule_hits_total{rule="block-friendly-scanner"} [1-9]' "$WORK/metrics.txt" \
  || fail "/metrics does not count the new rule's hits ($WORK/metrics.txt)"
if [[ -x $PROMTOOL ]]; then
  "$PROMTOOL" check metrics <"$WORK/metrics.txt" >"$WORK/promtool.log" 2>&1 \
    || { cat "$WORK/promtool.log"; fail "promtool check metrics refused the live /metrics"; }
  echo "web-test: live /metrics ($(grep -vc '^#' "$WORK/metrics.txt") samples) passes promtool check metrics"
else
  skip_unless_required "promtool check of the live /metrics" "$PROMTOOL not found (make deps fetches it)"
fi
echo "web-test: ok: the rule added in the page blocked the scan ($hits hits); $(( $(date +%s) - start )) s; screenshots in $WORK/shots"
