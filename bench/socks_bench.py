#!/usr/bin/env python3
"""The client's SOCKS benchmark (issue "Client", performance part): awgproxy client next to
shadowsocks-libev and a direct connection, all in one run, against the same target.

    C (client)  192.0.2.2     awgproxy client  SOCKS 127.0.0.1:1080  -> wireguard-go in S   (A)
                              awgproxy client  SOCKS 127.0.0.1:1082  -> awgproxy server in S (A2,
                                Transport = ip: lwIP TCP per stream through the tunnel)
                              awgproxy client  SOCKS 127.0.0.1:1083  -> awgproxy server in S (A3,
                                Transport = quic: one QUIC connection inside the tunnel)
                              with --impair also A2i (:1084) and A3i (:1085): the same, through
                                tests/impair/impair_relay in S (UDP 51822 / 51823 -> 51821)
                              ss-local         SOCKS 127.0.0.1:1081  -> ss-server in S       (B)
                              the load client (bench/socks_load.py); direct TCP to T       (C)
       | veth 192.0.2.0/24
    S (server)  192.0.2.1     wireguard-go on TUN 10.66.0.1/24, UDP 51820, IP forwarding
                              awgproxy server  10.67.0.1/24, UDP 51821 (its userspace exit), one
                                peer per A2/A3/A2i/A3i client; A2 and A3 set every AmneziaWG
                                obfuscation parameter (Jc/Jmin/Jmax, S1-S4, H1-H4 ranges, I1-I5),
                                A stays plain WireGuard (wireguard-go knows none of them)
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
  cps1c / cps20c  the same exchange from bench/cps_load (C, 1 or 20 threads) against the C
               echo (tests/echo/echo_server, port 5202 in T): Python's load client and target
               cost more CPU per connection than both proxies together, so with the machine
               saturated the Python rows dilute the proxies' difference; these rows do not
  cps20p       the same 20 threads spread over one load process per core (LOAD_PROCS): one
               Python process runs one thread at a time, and cps20 stops rising with the proxies
               once they need less CPU than the load client; cps20p, with the machine
               saturated, shows what each proxy's CPU per connection costs
  rss          the proxy's VmRSS idle, and with IDLE streams open (each proved end to end), opened
               in two halves: the second half's growth per stream leaves out what the proxy
               pays once (the tunnel's repair ring, pools)
Impaired mode (--impair 'loss=0.02,reorder=0.05[,delay_ms=5]'): each key is set on both
directions of a userspace UDP relay (docs/testing.md) between the A2i / A3i clients and the
awgproxy server; those two paths take part in down / up only (--impair-mb each), next to the clean
A2 / A3 of the same run. B (shadowsocks) cannot be impaired here: its ss-local <-> ss-server leg
is TCP, the relay is UDP-only, and kernel netem (sch_netem) is not available on this machine; the
output says so.
Usage: see socks_bench.sh, which builds, installs and then runs this with the arguments given.
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import time

import benchlab  # the lab set-up shared with server_bench.py
import socks_bench_report  # the results table and the perf summaries
from benchlab import S_IP, S_T_IP, T_IP, log, netns, rss_kb, sysctl

HERE = benchlab.HERE
REPO = benchlab.REPO
import impair  # noqa: E402  (tests/integration/impair.py, on sys.path through benchlab)

LOAD = HERE / "socks_load.py"
LOAD_PROCS = max(2, os.cpu_count() or 2)  # cps20p: one load process per core
TARGET_PORT = 5201
ECHO_PORT = 5202  # tests/echo/echo_server in T, the target of the C load rows (bench/cps_load.c)
WG_PORT, AWGS_PORT, SS_PORT = 51820, 51821, 8388
# the impairment relays in S, in front of AWGS_PORT (Wi: of WG_PORT)
RELAY_PORT = {"A2i": 51822, "A3i": 51823, "Wi": 51824}
SS_PASSWORD = "bench-only-password"
SS_METHOD = "chacha20-ietf-poly1305"

T_IP_W = "198.51.100.3"  # the same target, reached through wireguard-go in C (path W)
T_IP_WI = "198.51.100.4"  # and through a second wireguard-go in C behind the relay (path Wi)

PATHS = {
    "A": "awgproxy client -> wireguard-go",
    "A2": "awgproxy client -> awgproxy server, Transport = ip (lwIP)",
    "A3": "awgproxy client -> awgproxy server, Transport = quic",
    "A3q": "A3 with QuicProtection = quic (QUIC's own AES-GCM inside the tunnel, ALPN awgproxy/1)",
    "A3f": "A3 with [Socks] FastOpen = on (success answered at once, as ss-local does)",
    "A2s": "A2 over the TLS carrier (Carrier = tls: the tunnel's datagrams inside TLS over TCP)",
    "A3s": "A3 over the TLS carrier (Carrier = tls)",
    "A2i": "A2 through the impairment relay",
    "A3i": "A3 through the impairment relay",
    "B": "ss-local -> ss-server",
    "C": "direct TCP",
    "W": "kernel TCP over wireguard-go -> wireguard-go",
    "Wi": "W through the impairment relay (issue 10's anchor for the ip path)",
}
ORDER = ("A", "A2", "A3", "A3q", "A3f", "A2s", "A3s", "A2i", "A3i", "B", "C", "W", "Wi")
PROXY_ADDR = {"A": "127.0.0.1:1080", "A2": "127.0.0.1:1082", "A3": "127.0.0.1:1083",
              "A2i": "127.0.0.1:1084", "A3i": "127.0.0.1:1085", "A3q": "127.0.0.1:1086",
              "A2s": "127.0.0.1:1087", "A3s": "127.0.0.1:1088", "A3f": "127.0.0.1:1089",
              "B": "127.0.0.1:1081",
              "C": None, "W": None, "Wi": None}
TARGET_OF = {"W": T_IP_W, "Wi": T_IP_WI}
# The awgproxy-server paths: [Peer] Transport, the client's tunnel address, and the path whose
# clean run an impaired one is compared with.
AWG_SERVER_PATHS = {"A2": ("ip", "10.67.0.2"), "A3": ("quic", "10.67.0.3"),
                    "A2i": ("ip", "10.67.0.4"), "A3i": ("quic", "10.67.0.5"),
                    "A3q": ("quic", "10.67.0.6"), "A2s": ("ip", "10.67.0.7"),
                    "A3s": ("quic", "10.67.0.8"), "A3f": ("quic", "10.67.0.9")}
# The TLS-carried paths have a server of their own: [Server] TlsListen runs one worker, and the
# UDP paths' server keeps its default worker count.
TLS_PATHS = ("A2s", "A3s")
AWGS_TLS_UDP_PORT, AWGS_TLS_PORT = 51825, 8443
IMPAIRED = ("A2i", "A3i", "Wi")
CLEAN_OF = {"A2i": "A2", "A3i": "A3", "Wi": "W"}

# Every AmneziaWG obfuscation parameter, on both ends of A2 / A3 (the issue: "with every
# obfuscation parameter set"); the same kind of values as tests/integration/test_quic_transport.py.
# Jc/Jmin/Jmax and I1-I5 shape the client's handshake bursts, S1-S4 pad every message type
# (S4: every transport packet, so the inner MTU shrinks by 23), H1-H4 ranges draw a fresh type
# value per message.
OBFUSCATION = ("Jc = 4\nJmin = 40\nJmax = 70\nS1 = 15\nS2 = 18\nS3 = 20\nS4 = 23\n"
               "H1 = 100000-100500\nH2 = 200000-200500\nH3 = 300000-300500\n"
               "H4 = 400000-400500\nI1 = <b 0xc0ffee><r 8>\nI2 = <t><c>\nI3 = <rc 5><rd 4>\n"
               "I4 = <dz 3><d><ds>\nI5 = <b 0x01>\n")


def parse_impair(spec):
    """'loss=0.02,reorder=0.05,delay_ms=5' -> {"both.loss": "0.02", ...}: every key on both
    directions of the relay (keys as in impair_relay --help: loss, dup, reorder, reorder_ms,
    delay_ms, jitter_ms, rate, queue, mtu)."""
    out = {}
    for item in (x.strip() for x in spec.split(",") if x.strip()):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise SystemExit(f"socks_bench: --impair: expected KEY=VALUE, got {item!r}")
        key = key.strip()
        out[key if key.startswith(("up.", "down.", "both.")) else f"both.{key}"] = value.strip()
    return out


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
        c, s, t, self.st = benchlab.three_namespaces(lab)
        self.c, self.s, self.t = c, s, t
        sysctl(s, "net.ipv4.ip_forward=1")
        c.run(["ip", "route", "add", "198.51.100.0/24", "via", S_IP])
        t.run(["ip", "route", "add", "default", "via", S_T_IP])

        target = netns.LoggedProcess(t, [sys.executable, "-u", str(LOAD), "serve", "--listen",
                                         f"0.0.0.0:{TARGET_PORT}"], t.file("target.log"))
        target.kind = "target"
        target.wait_log(r"^ready$", timeout=10)
        self.target = target
        # The C load rows (cps*c): bench/cps_load against the C echo. Python's load client and
        # target cost more CPU per connection than both proxies together, which dilutes the
        # proxies' difference in the Python rows once the machine is saturated.
        self.echo = None
        if os.access(a.cps_load, os.X_OK) and os.access(a.echo_server, os.X_OK):
            self.echo = netns.LoggedProcess(t, [a.echo_server, "--port", str(ECHO_PORT)],
                                            t.file("echo.log"))
            self.echo.kind = "echo target"
            self.echo.wait_log(r"echo listening", timeout=10)
        else:
            self.notes.append(f"C load rows (cps1c, cps20c): not measured, {a.cps_load} or "
                              f"{a.echo_server} is missing (cmake --build ... --target cps_load "
                              "echo_server)")

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
        if "Wi" in a.paths:
            # Wi: W's set-up once more, its endpoint an impairment relay in S in front of the
            # same wireguard-go: the kernel's TCP (CUBIC, SACK, RACK) over the same bad path.
            self.relays = getattr(self, "relays", {})
            self.relays["Wi"] = impair.start(s, f"{S_IP}:{RELAY_PORT['Wi']}",
                                             f"{S_IP}:{WG_PORT}", settings=a.impair,
                                             seed=a.impair_seed, binary=a.impair_relay)
            wi_priv, wi_pub = netns.keypair()
            wg.set_peer(wi_pub, allowed_ips="10.66.0.4/32")
            t.run(["ip", "addr", "add", f"{T_IP_WI}/32", "dev", self.st.ifname_b])
            wgi = netns.wireguard_go(c, private_key=wi_priv, address="10.66.0.4/32",
                                     peers=[{"public_key": wg.public_key,
                                             "endpoint": f"{S_IP}:{RELAY_PORT['Wi']}",
                                             "allowed_ips": f"{T_IP_WI}/32",
                                             "persistent_keepalive": 25}],
                                     log_level="error")
            c.run(["ip", "route", "replace", f"{T_IP_WI}/32", "dev", wgi.ifname])
            self.cpu_pid["Wi"] = wgi.pid
            self.wi_pub = wi_pub
        conf_a = (f"[Interface]\nPrivateKey = {c_priv}\nAddress = 10.66.0.2/32\n\n"
                  f"[Peer]\nPublicKey = {wg.public_key}\nEndpoint = {S_IP}:{WG_PORT}\n"
                  f"AllowedIPs = 0.0.0.0/0\nPersistentKeepalive = 25\n\n"
                  f"[Socks]\nListen = {PROXY_ADDR['A']}\n")
        self.conf["A"] = conf_a
        self.wg = wg
        self.start_proxy("A")

        # A2 / A3 (and their impaired twins): awgproxy server in S as the exit.
        if any(p in AWG_SERVER_PATHS for p in a.paths):
            self.setup_awg_server()

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
        if "Wi" in a.paths:
            wg.wait_handshake(self.wi_pub, timeout=30)
        for p in list(a.paths):
            if p in self.pending:
                continue
            ok, why = self.probe(p)
            if ok and AWG_SERVER_PATHS.get(p, ("",))[0] == "ip" and \
                    re.search(r"component=quic event=connected", self.proc[p].log()):
                ok, why = False, "Transport = ip, yet the client connected over QUIC"
            if not ok:
                if p in AWG_SERVER_PATHS:
                    self.pending[p] = why
                    log(f"path {p} unavailable: {why}")
                else:
                    raise AssertionError(f"path {p} ({PATHS[p]}) does not work: {why}\n"
                                         f"{self.logs()}")

    def setup_awg_server(self):
        """The awgproxy servers in S: one for the UDP paths, one for the TLS paths."""
        udp = [p for p in AWG_SERVER_PATHS if p in self.a.paths and p not in TLS_PATHS]
        tls = [p for p in TLS_PATHS if p in self.a.paths]
        if udp:
            self.awg_server = self.setup_one_server(udp, AWGS_PORT, "awgserver")
        if tls:
            self.awg_server_tls = self.setup_one_server(tls, AWGS_TLS_UDP_PORT, "awgserver-tls")

    def setup_one_server(self, wanted, port, name):
        """One awgproxy server in S, one peer (own key, own tunnel address) per client path, so
        that all of them stay connected side by side."""
        a, s = self.a, self.s
        s_priv, s_pub = netns.keypair()
        keys = {p: netns.keypair() for p in wanted}
        tls = any(p in TLS_PATHS for p in wanted)
        conf_s = (f"[Interface]\nPrivateKey = {s_priv}\nListenPort = {port}\n"
                  f"Address = 10.67.0.1/24\n{OBFUSCATION}"
                  + (f"\n[Server]\nTlsListen = {S_IP}:{AWGS_TLS_PORT}\n" if tls else ""))
        for p in wanted:
            conf_s += (f"\n[Peer]\nPublicKey = {keys[p][1]}\n"
                       f"AllowedIPs = {AWG_SERVER_PATHS[p][1]}/32\n"
                       # The idle-stream figure opens 1000 connections (TCP over lwIP, or QUIC
                       # streams: both count) through one peer, above the server's default
                       # per-peer cap (MaxConnectionsPerPeer, 512).
                       f"MaxConnections = {max(4096, 2 * a.idle)}\n")
        for p in wanted:
            transport, address = AWG_SERVER_PATHS[p]
            endpoint = f"{S_IP}:{RELAY_PORT.get(p, port)}"
            self.conf[p] = (f"[Interface]\nPrivateKey = {keys[p][0]}\nAddress = {address}/32\n"
                            f"{OBFUSCATION}\n"
                            f"[Peer]\nPublicKey = {s_pub}\nEndpoint = {endpoint}\n"
                            f"AllowedIPs = 0.0.0.0/0\nPersistentKeepalive = 25\n"
                            f"Transport = {transport}\n"
                            + ("QuicProtection = quic\n" if p == "A3q" else "")
                            + (f"TlsEndpoint = {S_IP}:{AWGS_TLS_PORT}\nCarrier = tls\n"
                               if p in TLS_PATHS else "") + "\n"
                            f"[Socks]\nListen = {PROXY_ADDR[p]}\n"
                            + ("FastOpen = on\n" if p == "A3f" else ""))
        server = netns.awgproxy(s, "server", conf_s, binary=a.binary, log_level="info",
                                name=name)
        try:
            server.wait_log(r"event=started|listening", timeout=10)
        except AssertionError as e:
            for p in wanted:
                self.pending[p] = "awgproxy server did not start: " + str(e).splitlines()[0]
            return server
        self.relays = getattr(self, "relays", {})
        for p in wanted:
            if p in RELAY_PORT:
                # In S, next to the server: listen for the client, forward to the server; the
                # fixed seed makes the loss / reorder pattern the same from run to run.
                self.relays[p] = impair.start(s, f"{S_IP}:{RELAY_PORT[p]}",
                                              f"{S_IP}:{AWGS_PORT}", settings=a.impair,
                                              seed=a.impair_seed, binary=a.impair_relay)
            try:
                self.start_proxy(p)
            except AssertionError as e:
                self.pending[p] = "no tunnel to awgproxy server: " + str(e).splitlines()[0]
        return server

    def start_proxy(self, path):
        """(Re)starts the client-side proxy of a path and waits until it serves: a fresh process,
        so that memory figures do not carry what an earlier measurement left behind."""
        old = self.proc.pop(path, None)
        if old is not None:
            old.stop()
        self.starts += 1
        c = self.c
        if path == "A" or path in AWG_SERVER_PATHS:
            h = netns.awgproxy(c, "client", self.conf[path], binary=self.a.binary,
                               log_level="info", name=f"awgclient-{path.lower()}-{self.starts}")
            self.proc[path] = h
            h.wait_log(r"socks.*listening|listening.*socks", timeout=15)
            h.wait_log(r"handshake.*completed", timeout=15)
            if AWG_SERVER_PATHS.get(path, ("",))[0] == "quic":
                # What runs is asserted, not assumed: the QUIC connection is up before anything
                # is measured (Transport = quic would otherwise hold the first streams).
                h.wait_log(r"component=quic event=connected", timeout=20)
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
        for srv in (getattr(self, "awg_server", None), getattr(self, "awg_server_tls", None)):
            if srv:
                parts.append(srv.log_tail(15))
        return "\n".join(parts)

    # ---- running the client in C ------------------------------------------------------------

    def client(self, path, mode, *args, timeout=600, check=True):
        """socks_load.py MODE through PATH's proxy to the Python target in T; its JSON line."""
        argv = [sys.executable, str(LOAD), mode, "--target",
                f"{TARGET_OF.get(path, T_IP)}:{TARGET_PORT}", *args]
        return self.run_load(path, f"load client ({path} {mode})", argv, timeout, check)

    def c_client(self, path, *args, timeout=600):
        """bench/cps_load through PATH's proxy to the C echo in T; its JSON line."""
        argv = [self.a.cps_load, "--target", f"{TARGET_OF.get(path, T_IP)}:{ECHO_PORT}", *args]
        return self.run_load(path, f"cps_load ({path})", argv, timeout, True)

    def run_load(self, path, what, argv, timeout, check):
        """Runs a load tool in C, through PATH's proxy if it has one; the last line of its output
        as JSON, or None when it failed and check is off."""
        if PROXY_ADDR[path]:
            argv = argv + ["--proxy", PROXY_ADDR[path]]
        r = self.c.run(argv, check=False, timeout=timeout)
        if r.returncode != 0:
            if check:
                raise AssertionError(f"{what} failed: {r.stderr.strip()}\n{self.logs()}")
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

            def opened():
                """The idle client's report once a half is open (then it waits for a line)."""
                line = p.stdout.readline()
                if not line:
                    p.kill()
                    raise AssertionError(f"idle client ({path}) failed: {p.stderr.read()}\n"
                                         f"{self.logs()}")
                return json.loads(line)

            half = opened()
            time.sleep(1.0)  # let the proxy settle (deferred frees, timers)
            at_half = rss_kb(pid)
            p.stdin.write("\n")
            p.stdin.flush()
            info = opened()
            time.sleep(1.0)
            during = rss_kb(pid)
            p.stdin.write("\n")
            p.stdin.flush()
            p.communicate(timeout=120)
            time.sleep(3.0)  # the closes drain
            after = rss_kb(pid)
            self.add("rss_idle", path, before)
            self.add("rss_1000", path, during)
            self.add("rss_per_stream", path, (during - before) / info["open"])
            second = info["open"] - half["open"]
            self.add("rss_per_stream2", path, (during - at_half) / max(second, 1))
            self.add("rss_after", path, after)
            log(f"rep {rep} rss {path}: fresh {before} kB idle, {at_half} kB with {half['open']} "
                f"streams, {during} kB with {info['open']} (opened in "
                f"{info['setup_seconds']:.2f} s), {after} kB after they closed")

    def run_cps(self, rep, conc, procs=1, c_load=False):
        """c_load: bench/cps_load (C, conc threads) against the C echo instead of socks_load.py
        against the Python target; the rows cps1c / cps20c."""
        metric = f"cps{conc}" + ("p" if procs > 1 else "") + ("c" if c_load else "")
        if c_load and not self.echo:
            return
        for path in self.active():
            if path in self.proc:
                # A fresh proxy per run, so every run starts from the same state (TIME_WAIT PCBs
                # of the previous run, 4 s in lwIP as configured; the sustained figure, three
                # runs back to back on one process, is its own row).
                self.start_proxy(path)
            cpids = [self.proc[path].pid] if path in self.proc else (
                [self.cpu_pid[path]] if self.cpu_pid.get(path) else [])
            spids = self.server_pids(path)
            before = [(self.cpu_seconds(p), self.wakeups(p)) for p in (cpids, spids)]
            if c_load:
                r = self.c_client(path, "--seconds", str(self.a.cps_seconds), "--threads",
                                  str(conc), timeout=self.a.cps_seconds * 10 + 60)
            else:
                r = self.client(path, "cps", "--seconds", str(self.a.cps_seconds),
                                "--concurrency", str(conc), "--procs", str(procs),
                                timeout=self.a.cps_seconds * 10 + 60)
            self.add(metric, path, r["per_s"], r)
            if conc == 1 or procs > 1 or c_load:
                # What one connection costs each side: CPU, and (sequential) how often its
                # threads slept and were woken (each datagram that arrives alone is one).
                for side, pids, (cpu0, wake0) in zip(("c", "s"), (cpids, spids), before):
                    if pids and r["connections"]:
                        n = r["connections"]
                        self.add(f"{metric}_{side}cpu", path,
                                 (self.cpu_seconds(pids) - cpu0) / n * 1e6)
                        if conc == 1:
                            self.add(f"{metric}_{side}wake", path,
                                     (self.wakeups(pids) - wake0) / n)
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

    def server_pids(self, path):
        """The processes serving PATH in S (an awgproxy server with its workers, or ss-server),
        for the server-side CPU figure; empty where there is no such process of ours."""
        if path == "B":
            roots = [self.ssd.pid]
        elif path in AWG_SERVER_PATHS:
            h = getattr(self, "awg_server_tls" if path in TLS_PATHS else "awg_server", None)
            roots = [h.pid] if h else []
        else:
            return []
        pids = []
        while roots:
            pid = roots.pop()
            pids.append(pid)
            for task in pathlib.Path(f"/proc/{pid}/task").glob("*/children"):
                try:
                    roots.extend(int(c) for c in task.read_text().split())
                except OSError:
                    pass
        return pids

    @staticmethod
    def wakeups(pids):
        """Voluntary context switches of the processes' threads: how often they slept and were
        woken (exited ones count as 0)."""
        total = 0
        for pid in pids:
            for st in pathlib.Path(f"/proc/{pid}/task").glob("*/status"):
                try:
                    for line in st.read_text().splitlines():
                        if line.startswith("voluntary_ctxt_switches:"):
                            total += int(line.split()[1])
                except (OSError, ValueError):
                    pass
        return total

    @staticmethod
    def cpu_seconds(pids):
        """utime + stime of the processes (exited ones count as 0)."""
        total = 0
        for pid in pids:
            try:
                f = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(f[11]) + int(f[12])
            except (OSError, IndexError, ValueError):
                pass
        return total / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def minor_faults(pids):
        """Minor page faults of the processes so far (exited ones count as 0)."""
        total = 0
        for pid in pids:
            try:
                total += int(pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1]
                             .split()[7])
            except (OSError, IndexError, ValueError):
                pass
        return total

    def run_bulk(self, rep, mode):
        for path in self.active(with_impaired=True):
            pid = self.proc[path].pid if path in self.proc else self.cpu_pid.get(path, 0)
            size = (self.a.impair_mb if path in IMPAIRED else self.a.mb) * 1000000
            if path in IMPAIRED:
                st0 = self.relays[path].stats()
            spids = self.server_pids(path)
            scpu0 = self.cpu_seconds(spids)
            cflt0, sflt0 = self.minor_faults([pid]), self.minor_faults(spids)
            r = self.client(path, mode, "--bytes", str(size), "--watch-pid", str(pid),
                            timeout=3600)
            scpu = self.cpu_seconds(spids) - scpu0
            cflt, sflt = self.minor_faults([pid]) - cflt0, self.minor_faults(spids) - sflt0
            if path in IMPAIRED:
                self.log_relay(rep, mode, path, st0, self.relays[path].stats())
            if not r["complete"]:
                # Recorded, not fatal: the table marks the cell, the log says what arrived.
                what = (f"{r['bytes']} of {size} bytes "
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
            if spids:
                self.add(f"{mode}_scpu", path, scpu / (r["bytes"] / 1e9))
            # Page faults in steady state mean memory handed back to the kernel and taken again
            # (a 64 KB buffer per read whose free trimmed the heap cost 9 % of a client once).
            if pid:
                self.add(f"{mode}_cflt", path, cflt / (r["bytes"] / 1e9))
            if spids:
                self.add(f"{mode}_sflt", path, sflt / (r["bytes"] / 1e9))
            log(f"rep {rep} {mode} {path}: {r['MBps']:.1f} MB/s in {r['seconds']:.2f} s"
                + (f", client-side proxy CPU {cpu:.2f} s" if cpu is not None else ""))
            time.sleep(1.0)

    def log_relay(self, rep, mode, path, st0, st1):
        """What the relay did to this transfer (counter deltas), in the log and results.json."""
        def d(direction, key):
            return st1[direction][key] - st0[direction][key]
        parts = []
        for direction in ("up", "down"):
            got = d(direction, "received")
            if got:
                parts.append(f"{direction} {got} datagrams, {d(direction, 'dropped_loss')} lost "
                             f"({d(direction, 'dropped_loss') / got:.1%}), "
                             f"{d(direction, 'reordered')} reordered, "
                             f"{d(direction, 'dropped') - d(direction, 'dropped_loss')} other "
                             f"drops")
        self.add(f"{mode}_relay_loss", path, d("down" if mode == "down" else "up",
                                                "dropped_loss"))
        log(f"rep {rep} {mode} {path}: relay: " + "; ".join(parts))

    def active(self, proxied_only=False, with_impaired=False):
        """The paths a measurement runs on: not pending; the impaired ones only for down / up
        (with_impaired)."""
        out = [p for p in self.a.paths if p not in self.pending
               and (with_impaired or p not in IMPAIRED)]
        return [p for p in out if p in self.proc] if proxied_only else out

    def run_perf(self, path, direction):
        """perf record on the proxy client of PATH (awgproxy, or ss-local for B) during one
        bulk transfer sized to outlast the 5 s recording (--perf-mb), or ("cps") during 8 s of
        sequential connections."""
        if not shutil.which("perf"):
            self.notes.append("perf not installed: no profile")
            return
        pid = self.proc[path].pid
        name = "ss-local" if path == "B" else "awgproxy"
        stem = f"perf-{name}-{path}-{direction}"
        data = pathlib.Path(self.a.workdir) / f"{stem}.data"
        if direction == "cps":  # sequential connections, sized to outlast the recording
            size = ["--seconds", "8"]
        else:
            size = ["--bytes", str(self.a.perf_mb * 1000000)]
        argv = self.c.argv([sys.executable, str(LOAD), direction, "--target",
                            f"{T_IP}:{TARGET_PORT}", "--proxy", PROXY_ADDR[path], *size])
        load = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        subprocess.run(["perf", "record", "-g", "-o", str(data), "-p", str(pid), "--", "sleep",
                        "5"], capture_output=True, timeout=60)
        still_running = load.poll() is None
        load.wait(timeout=1800)
        if not still_running:
            self.notes.append(f"perf {path} {direction}: the transfer ended within the 5 s "
                              "recording; raise --perf-mb")
        what = "sequential connections" if direction == "cps" else f"a {direction}load"
        socks_bench_report.perf_summary(data, pathlib.Path(self.a.workdir) / f"{stem}.txt",
                                        name, path, what)

    # ---- output -----------------------------------------------------------------------------

    def median(self, metric, path):
        v = self.results.get((metric, path))
        return statistics.median(v) if v else None

    def table(self):
        return socks_bench_report.table(self, PATHS, ORDER, IMPAIRED, LOAD_PROCS)

    def close(self):
        self.lab.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--binary", default=str(REPO / "build-bench" / "awgproxy"))
    ap.add_argument("--mb", type=int, default=1000, help="bulk transfer size in MB (10^6 bytes)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cps-seconds", type=float, default=10.0)
    ap.add_argument("--idle", type=int, default=1000, help="idle streams for the RSS figure")
    ap.add_argument("--paths", default="A,A2,A3,B,C,W",
                    help="subset of " + ",".join(ORDER) + " (A2i/A3i/Wi need --impair, which "
                         "adds them next to A2/A3/W)")
    ap.add_argument("--metrics", default="rss,cps,bulk")
    ap.add_argument("--impair", default=None, metavar="KEY=V,...",
                    help="also measure A2 / A3 through the impairment relay (paths A2i / A3i), "
                         "e.g. 'loss=0.02,reorder=0.05,delay_ms=5': each key on both directions "
                         "(or up.KEY / down.KEY), keys as in impair_relay --help")
    ap.add_argument("--impair-mb", type=int, default=None,
                    help="bulk size for the impaired paths (default: --mb, at most 50: A2 under 2 %% "
                         "loss moves well under 1 MB/s on a shared 2-core machine)")
    ap.add_argument("--impair-seed", type=int, default=1, help="the relay's random seed")
    ap.add_argument("--impair-relay", default=None,
                    help="impair_relay binary (default: tests/impair_relay next to --binary)")
    ap.add_argument("--cps-load", default=None,
                    help="bench/cps_load binary for the C load rows (default: bench/cps_load "
                         "next to --binary)")
    ap.add_argument("--echo-server", default=None,
                    help="the C echo target (default: tests/echo_server next to --binary)")
    ap.add_argument("--perf", action="store_true",
                    help="also profile the proxy client of each path that runs (awgproxy, or "
                         "ss-local for B) during a download and an upload")
    ap.add_argument("--perf-mb", type=int, default=3000,
                    help="bulk size of each profiled transfer: it must outlast the 5 s recording "
                         "that starts 1 s in (default 3000)")
    ap.add_argument("--workdir", default=None, help="keep logs here (default: a temp dir, removed)")
    ap.add_argument("--hold", type=float, default=0,
                    help="after setup, print the namespace names and keep the lab up this many "
                         "seconds (for probing by hand), then measure")
    a = ap.parse_args()
    a.paths = [p.strip() for p in a.paths.split(",") if p.strip()]
    unknown = [p for p in a.paths if p not in PATHS]
    if unknown:
        sys.exit(f"socks_bench: unknown path(s) {unknown}; known: {','.join(ORDER)}")
    build_dir = pathlib.Path(a.binary).parent
    a.cps_load = a.cps_load or str(build_dir / "bench" / "cps_load")
    a.echo_server = a.echo_server or str(build_dir / "tests" / "echo_server")
    notes = []
    if a.impair:
        a.impair = parse_impair(a.impair)
        for p in IMPAIRED:
            if CLEAN_OF[p] in a.paths and p not in a.paths:
                a.paths.append(p)
        a.impair_mb = a.impair_mb or min(a.mb, 50)
        a.impair_relay = a.impair_relay or str(pathlib.Path(a.binary).parent / "tests" /
                                               "impair_relay")
        spec = ", ".join(f"{k}={v}" for k, v in a.impair.items())
        for p in IMPAIRED:
            PATHS[p] += f" ({spec})"
        if "B" in a.paths:
            notes.append("B under impairment: not measured. ss-local <-> ss-server is TCP and "
                         "the impairment relay is UDP-only; impairing it would need kernel netem "
                         "(sch_netem), which this machine lacks.")
    elif any(p in IMPAIRED for p in a.paths):
        sys.exit("socks_bench: A2i / A3i / Wi need --impair")
    a.paths = [p for p in ORDER if p in a.paths]
    metrics = set(m.strip() for m in a.metrics.split(","))

    def body(b):
        load0 = benchlab.loadavg()
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
                b.run_cps(rep, 20, LOAD_PROCS)
                b.run_cps(rep, 1, c_load=True)
                b.run_cps(rep, 20, c_load=True)
        if "cps" in metrics:
            b.run_sustained()
        if "bulk" in metrics:
            for rep in range(1, a.reps + 1):
                b.run_bulk(rep, "down")
                b.run_bulk(rep, "up")
        if a.perf:
            for path in a.paths:  # the paths asked for (the lab may run more, e.g. A for W)
                if path in b.proc:
                    if "bulk" in metrics:
                        b.run_perf(path, "down")
                        b.run_perf(path, "up")
                    if "cps" in metrics:
                        b.run_perf(path, "cps")
        notes = benchlab.machine_notes(["shadowsocks-libev", "wireguard-go"])
        print(f"\nsocks_bench: {notes}")
        print(f"awgproxy: {a.binary}; measured in {time.monotonic() - t0:.0f} s; 1-minute load "
              f"average {load0} before, {benchlab.loadavg()} after (other work on the machine "
              f"shows here)\n")
        print(b.table())
        for p, why in b.pending.items():
            print(f"\n{p} ({PATHS[p]}): pending: {why}")
        for (m, p), whys in sorted(b.failures.items()):
            print(f"{m} over {p}: {len(whys)} run(s) failed: {'; '.join(whys)}")
        for n in b.notes:
            print(n)
        raw = {f"{m}/{p}": v for (m, p), v in b.results.items()}
        (pathlib.Path(a.workdir) / "results.json").write_text(json.dumps(raw, indent=1))

    def make(a):
        b = Bench(a)
        b.notes.extend(notes)
        return b

    benchlab.run_main("socks_bench", a, make, body)


if __name__ == "__main__":
    main()
