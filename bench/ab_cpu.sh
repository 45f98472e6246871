#!/usr/bin/env bash
# CPU per GB of two awgproxy binaries, side by side: two labs of bench/socks_bench.sh are held up
# at once (one per binary, path A3 or another awgproxy path), then 1 GB downloads and uploads
# alternate between them, N of each. Each line gives the client's and the server's CPU for one
# transfer (centiseconds, from /proc) and its MB/s; the summary gives medians and the median of
# the new / old ratios of the pairs. Alternating transfers, rather than whole benchmark runs,
# keeps this shared machine's drift out of the comparison: runs of socks_bench.sh one binary
# after the other could not tell apart changes of 5-10 % that the pairs show.
#
# Usage: sudo bench/ab_cpu.sh OLD_BINARY NEW_BINARY [N (default 6)] [PATH (default A3)]
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 n=${3:-6} path=${4:-A3}
# A (a stock server: wireguard-go with kernel forwarding) compares the clients only: it has no
# awgproxy server, so no server figures.
declare -A PORT=([A]=1080 [A2]=1082 [A3]=1083 [A3f]=1089 [A2s]=1087 [A3s]=1088)
port=${PORT[$path]:?"path $path: one of ${!PORT[*]}"}
work=$(mktemp -d)
trap 'pkill -f "socks_bench.py --binary" || true; rm -rf "$work"' EXIT
for which in old new; do
  b=${!which}
  timeout 1800 bench/socks_bench.sh --binary "$b" --paths "$path" --metrics cps --reps 1 \
    --hold 1700 > "$work/$which.txt" 2>&1 &
  sleep 2
done
for i in $(seq 120); do
  grep -q 'lab up' "$work/old.txt" && grep -q 'lab up' "$work/new.txt" && break
  sleep 1
done
# lab LOGFILE -> "C CLIENT_PID SERVER_PIDS..." (the server: "BINARY server -c CONF", whatever the
# binary is called; ss-server's command line starts otherwise)
lab() {
  local line C S cp
  line=$(grep 'lab up' "$1")
  C=$(sed 's/.*C=\([^ ]*\).*/\1/' <<< "$line"); S=$(sed 's/.* S=\([^ ]*\).*/\1/' <<< "$line")
  cp=$(sed "s/.*'$path': \([0-9]*\).*/\1/" <<< "$line")
  echo "$C $cp $(ip netns pids "$S" | while read -r p; do
    tr '\0' ' ' < "/proc/$p/cmdline" | grep -qE '^[^ ]+ server -c ' && echo "$p"; done | xargs)"
}
read -r -a O <<< "$(lab "$work/old.txt")"
read -r -a N <<< "$(lab "$work/new.txt")"
cpu() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo $t; }
one() { # C CLIENT_PID DIR SERVER_PIDS...
  local C=$1 cp=$2 dir=$3; shift 3
  local c0 s0 r
  c0=$(cpu "$cp"); s0=$(cpu "$@")
  r=$(ip netns exec "$C" python3 bench/socks_load.py "$dir" --target 198.51.100.2:5201 \
    --proxy "127.0.0.1:$port" --bytes 1000000000 |
    python3 -c 'import json,sys; print(round(json.load(sys.stdin)["MBps"]))')
  echo "$(($(cpu "$cp") - c0)) $(($(cpu "$@") - s0)) $r"
}
out=$work/pairs
for dir in down up; do
  for i in $(seq "$n"); do
    echo "$dir old $(one "${O[0]}" "${O[1]}" "$dir" "${O[@]:2}")" | tee -a "$out"
    echo "$dir new $(one "${N[0]}" "${N[1]}" "$dir" "${N[@]:2}")" | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1])]
for d in ("down", "up"):
    for name, i in (("client CPU", 2), ("server CPU", 3), ("MB/s", 4)):
        o = [int(r[i]) for r in rows if r[0] == d and r[1] == "old"]
        n = [int(r[i]) for r in rows if r[0] == d and r[1] == "new"]
        pairs = [b / a for a, b in zip(o, n) if a]
        if not pairs:  # path A: no awgproxy server on the path
            continue
        print(f"{d} {name}: old median {st.median(o)}, new median {st.median(n)}, new/old pairs "
              f"median {st.median(pairs):.2f} ({' '.join(f'{p:.2f}' for p in pairs)})")
PY
