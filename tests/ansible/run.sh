#!/usr/bin/env bash
# make ansible-test: lint the Ansible code, apply site.yml into a scratch root twice (the
# second run must report changed=0), verify the installed unit with systemd-analyze, and show
# that a bad variable or a broken rule is refused before it reaches the live files.
#   tests/ansible/run.sh ARTIFACT
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
ARTIFACT=$(realpath "${1:?usage: run.sh target/dist/secsip-VERSION-ARCH.tar.gz}")
# shellcheck source=tests/ansible/lib.sh
source "$REPO/tests/ansible/lib.sh"

WORK="$REPO/target/ansible-test"
ROOT="$REPO/target/ansible-root"
LOGS="$WORK/logs"
rm -rf "$WORK" "$ROOT"
mkdir -p "$LOGS" "$ROOT"
start=$(date +%s)

echo "ansible-test: yamllint"
(cd "$REPO" && yamllint --strict ansible .yamllint)
echo "ansible-test: ansible-lint --offline --profile production"
(cd "$ANSIBLE_DIR" && ansible-lint --offline --profile production --nocolor -q)
echo "ansible-test: ansible-playbook --syntax-check"
(cd "$ANSIBLE_DIR" && ansible-playbook --syntax-check site.yml >/dev/null)

# The scratch root as an install prefix on this machine: no service, no NICs, no apt, no user.
cat >"$WORK/inventory.yml" <<INV
---
secsip_appliances:
  hosts:
    scratch:
      ansible_connection: local
      secsip_root: "$ROOT"
      secsip_artifact: "$ARTIFACT"
      secsip_controller_cache: "$WORK/cache"
      secsip_manage_service: none
      secsip_tune_nics: false
      secsip_run_dir: "$WORK/run"
      secsip_outside: veth-out
      secsip_inside: veth-in
      secsip_queues: 2
      secsip_engines: 2
      secsip_io_cores: [0, 1]
INV
apply_twice scratch-root scratch -i "$WORK/inventory.yml"

config="$ROOT/etc/secsip/secsip.toml"
"$ROOT/usr/bin/secsip" --check -c "$config" >/dev/null || fail "$config does not pass secsip --check"
grep -qx 'queues = 2' "$config" || fail "$config: secsip_queues did not reach [appliance] queues"
unit="$ROOT/etc/systemd/system/secsip.service"
grep -qx "ExecStart=$ROOT/usr/bin/secsip run -c $config" "$unit" || fail "$unit: ExecStart does not name the installed files"

# systemd-analyze exits 0 on some errors (unknown keys, bad values) and only prints them.
echo "ansible-test: systemd-analyze verify $unit"
verify_err="$WORK/systemd-analyze.err"
SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$unit" >"$WORK/systemd-analyze.out" 2>"$verify_err" || true
if [[ -s $verify_err ]]; then
  cat "$verify_err" >&2
  fail "systemd-analyze verify printed the above for $unit"
fi

# Refused before it lands: each bad input must fail the play, and leave the live config and the
# rule set it names byte-identical.
snapshot() { (cd "$ROOT/etc/secsip" && find -L config rules secsip.toml -type f 2>/dev/null | LC_ALL=C sort | xargs sha256sum; readlink rules); }
before=$(snapshot)
refused() {
  local name=$1 expect=$2; shift 2
  local log="$LOGS/refused-$name.log"
  if play "$log" -i "$WORK/inventory.yml" "$@"; then
    cat "$log"; fail "$name: the play accepted it"
  fi
  grep -q -- "$expect" "$log" || { cat "$log"; fail "$name: the play failed, but not with '$expect'"; }
  [[ $(snapshot) == "$before" ]] || fail "$name: the live configuration or rules changed"
  echo "ansible-test: $name: refused at validation ('$expect'), live files unchanged"
}
refused queues-0 'appliance.queues = 0: must be 1..=64' -e '{"secsip_queues": 0}'
refused failure-sideways 'unknown variant `sideways`' -e secsip_failure=sideways
bad_rules="$WORK/bad-rules"
cp -r "$ROOT/etc/secsip/rules/." "$bad_rules"
printf '\n[[rule]]\nid = "broken"\nmatch = "sip.method =="\naction = "drop"\n' >>"$bad_rules/30-floods.toml"
refused broken-rule "30-floods.toml:" -e "secsip_rules_src=$bad_rules"
sets=$(ls "$ROOT/etc/secsip/rulesets")
[[ $sets == "$(basename "$(readlink "$ROOT/etc/secsip/rules")")" ]] || fail "the refused rule set was left in rulesets/: $sets"

# A clean apply after the refusals is still a no-op.
play "$LOGS/after-refusals.log" -i "$WORK/inventory.yml" || { cat "$LOGS/after-refusals.log"; fail "apply after the refusals failed"; }
[[ $(recap "$LOGS/after-refusals.log" scratch changed) == 0 ]] || fail "apply after the refusals changed something"

echo "ansible-test: ok ($(( $(date +%s) - start )) s; logs in $LOGS)"
