# Sourced by bench/socks_bench.sh and bench/server_bench.sh (issue 15 item 7): what both do before
# their Python part. bench_prelude NAME ARGS...: needs root; installs what is missing
# (bench/setup.sh); unless ARGS hold --binary, builds a release awgproxy and the impairment relay
# (tests/impair/impair_relay) in build-bench/; raises the open-files limit to the hard limit
# (thousands of sockets in the proxies, the load and the target). Runs from the repository root.
bench_prelude() {
  local name="$1"
  shift
  [ "$(id -u)" -eq 0 ] || { echo "$name: needs root (network namespaces)" >&2; exit 1; }
  bash bench/setup.sh >/dev/null
  local build=1 a
  for a in "$@"; do [ "$a" = "--binary" ] && build=0; done
  if [ "$build" -eq 1 ]; then
    [ -f .deps/lwip-src/src/core/tcp.c ] || bash scripts/setup-deps.sh >/dev/null
    cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build-bench -j"$(nproc)" --target awgproxy impair_relay echo_server cps_load >/dev/null
  fi
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}
