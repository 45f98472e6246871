#!/usr/bin/env bash
# The server benchmark (issue "Server", performance part), one command: installs what is missing
# (bench/setup.sh, plus nftables for server B's NAT), builds a release awgproxy in build-bench/,
# sets up network namespaces (C: 100 wireguard-go clients, S: the server, T: the target), measures
# `awgproxy server` (A) and wireguard-go with kernel forwarding + NAT (B) with 1, 10 and 100
# concurrent peers in the same run, prints a markdown table and removes everything again (also on
# Ctrl-C / SIGTERM). About 6 minutes with the defaults.
#
#   metrics  download and upload throughput (one stream per peer), connections/s (one worker per
#            peer), the server process's CPU per Gbit and per 1000 connections, whole-machine CPU
#
# Usage: sudo bench/server_bench.sh [options]      (needs root for namespaces)
#   --peers 1,10,100   peer counts
#   --seconds S        measured window per figure (default 6; a 1 s warm-up comes first)
#   --reps N           interleaved repetitions, median reported (default 2)
#   --streams K        streams (and connection workers) per peer (default 1)
#   --servers A,B      subset of A (awgproxy server, Threads = 1), A2 (Threads = 2: a supervisor
#                      and two workers), B (wireguard-go + forwarding + NAT)
#   --modes down,up,cps  subset of the measurements
#   --workdir DIR      keep configs, logs and results.json there
#   --binary PATH      another awgproxy binary (default build-bench/awgproxy, built here)
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/lab.sh
bench_prelude server_bench "$@"
if ! command -v nft >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nftables >/dev/null
fi

# /usr/bin/python3: tests/integration/netns.py imports pytest (Debian's python3-pytest).
exec /usr/bin/python3 bench/server_bench.py "$@"
