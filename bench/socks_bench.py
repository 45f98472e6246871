#!/usr/bin/env python3
"""The client's SOCKS benchmark (issue "Client", performance part): awgproxy client next to
shadowsocks-libev and a direct connection, all in one run, against the same target.

    C (client)  192.0.2.2     awgproxy client  SOCKS 127.0.0.1:1080  -> wireguard-go in S   (A)
                              awgproxy client  SOCKS 127.0.0.1:1082  -> awgproxy server in S (A2)
                              ss-local         SOCKS 127.0.0.1:1081  -> ss-server in S       (B)
                              the load client (bench/socks_load.py); direct TCP to T       (C)
       | veth 192.0.2.0/24
    S (server)  192.0.2.1     wireguard-go on TUN 10.66.0.1/24, UDP 51820, IP forwarding
                              awgproxy server  10.67.0.1/24, UDP 51821 (its userspace exit)
                              ss-server :8388 chacha20-ietf-poly1305
       | veth 198.51.100.0/24
    T (target)  198.51.100.2  bench/socks_load.py serve :5201

Every path ends at the same target process in T. It sits one routed hop behind S (not in S) because
awgproxy server's exit refuses the server's own addresses by design (exit_policy.c, "the server's own
address or tunnel subnet"); with the target in T all four paths cross the same links.

Metrics, each REPS times, interleaved (rep 1 of every path, then rep 2, ...), median reported:
  down / up    one stream, BYTES from / to the target, MB/s (10^6 bytes) from the first request
               byte to the last byte (up: to the target's 1-byte acknowledgement)
  cps1 / cps20 SOCKS connect + 'P' -> 'p' + close, sequential and 20 threads, CPS_SECONDS each
  rss          the proxy's VmRSS idle, and with IDLE streams open (each proved end to end)
Usage: see socks_bench.sh, which builds, installs and then runs this with the arguments given.
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
import netns  # noqa: E402  (namespaces, veth, wireguard-go, awgproxy processes)

LOAD = HERE / "socks_load.py"
C_IP, S_IP = "192.0.2.2", "192.0.2.1"
S_T_IP, T_IP = "198.51.100.1", "198.51.100.2"
TARGET_PORT = 5201
WG_PORT, AWGS_PORT, SS_PORT = 51820, 51821, 8388
SS_PASSWORD = "bench-only-password"
SS_METHOD = "chacha20-ietf-poly1305"

T_IP_W = "198.51.100.3"  # the same target, reached through wireguard-go in C (path W)

PATHS = {
    "A": "awgproxy client -> wireguard-go",
    "A2": "awgproxy client -> awgproxy server",
    "B": "ss-local -> ss-server",
    "C": "direct TCP",
    "W": "kernel TCP over wireguard-go -> wireguard-go",
}
PROXY_ADDR = {"A": "127.0.0.1:1080", "A2": "127.0.0.1:1082", "B": "127.0.0.1:1081", "C": None,
              "W": None}
TARGET_OF = {"W": T_IP_W}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sysctl(ns, *pairs):
    for p in pairs:
        ns.run(["sysctl", "-qw", p], check=False)


def rss_kb(pid):
    text = pathlib.Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.M).group(1))


class Bench:
    def __init__(self, a):
        self.a = a
        self.lab = netns.Lab(a.workdir)
        self.proc = {}       # path -> the client-side proxy process (LoggedProcess)
        self.cpu_pid = {}    # path -> pid whose CPU time a bulk transfer reports (client side)
        self.conf = {}       # path -> awgproxy client config text
        self.starts = 0
        self.pending = {}    # path -> why it could not run
        self.results = {}    # (metric, path) -> [values]
        self.extra = {}      # (metric, path) -> [values] of secondary numbers
        self.failures = {}   # (metric, path) -> [what went wrong], runs left out of the median
        self.notes = []

    # ---- topology -------------------------------------------------------------------------

    def setup(self):
        a = self.a
        lab = self.lab
        c, s, t = lab.netns("c"), lab.netns("s"), lab.netns("t")
        self.c, self.s, self.t = c, s, t
        lab.veth(s, c, f"{S_IP}/24", f"{C_IP}/24")
        self.st = lab.veth(s, t, f"{S_T_IP}/24", f"{T_IP}/24")
        sysctl(s, "net.ipv4.ip_forward=1")
        c.run(["ip", "route", "add", "198.51.100.0/24", "via", S_IP])
        t.run(["ip", "route", "add", "default", "via", S_T_IP])
        # Tens of thousands of short connections in 10 s: widen the port range, reuse TIME_WAIT.
        for ns in (c, s, t):
            sysctl(ns, "net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=1",
                   "net.core.somaxconn=4096", "net.ipv4.tcp_max_syn_backlog=4096")

        target = netns.LoggedProcess(t, [sys.executable, "-u", str(LOAD), "serve", "--listen",
                                         f"0.0.0.0:{TARGET_PORT}"], t.file("target.log"))
        target.kind = "target"
        target.wait_log(r"^ready$", timeout=10)
        self.target = target

        # A: wireguard-go (plain WireGuard = AmneziaWG with every obfuscation parameter at its
        # default) on a TUN in S; the kernel forwards to T.
        c_priv, c_pub = netns.keypair()
        wg = netns.wireguard_go(s, listen_port=WG_PORT, address="10.66.0.1/24",
                                peers=[{"public_key": c_pub, "allowed_ips": "10.66.0.2/32"}],
                                log_level="error")
        t.run(["ip", "route", "add", "10.66.0.0/24", "via", S_T_IP], check=False)
        if "W" in a.paths:
            # W: the same server, but the client side is wireguard-go on a TUN in C with the
            # kernel's TCP: what the tunnel costs without awgproxy (a reference, not a proxy).
            w_priv, w_pub = netns.keypair()
            wg.set_peer(w_pub, allowed_ips="10.66.0.3/32")
            t.run(["ip", "addr", "add", f"{T_IP_W}/32", "dev", self.st.ifname_b])
            wgc = netns.wireguard_go(c, private_key=w_priv, address="10.66.0.3/32",
                                     peers=[{"public_key": wg.public_key,
                                             "endpoint": f"{S_IP}:{WG_PORT}",
                                             "allowed_ips": f"{T_IP_W}/32",
                                             "persistent_keepalive": 25}],
                                     log_level="error")
            c.run(["ip", "route", "replace", f"{T_IP_W}/32", "dev", wgc.ifname])
            self.wg_client = wgc
            self.cpu_pid["W"] = wgc.pid
        conf_a = (f"[Interface]\nPrivateKey = {c_priv}\nAddress = 10.66.0.2/32\n\n"
                  f"[Peer]\nPublicKey = {wg.public_key}\nEndpoint = {S_IP}:{WG_PORT}\n"
                  f"AllowedIPs = 0.0.0.0/0\nPersistentKeepalive = 25\n\n"
                  f"[Socks]\nListen = {PROXY_ADDR['A']}\n")
        self.conf["A"] = conf_a
        self.wg = wg
        self.start_proxy("A")

        # A2: awgproxy server in S as the exit.
        if "A2" in a.paths:
            self.setup_a2()

        # B: shadowsocks-libev.
        ss_common = ["-k", SS_PASSWORD, "-m", SS_METHOD, "-n", "16384"]
        ssd = netns.LoggedProcess(s, ["ss-server", "-s", S_IP, "-p", str(SS_PORT), *ss_common],
                                  s.file("ss-server.log"))
        ssd.kind = "ss-server"
        s.on_close(ssd.stop)
        self.ss_local_argv = ["ss-local", "-s", S_IP, "-p", str(SS_PORT), "-b", "127.0.0.1",
                              "-l", "1081", *ss_common]
        self.ssd = ssd
        self.start_proxy("B")

        # Everything up: prove each path once.
        wg.wait_handshake(c_pub, timeout=15)
        for p in list(a.paths):
            if p in self.pending:
                continue
            ok, why = self.probe(p)
            if not ok:
                if p in ("A2",):
                    self.pending[p] = why
                    log(f"path {p} unavailable: {why}")
                else:
                    raise AssertionError(f"path {p} ({PATHS[p]}) does not work: {why}\n"
                                         f"{self.logs()}")

    def setup_a2(self):
        a, c, s = self.a, self.c, self.s
        s_priv, s_pub = netns.keypair()
        c_priv, c_pub = netns.keypair()
        conf_s = (f"[Interface]\nPrivateKey = {s_priv}\nListenPort = {AWGS_PORT}\n"
                  f"Address = 10.67.0.1/24\n\n[Peer]\nPublicKey = {c_pub}\n"
                  f"AllowedIPs = 10.67.0.2/32\n"
                  # The idle-stream figure opens 1000 connections through this one peer, above the
                  # server's default per-peer cap (MaxConnectionsPerPeer, 512).
                  f"MaxConnections = {max(4096, 2 * a.idle)}\n")
        conf_c = (f"[Interface]\nPrivateKey = {c_priv}\nAddress = 10.67.0.2/32\n\n"
                  f"[Peer]\nPublicKey = {s_pub}\nEndpoint = {S_IP}:{AWGS_PORT}\n"
                  f"AllowedIPs = 0.0.0.0/0\nPersistentKeepalive = 25\n\n"
                  f"[Socks]\nListen = {PROXY_ADDR['A2']}\n")
        self.awg_server = netns.awgproxy(s, "server", conf_s, binary=a.binary, log_level="info",
                                         name="awgserver")
        try:
            self.awg_server.wait_log(r"event=started|listening", timeout=10)
        except AssertionError as e:
            self.pending["A2"] = "awgproxy server did not start: " + str(e).splitlines()[0]
            return
        self.conf["A2"] = conf_c
        try:
            self.start_proxy("A2")
        except AssertionError as e:
            self.pending["A2"] = "no tunnel to awgproxy server: " + str(e).splitlines()[0]

    def start_proxy(self, path):
        """(Re)starts the client-side proxy of a path and waits until it serves: a fresh process,
        so that memory figures do not carry what an earlier measurement left behind."""
        old = self.proc.pop(path, None)
        if old is not None:
            old.stop()
        self.starts += 1
        c = self.c
        if path in ("A", "A2"):
            h = netns.awgproxy(c, "client", self.conf[path], binary=self.a.binary,
                               log_level="info", name=f"awgclient-{path.lower()}-{self.starts}")
            self.proc[path] = h
            h.wait_log(r"socks.*listening|listening.*socks", timeout=15)
            h.wait_log(r"handshake.*completed", timeout=15)
        else:
            h = netns.LoggedProcess(c, self.ss_local_argv, c.file(f"ss-local-{self.starts}.log"))
            h.kind = "ss-local"
            c.on_close(h.stop)
            self.proc[path] = h
            h.wait_log(r"listening at", timeout=10)
        return h

    def probe(self, path):
        r = self.client(path, "cps", "--seconds", "0.5", timeout=60, check=False)
        if r is None:
            return False, "load client failed"
        if r.get("connections", 0) < 1:
            return False, r.get("first_error") or "no connection completed"
        return True, ""

    def logs(self):
        parts = [p.log_tail(15) for p in self.proc.values()]
        parts.append(self.target.log_tail(10))
        if getattr(self, "awg_server", None):
            parts.append(self.awg_server.log_tail(15))
        return "\n".join(parts)

    # ---- running the client in C ------------------------------------------------------------

    def client(self, path, mode, *args, timeout=600, check=True):
        argv = [sys.executable, str(LOAD), mode, "--target",
                f"{TARGET_OF.get(path, T_IP)}:{TARGET_PORT}", *args]
        if PROXY_ADDR[path]:
            argv += ["--proxy", PROXY_ADDR[path]]
        r = self.c.run(argv, check=False, timeout=timeout)
        if r.returncode != 0:
            if check:
                raise AssertionError(f"load client ({path} {mode}) failed: {r.stderr.strip()}\n"
                                     f"{self.logs()}")
            return None
        return json.loads(r.stdout.strip().splitlines()[-1])

    def add(self, metric, path, value, extra=None):
        self.results.setdefault((metric, path), []).append(value)
        if extra is not None:
            self.extra.setdefault((metric, path), []).append(extra)

    # ---- metrics ----------------------------------------------------------------------------

    def run_rss(self, rep):
        for path in self.active(proxied_only=True):
            pid = self.start_proxy(path).pid
            time.sleep(1.0)
            before = rss_kb(pid)
            argv = self.c.argv([sys.executable, str(LOAD), "idle", "--target",
                                f"{T_IP}:{TARGET_PORT}", "--proxy", PROXY_ADDR[path], "--count",
                                str(self.a.idle)])
            p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            line = p.stdout.readline()
            if not line:
                p.kill()
                raise AssertionError(f"idle client ({path}) failed: {p.stderr.read()}\n"
                                     f"{self.logs()}")
            info = json.loads(line)
            time.sleep(1.0)  # let the proxy settle (deferred frees, timers)
            during = rss_kb(pid)
            p.stdin.write("\n")
            p.stdin.flush()
            p.communicate(timeout=120)
            time.sleep(3.0)  # the closes drain
            after = rss_kb(pid)
            self.add("rss_idle", path, before)
            self.add("rss_1000", path, during)
            self.add("rss_per_stream", path, (during - before) / info["open"])
            self.add("rss_after", path, after)
            log(f"rep {rep} rss {path}: fresh {before} kB idle, {during} kB with {info['open']} "
                f"streams (opened in {info['setup_seconds']:.2f} s), {after} kB after they closed")

    def run_cps(self, rep, conc):
        metric = f"cps{conc}"
        for path in self.active():
            if path in self.proc:
                # A fresh proxy per run, so every run starts from the same state (TIME_WAIT PCBs
                # of the previous run, 4 s in lwIP as configured; the sustained figure, three
                # runs back to back on one process, is its own row).
                self.start_proxy(path)
            r = self.client(path, "cps", "--seconds", str(self.a.cps_seconds), "--concurrency",
                            str(conc), timeout=self.a.cps_seconds * 10 + 60)
            self.add(metric, path, r["per_s"], r)
            log(f"rep {rep} {metric} {path}: {r['per_s']:.0f}/s, errors {r['errors']}, p50 "
                f"{r['p50_ms'] and round(r['p50_ms'], 2)} ms, p99 "
                f"{r['p99_ms'] and round(r['p99_ms'], 2)} ms"
                + (f", first error {r['first_error']}" if r["first_error"] else ""))
            time.sleep(2.0)

    def run_sustained(self):
        """Sequential connections/s, three CPS_SECONDS runs back to back on the same proxy process
        (no restart): the third run is reported. Shows what accumulated state costs."""
        for path in self.active(proxied_only=True):
            self.start_proxy(path)
            rates = []
            for _ in range(3):
                r = self.client(path, "cps", "--seconds", str(self.a.cps_seconds),
                                timeout=self.a.cps_seconds * 10 + 60)
                rates.append(r["per_s"])
                if r["errors"]:
                    self.failures.setdefault(("cps1_sustained", path), []).append(
                        f"{r['errors']} failed connects ({r['first_error']})")
            self.add("cps1_sustained", path, rates[-1])
            log(f"sustained cps1 {path}: " + " -> ".join(f"{x:.0f}/s" for x in rates))
            self.start_proxy(path)  # leave a fresh process for what follows
            time.sleep(2.0)

    def run_bulk(self, rep, mode):
        for path in self.active():
            pid = self.proc[path].pid if path in self.proc else self.cpu_pid.get(path, 0)
            r = self.client(path, mode, "--bytes", str(self.a.mb * 1000000), "--watch-pid",
                            str(pid), timeout=1800)
            if not r["complete"]:
                # Recorded, not fatal: the table marks the cell, the log says what arrived.
                what = (f"{r['bytes']} of {self.a.mb * 1000000} bytes "
                        + ("sent, then no acknowledgement from the target"
                           if mode == "up" else "received, then the stream ended"))
                if r.get("error"):
                    what += f" ({r['error']})"
                self.failures.setdefault((mode, path), []).append(what)
                log(f"rep {rep} {mode} {path}: INCOMPLETE, {r}")
                time.sleep(1.0)
                continue
            cpu = r["proxy_cpu_s"]
            self.add(mode, path, r["MBps"])
            if cpu is not None:
                self.add(f"{mode}_cpu", path, cpu / (r["bytes"] / 1e9))
            log(f"rep {rep} {mode} {path}: {r['MBps']:.1f} MB/s in {r['seconds']:.2f} s"
                + (f", client-side proxy CPU {cpu:.2f} s" if cpu is not None else ""))
            time.sleep(1.0)

    def active(self, proxied_only=False):
        out = [p for p in self.a.paths if p not in self.pending]
        return [p for p in out if p in self.proc] if proxied_only else out

    def run_perf(self):
        """perf record on awgproxy client (path A) during a bulk download."""
        if not shutil.which("perf"):
            self.notes.append("perf not installed: no profile")
            return
        pid = self.proc["A"].pid
        data = pathlib.Path(self.a.workdir) / "perf-awgproxy-down.data"
        argv = self.c.argv([sys.executable, str(LOAD), "down", "--target",
                            f"{T_IP}:{TARGET_PORT}", "--proxy", PROXY_ADDR["A"], "--bytes",
                            str(self.a.mb * 1000000)])
        load = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        subprocess.run(["perf", "record", "-g", "-o", str(data), "-p", str(pid), "--", "sleep",
                        "5"], capture_output=True, timeout=60)
        load.wait(timeout=1800)
        def report(*args):
            r = subprocess.run(["perf", "report", "-i", str(data), "--stdio", *args],
                               capture_output=True, text=True, timeout=300)
            return [l for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]
        by_dso = report("--no-children", "--sort", "dso", "-g", "none")
        by_sym = report("--no-children", "--sort", "dso,symbol", "-g", "none",
                        "--percent-limit", "0.7")
        syscalls = [l for l in report("--children", "--sort", "symbol", "-g", "none")
                    if re.search(r"\b(__GI___libc_write|__libc_sendmsg|__x64_sys_recvmmsg|"
                                 r"__x64_sys_sendto|__GI___getrandom|do_syscall_64)\b", l)]
        out = pathlib.Path(self.a.workdir) / "perf-awgproxy-down.txt"
        out.write_text("\n".join(by_dso + [""] + by_sym + [""] + syscalls) + "\n")
        log(f"perf profile of awgproxy client during a download: {out}")
        print("\nperf record -g -p <awgproxy client> during a download, 5 s; share by library:")
        print("\n".join(by_dso[:8]))
        print("including children (where the syscalls come from):")
        print("\n".join(syscalls))
        print("self time by symbol:")
        print("\n".join(by_sym[:25]))

    # ---- output -----------------------------------------------------------------------------

    def median(self, metric, path):
        v = self.results.get((metric, path))
        return statistics.median(v) if v else None

    def table(self):
        cols = [p for p in ("A", "A2", "B", "C", "W") if p in self.a.paths]
        rows = [
            ("down", f"download, 1 stream, {self.a.mb} MB (MB/s)", "{:.0f}", True),
            ("up", f"upload, 1 stream, {self.a.mb} MB (MB/s)", "{:.0f}", True),
            ("cps1", f"connections/s, sequential ({self.a.cps_seconds:g} s)", "{:.0f}", True),
            ("cps20", f"connections/s, 20 concurrent ({self.a.cps_seconds:g} s)", "{:.0f}", True),
            ("cps1_sustained", f"connections/s, sequential, 3rd back-to-back {self.a.cps_seconds:g} s "
             "run on one process (single measurement)", "{:.0f}", True),
            ("rss_idle", "proxy RSS idle, fresh process (MiB)", "{:.1f}", False),
            ("rss_1000", f"proxy RSS with {self.a.idle} streams (MiB)", "{:.1f}", False),
            ("rss_per_stream", "RSS per stream (KiB)", "{:.1f}", False),
            ("rss_after", f"proxy RSS 3 s after the {self.a.idle} closed (MiB)", "{:.1f}", False),
            ("down_cpu", "client-side proxy CPU per GB downloaded (s)", "{:.2f}", False),
            ("up_cpu", "client-side proxy CPU per GB uploaded (s)", "{:.2f}", False),
        ]
        head = ["metric (median of %d)" % self.a.reps] + [f"{p}: {PATHS[p]}" for p in cols]
        ratio_cols = []
        if "A" in cols and "B" in cols:
            ratio_cols.append(("A", "B", "A / B"))
        if "A" in cols and "C" in cols:
            ratio_cols.append(("A", "C", "A / C"))
        if "A2" in cols and "B" in cols and "A2" not in self.pending:
            ratio_cols.append(("A2", "B", "A2 / B"))
        head += [r[2] for r in ratio_cols]
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for metric, label, fmt, _ in rows:
            cells = [label]
            vals = {}
            for p in cols:
                v = self.median(metric, p)
                if v is not None and metric.startswith("rss") and metric != "rss_per_stream":
                    v = v / 1024
                vals[p] = v
                bad = self.failures.get((metric, p), [])
                if p in self.pending:
                    cells.append("pending")
                elif v is None:
                    cells.append(f"failed ({len(bad)} run(s), see below)" if bad else "—")
                else:
                    cells.append(fmt.format(v) + (f" ({len(bad)} failed run(s), see below)"
                                                  if bad else ""))
            if all(vals[p] is None for p in cols):
                continue
            for x, y, _ in ratio_cols:
                if vals.get(x) is None or not vals.get(y):
                    cells.append("—")
                else:
                    cells.append(f"{vals[x] / vals[y]:.2f}")
            out.append("| " + " | ".join(cells) + " |")
        return "\n".join(out)

    def close(self):
        self.lab.close()


def machine_notes():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    def ver(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except Exception:
            return "?"
    head = ver(["git", "-C", str(REPO), "log", "-1", "--format=%h %cs"])
    dirty = ver(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    return (f"tree {head}{' + uncommitted changes' if dirty not in ('', '?') else ''}; "
            f"{os.cpu_count()} CPUs ({cpu}), kernel {os.uname().release}; "
            f"{ver(['dpkg-query', '-W', '-f', '${Package} ${Version}', 'shadowsocks-libev'])}, "
            f"{ver(['dpkg-query', '-W', '-f', '${Package} ${Version}', 'wireguard-go'])}, "
            f"Python {sys.version.split()[0]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--binary", default=str(REPO / "build-bench" / "awgproxy"))
    ap.add_argument("--mb", type=int, default=1000, help="bulk transfer size in MB (10^6 bytes)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cps-seconds", type=float, default=10.0)
    ap.add_argument("--idle", type=int, default=1000, help="idle streams for the RSS figure")
    ap.add_argument("--paths", default="A,A2,B,C,W")
    ap.add_argument("--metrics", default="rss,cps,bulk")
    ap.add_argument("--perf", action="store_true",
                    help="also profile awgproxy client (path A) during a download")
    ap.add_argument("--workdir", default=None, help="keep logs here (default: a temp dir, removed)")
    ap.add_argument("--hold", type=float, default=0,
                    help="after setup, print the namespace names and keep the lab up this many "
                         "seconds (for probing by hand), then measure")
    a = ap.parse_args()
    a.paths = [p.strip() for p in a.paths.split(",") if p.strip()]
    metrics = set(m.strip() for m in a.metrics.split(","))
    own_workdir = a.workdir is None
    a.workdir = a.workdir or tempfile.mkdtemp(prefix="socks-bench-")
    pathlib.Path(a.workdir).mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        sys.exit("socks_bench: needs root (network namespaces)")
    # SIGTERM / SIGINT / SIGHUP unwind through the finally below, so the namespaces and every
    # process in them go away whichever way the run ends.
    def stop(signum, frame):
        raise SystemExit(f"socks_bench: stopped by signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    b = Bench(a)
    try:
        load0 = open("/proc/loadavg").read().split()[0]
        b.setup()
        if a.hold:
            pids = {p: h.pid for p, h in b.proc.items()}
            print(f"lab up: C={b.c.name} S={b.s.name} T={b.t.name} proxies={pids} "
                  f"target={T_IP}:{TARGET_PORT}", flush=True)
            time.sleep(a.hold)
        t0 = time.monotonic()
        if "rss" in metrics:
            for rep in range(1, a.reps + 1):
                b.run_rss(rep)
        if "cps" in metrics:
            for rep in range(1, a.reps + 1):
                b.run_cps(rep, 1)
                b.run_cps(rep, 20)
        if "cps" in metrics:
            b.run_sustained()
        if "bulk" in metrics:
            for rep in range(1, a.reps + 1):
                b.run_bulk(rep, "down")
                b.run_bulk(rep, "up")
        if a.perf:
            b.run_perf()
        print(f"\nsocks_bench: {machine_notes()}")
        load1 = open("/proc/loadavg").read().split()[0]
        print(f"awgproxy: {a.binary}; measured in {time.monotonic() - t0:.0f} s; 1-minute load "
              f"average {load0} before, {load1} after (other work on the machine shows here)\n")
        print(b.table())
        for p, why in b.pending.items():
            print(f"\n{p} ({PATHS[p]}): pending: {why}")
        for (m, p), whys in sorted(b.failures.items()):
            print(f"{m} over {p}: {len(whys)} run(s) failed: {'; '.join(whys)}")
        for n in b.notes:
            print(n)
        raw = {f"{m}/{p}": v for (m, p), v in b.results.items()}
        (pathlib.Path(a.workdir) / "results.json").write_text(json.dumps(raw, indent=1))
    finally:
        b.close()
        if own_workdir:
            shutil.rmtree(a.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
