#!/usr/bin/env bash
# Bounded fuzzing for `make fuzz` / `make fuzz-merge`: cargo fuzz (libFuzzer) on the stable
# toolchain (`-s none`: coverage instrumentation without a sanitizer, which would need nightly).
#   fuzz.sh run SECONDS TARGET...    each target for SECONDS over the kept corpus
#   fuzz.sh merge 0 TARGET...        minimise target/fuzz/corpus-T into fuzz/corpus/T
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=$1 secs=$2
shift 2
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz missing: run tests/install-deps.sh (or cargo install cargo-fuzz --locked)" >&2
  exit 1
fi
mkdir -p target/fuzz
echo "fuzz: building targets (cargo fuzz build -s none)"
cargo fuzz build -s none --fuzz-dir fuzz 2>&1 | tail -n 3
bin_dir=fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release
for t in "$@"; do
  scratch=target/fuzz/corpus-$t arts=target/fuzz/artifacts/$t
  mkdir -p "$scratch" "$arts"
  case $mode in
    run)
      echo "fuzz: $t for ${secs}s (corpus fuzz/corpus/$t: $(ls fuzz/corpus/$t | wc -l) inputs)"
      # -rss_limit_mb: a target that grows without bound is a finding too (every bound enforced).
      if ! "$bin_dir/$t" "$scratch" "fuzz/corpus/$t" -max_total_time="$secs" -rss_limit_mb=2048 \
          -timeout=10 -artifact_prefix="$arts/" -print_final_stats=1 >"target/fuzz/$t.log" 2>&1; then
        tail -n 40 "target/fuzz/$t.log" >&2
        echo "fuzz: $t FAILED; the input is in $arts/. Copy it to fuzz/regressions/$t/, fix, and" >&2
        echo "      cargo test --test fuzz_corpus replays it from then on." >&2
        exit 1
      fi
      grep -E '^stat::number_of_executed_units|^stat::new_units_added' "target/fuzz/$t.log" | tr '\n' ' ' | sed "s/^/fuzz: $t: /"
      echo
      ;;
    merge)
      "$bin_dir/$t" -merge=1 "fuzz/corpus/$t" "$scratch" >"target/fuzz/$t-merge.log" 2>&1
      echo "fuzz: $t: $(ls fuzz/corpus/$t | wc -l) inputs kept"
      ;;
    *) echo "fuzz: unknown mode $mode" >&2; exit 2 ;;
  esac
done
