"""The QUIC transport between awgproxy client and server (docs/spec/quic-transport.md), in the
three-namespace lab of clientlab.py (C client, S server, T target reachable only from S), with
every AmneziaWG obfuscation parameter set on both sides.

What runs over QUIC is asserted, not assumed: the client's `GET /status` says transport "quic"
for the server, the client's awgproxy_quic_* metrics count the streams by outcome, and the
server logs each stream it connected.

- the curl matrix (--socks5, --socks5-hostname, --socks4, --socks4a), PySocks and ncat;
- every reply code provoked over QUIC: refused, net unreachable, denied by an exit rule, denied
  by a domain rule, NXDOMAIN, timeout;
- Transport = auto against Debian's wireguard-go selects ip within 3 s and the matrix passes;
- many parallel streams both ways, hash-verified;
- the server killed mid-transfer: the streams end with an error; started again: new streams
  work over QUIC with no client restart;
- a server reload keeps the peer's QUIC connection;
- UDP over QUIC DATAGRAM frames (issue 17): a SOCKS5 UDP ASSOCIATE DNS query, a 1 MB windowed
  echo (by address and by name), a TCP and a UDP [Forward] over QUIC; with Transport = ip the
  same DNS query goes through lwIP and no DATAGRAM frame is sent.
"""
import datetime
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

import clientlab as cl
import impair as impair_relay
import netns
from clientlab import (CLOSED_PORT, ECHO_PORT, HTTP_BODY, HTTP_PORT, NX_NAME, T_DNS, T_HTTP,
                       TARGET_NAME, UNROUTED, BLACKHOLE, recv_exact, socks5)
from clientlab import dns_query
from integrity import run_integrity

PROXY = f"127.0.0.1:{cl.SOCKS_PORT}"
METRICS_PORT = 9100
DENIED_PORT = 8081                 # ExitDeny for the peer: 198.51.100.0/24:8081
DENIED_DOMAIN = "blocked.test"     # ExitDenyDomain for the peer
RELAY_PORT = 51999
LOSSY = {"both.loss": 0.02, "both.reorder": 0.05, "both.reorder_ms": 10}

OBFUSCATION = ("Jc = 4\nJmin = 40\nJmax = 70\nS1 = 15\nS2 = 18\nS3 = 20\nS4 = 23\n"
               "H1 = 100000-100500\nH2 = 200000-200500\nH3 = 300000-300500\nH4 = 400000-400500\n"
               "I1 = <b 0xc0ff><r 20><t>\nI2 = <r 30>\n")


