#!/usr/bin/env bash
# The role applied to a real Debian 12 root through the chroot connection, twice (second run
# changed=0): apt, the service account, the unit enabled as systemd would see it at boot.
# The root is made once by debootstrap and cached (SECSIP_DEBOOTSTRAP_CACHE, default
# /var/cache/secsip-debootstrap); each run applies to a fresh copy of it.
#   tests/ansible/chroot.sh ARTIFACT
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
ARTIFACT=$(realpath "${1:?usage: chroot.sh target/dist/secsip-VERSION-ARCH.tar.gz}")
# shellcheck source=tests/ansible/lib.sh
source "$REPO/tests/ansible/lib.sh"

# shellcheck source=tests/lib/require.sh
source "$REPO/tests/lib/require.sh"

reason=""
if [[ $(id -u) -ne 0 ]]; then
  reason="debootstrap and chroot need root"
else
  for tool in debootstrap chroot ansible-playbook; do
    command -v "$tool" >/dev/null 2>&1 || { reason="$tool not found (make deps installs it)"; break; }
  done
fi
if [[ -n $reason ]]; then skip_unless_required "ansible chroot apply" "$reason"; exit 0; fi

CACHE=${SECSIP_DEBOOTSTRAP_CACHE:-/var/cache/secsip-debootstrap}
# The cache key names what is in it, so a changed include list makes a new root.
INCLUDE=python3,systemd
PRISTINE="$CACHE/bookworm-minbase-${INCLUDE//,/-}"
WORK="$REPO/target/ansible-chroot"
ROOT="$WORK/root"
LOGS="$WORK/logs"
start=$(date +%s)

if [[ ! -x $PRISTINE/usr/bin/python3 ]]; then
  echo "ansible-test: debootstrap bookworm into $PRISTINE (once; about a minute)"
  mkdir -p "$CACHE"
  rm -rf "$PRISTINE.tmp"
  debootstrap --variant=minbase --include="$INCLUDE" bookworm "$PRISTINE.tmp" http://deb.debian.org/debian \
    >"$CACHE/debootstrap.log" 2>&1 || { tail -n 20 "$CACHE/debootstrap.log" >&2; fail "debootstrap failed (log: $CACHE/debootstrap.log)"; }
  mv "$PRISTINE.tmp" "$PRISTINE"
fi

rm -rf "$WORK"
mkdir -p "$LOGS"
cp -a "$PRISTINE" "$ROOT"
# apt inside the root resolves the mirror with the host's resolver.
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"

cat >"$WORK/inventory.yml" <<INV
---
secsip_appliances:
  hosts:
    debian12-chroot:
      ansible_connection: community.general.chroot
      ansible_host: "$ROOT"
      ansible_python_interpreter: /usr/bin/python3
      secsip_artifact: "$ARTIFACT"
      secsip_controller_cache: "$WORK/cache"
      secsip_manage_service: systemd
      secsip_start_service: false
      secsip_tune_nics: false
      secsip_outside: eth0
      secsip_inside: eth1
      secsip_queues: 2
INV
apply_twice debian12-chroot debian12-chroot -i "$WORK/inventory.yml"

chroot "$ROOT" getent passwd secsip | grep -q ':/usr/sbin/nologin$' || fail "no secsip system account in the root"
[[ -L $ROOT/etc/systemd/system/multi-user.target.wants/secsip.service ]] || fail "secsip.service is not enabled in the root"
cmp -s "$ROOT/etc/systemd/system/secsip.service" "$REPO/dist/secsip.service" || fail "the installed unit differs from dist/secsip.service"
chroot "$ROOT" /usr/bin/secsip --check -c /etc/secsip/secsip.toml >/dev/null || fail "secsip --check fails inside the root"
[[ $(chroot "$ROOT" stat -c %G /etc/secsip/secsip.toml) == secsip ]] \
  || fail "/etc/secsip/secsip.toml is not group secsip inside the root"

echo "ansible-test: systemd-analyze verify --root $ROOT secsip.service"
verify_err="$WORK/systemd-analyze.err"
SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --root="$ROOT" /etc/systemd/system/secsip.service >/dev/null 2>"$verify_err" || true
if [[ -s $verify_err ]]; then
  cat "$verify_err" >&2
  fail "systemd-analyze verify printed the above for the unit in $ROOT"
fi

echo "ansible-test: chroot ok ($(( $(date +%s) - start )) s; logs in $LOGS)"
