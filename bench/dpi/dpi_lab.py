#!/usr/bin/env python3
"""Captures for the DPI evaluation (docs/dpi.md), in the three-namespace lab of
tests/integration/clientlab.py: C (awgproxy client, SOCKS) -- S (server) -- T (target, reachable
only through the tunnel). tcpdump runs in C on the C-S link; every UDP datagram to or from the
server port is kept.

Modes (MODES): plain WireGuard (our client without obfuscation against Debian's wireguard-go, or
against our server with `init-server --profile wireguard`), AmneziaWG 2.0 and 3.x as
`awgproxy init-server --profile awg2|awg3` draws them (the client gets the same lines, as
add-peer copies them), each with Transport = ip or quic.

    sudo python3 bench/dpi/dpi_lab.py OUTDIR [--modes wireguard,awg2,...] [--browse 50 --browse-seconds 60]
                                              [--bulk-mb 10] [--idle 60] [--sessions N]

writes per mode OUTDIR/MODE.pcap + MODE.meta.json (scenario: browsing, bulk download, idle) and,
with --sessions N, OUTDIR/MODE.sessions.pcap + meta (N short client runs, one UDP flow each, for
nDPI's accidental labels). Used by bench/dpi/run.sh and tests/integration/test_dpi.py.
"""
import argparse
import json
import os
import pathlib
import random
import re
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests" / "integration"))
sys.path.insert(0, str(HERE))
import clientlab as cl  # noqa: E402
import netns  # noqa: E402
from dpi_analyze import OBFS_KEYS, Params  # noqa: E402

# Not 51820: nDPI labels anything on 51820 WireGuard by port alone.
PORT = 39117
BULK_PORT = 8080
# server kind, init-server profile (None: no obfuscation lines at all), client Transport
MODES = {
    "wireguard": ("wireguard-go", None, None),
    "wireguard-ours": ("awgproxy", "wireguard", "ip"),
    "awg2": ("awgproxy", "awg2", "ip"),
    "awg2-quic": ("awgproxy", "awg2", "quic"),
    "awg3": ("awgproxy", "awg3", "ip"),
    "awg3-quic": ("awgproxy", "awg3", "quic"),
}
# Variants for the label study: the profile's draw without I-packets (I1 imitates a protocol on
# purpose; without it the first datagram is a junk packet or the S1 prefix).
NO_I = "-noI"


def draw(profile, binary=None, drop_i=False):
    """The obfuscation lines `awgproxy init-server --profile PROFILE` writes, and what I1 imitates
    (AWG_DPI_DRAW_BIN: another binary draws them, for builds older than init-server).
    Returns (lines for both [Interface] sections, Params, imitates)."""
    binary = binary or os.environ.get("AWG_DPI_DRAW_BIN") or netns.awgproxy_binary()
    with tempfile.TemporaryDirectory() as d:
        conf = pathlib.Path(d) / "s.conf"
        subprocess.run([str(binary), "init-server", "-o", str(conf), "--port", str(PORT),
                        "--subnet", "10.66.0.0/24", "--subnet6", "off", "--control", "off",
                        "--endpoint", cl.S_UNDERLAY, "--profile", profile],
                       check=True, capture_output=True, text=True)
        text = conf.read_text()
    lines, imitates = [], None
    m = re.search(r"^# I1 imitates (.+?)\.?$", text, re.M)
    if m:
        imitates = m.group(1)
    for line in text.split("[Server]")[0].splitlines():
        k = line.split("=", 1)[0].strip()
        if k in OBFS_KEYS and not (drop_i and re.fullmatch(r"I[1-5]", k)):
            lines.append(line.strip())
    if drop_i:
        imitates = None
    obf = "".join(f"{x}\n" for x in lines)
    return obf, Params.from_conf("[Interface]\n" + obf), imitates


class DpiTopology(cl.Topology):
    """clientlab's topology on PORT, with obfuscation lines on both ends and the client's
    Transport."""

    obf = ""
    transport = None
    port = PORT

    def server_conf(self):
        text = super().server_conf().replace(f"ListenPort = {cl.WG_PORT}",
                                             f"ListenPort = {self.port}", 1)
        return text.replace("Address = ", self.obf + "Address = ", 1)

    def client_conf(self, socks=None, extra_interface=""):
        text = super().client_conf(socks, extra_interface + self.obf)
        text = text.replace(f"Endpoint = {cl.S_UNDERLAY}:{cl.WG_PORT}",
                            f"Endpoint = {cl.S_UNDERLAY}:{self.port}", 1)
        if self.transport:
            text = text.replace("PersistentKeepalive = 25\n",
                                f"PersistentKeepalive = 25\nTransport = {self.transport}\n", 1)
        return text

    def start_wg(self):
        allowed = [f"{cl.C_TUNNEL}/32"]
        self.wg = self.lab.wireguard_go(
            self.s, private_key=self.wg_priv, listen_port=self.port,
            address=[f"{cl.S_TUNNEL}/24", f"{cl.S_TUNNEL6}/64"],
            peers=[{"public_key": self.c_pub, "allowed_ips": allowed}])
        return self.wg


