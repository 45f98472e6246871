#!/usr/bin/env bash
# Installs what awgproxy needs to build and test, from Debian packages only.
# Idempotent: when everything is present it only checks and returns in about a second.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang lld llvm libclang-rt-14-dev dpkg-dev
  clang-format  # scripts/check-format.sh: the tree is as .clang-format writes it
  libuv1-dev libsodium-dev libb2-dev libinih-dev libcmocka-dev libgnutls28-dev libssl-dev nettle-dev
  libngtcp2-dev libngtcp2-crypto-gnutls-dev
  libnghttp2-dev  # the TLS carrier's decoy speaks HTTP/2 as a web server does (ALPN h2)
  python3 python3-pytest python3-socks python3-requests python3-pip git chromium openssl  # openssl's CLI: the HTTP proxy test's TLS origin
  curl ncat iproute2 iputils-ping wireguard-go wireguard-tools proxychains4 tcpdump nftables
  libqrencode-dev libpng-dev zbar-tools  # add-peer --qr / --qr-png, and the test that decodes the PNG
  help2man pandoc  # the man pages: awgproxy(1) from --help, awgproxy.conf(5) from docs/config-reference.md
  prometheus  # promtool: tests/integration/test_observability.py checks the /metrics format
  tshark libndpi-bin  # the classifiers of the DPI evaluation (tests/integration/test_dpi.py, bench/dpi)
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# ngtcp2 >= 1.11 (the QUIC transport) exists only in bookworm-backports. The suite is enabled at
# the default backports priority (100: nothing is taken from it unless asked), and a pin raises
# exactly the ngtcp2 packages we name, so nothing else on the machine moves to backports.
BPO_PKGS="libngtcp2-dev libngtcp2-16 libngtcp2-crypto-gnutls-dev libngtcp2-crypto-gnutls8"
NGTCP2_MIN=1.11.0

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
ngtcp2_ok() {
  local v
  v=$(dpkg-query -W -f='${Version}' libngtcp2-dev 2>/dev/null) || return 1
  dpkg --compare-versions "$v" ge "$NGTCP2_MIN"
}
need_bpo=0
ngtcp2_ok || need_bpo=1

# lwIP is compiled from Debian's *source* package with our own lwipopts.h.
LWIP_DIR="${LWIP_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)/.deps/lwip-src}"
need_src=0
[ -f "$LWIP_DIR/src/core/tcp.c" ] || need_src=1

if [ "${#missing[@]}" -eq 0 ] && [ "$need_src" -eq 0 ] && [ "$need_bpo" -eq 0 ]; then
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
if [ "$need_bpo" -eq 1 ]; then
  echo "setup-deps: enabling bookworm-backports, pinned to: $BPO_PKGS"
  $SUDO tee /etc/apt/sources.list.d/awgproxy-backports.sources >/dev/null <<'BPO'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
BPO
  $SUDO tee /etc/apt/preferences.d/awgproxy-backports >/dev/null <<PIN
Package: *
Pin: release n=bookworm-backports
Pin-Priority: 100

Package: $BPO_PKGS
Pin: release n=bookworm-backports
Pin-Priority: 990
PIN
  # The ngtcp2 packages are reinstalled even when bookworm's 0.12 is present.
  missing+=(libngtcp2-dev libngtcp2-crypto-gnutls-dev)
fi
$SUDO apt-get update -qq
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-deps: installing ${missing[*]}"
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! ngtcp2_ok; then
  echo "setup-deps: libngtcp2-dev >= $NGTCP2_MIN is needed (bookworm-backports); got:" \
    "$(dpkg-query -W -f='${Version}' libngtcp2-dev 2>/dev/null || echo none)" >&2
  exit 1
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
