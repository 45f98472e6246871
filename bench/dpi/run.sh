#!/usr/bin/env bash
# The DPI evaluation of docs/dpi.md: captures in network namespaces (bench/dpi/dpi_lab.py), then
# nDPI, tshark's WireGuard dissector, a first-bytes signature and statistical features on them and
# on amneziawg-go's captures (bench/dpi/dpi_analyze.py). Needs root; takes about 15 minutes.
#
#   sudo bash bench/dpi/run.sh [OUTDIR]          # default OUTDIR: /tmp/awg-dpi
#
# Environment:
#   DPI_MODES      scenario modes (default: all of dpi_lab.MODES)
#   DPI_BROWSE, DPI_BROWSE_SECONDS, DPI_BULK_MB, DPI_IDLE   the scenario (50, 60, 10, 60)
#   DPI_SESSIONS   short sessions per mode for the accidental-label study (default 60; 0: none)
#   DPI_OLD_REF    also run the label study with the build of this commit (e.g. 8d81f87, the
#                  last one before the first-bytes screening); built in a git worktree under /tmp
#   AWGPROXY_BIN   the binary under test (default build/awgproxy)
# Writes OUTDIR/*.pcap, *.meta.json, results.json and results.md (the tables of docs/dpi.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${1:-/tmp/awg-dpi}
PY=/usr/bin/python3
export AWGPROXY_BIN=${AWGPROXY_BIN:-$ROOT/build/awgproxy}
export AWG_SOURCE_DIR=$ROOT
SESSIONS=${DPI_SESSIONS:-60}
MODES=${DPI_MODES:-wireguard,wireguard-ours,awg2,awg2-quic,awg3,awg3-quic}

for tool in tshark ndpiReader tcpdump wireguard-go; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing: bash scripts/setup-deps.sh" >&2; exit 1; }
done
[ -x "$AWGPROXY_BIN" ] || { echo "run.sh: no binary at $AWGPROXY_BIN (build first)" >&2; exit 1; }
mkdir -p "$OUT"
rm -f "$OUT"/*.pcap "$OUT"/*.meta.json

$PY bench/dpi/dpi_lab.py "$OUT" --modes "$MODES" --browse "${DPI_BROWSE:-50}" \
  --browse-seconds "${DPI_BROWSE_SECONDS:-60}" --bulk-mb "${DPI_BULK_MB:-10}" \
  --idle "${DPI_IDLE:-60}" --sessions "$SESSIONS"

if [ -n "${DPI_OLD_REF:-}" ] && [ "$SESSIONS" -gt 0 ]; then
  old=/tmp/awg-dpi-old-$DPI_OLD_REF
  if [ ! -x "$old/build/awgproxy" ]; then
    [ -d "$old" ] || git worktree add --detach "$old" "$DPI_OLD_REF" >/dev/null
    cmake -S "$old" -B "$old/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DLWIP_SOURCE_DIR="$ROOT/.deps/lwip-src" >/dev/null
    cmake --build "$old/build" -j"$(nproc)" --target awgproxy >/dev/null
  fi
  AWG_DPI_DRAW_BIN=$AWGPROXY_BIN AWGPROXY_BIN=$old/build/awgproxy $PY bench/dpi/dpi_lab.py "$OUT" --no-scenario \
    --sessions "$SESSIONS" --build-label "$DPI_OLD_REF"
fi

$PY bench/dpi/dpi_analyze.py "$OUT" --vectors tests/vectors --json "$OUT/results.json" \
  | tee "$OUT/results.md"
