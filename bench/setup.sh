#!/usr/bin/env bash
# Installs what bench/socks_bench.sh needs beyond scripts/setup-deps.sh, from Debian packages only:
# shadowsocks-libev (ss-local / ss-server, the anchor), wireguard-go + wireguard-tools (the server
# side of path A), python3 + python3-pytest (tests/integration/netns.py imports pytest), iproute2,
# and linux-perf (optional, for the profile the benchmark doc quotes). Idempotent.
set -euo pipefail

PKGS=(shadowsocks-libev wireguard-go wireguard-tools python3 python3-pytest iproute2 iputils-ping
      linux-perf)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "bench/setup: everything is present"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
echo "bench/setup: installing ${missing[*]}"
# The shadowsocks-libev package ships a systemd unit; on machines without systemd (containers)
# nothing is started. The benchmark starts its own ss-server / ss-local in namespaces.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "bench/setup: done"
