#!/usr/bin/env bash
# The fuzz targets in fuzz/ (libFuzzer through libfuzzer-sys), built with LLVM's
# SanitizerCoverage on the stable toolchain (the flags cargo-fuzz passes, without
# a sanitizer: the targets are safe Rust; libFuzzer still catches panics, aborts,
# timeouts and runaway memory), then run for SECONDS each.
#
#   bash tests/fuzz.sh [SECONDS] [TARGET...]   (default: 45 s, every target)
#
# Each run starts from fuzz/seeds/<target> (from the tests' fixtures) and the
# corpus kept in target/fuzz/corpus/<target>; it first replays every input in
# fuzz/regressions/<target> (inputs that once crashed a target, kept as
# regression tests). A crash fails the run and leaves its input in
# target/fuzz/artifacts/<target>/; copy it into fuzz/regressions/<target>/ with
# the fix. Prints libFuzzer's final figures (executions, coverage) per target.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-45}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(qr_url qr_image awareid_responses frames config site_entries)
host=$(rustc -vV | sed -n 's/^host: //p')
flags=(-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4
       -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
       -Cllvm-args=-sanitizer-coverage-pc-table
       -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing)
echo "== fuzz $(date +%T): building the targets (release, SanitizerCoverage)"
# --target: the flags go to the targets' code, not to build scripts and proc-macros.
RUSTFLAGS="${flags[*]}" cargo build --locked --release --manifest-path fuzz/Cargo.toml \
  --target "$host" --bins
bin=fuzz/target/$host/release
for t in "${targets[@]}"; do
  corpus=target/fuzz/corpus/$t artifacts=target/fuzz/artifacts/$t
  mkdir -p "$corpus" "$artifacts" "fuzz/seeds/$t" "fuzz/regressions/$t"
  if [ -n "$(ls -A "fuzz/regressions/$t")" ]; then
    "$bin/$t" -runs=1 "fuzz/regressions/$t"/* > "target/fuzz/$t-regressions.log" 2>&1 \
      || { tail -30 "target/fuzz/$t-regressions.log"; echo "fuzz.sh: $t: a regression input fails again" >&2; exit 1; }
  fi
  echo "== fuzz $(date +%T): $t for $secs s"
  log=target/fuzz/$t.log
  if ! "$bin/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "fuzz/seeds/$t" > "$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz.sh: FAILED: $t crashed; the input is in $artifacts/" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1)
  printf '   %-18s %10s executions, %s, %s, corpus %s inputs\n' "$t" "$runs" "$cov" "$ft" \
    "$(ls "$corpus" | wc -l)"
done
echo "== fuzz $(date +%T): no crash in ${targets[*]}"
