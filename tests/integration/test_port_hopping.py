"""Port hopping against UDP throttling (issue 14 item 3): the server listens on extra ports
(`[Server] ExtraPorts`), the client moves its destination among them at random times
(`[Peer] EndpointPorts`, `HopInterval`) and the session goes on.

- A 100 MB echo through the tunnel, paced over ~10 s with a hop every second, arrives intact
  (hash both ways), with one worker and with two (`Threads = 2`: extra ports are shared by the
  workers, datagrams that land on the wrong one are handed to the owner);
- the capture on the client's link shows the destination port changing at least 5 times, every
  port one of EndpointPorts, and the server answering from the port the client last used;
- no new handshake was needed for the moves (one session throughout), and the client counted
  its hops in awgproxy_endpoint_hops_total.
"""
import hashlib
import re
import threading
import time

import pytest

import clientlab as cl
import netns
from clientlab import ECHO_PORT, T_HTTP, socks5
from test_quic_transport import OBFUSCATION

EXTRA = range(40000, 40020)
TOTAL = 100 << 20
SECONDS = 10.0  # the transfer is paced to last this long
METRICS = "127.0.0.1:9430"  # on C


@pytest.fixture
def lab(tmp_path):
    with netns.open_lab(tmp_path, tools=("curl", "tcpdump")) as lab:
        yield lab


class HopTopology(cl.Topology):
    threads = 1

    def server_conf(self):
        text = super().server_conf().replace("Address =", f"{OBFUSCATION}Address =", 1)
        return text.replace(
            "[Socks]\n", f"[Server]\nExtraPorts = {EXTRA.start}-{EXTRA.stop - 1}\n"
                         f"Threads = {self.threads}\n\n[Socks]\n", 1)

    def client_conf(self, socks=None, extra_interface=""):
        text = super().client_conf(socks, extra_interface + OBFUSCATION)
        text = text.replace("PersistentKeepalive = 25\n",
                            f"PersistentKeepalive = 25\nEndpointPorts = {cl.WG_PORT}, "
                            f"{EXTRA.start}-{EXTRA.stop - 1}\nHopInterval = 1\n", 1)
        return text + f"\n[Metrics]\nListen = {METRICS}\n"


def echo_paced(ns, total, seconds):
    """Sends `total` bytes to T's echo service through the proxy at total/seconds bytes/s while a
    thread reads the echo back; returns (sha256 sent, sha256 received, bytes received)."""
    r = socks5(ns, T_HTTP, ECHO_PORT, keep=True, timeout=15)
    assert r.rep == 0 and r.sock is not None, r
    sock = r.sock
    sock.settimeout(30)
    got = {"n": 0, "h": hashlib.sha256(), "err": None}

    def reader():
        try:
            while got["n"] < total:
                d = sock.recv(1 << 18)
                if not d:
                    break
                got["h"].update(d)
                got["n"] += len(d)
        except OSError as e:
            got["err"] = e

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    sent_h = hashlib.sha256()
    chunk = bytes(range(256)) * 1024  # 256 KiB, varied per chunk below
    t0 = time.monotonic()
    sent = 0
    i = 0
    while sent < total:
        block = chunk[i % 251:] + chunk[:i % 251]
        block = block[:min(len(block), total - sent)]
        sock.sendall(block)
        sent_h.update(block)
        sent += len(block)
        i += 1
        ahead = sent / total * seconds - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
    th.join(timeout=60)
    sock.close()
    assert got["err"] is None, got["err"]
    return sent_h.hexdigest(), got["h"].hexdigest(), got["n"]


@pytest.mark.parametrize("threads", [1, 2])
def test_port_hopping_transfer(lab, threads):
    class Topo(HopTopology):
        pass

    Topo.threads = threads
    topo = cl.build_topology(lab, server="awgproxy", start_client=False, topology=Topo)
    topo.server.wait_log(r"event=listening.*extra_ports=20", timeout=10)
    # Every datagram to the server (a stretch on one port may carry only full-size ones), the
    # server's small ones (its ACKs: enough to see every port it answers from), headers only.
    cap = netns.tcpdump(topo.c, topo.cs.ifname_a, snaplen=64,
                        filter=f"udp and host {cl.S_UNDERLAY} and "
                               f"(dst host {cl.S_UNDERLAY} or less 400)")
    topo.start_client(log_level="debug")
    sent, got, n = echo_paced(topo.c, TOTAL, SECONDS)
    datagrams = cap.stop()
    assert n == TOTAL and got == sent, f"echo: {n} of {TOTAL} bytes, hash ok: {got == sent}\n" \
                                       f"{topo.logs()}"

    allowed = {cl.WG_PORT, *EXTRA}
    to_server = [d for d in datagrams if d.dst == cl.S_UNDERLAY]
    ports = [d.dport for d in to_server]
    assert set(ports) <= allowed, set(ports) - allowed
    changes = sum(1 for a, b in zip(ports, ports[1:]) if a != b)
    assert changes >= 5 and len(set(ports)) >= 5, f"{changes} port changes, ports {set(ports)}"
    # The server answers from the port the client is using: each answer's source port is one
    # the client sent to (late answers from the previous port are fine, but not others).
    used = set(ports)
    from_server = [d.sport for d in datagrams if d.src == cl.S_UNDERLAY]
    assert from_server and set(from_server) <= used, set(from_server) - used
    assert len(set(from_server)) >= 5, set(from_server)

    log = topo.proxy.log()
    hops = len(re.findall(r"event=endpoint_hop", log))
    assert hops >= 5, hops
    assert len(re.findall(r"component=handshake event=initiation_sent", log)) == 1, \
        "a hop must not need a new handshake"
    r = topo.c.run(["curl", "-sS", "--max-time", "5", f"http://{METRICS}/metrics"], check=False)
    m = re.search(r"^awgproxy_endpoint_hops_total (\d+)", r.stdout, re.M)
    assert m and int(m.group(1)) >= hops, r.stdout[-2000:]
    assert topo.server.alive() and topo.proxy.alive()
