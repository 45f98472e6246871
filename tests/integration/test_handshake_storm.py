"""200 peers handshaking at once against one server (issue 10 item 3), with a flood of forged
initiations on top, so that the under-load mode must engage:

- 200 `awgproxy client` processes in C, each its own key and tunnel address, all configured on
  the server, start together (Endpoint + PersistentKeepalive: each handshakes at once);
- meanwhile C floods the server's port with 148-byte datagrams that look like initiations
  (type 1) but carry random bytes, ~2000 a second, the kind of load cookies exist for;
- the server runs its default Threads (one worker per core), so the cookie secrets shared by the
  workers are exercised too.

Checked: every configured peer completes its handshake (clients answer cookie replies and come
back with mac2), cookie replies were sent (awgproxy_dropped_datagrams_total{reason="under-load"}),
and the server stays responsive: GET /status answers within 1 s every time it is asked during the
storm, and lists all 200 peers with a session at the end."""
import json
import os
import re
import socket
import threading
import time

import pytest

import clientlab as cl
import netns
from clientlab import in_netns

N_PEERS = 200
CONTROL, METRICS = "127.0.0.1:9431", "127.0.0.1:9432"  # on S
FLOOD_RATE = 2000  # forged initiations per second


def peer_addr(i):
    return f"10.66.{1 + i // 250}.{i % 250 + 2}"


class StormTopo(cl.Topology):
    keys = []

    def server_conf(self):
        text = (f"[Interface]\nPrivateKey = {self.wg_priv}\nListenPort = {cl.WG_PORT}\n"
                f"Address = {cl.S_TUNNEL}/16\n\n[Control]\nListen = {CONTROL}\n\n"
                f"[Metrics]\nListen = {METRICS}\n")
        for i, (_, pub) in enumerate(self.keys):
            text += f"\n[Peer]\nPublicKey = {pub}\nAllowedIPs = {peer_addr(i)}/32\n"
        return text


def client_conf(topo, i, priv):
    return (f"[Interface]\nPrivateKey = {priv}\nAddress = {peer_addr(i)}/32\n\n"
            f"[Peer]\nPublicKey = {topo.wg_pub}\nEndpoint = {cl.S_UNDERLAY}:{cl.WG_PORT}\n"
            f"AllowedIPs = 0.0.0.0/0\nPersistentKeepalive = 25\n\n"
            f"[Socks]\nListen = 127.0.0.1:{3000 + i}\n")


def flood(ns, stop, sent):
    """Forged initiations (type 1, 148 bytes, random) at FLOOD_RATE until stop is set."""
    with in_netns(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    msg = bytearray(148)
    msg[0] = 1
    period = 0.01
    per_tick = FLOOD_RATE * period
    next_t = time.monotonic()
    while not stop.is_set():
        for _ in range(int(per_tick)):
            msg[4:] = os.urandom(144)
            try:
                s.sendto(msg, (cl.S_UNDERLAY, cl.WG_PORT))
                sent[0] += 1
            except BlockingIOError:
                pass
        next_t += period
        time.sleep(max(0.0, next_t - time.monotonic()))
    s.close()


@pytest.fixture
def lab(tmp_path):
    with netns.open_lab(tmp_path, tools=("curl",)) as lab:
        yield lab


def status(topo, timeout=5):
    t0 = time.monotonic()
    r = topo.s.run(["curl", "-sS", "--max-time", str(timeout), f"http://{CONTROL}/status"],
                   check=False, timeout=timeout + 10)
    return r, time.monotonic() - t0


def test_two_hundred_peers_at_once_under_a_flood(lab):
    keys = [netns.keypair() for _ in range(N_PEERS)]
    StormTopo.keys = keys
    topo = cl.build_topology(lab, server="awgproxy", start_client=False, v6=False,
                             topology=lambda l, server: StormTopo(l, server=server),
                             log_level="info")
    stop, sent = threading.Event(), [0]
    flooder = threading.Thread(target=flood, args=(topo.c, stop, sent), daemon=True)
    flooder.start()
    slowest = 0.0
    # The bound (1 s) is the release build's; the sanitizer build runs the server and
    # the 200 clients several times slower on the same two cores (1.7-1.9 s seen there, with the
    # code of 890c176 as with this one), and checks correctness, not speed.
    bound = 5.0 if "ASAN_OPTIONS" in os.environ else 1.0
    try:
        time.sleep(1.0)  # the flood is on before the peers come
        clients = []
        t0 = time.monotonic()
        for i, (priv, _) in enumerate(keys):
            clients.append(lab.awgproxy(topo.c, "client", client_conf(topo, i, priv),
                                        log_level="warn", name=f"p{i}"))
        deadline = time.monotonic() + 120
        done = 0
        while time.monotonic() < deadline:
            r, took = status(topo)
            assert r.returncode == 0, f"GET /status failed: {r.stderr}\n{topo.server.log_tail()}"
            slowest = max(slowest, took)
            assert took < bound, f"GET /status took {took:.2f} s during the storm"
            done = sum(1 for p in json.loads(r.stdout)["peers"] if p["has_session"])
            if done == N_PEERS:
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - t0
    finally:
        stop.set()
        flooder.join(10)
    assert done == N_PEERS, (f"{done} of {N_PEERS} peers have a session after 120 s",
                             topo.server.log_tail())
    print(f"{N_PEERS} peers up {elapsed:.1f} s after starting; {sent[0]} forged initiations; "
          f"slowest /status {slowest * 1000:.0f} ms")
    # Cookie replies went out (the under-load mode engaged) and the clients came back with mac2.
    log = topo.server.log()
    cookies = sum(int(x) for x in re.findall(
        r'awgproxy_dropped_datagrams_total\{reason="under-load"\} (\d+)', metrics(topo)))
    print(f"cookie replies sent: {cookies}")
    assert cookies > 0, "no cookie reply was sent: the flood did not put the server under load"
    assert len(re.findall(r"component=handshake event=completed", log)) >= N_PEERS, \
        topo.server.log_tail()
    for c in clients[:5]:
        assert c.alive(), c.log_tail()


def metrics(topo):
    r = topo.s.run(["curl", "-sS", "--max-time", "5", f"http://{METRICS}/metrics"], check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout
