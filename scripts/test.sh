#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds the normal and the sanitizer (ASan+UBSan)
# configurations, runs unit and integration tests on both, then every fuzz target for a bounded
# time. Exits non-zero on any failure. Usage: scripts/test.sh
#   FUZZ_SECONDS=N  seconds per fuzz target, one target per core at a time; by default
#                   FUZZ_BUDGET (360 s) shared among the targets, at most 60 s and at least 20 s
#                   each (CI's fuzz time stays bounded)
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)
FUZZ_BUDGET=${FUZZ_BUDGET:-360}

step() { printf '\n==== %s ====\n' "$*"; }

# The integration run's slowest tests, also when it passed (ctest shows its output only on a
# failure): where CI's time goes, kept in the log.
durations() {
  local log=$1/Testing/Temporary/LastTest.log
  [ -f "$log" ] && awk '/slowest [0-9]+ durations/{p=1} p&&/^ *[0-9.]+s (call|setup|teardown)/{print; n++}
                        p&&n>=25{exit}' "$log" || true
}

# No integration test may skip for want of root, namespaces or a tool: here that is a failure
# (tests/integration/netns.py), so a green run means everything ran.
export AWG_NETNS_REQUIRED=1

step "dependencies"
bash scripts/setup-deps.sh

step "format"
bash scripts/check-format.sh

step "build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$JOBS"
step "tests (normal build)"
(cd build && ctest --output-on-failure --timeout 3000)
durations build

step "build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DAWG_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$JOBS"
step "tests (sanitizer build)"
# The sanitizers slow everything down ~3x: the bulk-integrity test moves less data there (the
# normal build runs it at full size).
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
   AWG_INTEGRITY_MB=1 ctest --output-on-failure --timeout 3000)
durations build-asan

CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DAWG_FUZZ=ON -DAWG_TESTS=OFF >/dev/null
cmake --build build-fuzz -j"$JOBS"
n_targets=$(ls build-fuzz/fuzz/fuzz_* 2>/dev/null | wc -l)
if [ -z "${FUZZ_SECONDS:-}" ]; then
  FUZZ_SECONDS=$(( FUZZ_BUDGET / (n_targets > 0 ? n_targets : 1) ))
  [ "$FUZZ_SECONDS" -gt 60 ] && FUZZ_SECONDS=60
  [ "$FUZZ_SECONDS" -lt 20 ] && FUZZ_SECONDS=20
fi
step "fuzz targets: $n_targets, ${FUZZ_SECONDS}s each, $JOBS at a time"
# One fuzzer per core at a time: each target still gets FUZZ_SECONDS, CI's wall time is divided.
fuzz_one() {
  local f=$1 name corpus seeds log
  name=$(basename "$f")
  corpus="build-fuzz/corpus/$name"
  mkdir -p "$corpus"
  seeds="fuzz/seeds/$name"
  log="build-fuzz/$name.log"
  if ! "$f" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      "$corpus" $( [ -d "$seeds" ] && echo "$seeds" ) >"$log" 2>&1; then
    echo "-- $name"
    tail -n 60 "$log"
    echo "fuzz target $name found a crash (reproducer above, log in $log)"
    return 1
  fi
  echo "-- $name"
  tail -n 4 "$log"
}
fuzz_failed=0
running=0
for f in build-fuzz/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  fuzz_one "$f" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || fuzz_failed=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || fuzz_failed=1
  running=$((running - 1))
done
[ "$fuzz_failed" -eq 0 ] || exit 1

step "all tests passed"
