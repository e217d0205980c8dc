#!/usr/bin/env bash
# The role's reload path, end to end: the role (local connection) installs into a scratch root,
# the installed appliance runs in the testbed's namespaces, SIPp calls are set up and held, and
# a rules-only change applied by the role reloads the daemon through its pid file (`secsip
# reload`, the handler for hosts without systemd) while the calls are in flight. Every call
# must complete, the daemon must be the same process, the new rule must act on the wire, and
# applying the previous rules again must roll back the same way.
#   tests/ansible/reload.sh ARTIFACT
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
ARTIFACT=$(realpath "${1:?usage: reload.sh target/dist/secsip-VERSION-ARCH.tar.gz}")
# shellcheck source=tests/ansible/lib.sh
source "$REPO/tests/ansible/lib.sh"
# shellcheck source=tests/lib/testbed.sh
source "$REPO/tests/lib/testbed.sh"

# shellcheck source=tests/lib/require.sh
source "$REPO/tests/lib/require.sh"

reason=$(tb_check 2>&1) || { skip_unless_required "ansible reload test in namespaces" "$reason"; exit 0; }

NAME=ans-reload
WORK="$REPO/target/ansible-reload"
ROOT="$WORK/root"
RUN="$WORK/run"
LOGS="$WORK/logs"
BPFFS="$TB_ROOT/$NAME/bpffs"
CLIENT="$NAME-client" FW="$NAME-fw" SERVER="$NAME-server"
# Calls held long enough that the whole play runs while they are up.
CALLS=20 CALL_RATE=4 HOLD_MS=45000
PROBE_UA="ansible-reload-probe/1.0"
start=$(date +%s)

daemon_pid=""
cleanup() {
  [[ -n $daemon_pid ]] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  tb_down "$NAME" >/dev/null 2>&1 || true
}
trap cleanup EXIT

rm -rf "$WORK"
mkdir -p "$LOGS" "$ROOT"
tb_up "$NAME" none 1 >"$LOGS/testbed.log"

# Two rule sets: A is the shipped rules, B adds one rule that drops the probe's user agent.
cp -r "$REPO/rules" "$WORK/rules-a"
cp -r "$REPO/rules" "$WORK/rules-b"
cat >"$WORK/rules-b/90-ansible-reload.toml" <<'RULE'
[[rule]]
id = "ansible-reload-probe"
description = "Added by the Ansible reload test: drops one user agent"
when = 'sip.ua startswith "ansible-reload-probe/"'
action = "drop"
RULE

cat >"$WORK/inventory.yml" <<INV
---
secsip_appliances:
  hosts:
    testbed:
      ansible_connection: local
      secsip_root: "$ROOT"
      secsip_artifact: "$ARTIFACT"
      secsip_controller_cache: "$WORK/cache"
      secsip_manage_service: none
      secsip_tune_nics: false
      secsip_run_dir: "$RUN"
      secsip_bpffs: "$BPFFS"
      secsip_outside: outside
      secsip_inside: inside
INV
inv=(-i "$WORK/inventory.yml")
secsip="$ROOT/usr/bin/secsip"

stats() { "$secsip" stats --json --run-dir "$RUN" 2>/dev/null; }
# jq-free JSON reads: python3 is a dependency of the testbed anyway.
field() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v.get(k, {}) if isinstance(v, dict) else {}
v = 0 if v == {} else v
print(json.dumps(v) if isinstance(v, (dict, list)) else v)' "$1"; }
reloads_ok() { stats | field reloads.ok; }

# apply NAME ARGS...: runs the play, which must succeed; the log is kept under NAME.
apply() {
  local name=$1; shift
  play "$LOGS/$name.log" "${inv[@]}" "$@" || { cat "$LOGS/$name.log"; fail "$name: the play failed"; }
  [[ $(recap "$LOGS/$name.log" testbed failed) == 0 ]] || { cat "$LOGS/$name.log"; fail "$name: failed tasks"; }
}

