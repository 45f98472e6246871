"""Handshake cadence (issue 14, item 1): a new connection never costs a WireGuard handshake. A
stock client makes the first handshake and then one per two minutes of use; before this change
awgproxy started one for every connection made after a second of silence, a fingerprint (30
initiations a minute, each with its I-packets) and a Diffie-Hellman per connection on the
server. Liveness comes from the connection's own SYN; a handshake is the probe only when nothing
at all has come back for a round trip and a second (src/stream/dialer_lwip.c).

Counted on the wire: every datagram from the client to the server is captured and classified by
its size and H1 range (the lab's obfuscation: S1 = 15, H1 = 100000-100500). What must still hold:
a server that is gone gives "tunnel down" (0x01) within TunnelWait, and a restarted server
(which forgot the session) serves a new connection within 5 s of being back.
"""
import re
import signal
import time

import clientlab as cl
import netns
import pcap
from clientlab import HTTP_BODY, T_HTTP, socks5
from test_quic_transport import build, lab  # noqa: F401  (the fixture)

S1, H1, INIT_LEN = 15, (100000, 100500), 15 + 148
TUNNEL_WAIT = 5  # build()'s [Socks] TunnelWait


def is_init(p):
    return len(p) == INIT_LEN and H1[0] <= pcap.le32(p, S1) <= H1[1]


def initiations_logged(topo):
    return len(re.findall(r"component=handshake event=initiation_sent", topo.proxy.log()))


def fetch(topo):
    r = topo.curl(f"http://{T_HTTP}/", "--socks5", f"127.0.0.1:{cl.SOCKS_PORT}")
    assert r.returncode == 0 and r.stdout.encode() == HTTP_BODY, (r.stderr, topo.logs())


def test_browsing_makes_no_handshakes(lab):
    """22 connections over 45 s, one every 2 s, as in browsing: the first handshake only."""
    topo = build(lab, transport="ip", log_level="info")
    cap = netns.tcpdump(topo.c, topo.cs.ifname_a, filter=f"udp and dst port {cl.WG_PORT}")
    t0 = time.monotonic()
    for i in range(22):
        fetch(topo)
        time.sleep(max(0.0, t0 + 2.0 * (i + 1) - time.monotonic()))
    assert time.monotonic() - t0 >= 44
    dgs = cap.stop()
    to_server = [d.payload for d in dgs]
    inits = [p for p in to_server if is_init(p)]
    assert len(to_server) > 22 * 4, f"the capture missed the traffic: {len(to_server)} datagrams"
    # The client's one handshake happened when it started, before the capture: 1 in all.
    assert initiations_logged(topo) == 1, topo.proxy.log_tail(30)
    assert inits == [], f"{len(inits)} initiations during 22 connections"


def test_dead_server_tunnel_down_and_restart(lab):
    topo = build(lab, transport="ip", log_level="info")
    fetch(topo)
    time.sleep(2)  # the server has been quiet for a while: its death is not yet known
    topo.server.stop(sig=signal.SIGKILL)
    t0 = time.monotonic()
    r = socks5(topo.c, T_HTTP, 80, timeout=TUNNEL_WAIT + 10)
    took = time.monotonic() - t0
    assert r.rep == 1, f"reply {r.rep!r} after {took:.1f} s\n{topo.logs()}"
    assert took <= TUNNEL_WAIT + 0.5, f"tunnel down reported after {took:.1f} s"
    # Back, with no memory of the session: a new connection works within 5 s.
    topo.start_awg_server()
    t1 = time.monotonic()
    ok = False
    while time.monotonic() - t1 < 5.0:
        r = socks5(topo.c, T_HTTP, 80, timeout=5.0 - (time.monotonic() - t1) + 0.5)
        if r.rep == 0:
            ok = True
            break
        time.sleep(0.2)
    took = time.monotonic() - t1
    assert ok and took <= 5.0, f"no connection {took:.1f} s after the restart\n{topo.logs()}"
