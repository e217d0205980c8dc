# Shared by tests/ansible/*.sh: running site.yml and reading its PLAY RECAP.
# shellcheck shell=bash

ANSIBLE_DIR="$REPO/ansible"
export ANSIBLE_CONFIG="$ANSIBLE_DIR/ansible.cfg" ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
# Debian's ansible runs under /usr/bin/python3; a pyenv python3 earlier in PATH lacks its modules.
export ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3

fail() { echo "ansible-test: FAIL: $*" >&2; exit 1; }

# play LOG ARGS...: runs site.yml with ARGS, output in LOG (also shown on failure); returns
# ansible-playbook's status.
play() {
  local log=$1; shift
  local rc=0
  (cd "$ANSIBLE_DIR" && ansible-playbook site.yml "$@") >"$log" 2>&1 || rc=$?
  return "$rc"
}

# recap LOG HOST FIELD: the number after FIELD= on HOST's PLAY RECAP line.
recap() {
  local line
  line=$(sed -n '/^PLAY RECAP/,$p' "$1" | grep -E "^$2 +:" || true)
  [[ -n $line ]] || fail "$1: no PLAY RECAP line for $2"
  sed -n "s/.* $3=\([0-9][0-9]*\).*/\1/p" <<<"$line"
}

# apply_twice NAME HOST ARGS...: applies, requires success with changes, applies again and
# requires changed=0; prints the seconds each run took.
apply_twice() {
  local name=$1 host=$2; shift 2
  local log1="$LOGS/$name-1.log" log2="$LOGS/$name-2.log" t0 t1 t2
  t0=$(date +%s)
  play "$log1" "$@" || { cat "$log1"; fail "$name: first apply failed (log: $log1)"; }
  t1=$(date +%s)
  [[ $(recap "$log1" "$host" failed) == 0 ]] || { cat "$log1"; fail "$name: first apply has failed tasks"; }
  (($(recap "$log1" "$host" changed) > 0)) || fail "$name: first apply changed nothing: was the root not fresh?"
  play "$log2" "$@" || { cat "$log2"; fail "$name: second apply failed (log: $log2)"; }
  t2=$(date +%s)
  local changed
  changed=$(recap "$log2" "$host" changed)
  if [[ $changed != 0 ]]; then
    grep -E '^(changed|TASK)' "$log2" | grep -B1 '^changed' >&2 || true
    fail "$name: second apply is not idempotent: changed=$changed (log: $log2)"
  fi
  echo "ansible-test: $name: first apply $((t1 - t0)) s (changed=$(recap "$log1" "$host" changed)), second $((t2 - t1)) s (changed=0)"
}