def build(lab, mode, drop_i=False, log_level="info"):
    """The lab for one mode, the client not started yet. Returns the topology; topo.params,
    topo.imitates, topo.mode tell what was drawn."""
    server, profile, transport = MODES[mode]
    if profile:
        obf, params, imitates = draw(profile, drop_i=drop_i)
    else:
        obf, params, imitates = "", Params(), None

    def make(lab_, server):
        t = DpiTopology(lab_, server=server)
        t.obf, t.transport = obf, transport
        t.server_log_level = log_level
        return t

    socks = cl.socks_section(connect_timeout=10, tunnel_wait=10)
    topo = cl.build_topology(lab, socks=socks, server=server, log_level=log_level, topology=make,
                             start_client=False)
    # awgproxy sends with UDP GSO; on a veth tcpdump would see the unsegmented 64 KB datagram,
    # which no wire carries (a NIC segments). One segment per packet makes the kernel segment
    # before the tap, so the capture holds what a wire would.
    topo.c.run(["ip", "link", "set", topo.cs.ifname_a, "gso_max_segs", "1"])
    topo.s.run(["ip", "link", "set", topo.cs.ifname_b, "gso_max_segs", "1"])
    topo.socks, topo.params, topo.imitates = socks, params, imitates
    topo.mode = mode + (NO_I if drop_i else "")
    return topo


def start_client(topo, log_level="info"):
    topo.start_client(socks=topo.socks, log_level=log_level)
    if topo.transport == "quic":
        topo.proxy.wait_log(r"component=quic event=connected", timeout=15)


def capture(topo, path):
    return netns.tcpdump(topo.c, topo.cs.ifname_a, filter=f"udp and port {topo.port}", path=path)


def fetch(topo, i):
    """One browsing-like request: by name (the server resolves it) or by address."""
    url = f"http://{cl.TARGET_NAME}/" if i % 2 else f"http://{cl.T_HTTP}/"
    r = topo.curl(url, "--socks5-hostname", f"127.0.0.1:{cl.SOCKS_PORT}")
    assert r.returncode == 0 and r.stdout.encode() == cl.HTTP_BODY, (r.stderr, topo.logs())


def initiations_logged(proxy):
    return len(re.findall(r"component=handshake event=initiation_sent", proxy.log()))


def start_bulk_server(topo, mb):
    d = topo.t.file("bulk")
    d.mkdir(exist_ok=True)
    (d / "bulk.bin").write_bytes(os.urandom(mb << 20))
    p = netns.LoggedProcess(topo.t, [sys.executable, "-u", "-m", "http.server", str(BULK_PORT),
                                     "--bind", cl.T_HTTP, "--directory", str(d)],
                            topo.t.file("bulk_http.log"))
    topo.lab.processes.append(p)
    netns.wait_until(lambda: topo.s.run(["curl", "-sS", "-o", "/dev/null", "--max-time", "2",
                                         f"http://{cl.T_HTTP}:{BULK_PORT}/"],
                                        check=False).returncode == 0, 10, what="bulk server")
    return p


def scenario(topo, outdir, browse=50, browse_s=60.0, bulk_mb=10, idle_s=60.0, seed=1):
    """Client start (handshake) -> `browse` SOCKS connections at random times over browse_s
    seconds -> a bulk download of bulk_mb MiB -> idle_s seconds of silence (keepalives).
    Writes MODE.pcap and MODE.meta.json in outdir; returns the meta dict."""
    outdir = pathlib.Path(outdir)
    if bulk_mb:
        start_bulk_server(topo, bulk_mb)
    pcap_path = outdir / f"{topo.mode}.pcap"
    cap = capture(topo, pcap_path)
    phases = {"start": time.time()}
    start_client(topo)
    phases["browse"] = time.time()
    rnd = random.Random(seed)
    at = sorted(rnd.uniform(0, browse_s) for _ in range(browse))
    t0 = time.monotonic()
    for i, t in enumerate(at):
        time.sleep(max(0.0, t0 + t - time.monotonic()))
        fetch(topo, i)
    time.sleep(max(0.0, t0 + browse_s - time.monotonic()))
    phases["bulk"] = time.time()
    if bulk_mb:
        r = topo.curl(f"http://{cl.T_HTTP}:{BULK_PORT}/bulk.bin", "--socks5-hostname",
                      f"127.0.0.1:{cl.SOCKS_PORT}", "-o", "/dev/null", "-w", "%{size_download}",
                      timeout=180, max_time=170)
        assert r.returncode == 0 and int(r.stdout) == bulk_mb << 20, (r.stderr, topo.logs())
    phases["idle"] = time.time()
    time.sleep(idle_s)
    phases["end"] = time.time()
    cap.stop()
    meta = {"kind": "scenario", "mode": topo.mode, "pcap": pcap_path.name,
            "server": topo.server_kind, "transport": topo.transport, "server_port": topo.port,
            "params": topo.params.to_json(), "imitates": topo.imitates,
            "browse": browse, "browse_s": browse_s, "bulk_mb": bulk_mb, "idle_s": idle_s,
            "phases": phases, "client_initiations_logged": initiations_logged(topo.proxy),
            "binary": str(netns.awgproxy_binary())}
    (outdir / f"{topo.mode}.meta.json").write_text(json.dumps(meta, indent=1))
    return meta


