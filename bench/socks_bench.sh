#!/usr/bin/env bash
# The client's SOCKS benchmark (issue "Client", performance part), one command: installs what is
# missing (bench/setup.sh), builds a release awgproxy in build-bench/, sets up network namespaces
# (C: clients, S: servers, T: the target), measures every path in the same run, prints a markdown
# table and removes the namespaces again (also on Ctrl-C / SIGTERM).
#
#   paths   A   awgproxy client -> wireguard-go (plain WireGuard = AmneziaWG defaults) on a TUN in S
#           A2  awgproxy client -> awgproxy server (its userspace exit) in S, Transport = ip (lwIP
#               TCP per stream inside the tunnel)
#           A3  the same with Transport = quic (one QUIC connection inside the tunnel)
#           A2s, A3s  A2 / A3 over the TLS carrier (Carrier = tls, a server of their own with
#               [Server] TlsListen): the tunnel's datagrams inside one TLS connection over TCP
#           A3f A3 with [Socks] FastOpen = on: SOCKS success at once, the first bytes ride
#               with the request (what ss-local does)
#           A3q A3 with QuicProtection = quic: QUIC's own AES-GCM inside the tunnel (ALPN
#               awgproxy/1), against A3's 1-RTT packets protected by the tunnel alone (the
#               default since 2026-12-06; the path was A3t, the opt-in, before)
#               A2 and A3 set every AmneziaWG obfuscation parameter (Jc/Jmin/Jmax, S1-S4, H1-H4
#               ranges, I1-I5); A stays plain WireGuard (wireguard-go knows none of them)
#           A2i, A3i  with --impair: A2 / A3 through tests/impair/impair_relay (down / up only)
#           Wi  with --impair and W: W through the same kind of relay (the kernel TCP anchor)
#           B   ss-local -> ss-server, chacha20-ietf-poly1305 (shadowsocks-libev)
#           C   direct TCP, no proxy
#           W   kernel TCP over wireguard-go in C -> wireguard-go in S (reference: the tunnel
#               without awgproxy)
#   metrics single-stream download and upload (MB/s), connections/s sequential and 20-concurrent
#           (with CPU and wake-ups per sequential connection, each side), from the Python load
#           client and, in the rows "C load", from bench/cps_load against the C echo target,
#           proxy RSS idle and with 1000 idle streams, client-side CPU per GB; median of 3 runs.
#
# Usage: sudo bench/socks_bench.sh [options]      (needs root for namespaces)
#   --mb N           bulk size per transfer in MB (default 1000)
#   --reps N         runs per measurement (default 3)
#   --cps-seconds S  length of each connections/s run (default 10)
#   --idle N         idle streams for the RSS figure (default 1000)
#   --paths A,B,...  subset of A,A2,A3,A3q,A3f,A2s,A3s,B,C,W (default A,A2,A3,B,C,W)
#   --impair SPEC    also A2i / A3i through the UDP impairment relay, SPEC e.g.
#                    'loss=0.02,reorder=0.05,delay_ms=5' (each key on both directions; B cannot
#                    be impaired: its proxy-to-proxy leg is TCP, the relay UDP-only, no netem here)
#   --impair-mb N    bulk size for A2i / A3i (default --mb, at most 50)
#   --impair-seed N  the relay's seed (default 1: the same drop pattern every run)
#   --metrics ...    subset of rss,cps,bulk (default all)
#   --perf           also profile the proxy client (perf record -g) during a download and an
#                    upload (with bulk) and sequential connections (with cps), on each
#                    path asked for (--paths)
#   --workdir DIR    keep configs, logs, perf data and results.json there
#   --binary PATH    another awgproxy binary (default build-bench/awgproxy, built here)
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/lab.sh
bench_prelude socks_bench "$@"

# /usr/bin/python3: tests/integration/netns.py imports pytest, which Debian's python3-pytest
# provides for the system interpreter.
exec /usr/bin/python3 bench/socks_bench.py "$@"
