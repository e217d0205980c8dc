# The one decision for a shell test that cannot run here (not root, no namespaces, a tool
# missing): under SECSIP_REQUIRE_NETNS=1 (CI; `make test` sets it as root) that is a failure,
# otherwise a skip said on one line.
# shellcheck shell=bash

# skip_unless_required WHAT REASON...: exits 1 naming WHAT and REASON under
# SECSIP_REQUIRE_NETNS=1; otherwise prints one SKIPPED line on stderr and returns 0, so the
# caller skips (`... ; exit 0`) or leaves out the part that cannot run.
skip_unless_required() {
  local what=$1; shift
  if [[ ${SECSIP_REQUIRE_NETNS:-0} == 1 ]]; then
    echo "$what: FAILED: cannot run but SECSIP_REQUIRE_NETNS=1: $*" >&2
    exit 1
  fi
  echo "SKIPPED $what: $*" >&2
}
