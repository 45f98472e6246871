#!/usr/bin/env python3
"""The server benchmark (issue "Server", performance part): `awgproxy server` (userspace exit) next
to Debian's wireguard-go with kernel forwarding and NAT, in one run, with 1, 10 and 100
concurrent peers.

    C (clients)  192.0.2.2   100 wireguard-go clients, each its own key, TUN address
                             10.70.0.<i+2>/32 and routing table: policy routing sends traffic *from*
                             that address through that peer's tunnel. One load process
                             (bench/server_load.py) binds each connection to a peer's address.
       | veth 192.0.2.0/24
    S (server)   192.0.2.1   UDP 51820, tunnel address 10.70.255.1/16, the same key for both:
                             A  awgproxy server: userspace exit (lwIP), no TUN, no forwarding
                             B  wireguard-go on a TUN, net.ipv4.ip_forward=1, nft masquerade
       | veth 198.51.100.0/24
    T (target)   198.51.100.2  bench/server_load.py serve :5201

Only the server differs between A and B: the peers (stock wireguard-go clients, the kind of
client a server mostly sees), the load and the target are the same processes. A and B run one
after the other in S; on each switch every client drops its session (the peer is removed and
added again) and one exchange per peer brings the handshakes back before anything is measured.

Per server and peer count N (the first N clients), each for --seconds after a 1 s warm-up:
  down / up   one stream per peer (--streams), zeros from / to the target; bytes counted at the
              receiver (down: the load client, up: the target), in Mbit/s (10^6 bits)
  cps         one worker per peer: connect + 'P' -> 'p' + close, completed exchanges per second
  server CPU  utime + stime of the server process (/proc/PID/stat) over the same window:
              core-seconds per Gbit moved (= cores needed per Gbit/s), ms per 1000 connections
  machine     busy CPU of the whole machine over the window (/proc/stat), in cores; everything
              shares the two CPUs (clients, server, target, load, the kernel), and other work on
              the machine shows up here too
Repetitions are interleaved (rep 1: A then B, rep 2: B then A, ...); the table shows medians.
Usage: see server_bench.sh, which installs, builds and runs this with the arguments given.
"""
import argparse
import concurrent.futures
import json
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

import benchlab  # noqa: E402  (the lab set-up shared with socks_bench.py)
from benchlab import S_IP, T_IP, log, machine_busy, netns, proc_cpu, rss_kb

HERE = benchlab.HERE
REPO = benchlab.REPO
LOAD = HERE / "server_load.py"
TARGET = f"{T_IP}:5201"
WG_PORT = 51820
S_TUNNEL = "10.70.255.1/16"
SERVERS = {"A": "awgproxy server (userspace exit), Threads = 1",
           "A2": "awgproxy server, Threads = 2 (supervisor + 2 workers)",
           "B": "wireguard-go + kernel forwarding + NAT"}
THREADS = {"A": 1, "A2": 2}


def process_tree(pid):
    """pid and its children (a sharded server's workers)."""
    out = [pid]
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(d.name))
    return out


def tree_cpu(pids):
    """{pid: utime + stime} for each live process of pids."""
    out = {}
    for p in pids:
        try:
            out[p] = proc_cpu(p)
        except OSError:
            pass
    return out


def peer_ip(i):
    return f"10.70.{i // 250}.{i % 250 + 2}"


