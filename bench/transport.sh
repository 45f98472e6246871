#!/usr/bin/env bash
# Transport-path throughput (issue: tunnel engine) next to OpenSSL's ChaCha20-Poly1305 on the same
# machine in the same run. Usage: bench/transport.sh [seconds]   (build first: cmake --build build)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
bin=build/bench/bench_transport
[ -x "$bin" ] || { cmake -S . -B build >/dev/null && cmake --build build --target bench_transport >/dev/null; }
ours=$("$bin" "$secs" 1420)
echo "$ours"
# OpenSSL seals only (one AEAD pass per byte); our path seals and opens (two passes per byte).
ossl=$(openssl speed -evp chacha20-poly1305 -bytes 1436 -seconds "$secs" 2>/dev/null | awk 'tolower($1) ~ /^chacha20-poly1305/ {print $2}')
ossl_mb=$(echo "$ossl" | sed 's/k$//' | awk '{printf "%.1f", $1*1000/1e6}')
ours_mb=$(echo "$ours" | sed -n 's/.*MB\/s=\([0-9.]*\).*/\1/p')
echo "openssl speed -evp chacha20-poly1305 -bytes 1436: ${ossl_mb} MB/s (seal only)"
awk -v a="$ours_mb" -v b="$ossl_mb" 'BEGIN {printf "ratio ours/openssl = %.2f (ours does 2 AEAD passes per byte; per-pass ratio %.2f)\n", a/b, 2*a/b}'
