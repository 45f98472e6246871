#!/usr/bin/env bash
# Exec/s and line coverage of every fuzz target (issue 10 item 6), for docs/reliability.md.
#   scripts/fuzz-coverage.sh [SECONDS_PER_TARGET]   (default 60)
# 1. build-fuzz/ (libFuzzer + ASan/UBSan): each target runs SECONDS on its seeds, growing a corpus
#    in build-cov/corpus/TARGET; exec/s is read from its final stats.
# 2. build-cov/ (libFuzzer + clang source-based coverage, no sanitizers): each target replays its
#    corpus once; llvm-cov reports the lines of src/ it reached, over the files it touched at all.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER=${1:-60}
LLVM_SUFFIX=$(ls /usr/bin/llvm-cov-* 2>/dev/null | sed 's/.*llvm-cov//' | sort -V | tail -1)
COV=llvm-cov$LLVM_SUFFIX
PROFDATA=llvm-profdata$LLVM_SUFFIX
JOBS=$(nproc 2>/dev/null || echo 2)

CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DAWG_FUZZ=ON -DAWG_TESTS=OFF >/dev/null
cmake --build build-fuzz -j"$JOBS" >/dev/null
CC=clang cmake -S . -B build-cov -DCMAKE_BUILD_TYPE=Debug -DAWG_FUZZ=ON -DAWG_TESTS=OFF \
  -DCMAKE_C_FLAGS="-fprofile-instr-generate -fcoverage-mapping" \
  -DCMAKE_EXE_LINKER_FLAGS="-fprofile-instr-generate" >/dev/null
cmake --build build-cov -j"$JOBS" >/dev/null

printf '| target | exec/s | corpus | lines reached | of lines in the files it touches |\n'
printf '|---|---|---|---|---|\n'
for f in build-fuzz/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  corpus=build-cov/corpus/$name
  mkdir -p "$corpus"
  seeds=fuzz/seeds/$name
  log=build-cov/$name.fuzz.log
  "$f" -max_total_time="$SECONDS_PER" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "$corpus" $([ -d "$seeds" ] && echo "$seeds") >"$log" 2>&1 || { tail -20 "$log"; exit 1; }
  execs=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  n=$(ls "$corpus" | wc -l)
  prof=build-cov/$name.profraw
  LLVM_PROFILE_FILE=$prof build-cov/fuzz/$name -runs=0 "$corpus" >/dev/null 2>&1 || true
  "$PROFDATA" merge -sparse "$prof" -o build-cov/$name.profdata
  # Lines of src/ reached, over the src/ files with any line reached.
  # llvm-cov report columns: file, regions, missed, cover, functions, missed, executed, lines,
  # missed lines, ...
  read -r covered total < <("$COV" report build-cov/fuzz/$name \
      -instr-profile=build-cov/$name.profdata 2>/dev/null |
    awk '$1 ~ /src\// && $8 > 0 && $8 != $9 { t += $8; c += $8 - $9 } END { print c + 0, t + 0 }')
  pct=$(awk -v c="$covered" -v t="$total" 'BEGIN { printf "%.1f", t ? 100 * c / t : 0 }')
  printf '| %s | %s | %s | %s | %s %% of %s |\n' "$name" "$execs" "$n" "$covered" "$pct" "$total"
done