class QuicTopology(cl.Topology):
    """clientlab's topology with the obfuscation on both ends, per-peer exit rules on the server,
    and [Metrics]/[Control] on the client."""

    ctl_dir = None
    transport = None  # [Peer] Transport on the client; None = the default (auto)
    endpoint = None   # the client's Endpoint instead of S's (an impairment relay in C)
    congestion = None # [Peer] Congestion on the client

    def server_conf(self):
        text = super().server_conf()
        text = text.replace("Address = ", OBFUSCATION + "Address = ", 1)
        return text + (f"ExitDeny = 198.51.100.0/24:{DENIED_PORT}\n"
                       f"ExitDenyDomain = {DENIED_DOMAIN}\n") + getattr(self, "server_extra", "")

    def client_conf(self, socks=None, extra_interface=""):
        # wireguard-go is stock WireGuard: no obfuscation with it
        obf = OBFUSCATION if self.server_kind == "awgproxy" else ""
        text = super().client_conf(socks, extra_interface + obf)
        if self.endpoint:
            text = text.replace(f"Endpoint = {cl.S_UNDERLAY}:{cl.WG_PORT}",
                                f"Endpoint = {self.endpoint}", 1)
        if self.transport:
            text = text.replace("PersistentKeepalive = 25\n",
                                f"PersistentKeepalive = 25\nTransport = {self.transport}\n", 1)
        if getattr(self, "peer_extra", ""):
            text = text.replace("PersistentKeepalive = 25\n",
                                f"PersistentKeepalive = 25\n{self.peer_extra}", 1)
        if self.congestion:
            text = text.replace("PersistentKeepalive = 25\n",
                                f"PersistentKeepalive = 25\nCongestion = {self.congestion}\n", 1)
        return text + (f"\n[Metrics]\nListen = 127.0.0.1:{METRICS_PORT}\n"
                       f"\n[Control]\nListen = {self.ctl_dir}/ctl.sock\n")

    # -- observing the client
    def status(self):
        r = ctl("-s", f"{self.ctl_dir}/ctl.sock", "--json", "status")
        assert r.returncode == 0, f"ctl status: {r.stderr}\n{self.logs()}"
        return json.loads(r.stdout)

    def transport_now(self):
        return self.status()["peers"][0].get("transport")

    def metrics(self):
        r = self.c.run(["curl", "-sS", "--max-time", "10", f"http://127.0.0.1:{METRICS_PORT}/metrics"],
                       check=False)
        assert r.returncode == 0, r.stderr
        out = {}
        for line in r.stdout.splitlines():
            m = re.match(r'^(awgproxy_quic_[a-z_]+)(\{result="([a-z-]+)"\})? (\S+)$', line)
            if m:
                out[(m.group(1), m.group(3))] = float(m.group(4))
        return out

    def result(self, name):
        return self.metrics().get(("awgproxy_quic_stream_results_total", name), 0)

    def wait_quic(self, timeout=10):
        try:
            self.proxy.wait_log(r"component=quic event=connected", timeout=timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.logs()}") from None


