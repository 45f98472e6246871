"""TCP inside TCP (issue 12, item 6): one download through awgproxy client -> awgproxy server
with the tunnel carried over UDP or over the TLS carrier, on a path that drops a share of the
packets between client and server, each way. Both carriers lose packets the same way: an
nftables rule in each namespace drops outgoing packets to the other at random (this machine
has no netem and the impairment relay is UDP-only), so the TLS carrier's TCP sees real losses
and recovers them itself. Each case is CARRIER-TRANSPORT-LOSS, e.g. tls-quic-2:
  CARRIER    udp | tls        ([Peer] Carrier; tls: [Server] TlsListen, UDP never used)
             tcp              the anchor: no tunnel, one kernel TCP connection from S to C over
                              the same lossy link, fed from memory (what the TLS carrier's own
                              TCP could carry there at most)
  TRANSPORT  quic | ip        ([Peer] Transport)
  LOSS       percent dropped each way (0, 0.5, 1, 2, 5 ...)

  sudo CASES=udp-quic-0,tls-quic-0,udp-quic-2,tls-quic-2 MB=500 \\
       /usr/bin/python3 -m pytest -q -s -p no:cacheprovider bench/tls_loss.py | grep RESULT

AWGPROXY_BIN selects the binary (default build/awgproxy). The target serves MB MiB of random
bytes with Python's http.server; curl downloads it through SOCKS5 in the client's namespace.
"""
import os
import pathlib
import re
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "integration"))

import pytest  # noqa: E402

import clientlab as cl  # noqa: E402
import netns  # noqa: E402
from test_quic_transport import build  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from transport_loss import download  # noqa: E402

TLS_PORT = 443
CASES = os.environ.get("CASES", "udp-quic-0,tls-quic-0,udp-quic-2,tls-quic-2").split(",")


def one_packet_per_skb(topo):
    """Loss must hit wire packets, not 64 KB TSO/GSO bursts (the nftables hook sees the socket's
    buffers before segmentation): the kernel's TCP makes one segment per buffer on a link whose
    gso_max_segs is 1, and awgproxy sends without UDP GSO (AWG_UDP_NO_GSO, set before start)."""
    for ns, ifname in ((topo.c, topo.cs.ifname_a), (topo.s, topo.cs.ifname_b)):
        ns.run(["ip", "link", "set", "dev", ifname, "gso_max_segs", "1"])


def drop_share(ns, dst, percent):
    """Drops `percent` % of the packets ns sends to dst, at random (nftables numgen)."""
    per_10k = int(round(percent * 100))
    ns.run(["nft", f"add table ip loss; add chain ip loss out {{ type filter hook output "
                   f"priority 0; }}; add rule ip loss out ip daddr {dst} numgen random mod 10000"
                   f" < {per_10k} counter drop"])


def dropped(ns):
    out = ns.run(["nft", "list table ip loss"], check=False).stdout
    m = re.search(r"packets (\d+)", out)
    return int(m.group(1)) if m else 0


def tcp_retransmits(ns):
    """The kernel's TCP retransmitted-segment count in ns (the TLS carrier's outer TCP)."""
    out = ns.run(["nstat", "-az", "TcpRetransSegs"], check=False).stdout
    m = re.search(r"TcpRetransSegs\s+(\d+)", out)
    return int(m.group(1)) if m else 0


SENDER = r"""
import socket, sys
total = int(sys.argv[2]) << 20
chunk = bytes(1 << 20)
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((sys.argv[1], 9000))
ls.listen(1)
print("listening", flush=True)
c, _ = ls.accept()
sent = 0
while sent < total:
    c.sendall(chunk)
    sent += len(chunk)
c.close()
"""


def raw_tcp(lab, topo, mb):
    """Seconds for mb MiB over one kernel TCP connection from S to C (ncat reads, counts)."""
    sender = netns.LoggedProcess(topo.s, [sys.executable, "-u", "-c", SENDER, cl.S_UNDERLAY,
                                          str(mb)], topo.s.file("sender.log"))
    lab.processes.append(sender)
    sender.wait_log(r"listening", timeout=10)
    t0 = time.monotonic()
    r = topo.c.run(["sh", "-c", f"ncat --recv-only {cl.S_UNDERLAY} 9000 | wc -c"], check=False,
                   timeout=300)
    took = time.monotonic() - t0
    assert r.returncode == 0 and int(r.stdout) == mb << 20, (r.stdout, r.stderr)
    return took


@pytest.mark.parametrize("case", CASES)
def test_download(tmp_path, case):
    carrier, transport, loss = case.split("-")
    mb = int(os.environ.get("MB", "500"))
    os.environ["AWG_UDP_NO_GSO"] = "1"  # inherited by client and server
    peer = f"TlsEndpoint = {cl.S_UNDERLAY}:{TLS_PORT}\nCarrier = {carrier}\n"
    with netns.open_lab(tmp_path, tools=("curl", "nft", "ncat")) as lab:
        topo = build(lab, transport=transport, log_level="info", server_log_level="info",
                     peer_extra=peer if carrier == "tls" else "",
                     # the anchor's client runs too (on UDP), unused
                     server_extra=(f"\n[Server]\nTlsListen = {cl.S_UNDERLAY}:{TLS_PORT}\n"
                                   if carrier == "tls" else ""))
        if transport == "quic":
            topo.wait_quic(timeout=30)
        one_packet_per_skb(topo)
        if float(loss) > 0:
            drop_share(topo.c, cl.S_UNDERLAY, float(loss))
            drop_share(topo.s, cl.C_UNDERLAY, float(loss))
        retrans0 = tcp_retransmits(topo.s)
        if carrier == "tcp":
            took = raw_tcp(lab, topo, mb)
        else:
            took = download(lab, topo, mb)
        print(f"\nRESULT {case}: {mb} MiB in {took:.1f} s = {mb / took:.2f} MiB/s; dropped "
              f"C->S {dropped(topo.c)}, S->C {dropped(topo.s)}; server TCP retransmits "
              f"{tcp_retransmits(topo.s) - retrans0}; server kernel TCP "
              f"{topo.s.run(['sysctl', '-n', 'net.ipv4.tcp_congestion_control']).stdout.strip()}")
