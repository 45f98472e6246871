#!/usr/bin/env bash
# Transport data path throughput (docs/benchmarks.md) next to OpenSSL's ChaCha20-Poly1305 on the
# same machine in the same run:
#   1. every ChaCha20-Poly1305 backend (libsodium, OpenSSL EVP, nettle, awgproxy's wg_aead_ctx) at
#      64/512/1420-byte packets, seal and open, one packet and nonce at a time;
#   2. `openssl speed -evp chacha20-poly1305` at the same sizes (one nonce, a stream of updates:
#      no per-packet nonce, Poly1305 key or tag, so an upper bound for any per-packet use);
#   3. the in-process transport path (pad, seal, AWG pad, classify, replay check, open) at 1420.
# Every figure is per CPU second (openssl speed divides by user CPU time; bench_transport by
# process CPU time), which keeps them comparable on a shared machine.
# Usage: [BENCH_BUILD=build-dir] bench/transport.sh [seconds]   (build first: cmake --build build)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
build=${BENCH_BUILD:-build}
bin=$build/bench/bench_transport
[ -x "$bin" ] || { cmake -S . -B "$build" >/dev/null && cmake --build "$build" --target bench_transport >/dev/null; }

echo "== AEAD backends (bench_transport aead; $secs/6 s of CPU per figure)"
"$bin" aead "$(awk -v s="$secs" 'BEGIN {print s / 6}')" 64 512 1420

echo "== openssl speed -evp chacha20-poly1305 (seal only, one nonce per run)"
declare -A ossl
for size in 64 512 1420; do
  kb=$(openssl speed -evp chacha20-poly1305 -bytes "$size" -seconds 1 2>/dev/null |
    awk 'tolower($1) ~ /^chacha20-poly1305/ {print $2}' | sed 's/k$//')
  ossl[$size]=$(awk -v k="$kb" 'BEGIN {printf "%.1f", k * 1000 / 1e6}')
  awk -v s="$size" -v m="${ossl[$size]}" \
    'BEGIN {printf "openssl-speed  seal packet=%-5d MB/s=%-7.1f ns/packet=%.0f\n", s, m, s * 1e3 / m}'
done

echo "== transport path"
ours=$("$bin" "$secs" 1420)
echo "$ours"
ours_mb=$(echo "$ours" | sed -n 's/.*MB\/s=\([0-9.]*\).*/\1/p')
# Our path seals and opens every byte: two AEAD passes, so the like-for-like anchor is half of
# OpenSSL's single-pass rate. Target (issue 15): at least 0.8 of that.
awk -v a="$ours_mb" -v b="${ossl[1420]}" 'BEGIN {
  printf "openssl speed 1420 = %.1f MB/s (one pass); half = %.1f MB/s\n", b, b / 2
  printf "ratio transport path / (openssl / 2) = %.2f (target >= 0.80)\n", a / (b / 2) }'
