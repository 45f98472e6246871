"""A server on every core (issue 15 item 6): `[Server] Threads = 2` runs a supervisor and two
worker processes sharing the UDP port (SO_REUSEPORT), each owning the peers whose public key maps
to it (src/daemon/workers.h, src/device/tunnel_shard.c).

The lab is test_quic_transport.py's (C: clients, S: awgproxy server, T: target reachable only
from S), with every obfuscation parameter set.

- 20 peers (20 client processes in C, one tunnel address each, half over QUIC and half over the
  ip path) move data through the server at once: every byte arrives intact (hash), both workers
  carry peers, and the supervisor's /status, /peers and /metrics add up all workers;
- a peer whose source port changes three times mid-transfer (the impairment relay's rebinding),
  so that it lands on a worker that does not own it at least once, keeps its session: no new
  handshake, the transfer completes, and the datagrams were handed to the owner;
- a worker killed with SIGKILL is replaced, its peers reconnect by themselves, and SIGTERM to the
  supervisor stops everything (no worker left behind);
- ctl reload through the supervisor adds a peer on the worker that owns it.
"""
import base64
import hashlib
import json
import os
import re
import signal
import socket
import threading
import time

import pytest

import clientlab as cl
import impair as impair_relay
import netns
from clientlab import ECHO_PORT, T_HTTP, socks5
from test_quic_transport import OBFUSCATION, lab  # noqa: F401  (the fixture)

N_PEERS = 20
THREADS = 2
METRICS = "127.0.0.1:9420"  # on S
CONTROL = "127.0.0.1:9421"  # on S
RELAY_PORT = 51998


def shard_of(pub_b64, n=THREADS):
    """src/wg/shard.h: the first 32 bits of the key, little-endian, modulo the workers."""
    return int.from_bytes(base64.b64decode(pub_b64)[:4], "little") % n


class Peer:
    def __init__(self, i):
        self.i = i
        self.priv, self.pub = netns.keypair()
        self.addr = f"10.66.0.{10 + i}"
        self.socks_port = 2000 + i
        self.proc = None
        self.transport = "quic" if i % 2 else "ip"


class ThreadsLab:
    def __init__(self, lab, peers, endpoint_for=None, obfuscation=OBFUSCATION):
        self.lab = lab
        self.peers = peers
        self.obfuscation = obfuscation
        self.endpoint_for = endpoint_for or (lambda p: f"{cl.S_UNDERLAY}:{cl.WG_PORT}")
        self.topo = cl.build_topology(lab, server="awgproxy", start_client=False,
                                      topology=self._make)

    def _make(self, lab_, server):
        outer = self

        class Topo(cl.Topology):
            def server_conf(self):
                return outer.server_conf()

        self._topo = Topo(lab_, server=server)
        return self._topo

    def server_conf(self, extra_peers=()):
        t = self._topo
        text = (f"[Interface]\nPrivateKey = {t.wg_priv}\nListenPort = {cl.WG_PORT}\n"
                f"{self.obfuscation}Address = {cl.S_TUNNEL}/24, {cl.S_TUNNEL6}/64\n\n"
                f"[Socks]\nConnectTimeout = 30\n\n[Server]\nThreads = {THREADS}\n\n"
                f"[Metrics]\nListen = {METRICS}\n\n[Control]\nListen = {CONTROL}\n")
        for p in list(self.peers) + list(extra_peers):
            text += f"\n[Peer]\nPublicKey = {p.pub}\nAllowedIPs = {p.addr}/32\n"
        return text

    def client_conf(self, p):
        t = self._topo
        return (f"[Interface]\nPrivateKey = {p.priv}\nAddress = {p.addr}/32\nDNS = {cl.S_TUNNEL}\n"
                f"{self.obfuscation}\n[Peer]\nPublicKey = {t.wg_pub}\n"
                f"Endpoint = {self.endpoint_for(p)}\nAllowedIPs = 0.0.0.0/0, ::/0\n"
                f"PersistentKeepalive = 25\nTransport = {p.transport}\n\n"
                f"[Socks]\nListen = 127.0.0.1:{p.socks_port}\nConnectTimeout = 10\n"
                f"TunnelWait = 5\n")

    def start_client(self, p):
        p.proc = self.lab.awgproxy(self.topo.c, "client", self.client_conf(p), log_level="info",
                                   name=f"client{p.i}")
        p.proc.wait_log(r"component=socks.*event=listening", timeout=10)

    @property
    def server(self):
        return self.topo.server

    def get(self, what, port):
        r = self.topo.s.run(["curl", "-sS", "--max-time", "10", f"http://{port}/{what}"],
                            check=False, timeout=20)
        assert r.returncode == 0, f"GET /{what}: {r.stderr}\n{self.server.log_tail()}"
        return r.stdout

    def status(self):
        return json.loads(self.get("status", CONTROL))

    def peers_doc(self):
        return json.loads(self.get("peers", CONTROL))["peers"]

    def metrics(self):
        return self.get("metrics", METRICS)

    def logs(self):
        return self.server.log_tail(40)