class Bench:
    def __init__(self, a):
        self.a = a
        self.lab = netns.Lab(a.workdir)
        self.server = None      # the running server's handle
        self.kind = None
        self.results = {}       # (metric, kind, n) -> [values]
        self.failures = []

    # ---- topology -------------------------------------------------------------------------

    def setup(self):
        a, lab = self.a, self.lab
        c, s, t, self.st = benchlab.three_namespaces(lab)
        self.c, self.s, self.t = c, s, t
        c.run(["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"], check=False)

        # The target answers "stats" on stdin (upload bytes are counted where they arrive).
        self.target_p = t.popen([sys.executable, "-u", str(LOAD), "serve", "--listen",
                                 f"0.0.0.0:{TARGET.split(':')[1]}"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.target_p.stdout.readline().strip() == "ready", "target did not start"

        self.s_priv, self.s_pub = netns.keypair()
        n = max(a.peers)
        self.keys = [netns.keypair() for _ in range(n)]
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            self.clients = list(ex.map(self.start_client, range(n)))
        batch = []
        for i, w in enumerate(self.clients):
            batch.append(f"rule add from {peer_ip(i)} lookup {100 + i}")
            batch.append(f"route add {T_IP}/32 dev {w.ifname} table {100 + i}")
        c.run(["ip", "-batch", "-"], input="\n".join(batch) + "\n")
        log(f"{n} wireguard-go clients up in {time.monotonic() - t0:.1f} s")

    def start_client(self, i):
        priv, _ = self.keys[i]
        return netns.wireguard_go(self.c, private_key=priv, address=f"{peer_ip(i)}/32",
                                  peers=[self.client_peer()], log_level="error")

    def client_peer(self):
        return {"public_key": self.s_pub, "endpoint": f"{S_IP}:{WG_PORT}",
                "allowed_ips": "0.0.0.0/0"}

    # ---- servers ----------------------------------------------------------------------------

    def start_server(self, kind):
        if kind in THREADS:
            peers = "".join(f"\n[Peer]\nPublicKey = {pub}\nAllowedIPs = {peer_ip(i)}/32\n"
                            for i, (_, pub) in enumerate(self.keys))
            conf = (f"[Interface]\nPrivateKey = {self.s_priv}\nListenPort = {WG_PORT}\n"
                    f"Address = {S_TUNNEL}\n\n[Socks]\nConnectTimeout = 10\n\n"
                    f"[Server]\nThreads = {THREADS[kind]}\n{peers}")
            h = self.lab.awgproxy(self.s, "server", conf, binary=self.a.binary, log_level=None)
            h.wait_log(r"event=started.*role=server|role=server.*event=started", timeout=15)
        else:
            h = netns.wireguard_go(self.s, private_key=self.s_priv, listen_port=WG_PORT,
                                   address=S_TUNNEL, log_level="error")
            args = ["set", h.ifname]
            for i, (_, pub) in enumerate(self.keys):
                args += ["peer", pub, "allowed-ips", f"{peer_ip(i)}/32"]
            h.wg(*args, timeout=60)
            self.s.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
            out_if = self.st.ifname_a
            self.s.run(["nft", f"add table ip bnat; add chain ip bnat post {{ type nat hook "
                               f"postrouting priority 100 ; }}; add rule ip bnat post oifname "
                               f"{out_if} masquerade"])
        self.server, self.kind = h, kind
        # Every client starts a fresh session with this server.
        def renew(w):
            p = self.client_peer()
            w.set_peer(p["public_key"], remove=True)
            w.set_peer(p["public_key"], endpoint=p["endpoint"], allowed_ips=p["allowed_ips"])

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(renew, self.clients))
        r = self.c.run([sys.executable, str(LOAD), "prime", "--sources",
                        ",".join(peer_ip(i) for i in range(len(self.clients))), "--target",
                        TARGET, "--timeout", "60"], timeout=120)
        res = json.loads(r.stdout)
        if res["failed"]:
            raise AssertionError(f"server {kind}: {len(res['failed'])} peers cannot reach the "
                                 f"target: {res['failed'][:5]}\n{self.lab.logs(20)}")
        log(f"server {kind} ({SERVERS[kind]}) up, pid {h.pid}; all {res['ok']} peers reach T")

    def stop_server(self):
        if self.kind == "B":
            self.s.run(["nft", "delete", "table", "ip", "bnat"], check=False)
            self.s.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"])
        self.server.stop()
        self.server = self.kind = None

    # ---- measuring --------------------------------------------------------------------------

    def target_stats(self):
        self.target_p.stdin.write("stats\n")
        self.target_p.stdin.flush()
        return json.loads(self.target_p.stdout.readline())

    def measure(self, n, mode):
        srcs = ",".join(peer_ip(i) for i in range(n))
        p = self.c.popen([sys.executable, str(LOAD), "load", "--mode", mode, "--sources", srcs,
                          "--target", TARGET, "--streams", str(self.a.streams)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)

        def stats():
            p.stdin.write("stats\n")
            p.stdin.flush()
            return json.loads(p.stdout.readline())

        try:
            if p.stdout.readline().strip() != "ready":
                raise AssertionError(f"load client ({mode}, {n} peers) failed: "
                                     f"{p.stderr.read()[-2000:]}")
            time.sleep(1.0)
            pids = process_tree(self.server.pid)
            l0, t0, c0, m0 = stats(), self.target_stats(), tree_cpu(pids), machine_busy()
            w0 = time.monotonic()
            time.sleep(self.a.seconds)
            l1, t1, c1, m1 = stats(), self.target_stats(), tree_cpu(pids), machine_busy()
            dt = time.monotonic() - w0
            rss = sum(rss_kb(p) for p in c1)
        finally:
            try:
                p.stdin.write("stop\n")
                p.stdin.flush()
            except OSError:
                pass
            p.wait(timeout=30)
            self.c.forget(p)
        per_proc = {p: c1[p] - c0.get(p, 0.0) for p in c1}
        cpu = sum(per_proc.values())
        k = (self.kind, n)
        if len(per_proc) > 1:  # how the work spreads over the supervisor and its workers
            shares = ", ".join(f"{p}: {v / dt:.2f}" for p, v in sorted(per_proc.items()))
            log(f"{self.kind} n={n} {mode}: cores per process ({shares})")
            self.add("spread_" + mode, k, max(per_proc.values()) / cpu if cpu else 0)
        self.add("machine_" + mode, k, (m1 - m0) / dt)
        self.add("rss_" + mode, k, rss / 1024)
        errors = l1["errors"] - l0["errors"]
        if errors:
            self.failures.append(f"{self.kind} {mode} {n} peers: {errors} errors in the window "
                                 f"({l1['first_error']})")
        if mode == "cps":
            conns = l1["conns"] - l0["conns"]
            self.add("cps", k, conns / dt)
            if conns:
                self.add("cpu_cps", k, cpu / conns * 1e6)  # ms per 1000
            log(f"{self.kind} n={n} cps: {conns / dt:.0f}/s, server CPU {cpu:.2f} s, machine "
                f"{(m1 - m0) / dt:.2f} cores, errors {errors}")
        else:
            moved = (l1["bytes"] - l0["bytes"]) if mode == "down" else \
                (t1["up_bytes"] - t0["up_bytes"])
            gbit = moved * 8 / 1e9
            self.add(mode, k, gbit * 1000 / dt)
            if gbit > 0:
                self.add("cpu_" + mode, k, cpu / gbit)
            log(f"{self.kind} n={n} {mode}: {gbit * 1000 / dt:.0f} Mbit/s, server CPU {cpu:.2f} "
                f"s ({cpu / dt:.2f} cores), machine {(m1 - m0) / dt:.2f} cores, RSS "
                f"{rss / 1024:.1f} MiB, errors {errors}")
        time.sleep(self.a.pause)

    def add(self, metric, key, v):
        self.results.setdefault((metric,) + key, []).append(v)

    def run(self):
        kinds = list(self.a.servers)
        for rep in range(self.a.reps):
            order = kinds if rep % 2 == 0 else kinds[::-1]
            for kind in order:
                self.start_server(kind)
                for n in self.a.peers:
                    for mode in self.a.modes:
                        self.measure(n, mode)
                self.stop_server()

    # ---- output -----------------------------------------------------------------------------

    def med(self, metric, kind, n):
        v = self.results.get((metric, kind, n))
        return statistics.median(v) if v else None

    def table(self):
        rows = [("down", "download, Mbit/s", "{:.0f}"), ("up", "upload, Mbit/s", "{:.0f}"),
                ("cps", "connections/s", "{:.0f}"),
                ("cpu_down", "server CPU per Gbit downloaded (core-s)", "{:.1f}"),
                ("cpu_up", "server CPU per Gbit uploaded (core-s)", "{:.1f}"),
                ("cpu_cps", "server CPU per 1000 connections (core-ms)", "{:.0f}"),
                ("machine_down", "whole machine busy during download (cores of 2)", "{:.2f}"),
                ("machine_up", "whole machine busy during upload (cores of 2)", "{:.2f}"),
                ("machine_cps", "whole machine busy during connections (cores of 2)", "{:.2f}"),
                ("rss_down", "server RSS after the download run (MiB)", "{:.1f}"),
                ("spread_down", "busiest process's share of server CPU, download", "{:.2f}"),
                ("spread_up", "busiest process's share of server CPU, upload", "{:.2f}"),
                ("spread_cps", "busiest process's share of server CPU, connections", "{:.2f}")]
        kinds = list(self.a.servers)
        head = ["peers", "metric"] + [f"{k}: {SERVERS[k]}" for k in kinds]
        ratios = [(x, y) for x, y in (("A", "B"), ("A2", "A")) if x in kinds and y in kinds]
        head += [f"{x} / {y}" for x, y in ratios]
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for n in self.a.peers:
            for metric, label, fmt in rows:
                vals = [self.med(metric, k, n) for k in kinds]
                if all(v is None for v in vals):
                    continue
                cells = [str(n), label] + ["—" if v is None else fmt.format(v) for v in vals]
                for x, y in ratios:
                    vx, vy = vals[kinds.index(x)], vals[kinds.index(y)]
                    cells.append(f"{vx / vy:.2f}" if vx is not None and vy else "—")
                out.append("| " + " | ".join(cells) + " |")
        return "\n".join(out)

    def close(self):
        self.lab.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--binary", default=str(REPO / "build-bench" / "awgproxy"))
    ap.add_argument("--peers", default="1,10,100", help="peer counts (default 1,10,100)")
    ap.add_argument("--seconds", type=float, default=6.0, help="measured window per figure")
    ap.add_argument("--pause", type=float, default=1.5, help="between figures (connections end)")
    ap.add_argument("--streams", type=int, default=1, help="streams (cps: workers) per peer")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--modes", default="down,up,cps", help="subset of down,up,cps")
    ap.add_argument("--servers", default="A,B",
                    help="A (awgproxy server, Threads = 1), A2 (Threads = 2), B (wireguard-go)")
    ap.add_argument("--workdir", default=None, help="keep logs here (default: a temp dir, removed)")
    a = ap.parse_args()
    a.peers = [int(x) for x in a.peers.split(",") if x]
    a.servers = [x.strip() for x in a.servers.split(",") if x.strip()]
    a.modes = [x.strip() for x in a.modes.split(",") if x.strip()]
    if "B" in a.servers and not shutil.which("nft"):
        sys.exit("server_bench: server B needs nft (Debian package nftables) for its NAT")

    def body(b):
        load0 = benchlab.loadavg()
        t0 = time.monotonic()
        b.setup()
        b.run()
        load1 = benchlab.loadavg()
        print(f"\nserver_bench: {benchlab.machine_notes(['wireguard-go'], a.binary)}")
        print(f"peers: wireguard-go clients in one namespace, {a.streams} stream(s)/worker(s) per "
              f"peer, {a.seconds:g} s windows, {a.reps} rep(s); {time.monotonic() - t0:.0f} s "
              f"in all; 1-minute load average {load0} before, {load1} after\n")
        print(b.table())
        for f in b.failures:
            print(f)
        raw = {"/".join(map(str, k)): v for k, v in b.results.items()}
        (pathlib.Path(a.workdir) / "results.json").write_text(json.dumps(raw, indent=1))

    benchlab.run_main("server_bench", a, Bench, body)


if __name__ == "__main__":
    main()
