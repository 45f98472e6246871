#!/usr/bin/env bash
# The client's SOCKS benchmark (issue "Client", performance part), one command: installs what is
# missing (bench/setup.sh), builds a release awgproxy in build-bench/, sets up network namespaces
# (C: clients, S: servers, T: the target), measures every path in the same run, prints a markdown
# table and removes the namespaces again (also on Ctrl-C / SIGTERM).
#
#   paths   A   awgproxy client -> wireguard-go (plain WireGuard = AmneziaWG defaults) on a TUN in S
#           A2  awgproxy client -> awgproxy server (its userspace exit) in S
#           B   ss-local -> ss-server, chacha20-ietf-poly1305 (shadowsocks-libev)
#           C   direct TCP, no proxy
#           W   kernel TCP over wireguard-go in C -> wireguard-go in S (reference: the tunnel
#               without awgproxy)
#   metrics single-stream download and upload (MB/s), connections/s sequential and 20-concurrent,
#           proxy RSS idle and with 1000 idle streams, client-side CPU per GB; median of 3 runs.
#
# Usage: sudo bench/socks_bench.sh [options]      (needs root for namespaces)
#   --mb N           bulk size per transfer in MB (default 1000)
#   --reps N         runs per measurement (default 3)
#   --cps-seconds S  length of each connections/s run (default 10)
#   --idle N         idle streams for the RSS figure (default 1000)
#   --paths A,B,...  subset of A,A2,B,C,W (default all)
#   --metrics ...    subset of rss,cps,bulk (default all)
#   --perf           also profile awgproxy client during a download (perf record -g)
#   --workdir DIR    keep configs, logs, perf data and results.json there
#   --binary PATH    another awgproxy binary (default build-bench/awgproxy, built here)
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" -eq 0 ] || { echo "socks_bench: needs root (network namespaces)" >&2; exit 1; }
bash bench/setup.sh >/dev/null

build=1
for a in "$@"; do [ "$a" = "--binary" ] && build=0; done
if [ "$build" -eq 1 ]; then
  [ -f .deps/lwip-src/src/core/tcp.c ] || bash scripts/setup-deps.sh >/dev/null
  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-bench -j"$(nproc)" --target awgproxy >/dev/null
fi

# 1000 idle streams are 2000+ sockets in the proxy and in the target: as many files as allowed.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# /usr/bin/python3: tests/integration/netns.py imports pytest, which Debian's python3-pytest
# provides for the system interpreter.
exec /usr/bin/python3 bench/socks_bench.py "$@"
