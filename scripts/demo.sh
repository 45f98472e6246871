#!/usr/bin/env bash
# The main job on a built-in local default: builds awgproxy, generates fresh keys, and starts a
# server and a client on loopback joined by an obfuscated AmneziaWG tunnel. Applications then use
# the client's SOCKS5 port or its HTTP proxy port. Ctrl-C stops both.
# Usage: scripts/demo.sh [SOCKS_PORT [HTTP_PORT]]
set -euo pipefail
cd "$(dirname "$0")/.."
SOCKS_PORT=${1:-1080}
HTTP_PORT=${2:-8118}
# A random high port, never 51820: classifiers label unknown UDP on 51820 "WireGuard" by port.
UDP_PORT=${DEMO_UDP_PORT:-$((20000 + RANDOM % 40000))}

bash scripts/setup-deps.sh >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
BIN=$PWD/build/awgproxy

dir=$(mktemp -d "${TMPDIR:-/tmp}/awgproxy-demo.XXXXXX")
chmod 700 "$dir"
umask 077
server_key=$($BIN genkey)
client_key=$($BIN genkey)
server_pub=$(printf '%s' "$server_key" | $BIN pubkey)
client_pub=$(printf '%s' "$client_key" | $BIN pubkey)
psk=$($BIN genpsk)
# Obfuscation as a censored network would need it: every AmneziaWG 2.0 parameter is set.
obfs="Jc = 4
Jmin = 40
Jmax = 70
S1 = 15
S2 = 18
S3 = 20
S4 = 23
H1 = 100000-100100
H2 = 200000-200100
H3 = 300000-300100
H4 = 400000-400100"

cat >"$dir/server.conf" <<CONF
[Interface]
PrivateKey = $server_key
ListenPort = $UDP_PORT
Address = 10.99.0.1/24
$obfs

[Peer]
PublicKey = $client_pub
PresharedKey = $psk
AllowedIPs = 10.99.0.2/32
CONF

cat >"$dir/client.conf" <<CONF
[Interface]
PrivateKey = $client_key
Address = 10.99.0.2/32
DNS = 10.99.0.1
$obfs
I1 = <b 0xc0ffee><r 16><t>

[Peer]
PublicKey = $server_pub
PresharedKey = $psk
Endpoint = 127.0.0.1:$UDP_PORT
AllowedIPs = 0.0.0.0/0, ::/0
PersistentKeepalive = 25

[Socks]
Listen = 127.0.0.1:$SOCKS_PORT

[Http]
Listen = 127.0.0.1:$HTTP_PORT
CONF

cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT INT TERM
pids=()
$BIN server -c "$dir/server.conf" 2>"$dir/server.log" &
pids+=($!)
$BIN client -c "$dir/client.conf" 2>"$dir/client.log" &
pids+=($!)
sleep 1
cat <<MSG
awgproxy demo is running (configs and logs in $dir):
  server  udp 127.0.0.1:$UDP_PORT   tunnel address 10.99.0.1
  client  SOCKS4/4a/5 on 127.0.0.1:$SOCKS_PORT, HTTP proxy on 127.0.0.1:$HTTP_PORT

Point an application at the SOCKS or the HTTP proxy port, for example:
  curl --socks5-hostname 127.0.0.1:$SOCKS_PORT https://example.com/
  ALL_PROXY=socks5h://127.0.0.1:$SOCKS_PORT your-app
  curl -x http://127.0.0.1:$HTTP_PORT https://example.com/
  https_proxy=http://127.0.0.1:$HTTP_PORT http_proxy=http://127.0.0.1:$HTTP_PORT git clone …
  a browser's automatic proxy configuration: http://127.0.0.1:$HTTP_PORT/proxy.pac
Logs: tail -f $dir/client.log $dir/server.log      Ctrl-C stops both.
MSG
wait -n "${pids[@]}" || true
echo "a daemon exited; see the logs above:" >&2
tail -n 20 "$dir/server.log" "$dir/client.log" >&2 || true
