#!/usr/bin/env bash
# Installs what awgproxy needs to build and test, from Debian packages only.
# Idempotent: when everything is present it only checks and returns in about a second.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang lld llvm libclang-rt-14-dev dpkg-dev
  libuv1-dev libsodium-dev libb2-dev libinih-dev libcmocka-dev libgnutls28-dev
  python3 python3-pytest python3-socks
  curl ncat iproute2 iputils-ping wireguard-go wireguard-tools proxychains4 tcpdump nftables
  prometheus  # promtool: tests/integration/test_observability.py checks the /metrics format
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# lwIP is compiled from Debian's *source* package with our own lwipopts.h.
LWIP_DIR="${LWIP_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)/.deps/lwip-src}"
need_src=0
[ -f "$LWIP_DIR/src/core/tcp.c" ] || need_src=1

if [ "${#missing[@]}" -eq 0 ] && [ "$need_src" -eq 0 ]; then
  echo "setup-deps: everything is present"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if [ "$need_src" -eq 1 ] && ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ \
     && ! grep -qs '^deb-src' /etc/apt/sources.list; then
  echo "setup-deps: enabling deb-src for bookworm (to fetch the lwip source package)"
  $SUDO tee /etc/apt/sources.list.d/awgproxy-src.sources >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
$SUDO apt-get update -qq
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-deps: installing ${missing[*]}"
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "$need_src" -eq 1 ]; then
  echo "setup-deps: fetching Debian source package lwip into $LWIP_DIR"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get source -qq --download-only lwip >/dev/null && dpkg-source -x --no-check ./*.dsc src >/dev/null)
  mkdir -p "$(dirname "$LWIP_DIR")"
  rm -rf "$LWIP_DIR"
  mv "$tmp/src" "$LWIP_DIR"
  rm -rf "$tmp"
fi
echo "setup-deps: done"