def sessions(topo, outdir, n=100, build_label="HEAD", draw_no=0):
    """n short client runs (start, handshake, one request, stop), each its own UDP flow. Files:
    MODE[@BUILD].dN.sessions.pcap and .meta.json (one per parameter draw N)."""
    outdir = pathlib.Path(outdir)
    name = topo.mode + ("" if build_label == "HEAD" else f"@{build_label}")
    stem = f"{name}.d{draw_no}.sessions"
    pcap_path = outdir / f"{stem}.pcap"
    cap = capture(topo, pcap_path)
    for i in range(n):
        topo.start_client(socks=topo.socks, log_level="info", wait_tunnel=False)
        topo.proxy.wait_handshake(timeout=15)
        fetch(topo, i)
        topo.proxy.stop()
        topo.lab.processes.remove(topo.proxy)
    cap.stop()
    meta = {"kind": "sessions", "mode": name, "draw": draw_no, "pcap": pcap_path.name,
            "sessions": n, "server_port": topo.port, "params": topo.params.to_json(),
            "imitates": topo.imitates, "build": build_label,
            "binary": str(netns.awgproxy_binary())}
    (outdir / f"{stem}.meta.json").write_text(json.dumps(meta, indent=1))
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--modes", default="wireguard,wireguard-ours,awg2,awg2-quic,awg3,awg3-quic")
    ap.add_argument("--browse", type=int, default=50)
    ap.add_argument("--browse-seconds", type=float, default=60.0)
    ap.add_argument("--bulk-mb", type=int, default=10)
    ap.add_argument("--idle", type=float, default=60.0)
    ap.add_argument("--sessions", type=int, default=0,
                    help="also N short sessions per parameter draw and mode (label study)")
    ap.add_argument("--draws", type=int, default=5,
                    help="parameter draws per mode in the label study")
    ap.add_argument("--session-modes", default="awg2,awg2-noI,awg3,awg3-noI")
    ap.add_argument("--build-label", default="HEAD",
                    help="the name of the build under test in the label table")
    ap.add_argument("--no-scenario", action="store_true")
    args = ap.parse_args()
    netns.require_netns("tcpdump", "curl", "wireguard-go", "wg")
    outdir = pathlib.Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    if not args.no_scenario:
        for mode in args.modes.split(","):
            work = pathlib.Path(tempfile.mkdtemp(prefix=f"dpi-{mode}-"))
            with contextlib_lab(work) as lab:
                topo = build(lab, mode)
                t = time.monotonic()
                meta = scenario(topo, outdir, args.browse, args.browse_seconds, args.bulk_mb,
                                args.idle)
                print(f"{mode}: {time.monotonic() - t:.0f} s, client initiations logged "
                      f"{meta['client_initiations_logged']}", flush=True)
    if args.sessions:
        for mode in args.session_modes.split(","):
            base, drop_i = (mode[:-len(NO_I)], True) if mode.endswith(NO_I) else (mode, False)
            t = time.monotonic()
            for d in range(args.draws):
                work = pathlib.Path(tempfile.mkdtemp(prefix=f"dpi-{mode}-"))
                with contextlib_lab(work) as lab:
                    topo = build(lab, base, drop_i=drop_i)
                    sessions(topo, outdir, args.sessions, args.build_label, d)
            print(f"{mode}: {args.draws} x {args.sessions} sessions, "
                  f"{time.monotonic() - t:.0f} s", flush=True)


def contextlib_lab(work):
    import contextlib

    @contextlib.contextmanager
    def _lab():
        lab = netns.Lab(work)
        try:
            yield lab
        finally:
            lab.close()
    return _lab()


if __name__ == "__main__":
    main()