def worker_pids(server_pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server_pid:
            out.append(int(d))
    return out


def echo_hash(ns, socks_port, nbytes, out, key, deadline_s=120):
    """nbytes of random data to T's echo service through one client; out[key] = (sent, got)."""
    data = os.urandom(nbytes)
    r = socks5(ns, T_HTTP, ECHO_PORT, keep=True, timeout=30, proxy=("127.0.0.1", socks_port))
    if r.rep != 0:
        out[key] = ("connect failed", r.__dict__)
        return
    s = r.sock
    got = bytearray()
    deadline = time.monotonic() + deadline_s

    def reader():
        try:
            while len(got) < nbytes:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                d = s.recv(262144)
                if not d:
                    break
                got.extend(d)
        except OSError:
            pass

    rt = threading.Thread(target=reader, daemon=True)
    rt.start()
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        out[key] = ("send failed", str(e))
    rt.join(deadline_s + 5)
    s.close()
    out.setdefault(key, (hashlib.sha256(data).hexdigest(), hashlib.sha256(bytes(got)).hexdigest(),
                         len(got)))


def test_twenty_peers_on_two_workers(lab):
    peers = [Peer(i) for i in range(N_PEERS)]
    owners = {shard_of(p.pub) for p in peers}
    assert owners == {0, 1}, "the random keys all fell on one worker: rerun"
    tl = ThreadsLab(lab, peers)
    tl.server.wait_log(r"event=worker_started.*worker=1/2", timeout=10)
    assert len(worker_pids(tl.server.pid)) == THREADS, tl.logs()
    for p in peers:
        tl.start_client(p)
    for p in peers:
        tl.server.wait_handshake(p.pub, timeout=20)
    out = {}
    threads = [threading.Thread(target=echo_hash, args=(tl.topo.c, p.socks_port, 2 << 20, out, p.i))
               for p in peers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    bad = {k: v for k, v in out.items() if len(v) != 3 or v[0] != v[1]}
    assert len(out) == N_PEERS and not bad, (bad, tl.logs())

    # The supervisor's documents add up both workers.
    st = tl.status()
    assert st["workers"] == THREADS and st["state"] == "up", st
    assert len(st["peers"]) == N_PEERS, st
    by_worker = {}
    for doc in tl.peers_doc():
        fp = doc["peer"]
        by_worker.setdefault(doc["worker"], []).append(fp)
        assert doc["has_session"] and doc["rx_bytes"] > 2 << 20, doc
    assert set(by_worker) == {0, 1}, by_worker
    for p in peers:
        fp = netns.fingerprint(p.pub)
        assert fp in by_worker[shard_of(p.pub)], (fp, by_worker)
    text = tl.metrics()
    assert re.search(r"^awgproxy_peers %d$" % N_PEERS, text, re.M), text[:2000]
    assert re.search(r'^awgproxy_workers\{state="answered"\} 2$', text, re.M), text[-500:]
    rx = sum(int(m) for m in re.findall(r"^awgproxy_peer_rx_bytes_total\{[^}]*\} (\d+)$", text, re.M))
    assert rx >= N_PEERS * (2 << 20), rx
    assert len(re.findall(r"^# TYPE awgproxy_peers ", text, re.M)) == 1, "families merged once"

    # A worker killed outright is replaced; its peers come back without a hand.
    victim = worker_pids(tl.server.pid)[0]
    os.kill(victim, signal.SIGKILL)
    tl.server.wait_log(r"event=worker_died", timeout=10)
    netns.wait_until(lambda: len(worker_pids(tl.server.pid)) == THREADS and
                     victim not in worker_pids(tl.server.pid), 15, what="a replacement worker")
    # Like a restarted server: the first connection may fail while the client notices (QUIC gets
    # a Stateless Reset once the tunnel has re-handshaked); then it works, with no client restart.
    for p in peers[:4]:
        deadline, res = time.monotonic() + 45, None
        while time.monotonic() < deadline:
            out2 = {}
            echo_hash(tl.topo.c, p.socks_port, 256 << 10, out2, p.i, deadline_s=30)
            res = out2[p.i]
            if len(res) == 3 and res[0] == res[1]:
                break
            time.sleep(0.5)
        assert len(res) == 3 and res[0] == res[1], (p.i, res, tl.logs())

    # Reload through the supervisor: a new peer lands on its owner.
    extra = Peer(N_PEERS)
    tl.topo.server.conf_path.write_text(tl.server_conf(extra_peers=[extra]))
    r = tl.topo.s.run([str(netns.awgproxy_binary()), "ctl", "--connect", CONTROL, "--json",
                       "reload"], check=False)
    assert r.returncode == 0, r.stderr + r.stdout
    rep = json.loads(r.stdout)
    assert rep["ok"] and rep["peers"]["added"] == 1 and rep["peers"]["unchanged"] == N_PEERS, rep
    tl.peers.append(extra)
    tl.start_client(extra)
    tl.server.wait_handshake(extra.pub, timeout=20)
    out3 = {}
    echo_hash(tl.topo.c, extra.socks_port, 256 << 10, out3, 0, deadline_s=60)
    assert out3[0][0] == out3[0][1], (out3, tl.logs())
    doc = [d for d in tl.peers_doc() if d["peer"] == netns.fingerprint(extra.pub)]
    assert doc and doc[0]["worker"] == shard_of(extra.pub), doc

    # SIGTERM to the supervisor stops the workers too.
    pids = worker_pids(tl.server.pid)
    rc = tl.server.stop()
    assert rc == 0, (rc, tl.logs())
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}"), f"worker {pid} outlived its supervisor"


@pytest.mark.parametrize("steering", ["bpf", "hash"])
def test_roaming_between_workers_keeps_the_session(lab, steering):
    """With the BPF program (Linux) a roamed peer's data still goes straight to its owner; with
    the kernel's hash alone (as with AWG 3.x header protection, which hides the receiver index
    from the program, or on macOS) some source port lands on the other worker, which hands the
    datagrams over. The hash case runs with a HeaderProtectionKey on both ends."""
    peer = Peer(0)
    peer.transport = "ip"
    relay = {}
    obfuscation = OBFUSCATION
    if steering == "hash":
        obfuscation += f"HeaderProtectionKey = {base64.b64encode(os.urandom(32)).decode()}\n"
    tl = ThreadsLab(lab, [peer], endpoint_for=lambda p: f"127.0.0.1:{RELAY_PORT}",
                    obfuscation=obfuscation)
    want = "by receiver index" if steering == "bpf" else "kernel hash"
    assert re.search(rf"event=port_shared .*steering=\"?{want}", tl.server.log()), tl.logs()
    relay["r"] = impair_relay.start(tl.topo.c, f"127.0.0.1:{RELAY_PORT}",
                                    f"{cl.S_UNDERLAY}:{cl.WG_PORT}", seed=3,
                                    settings={"both.delay_ms": 1, "both.rate": "3M"})
    tl.start_client(peer)
    tl.server.wait_handshake(peer.pub, timeout=20)
    out = {}
    t = threading.Thread(target=echo_hash, args=(tl.topo.c, peer.socks_port, 40 << 20, out, 0))
    t.start()
    handshakes = tl.server.log().count("component=handshake event=completed")
    if steering == "bpf":
        before = handed_in(tl)
        ports = []
        for _ in range(4):
            time.sleep(1.0)
            ports.append(relay["r"].rebind())
        t.join(180)
        assert out.get(0) and len(out[0]) == 3 and out[0][0] == out[0][1], (out, tl.logs())
        assert handed_in(tl) == before, ("data was handed over despite the steering", tl.logs())
        assert tl.server.log().count("component=handshake event=completed") == handshakes
        return
    # Rebind until the peer's new source port hashes to the worker that does not own it (the
    # kernel's hash is not ours to pick; each rebind is a coin toss): its datagrams must then be
    # handed to the owner, in the same session.
    ports, handed = [], 0
    while len(ports) < 10 and not handed and t.is_alive():
        time.sleep(0.7)
        ports.append(relay["r"].rebind())
        time.sleep(0.5)
        handed = handed_in(tl)
    t.join(180)
    assert out.get(0) and len(out[0]) == 3 and out[0][0] == out[0][1], (out, tl.logs())
    print(f"source ports {ports}: {handed_in(tl)} datagrams handed to the owner")
    assert handed > 0, ("no rebind landed on the other worker", ports, tl.logs())
    assert tl.server.log().count("component=handshake event=completed") == handshakes, (
        "roaming took a new handshake", tl.logs())
    for port in ports:
        assert re.search(rf"event=endpoint_changed .*:{port}\b", tl.server.log()), (port, tl.logs())


def handed_in(tl):
    m = re.search(r'^awgproxy_worker_handoffs_total\{direction="in"\} (\d+)$', tl.metrics(), re.M)
    assert m, tl.metrics()[-800:]
    return int(m.group(1))