# task_changed LOG TASK: whether the task or handler TASK ran and reported a change in LOG.
task_changed() { grep -A1 -E "^(TASK|RUNNING HANDLER) \[secsip : $2\]" "$1" | grep -q '^changed:'; }
task_ran() { grep -A1 -E "^(TASK|RUNNING HANDLER) \[secsip : $2\]" "$1" | grep -qE '^(changed|ok):'; }

# probe: an OPTIONS with the probe's user agent from the client; prints "answered" or "silent".
probe() {
  ip netns exec "$CLIENT" python3 - "$PROBE_UA" <<'PY'
import socket, sys, uuid
ua = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.99.0.3", 0))
port = s.getsockname()[1]
branch, cid = "z9hG4bK" + uuid.uuid4().hex[:12], uuid.uuid4().hex
msg = (f"OPTIONS sip:10.99.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.99.0.3:{port};branch={branch}\r\n"
       f"Max-Forwards: 70\r\nFrom: <sip:probe@10.99.0.3>;tag={uuid.uuid4().hex[:8]}\r\n"
       f"To: <sip:10.99.0.2>\r\nCall-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nUser-Agent: {ua}\r\n"
       "Content-Length: 0\r\n\r\n")
s.sendto(msg.encode(), ("10.99.0.2", 5060))
s.settimeout(1.5)
try:
    s.recvfrom(65535)
    print("answered")
except socket.timeout:
    print("silent")
PY
}

echo "ansible-test: reload: installing into $ROOT with the shipped rules"
apply install -e "secsip_rules_src=$WORK/rules-a"
set_a=$(basename "$(readlink "$ROOT/etc/secsip/rules")")

ip netns exec "$FW" "$secsip" run -c "$ROOT/etc/secsip/secsip.toml" 2>"$LOGS/secsip.log" &
daemon_pid=$!
for _ in $(seq 150); do
  stats >/dev/null && break
  kill -0 "$daemon_pid" 2>/dev/null || { cat "$LOGS/secsip.log"; fail "the installed secsip exited at start"; }
  sleep 0.1
done
stats >/dev/null || { cat "$LOGS/secsip.log"; fail "the installed secsip did not answer secsip stats in 15 s"; }
pid_file_pid=$(cat "$RUN/secsip.pid")
[[ $pid_file_pid == "$daemon_pid" ]] || fail "the pid file names $pid_file_pid, the daemon is $daemon_pid"

ip netns exec "$SERVER" timeout 150 sipp -sn uas -i 10.99.0.2 -p 5060 -nostdin -aa \
  -trace_stat -fd 1 -stf "$LOGS/uas.csv" >/dev/null 2>"$LOGS/uas.log" &
sleep 0.3
[[ $(probe) == answered ]] || fail "before the change, the probe's OPTIONS was not answered"

ip netns exec "$CLIENT" timeout --kill-after=2 120 sipp -sn uac 10.99.0.2:5060 -i 10.99.0.1 -p 5060 \
  -m "$CALLS" -r "$CALL_RATE" -d "$HOLD_MS" -l "$CALLS" -nostdin -timeout 110s \
  -trace_stat -fd 1 -stf "$LOGS/uac.csv" -trace_err -error_file "$LOGS/uac-errors.log" \
  >/dev/null 2>"$LOGS/uac.log" &
uac_pid=$!

# sipp_col FILE COLUMN: COLUMN of the last line of a SIPp -trace_stat file.
sipp_col() {
  python3 - "$1" "$2" <<'PY'
import sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()] if __import__("os").path.exists(sys.argv[1]) else []
if len(lines) < 2:
    print(0); sys.exit()
names, vals = lines[0].split(";"), lines[-1].split(";")
print(int(vals[names.index(sys.argv[2])]) if sys.argv[2] in names else 0)
PY
}
# All calls set up (answered and held) before the play starts.
for _ in $(seq 200); do
  (($(sipp_col "$LOGS/uac.csv" CurrentCall) >= CALLS)) && (($(sipp_col "$LOGS/uac.csv" OutgoingCall\(C\)) >= CALLS)) && break
  sleep 0.1
done
(($(sipp_col "$LOGS/uac.csv" OutgoingCall\(C\)) >= CALLS)) || fail "SIPp did not place its $CALLS calls in 20 s (log: $LOGS/uac.log)"
t_calls=$(date +%s)

echo "ansible-test: reload: $CALLS calls up and held; applying a rules-only change"
apply change -e "secsip_rules_src=$WORK/rules-b"
set_b=$(basename "$(readlink "$ROOT/etc/secsip/rules")")
[[ $set_b != "$set_a" ]] || fail "the rules link did not move to the new set"
task_changed "$LOGS/change.log" "Reload the unmanaged daemon \\(secsip reload\\)" \
  || { cat "$LOGS/change.log"; fail "the rules change did not run the reload handler"; }
if task_ran "$LOGS/change.log" "Find an unmanaged daemon that needs a restart"; then
  fail "a rules-only change asked for a restart"
fi
for _ in $(seq 50); do (($(reloads_ok) >= 1)) && break; sleep 0.1; done
(($(reloads_ok) == 1)) || fail "the daemon did not count the reload: $(stats | field reloads)"
in_flight=$(sipp_col "$LOGS/uac.csv" CurrentCall)
t_reload=$(date +%s)
((t_reload - t_calls < HOLD_MS / 1000)) || fail "the play took $((t_reload - t_calls)) s: longer than the calls are held, so none was in flight"
kill -0 "$daemon_pid" 2>/dev/null || fail "the daemon is gone after the reload"
[[ $(cat "$RUN/secsip.pid") == "$pid_file_pid" ]] || fail "the pid file names another process: restarted, not reloaded"
[[ $(probe) == silent ]] || fail "after the reload, the new rule did not drop the probe"
hits=$(stats | field rule_hits.ansible-reload-probe)
((hits >= 1)) || fail "the new rule's hit counter did not move ($hits)"
echo "ansible-test: reload: reloaded through the pid file $((t_reload - t_calls)) s after the calls were up, $in_flight SIPp calls in flight; the new rule drops the probe ($hits hit)"

# Rollback: the previous rules again; the kept set comes back under the same hash.
apply rollback -e "secsip_rules_src=$WORK/rules-a"
[[ $(basename "$(readlink "$ROOT/etc/secsip/rules")") == "$set_a" ]] || fail "rollback did not point the link back at $set_a"
for _ in $(seq 50); do (($(reloads_ok) >= 2)) && break; sleep 0.1; done
(($(reloads_ok) == 2)) || fail "the rollback did not reload the daemon"
[[ $(probe) == answered ]] || fail "after the rollback, the probe is still dropped"
apply again -e "secsip_rules_src=$WORK/rules-a"
[[ $(recap "$LOGS/again.log" testbed changed) == 0 ]] || fail "applying the same rules again changed something"
(($(reloads_ok) == 2)) || fail "an apply that changed nothing reloaded the daemon"

status=0
wait "$uac_pid" || status=$?
ok=$(sipp_col "$LOGS/uac.csv" SuccessfulCall\(C\))
failed=$(sipp_col "$LOGS/uac.csv" FailedCall\(C\))
retrans=$(sipp_col "$LOGS/uac.csv" Retransmissions\(C\))
((status == 0 && ok == CALLS && failed == 0)) \
  || fail "calls across the reloads: SIPp exit $status, $ok of $CALLS successful, $failed failed (log: $LOGS/uac.log)"
reloads_failed=$(stats | field reloads.failed)
((reloads_failed == 0)) || fail "$reloads_failed reloads failed"
echo "ansible-test: reload: all $CALLS calls completed across reload and rollback ($retrans retransmissions); daemon pid $pid_file_pid throughout; ok ($(( $(date +%s) - start )) s; logs in $LOGS)"