def ctl(*args, timeout=15):
    env = {k: v for k, v in os.environ.items() if k not in ("LOG_LEVEL", "LOG_FORMAT")}
    return subprocess.run([str(netns.awgproxy_binary()), "ctl", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def build(lab, server="awgproxy", transport=None, log_level="debug", connect_timeout=5,
          impair=None, congestion=None, extra="", peer_extra="", server_log_level="debug",
          server_extra=""):
    """The lab with our client; impair (relay settings) puts an impairment relay in C between
    the client (Endpoint = the relay on C's loopback) and S; extra is appended to the client's
    [Socks] section (e.g. [Forward] sections)."""
    ctl_dir = tempfile.mkdtemp(prefix="awgq", dir="/tmp")  # short: unix socket paths

    def make(lab_, server):
        topo = QuicTopology(lab_, server=server)
        topo.ctl_dir, topo.transport, topo.congestion = ctl_dir, transport, congestion
        topo.peer_extra = peer_extra  # lines for the client's [Peer]
        topo.server_log_level = server_log_level
        topo.server_extra = server_extra  # appended to the server's config
        return topo

    socks = cl.socks_section(connect_timeout=connect_timeout, tunnel_wait=5) + extra
    topo = cl.build_topology(lab, socks=socks, server=server, log_level=log_level, topology=make,
                             start_client=impair is None)
    topo.c.on_close(lambda: shutil.rmtree(ctl_dir, ignore_errors=True))
    if impair is not None:
        topo.endpoint = f"127.0.0.1:{RELAY_PORT}"
        topo.relay = impair_relay.start(topo.c, topo.endpoint, f"{cl.S_UNDERLAY}:{cl.WG_PORT}",
                                        seed=7, settings=impair)
        topo.start_client(socks=socks, log_level=log_level)
    return topo


@pytest.fixture
def lab(tmp_path):
    with netns.open_lab(tmp_path, tools=("wg", "wireguard-go", "curl", "ncat")) as lab:
        yield lab


@pytest.fixture
def qtopo(lab):
    topo = build(lab)
    topo.wait_quic()
    return topo


def server_streams(topo):
    return len(re.findall(r"component=quic event=stream_connected", topo.server.log()))


def server_closed(topo):
    """The server's debug lines for QUIC streams that ended: (dst, bytes up, down, error)."""
    return [(dst, up, down, err) for up, down, err, dst in
            re.findall(r"component=quic event=stream_closed bytes_up=(\d+) bytes_down=(\d+) "
                       r"error=(\S+) idle_timeout=\S+ dst=(\S+)", topo.server.log())]


# ---- the matrix over QUIC ------------------------------------------------------------------------


def test_curl_matrix_over_quic(qtopo):
    topo = qtopo
    assert topo.transport_now() == "quic", topo.status()
    peer = topo.status()["peers"][0]
    assert peer["quic"]["rtt_ms"] > 0 and peer["quic"]["cwnd"] > 0, peer
    assert peer["quic"]["congestion"] == "bbr", peer  # the default
    ok0, before, closed0 = topo.result("ok"), server_streams(topo), len(server_closed(topo))
    n = 0
    for mode in ("socks5", "socks5-hostname", "socks4", "socks4a"):
        r = topo.curl(f"http://{T_HTTP}/", f"--{mode}", PROXY)
        assert r.returncode == 0 and r.stdout.encode() == HTTP_BODY, (mode, r.stderr, topo.logs())
        n += 1
        if mode in ("socks5-hostname", "socks4a"):
            r = topo.curl(f"http://{TARGET_NAME}/", f"--{mode}", PROXY)
            assert r.returncode == 0 and r.stdout.encode() == HTTP_BODY, (mode, r.stderr,
                                                                          topo.logs())
            n += 1
    assert topo.result("ok") - ok0 == n, topo.metrics()
    assert server_streams(topo) - before == n, topo.logs()
    assert f"dst={TARGET_NAME}:80" in topo.server.log()  # the server resolved the name
    # The debug log's line per stream at its end, with what it carried (curl has closed; the
    # server's relay ends once both directions have).
    closed = []
    for _ in range(50):
        closed = server_closed(topo)[closed0:]
        if len(closed) >= n:
            break
        time.sleep(0.1)
    assert len(closed) == n, (closed, topo.server.log())
    for dst, up, down, err in closed:
        assert err == "none" and int(up) > 0 and int(down) > len(HTTP_BODY), closed
    # `awgproxy ctl status` prints the transport with QUIC's figures
    r = ctl("-s", f"{topo.ctl_dir}/ctl.sock", "status")
    assert re.search(r"transport: quic \(bbr, rtt [0-9.]+ ms, cwnd .+ packets sent, \d+ lost\)",
                     r.stdout), r.stdout


def test_congestion_is_chosen_by_each_sender(lab):
    """[Peer] Congestion sets the controller of what that end sends: the client's for its
    uploads, the server's (in its [Peer] for the client) for the downloads to that peer. Both ends
    say which one runs in their status."""
    sdir = tempfile.mkdtemp(prefix="awgs", dir="/tmp")  # short: unix socket paths
    topo = build(lab, congestion="cubic",
                 server_extra=f"Congestion = reno\n\n[Control]\nListen = {sdir}/ctl.sock\n")
    topo.c.on_close(lambda: shutil.rmtree(sdir, ignore_errors=True))
    topo.wait_quic()
    r = topo.curl(f"http://{T_HTTP}/", "--socks5", PROXY)
    assert r.returncode == 0 and r.stdout.encode() == HTTP_BODY, (r.stderr, topo.logs())
    assert topo.status()["peers"][0]["quic"]["congestion"] == "cubic", topo.status()
    r = ctl("-s", f"{sdir}/ctl.sock", "--json", "status")
    assert r.returncode == 0, (r.stderr, topo.logs())
    peers = json.loads(r.stdout)["peers"]
    assert peers[0]["transport"] == "quic" and peers[0]["quic"]["congestion"] == "reno", peers


def test_pysocks_and_ncat_over_quic(qtopo):
    topo = qtopo
    import socks as pysocks  # python3-socks
    ok0 = topo.result("ok")
    with cl.in_netns(topo.c):
        for version, rdns in ((pysocks.SOCKS5, True), (pysocks.SOCKS4, True), (pysocks.SOCKS5, False)):
            s = pysocks.socksocket()
            s.set_proxy(version, "127.0.0.1", cl.SOCKS_PORT, rdns=rdns)
            s.settimeout(15)
            s.connect((TARGET_NAME if rdns else T_HTTP, HTTP_PORT))
            resp = cl.http_get_over(s)
            s.close()
            assert cl.http_body(resp)[1] == HTTP_BODY
    payload = os.urandom(1 << 20)
    p = subprocess.run(["ip", "netns", "exec", topo.c.name, "ncat", "--proxy", PROXY,
                        "--proxy-type", "socks5", T_HTTP, str(ECHO_PORT)],
                       input=payload, capture_output=True, timeout=60)
    assert p.stdout == payload, f"echo through ncat: {len(p.stdout)} of {len(payload)} bytes"
    assert topo.result("ok") - ok0 == 4, topo.metrics()
    assert topo.transport_now() == "quic"


# ---- reply codes over QUIC -----------------------------------------------------------------------

REPLY_CASES = [
    ("refused", T_HTTP, CLOSED_PORT, 0x05),
    ("network-unreachable", UNROUTED, 80, 0x03),
    ("not-allowed", T_HTTP, DENIED_PORT, 0x02),          # the peer's ExitDeny
    ("not-allowed", DENIED_DOMAIN, 80, 0x02),            # the peer's ExitDenyDomain
    ("name-not-found", NX_NAME, 80, 0x04),
    ("timeout", BLACKHOLE, 80, 0x06),
]


def test_reply_codes_over_quic(lab):
    topo = build(lab, connect_timeout=4)
    topo.wait_quic()
    for name, host, port, rep in REPLY_CASES:
        before = topo.result(name)
        r = socks5(topo.c, host, port, timeout=20)
        assert r.rep == rep, f"{host}:{port}: reply {r.rep!r}, expected {rep:#x} ({name})\n{topo.logs()}"
        assert topo.result(name) == before + 1, (name, topo.metrics())
    assert topo.transport_now() == "quic"


# ---- transport selection ------------------------------------------------------------------------


def test_auto_against_wireguard_go_selects_ip(lab):
    topo = build(lab, server="wireguard-go")
    topo.proxy.wait_log(r"component=quic event=unavailable.*fallback=ip", timeout=10)
    lines = [l for l in topo.proxy.log().splitlines()
             if "event=session_start" in l or "event=unavailable" in l]
    t_session = cl_time(next(l for l in lines if "session_start" in l))
    t_fallback = cl_time(next(l for l in lines if "unavailable" in l))
    assert t_fallback - t_session <= 3.0, lines
    assert topo.transport_now() == "ip"
    for mode in ("socks5", "socks5-hostname", "socks4", "socks4a"):
        r = topo.curl(f"http://{T_HTTP}/", f"--{mode}", PROXY)
        assert r.returncode == 0 and r.stdout.encode() == HTTP_BODY, (mode, r.stderr, topo.logs())
    m = topo.metrics()
    assert m.get(("awgproxy_quic_connections_total", None), 0) == 0, m
    assert m.get(("awgproxy_quic_connection_failures_total", None), 0) >= 1, m
    # a stock server's kernel checks the inner checksums: the client kept computing them
    assert "event=outbound_checksums" not in topo.proxy.log(), topo.logs()


def cl_time(line):
    m = re.search(r"time=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z", line)
    dt = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp()


def test_transport_ip_never_tries_quic(lab):
    topo = build(lab, transport="ip")
    r = topo.curl(f"http://{T_HTTP}/", "--socks5", PROXY)
    assert r.returncode == 0 and r.stdout.encode() == HTTP_BODY
    assert topo.transport_now() == "ip"
    assert "component=quic event=connection_established" not in topo.server.log(), topo.logs()
    assert "component=quic" not in topo.proxy.log(), topo.logs()


# ---- bulk, failures, reload ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["clean", "lossy", "lossy-quic-protection"])
def test_parallel_streams_over_quic(lab, path):
    """100 streams x 10 MB both ways at once, every byte checked: on a clean path, and through
    the impairment relay dropping 2 % and reordering 5 % of the datagrams each way, with the
    tunnel's 1-RTT protection (the default, ALPN awgproxy/3: late packets whose truncated number
    is rebuilt wrong must still be rejected, src/quic/quic_protect.c) and with QUIC's own."""
    streams = int(os.environ.get("AWG_QUIC_STREAMS", "100"))
    mb = float(os.environ.get("AWG_QUIC_INTEGRITY_MB", os.environ.get("AWG_INTEGRITY_MB", "10")))
    own_protection = "quic-protection" in path
    if own_protection:
        # QUIC's own protection (the opt-out) under loss and reordering: 300 MB each way checks
        # it as well as 1000 MB do; issue 17's 100 x 10 MB runs on the default above.
        mb = min(mb, 3.0)
    lossy = path.startswith("lossy")
    topo = build(lab, log_level="info", impair=LOSSY if lossy else None,
                 peer_extra="QuicProtection = quic\n" if own_protection else "")
    topo.wait_quic(timeout=30)
    want = "quic" if own_protection else "tunnel"
    assert re.search(rf"component=quic event=connected .*protection={want}", topo.proxy.log()), \
        topo.logs()
    ok0 = topo.result("ok")
    elapsed, stalled, prog, errors, samples = run_integrity(topo, streams, int(mb * (1 << 20)), 600)
    done = sum(1 for p in prog if p[2])
    print(f"{streams} streams x {mb} MB each way over QUIC: {done} verified in {elapsed:.1f} s "
          f"({streams * mb / elapsed:.1f} MB/s each way), RSS {topo.rss_kb()} kB")
    assert not errors and not stalled and done == streams, (errors[:5], stalled, topo.logs())
    assert topo.result("ok") - ok0 == streams, topo.metrics()
    assert topo.transport_now() == "quic"
    if lossy:
        st = topo.relay.stats()
        assert all(st[d]["dropped_loss"] > 0 and st[d]["reordered"] > 0 for d in ("up", "down")), st


def test_server_restart_mid_transfer(lab):
    topo = build(lab, log_level="info")
    topo.wait_quic()
    r = socks5(topo.c, T_HTTP, ECHO_PORT, keep=True, timeout=15)
    assert r.rep == 0 and r.sock is not None, topo.logs()
    sock = r.sock
    sock.sendall(b"x" * 100000)
    got = 0
    sock.settimeout(10)
    while got < 100000:
        got += len(sock.recv(65536))
    topo.server.stop(sig=signal.SIGKILL)
    # the stream ends with an error (reset or EOF), not a hang: QUIC's idle timeout is 45 s
    t0 = time.monotonic()
    sock.settimeout(60)
    ended = False
    try:
        while True:
            sock.sendall(b"y" * 1000)
            if not sock.recv(65536):
                ended = True
                break
    except OSError:
        ended = True
    assert ended and time.monotonic() - t0 < 60
    sock.close()
    topo.start_awg_server()
    wait_connected_twice(topo)
    r = topo.curl(f"http://{TARGET_NAME}/", "--socks5-hostname", PROXY)
    assert r.returncode == 0 and r.stdout.encode() == HTTP_BODY, (r.stderr, topo.logs())
    assert topo.transport_now() == "quic"
    assert topo.proxy.alive()


def wait_connected_twice(topo, timeout=40):
    netns.wait_until(lambda: len(re.findall(r"component=quic event=connected",
                                            topo.proxy.log())) >= 2, timeout)


def test_reload_keeps_quic_connection(lab):
    topo = build(lab)
    topo.wait_quic()
    r = topo.curl(f"http://{T_HTTP}/", "--socks5", PROXY)
    assert r.returncode == 0
    os.kill(topo.server.pid, signal.SIGHUP)
    topo.server.wait_log(r"component=daemon event=reloaded", timeout=10)
    r = topo.curl(f"http://{T_HTTP}/", "--socks5", PROXY)
    assert r.returncode == 0 and r.stdout.encode() == HTTP_BODY
    assert "event=connection_closed" not in topo.server.log(), topo.logs()
    assert len(re.findall(r"component=quic event=connected", topo.proxy.log())) == 1


def test_reload_removing_peer_closes_its_quic_connection(lab):
    topo = build(lab)
    topo.wait_quic()
    conf = pathlib.Path(topo.server.conf_path)
    text = conf.read_text()
    conf.write_text(text[:text.index("[Peer]")])  # the client's [Peer] is gone
    os.kill(topo.server.pid, signal.SIGHUP)
    topo.server.wait_log(r"component=daemon event=reloaded.*peers_removed=1", timeout=10)
    topo.server.wait_log(r"component=quic event=connection_closed.*reason=\"?peer removed", timeout=10)
    r = topo.curl(f"http://{T_HTTP}/", "--socks5", PROXY, max_time=8)
    assert r.returncode != 0 and HTTP_BODY.decode() not in r.stdout, (r.stdout, topo.logs())


# ---- UDP over QUIC DATAGRAM frames ---------------------------------------------------------------

FWD_PORT = 17007


def dgram_counts(topo):
    m = topo.metrics()
    return (m.get(("awgproxy_quic_datagrams_sent_total", None), 0),
            m.get(("awgproxy_quic_datagrams_received_total", None), 0))


def socks_udp_header(host, port):
    try:
        return b"\0\0\0\x01" + socket.inet_aton(host) + struct.pack("!H", port)
    except OSError:
        return b"\0\0\0\x03" + bytes([len(host)]) + host.encode() + struct.pack("!H", port)


class UdpAssociation:
    """A SOCKS5 UDP ASSOCIATE from C: the control connection and a UDP socket talking to the
    relay."""

    def __init__(self, topo):
        self.r = socks5(topo.c, "0.0.0.0", 0, cmd=3, keep=True)
        assert self.r.rep == 0 and self.r.sock is not None, f"{self.r}\n{topo.logs()}"
        with cl.in_netns(topo.c):
            self.u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.relay = ("127.0.0.1" if self.r.bnd_addr in ("0.0.0.0", None) else self.r.bnd_addr,
                      self.r.bnd_port)

    def close(self):
        self.u.close()
        self.r.close()


def dns_over_association(topo, a):
    """A query for target.test to T's DNS server through the relay; returns the reply datagram
    (SOCKS header included)."""
    hdr = socks_udp_header(T_DNS, 53)
    a.u.settimeout(1.0)
    for attempt in range(5):
        a.u.sendto(hdr + dns_query(TARGET_NAME, qid=0x4300 + attempt), a.relay)
        try:
            data, _ = a.u.recvfrom(2048)
        except socket.timeout:
            continue
        assert data[:10] == hdr, f"UDP reply header {data[:10].hex()} does not name {T_DNS}:53"
        assert data[10:12] == struct.pack("!H", 0x4300 + attempt), data.hex()
        return data
    pytest.fail(f"no DNS reply through the UDP relay in 5 tries\n{topo.logs()}")


def windowed_echo(send, recv, count=1000, size=1000, window=32, rto=1.0, limit=120):
    """count datagrams of size bytes (a sequence number, then random bytes) through send/recv to
    an echo, at most `window` unanswered at a time; one unanswered for rto seconds is sent again
    (UDP may lose it: the lab's links do not, but the inner path is still UDP). Every echo must
    come back byte for byte; returns how many were sent again."""
    payloads = [struct.pack("!I", i) + os.urandom(size - 4) for i in range(count)]
    got = [False] * count
    sent_at = {}
    next_i = resent = done = 0
    deadline = time.monotonic() + limit
    while done < count:
        assert time.monotonic() < deadline, f"{done} of {count} echoed within {limit} s"
        now = time.monotonic()
        for i, t in list(sent_at.items()):
            if now - t > rto:
                send(payloads[i])
                sent_at[i] = now
                resent += 1
        while next_i < count and len(sent_at) < window:
            send(payloads[next_i])
            sent_at[next_i] = now
            next_i += 1
        data = recv()
        if data is None:
            continue
        assert len(data) == size, f"an echo of {len(data)} bytes, {size} sent"
        i = struct.unpack("!I", data[:4])[0]
        assert i < count and data == payloads[i], f"datagram {i} came back altered"
        if not got[i]:
            got[i] = True
            done += 1
            sent_at.pop(i, None)
    return resent


def recv_or_none(sock, strip=0):
    sock.settimeout(0.2)
    try:
        data, _ = sock.recvfrom(65536)
    except socket.timeout:
        return None
    return data[strip:]


@pytest.mark.parametrize("by_name", [False, True], ids=["address", "name"])
def test_udp_associate_over_quic(lab, by_name):
    """SOCKS5 UDP ASSOCIATE over QUIC DATAGRAM frames: a DNS query for target.test to T's DNS
    server gets the A record, then 1 MB (1000 x 1000 bytes) to T's UDP echo, each datagram
    checked, by address or by name (resolved by the client through the tunnel: the server drops
    names). By name some datagrams are sent again: an association resolves at most 8 names at a
    time and drops the datagrams beyond (udp_assoc.c PENDING_NAMES), as UDP may; the window of
    32 makes that happen, the retransmission makes every datagram arrive all the same."""
    topo = build(lab)
    topo.wait_quic()
    assert topo.transport_now() == "quic", topo.status()
    sent0, recv0 = dgram_counts(topo)
    a = UdpAssociation(topo)
    try:
        data = dns_over_association(topo, a)
        assert socket.inet_aton(T_HTTP) in data[10:], f"no A record {T_HTTP}: {data.hex()}"
        sent1, recv1 = dgram_counts(topo)
        assert sent1 > sent0 and recv1 > recv0, (sent0, recv0, sent1, recv1, topo.logs())
        hdr = socks_udp_header(TARGET_NAME if by_name else T_HTTP, ECHO_PORT)
        reply_hdr = socks_udp_header(T_HTTP, ECHO_PORT)  # replies name the source's address

        def recv():
            d = recv_or_none(a.u)
            if d is not None:
                assert d[:10] == reply_hdr, f"reply header {d[:10].hex()}"
                return d[10:]
            return None

        resent = windowed_echo(lambda p: a.u.sendto(hdr + p, a.relay), recv)
        print(f"1000 x 1000 bytes through UDP ASSOCIATE over QUIC: {resent} sent again")
        sent2, recv2 = dgram_counts(topo)
        assert sent2 - sent1 >= 1000 and recv2 - recv1 >= 1000, (sent1, recv1, sent2, recv2)
    finally:
        a.close()
    assert "event=udp_flow transport=quic" in topo.proxy.log(), topo.logs()
    assert topo.transport_now() == "quic"


def test_forwards_over_quic(lab):
    """A TCP and a UDP [Forward] to T's echo service, both carried by QUIC: the TCP connection is
    a QUIC stream (counted ok, connected by the server), the UDP flow DATAGRAM frames."""
    fwd = (f"\n[Forward]\nListen = 127.0.0.1:{FWD_PORT}\nTarget = {T_HTTP}:{ECHO_PORT}\n"
           f"\n[Forward]\nListen = 127.0.0.1:{FWD_PORT}\nTarget = {TARGET_NAME}:{ECHO_PORT}\n"
           f"Protocol = udp\n")
    topo = build(lab, extra=fwd)
    topo.wait_quic()
    ok0, streams0 = topo.result("ok"), server_streams(topo)
    sent0, recv0 = dgram_counts(topo)
    data = os.urandom(256 * 1024)
    with cl.in_netns(topo.c):
        t = socket.create_connection(("127.0.0.1", FWD_PORT), timeout=10)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        t.sendall(data)
        t.shutdown(socket.SHUT_WR)
        got = recv_exact(t, len(data), time.monotonic() + 20)
        assert got == data, f"TCP forward echoed {len(got)} of {len(data)} bytes\n{topo.logs()}"
        assert topo.result("ok") - ok0 == 1, topo.metrics()
        assert server_streams(topo) - streams0 == 1, topo.logs()
        resent = windowed_echo(lambda p: u.sendto(p, ("127.0.0.1", FWD_PORT)),
                               lambda: recv_or_none(u), count=300)
        print(f"300 x 1000 bytes through the UDP forward over QUIC: {resent} sent again")
    finally:
        t.close()
        u.close()
    sent1, recv1 = dgram_counts(topo)
    assert sent1 - sent0 >= 300 and recv1 - recv0 >= 300, (sent0, recv0, sent1, recv1, topo.logs())
    assert topo.transport_now() == "quic"


def test_udp_associate_transport_ip_uses_lwip(lab):
    """Transport = ip: the same DNS query through UDP ASSOCIATE goes through lwIP; no DATAGRAM
    frame is sent."""
    topo = build(lab, transport="ip")
    a = UdpAssociation(topo)
    try:
        data = dns_over_association(topo, a)
        assert socket.inet_aton(T_HTTP) in data[10:], f"no A record {T_HTTP}: {data.hex()}"
    finally:
        a.close()
    assert topo.transport_now() == "ip"
    assert dgram_counts(topo) == (0, 0), topo.metrics()
    assert "event=udp_flow transport=lwip" in topo.proxy.log(), topo.logs()


@pytest.mark.parametrize("transport", [None, "quic"])
def test_server_restart_resets_stale_connection(lab, transport):
    """The server restarts at once: the client's QUIC connection belongs to the old process. The
    new one answers its packets with a Stateless Reset (tokens derive from the server's key), so
    the client reconnects as soon as the tunnel is back, without waiting out QUIC's 45 s idle
    timeout, and new streams work again with no client restart. With Transport = auto the
    first streams go over ip meanwhile; with quic they wait for QUIC's recovery."""
    topo = build(lab, log_level="info", transport=transport)
    topo.wait_quic()
    topo.server.stop(sig=signal.SIGKILL)
    topo.start_awg_server(log_level="info")
    t0 = time.monotonic()
    # traffic makes the client notice: the tunnel re-handshakes, then QUIC gets the reset
    deadline = t0 + 45
    ok = False
    while time.monotonic() < deadline and not ok:
        r = topo.curl(f"http://{T_HTTP}/", "--socks5", PROXY, max_time=5)
        ok = r.returncode == 0 and r.stdout.encode() == HTTP_BODY
    assert ok, topo.logs()
    # Recovery is the client's own doing: a QUIC handshake still open after a round trip and a
    # second asks the tunnel for a WireGuard handshake (WireGuard's own rule would wait 15 s).
    recovered = time.monotonic() - t0
    print(f"recovered {recovered:.1f} s after the restart")
    assert recovered < 10, f"recovered only after {recovered:.1f} s\n{topo.logs()}"
    topo.proxy.wait_log(r"component=quic event=disconnected reason=\"closed by the peer\"",
                        timeout=5)
    wait_connected_twice(topo, timeout=20)
    assert topo.transport_now() == "quic"
