"""Per-peer exit rules, connection caps and bandwidth limits of `awgproxy server`
(docs/config-reference.md §7.1, src/exit/exit_peer.h), with two stock wireguard-go clients.

    A (client)  wireguard-go, 10.77.0.2; routes 198.51.100.0/24 through the tunnel;
                resolv.conf: nameserver 10.77.0.1 (the server's DNS)
    B (client)  wireguard-go, 10.77.0.3; the same
        |  veths 192.0.2.0/25 (A) and 192.0.2.128/25 (B)
    S (server)  awgproxy server 10.77.0.1/24 with
                  peer A: ExitDeny = 198.51.100.81, 198.51.100.80:8081;
                          ExitDenyDomain = blocked.test, *.blocked.test;
                          MaxConnections = 3; DownloadLimit = 8mbit (1 MB/s)
                  peer B: ExitAllow = 198.51.100.80:80, 198.51.100.80:7;
                          ExitAllowDomain = allowed.test (allow-list mode)
                /etc/hosts: target.test, blocked.test, www.blocked.test -> .80,
                            allowed.test -> .82, other.test -> .80
        |  veth 198.51.100.0/24
    T (target)  198.51.100.80, .81, .82: HTTP on :80 and :8081 (GET /stream streams without
                end), UDP echo on :7 and :8

Each rule is provoked: a denied prefix, a denied port, allow-list mode (address, port, UDP),
a name denied through the server's DNS (REFUSED), an address reachable only after the server's
DNS returned it for an allowed name, the connection cap (RST at once, slot freed on close), and
two peers downloading at once while A is limited to 1 MB/s: A's rate, measured over 20 s,
stays within 10 % of the limit while B gets clearly more. Then a reload (SIGHUP) changes the rules
(applied at once) and removes A: its relayed connection and its relay through the server's SOCKS
service ([Server] Socks on 10.77.0.1:1080) end, while B's SOCKS relay and one through LocalSocks
(127.0.0.1:1081 on S) go on; and the server stops cleanly with throttled flows open.
"""
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest

import netns
from clientlab import socks5
from netns import keypair

S_TUNNEL, A_TUNNEL, B_TUNNEL = "10.77.0.1", "10.77.0.2", "10.77.0.3"
T_MAIN, T_DENIED, T_LEARNED = "198.51.100.80", "198.51.100.81", "198.51.100.82"
WG_PORT = 51820
SOCKS_PORT, LOCAL_SOCKS = 1080, ("127.0.0.1", 1081)
METRICS = "127.0.0.1:9411"
LIMIT = 1_000_000  # bytes/s: A's DownloadLimit = 8mbit

TARGET_SCRIPT = r'''
import http.server, socket, socketserver, sys, threading
CHUNK = b"x" * 65536
LOG = threading.Lock()  # print() writes in pieces: lines from two threads would interleave
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path.startswith("/stream"):
            self.send_response(200)
            self.end_headers()
            try:
                while True:
                    self.wfile.write(CHUNK)
            except OSError:
                with LOG:  # /stream?NAME: which one ended
                    print("closed", self.path, flush=True)
                return
        body = ("hello from %s:%d\n" % self.server.server_address).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
for port in (80, 8081):
    srv = S(("0.0.0.0", port), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
def echo(port):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", port))
    while True:
        d, a = u.recvfrom(65535)
        u.sendto(d, a)
for port in (7, 8):
    threading.Thread(target=echo, args=(port,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
'''

CLIENT_TCP = r'''
import errno, socket, sys, time
s = socket.socket()
s.settimeout(float(sys.argv[3]))
t0 = time.monotonic()
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    r = "connected"
except socket.timeout:
    r = "timeout"
except OSError as e:
    r = errno.errorcode.get(e.errno, str(e.errno))
print(r, round(time.monotonic() - t0, 3))
'''

CLIENT_UDP = r'''
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[1], int(sys.argv[2])))
for attempt in range(3):
    s.send(b"policy-udp")
    try:
        print("reply", s.recv(100).decode()); sys.exit(0)
    except socket.timeout:
        continue
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno))); sys.exit(0)
print("timeout")
'''

# Holds N connections open until stdin closes; prints one result per connection.
CLIENT_HOLD = r'''
import errno, socket, sys
socks, out = [], []
for i in range(int(sys.argv[3])):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect((sys.argv[1], int(sys.argv[2])))
        socks.append(s)
        out.append("connected")
    except OSError as e:
        out.append(errno.errorcode.get(e.errno, str(e.errno)) if e.errno else "timeout")
print(" ".join(out), flush=True)
sys.stdin.read()
'''

# One DNS query over UDP: prints the RCODE and the A records.
CLIENT_DNS = r'''
import random, socket, struct, sys
name, server = sys.argv[1], sys.argv[2]
qid = random.randrange(65536)
q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
q += struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
for attempt in range(3):
    s.sendto(q, (server, 53))
    try:
        r = s.recv(512)
    except socket.timeout:
        continue
    if struct.unpack(">H", r[:2])[0] != qid:
        continue
    rcode = r[3] & 15
    an = struct.unpack(">H", r[6:8])[0]
    off, addrs = len(q), []  # answers follow the echoed question: ptr, type, class, ttl, len, data
    for i in range(an):
        rtype, rdlen = struct.unpack(">H", r[off + 2:off + 4])[0], struct.unpack(">H", r[off + 10:off + 12])[0]
        if rtype == 1 and rdlen == 4:
            addrs.append(socket.inet_ntoa(r[off + 12:off + 16]))
        off += 12 + rdlen
    print(rcode, " ".join(addrs))
    sys.exit(0)
print("timeout")
'''

# Downloads GET /stream for `seconds`; prints the average rate since the request (bytes/s).
# Counting from the start, a reader that was starved for a moment and then catches up on what the
# kernel held back cannot inflate the figure; the token bucket's burst (half a second of traffic)
# adds at most 0.5 / seconds to it.
CLIENT_RATE = r'''
import socket, sys, time
host, seconds = sys.argv[1], float(sys.argv[2])
s = socket.create_connection((host, 80), timeout=10)
t0 = time.monotonic()
s.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
total = 0
while True:
    d = s.recv(1 << 16)
    if not d:
        print("eof", total); sys.exit(1)
    total += len(d)
    now = time.monotonic()
    if now - t0 >= seconds:
        print(total / (now - t0)); sys.exit(0)
'''


def _free_netns_dir(name):
    shutil.rmtree(pathlib.Path("/etc/netns") / name, ignore_errors=True)


class PolicyLab:
    def __init__(self, lab):
        self.lab = lab
        self.a, self.b = lab.netns("a"), lab.netns("b")
        self.s, self.t = lab.netns("s"), lab.netns("t")
        lab.veth(self.a, self.s, "192.0.2.2/25", "192.0.2.1/25")
        lab.veth(self.b, self.s, "192.0.2.130/25", "192.0.2.129/25")
        st = lab.veth(self.s, self.t, "198.51.100.1/24", f"{T_MAIN}/24")
        for extra in (T_DENIED, T_LEARNED):
            self.t.run(["ip", "addr", "add", f"{extra}/24", "dev", st.ifname_b])
        for ns in (self.a, self.b, self.s):
            d = pathlib.Path("/etc/netns") / ns.name
            d.mkdir(parents=True, exist_ok=True)
            ns.on_close(lambda n=ns.name: _free_netns_dir(n))
        for ns in (self.a, self.b):
            (pathlib.Path("/etc/netns") / ns.name / "resolv.conf").write_text(
                f"nameserver {S_TUNNEL}\noptions timeout:2 attempts:1\n")
        (pathlib.Path("/etc/netns") / self.s.name / "hosts").write_text(
            f"127.0.0.1 localhost\n{T_MAIN} target.test blocked.test www.blocked.test "
            f"other.test\n{T_LEARNED} allowed.test\n")
        (pathlib.Path("/etc/netns") / self.s.name / "resolv.conf").write_text(
            "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        # Unprivileged ICMP sockets for the exit's ping proxy (root's group 0 in range).
        self.s.run(["sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647"])
        self.t_log = self.t.file("target.log")
        self.t_out = open(self.t_log, "wb")
        self.t.popen([sys.executable, "-c", TARGET_SCRIPT], stdout=self.t_out,
                     stderr=subprocess.STDOUT)
        self.s_priv, self.s_pub = keypair()
        self.a_priv, self.a_pub = keypair()
        self.b_priv, self.b_pub = keypair()
        self.server = lab.awgproxy(self.s, "server", self.server_conf())
        self.server.wait_log(r"event=started.*role=server|role=server.*event=started", timeout=10)
        self.wg = {}
        for name, ns, priv, addr, endpoint in (
                ("a", self.a, self.a_priv, A_TUNNEL, "192.0.2.1"),
                ("b", self.b, self.b_priv, B_TUNNEL, "192.0.2.129")):
            wg = lab.wireguard_go(ns, private_key=priv, address=[f"{addr}/24"],
                                  peers=[{"public_key": self.s_pub,
                                          "endpoint": f"{endpoint}:{WG_PORT}",
                                          "allowed_ips": "0.0.0.0/0",
                                          "persistent_keepalive": 25}])
            ns.run(["ip", "route", "add", "198.51.100.0/24", "dev", wg.ifname])
            self.wg[name] = wg
        self.wait_ready()

    def server_conf(self, a_rules=None, b_rules=None, with_a=True):
        a_rules = a_rules if a_rules is not None else (
            f"ExitDeny = {T_DENIED}, {T_MAIN}:8081\n"
            f"ExitDenyDomain = blocked.test, *.blocked.test\n"
            f"MaxConnections = 3\nDownloadLimit = 8mbit\n")
        b_rules = b_rules if b_rules is not None else (
            f"ExitAllow = {T_MAIN}:80, {T_MAIN}:7\nExitAllowDomain = allowed.test\n")
        a_peer = f"[Peer]\nPublicKey = {self.a_pub}\nAllowedIPs = {A_TUNNEL}/32\n{a_rules}\n"
        return (f"[Interface]\nPrivateKey = {self.s_priv}\nListenPort = {WG_PORT}\n"
                f"Address = {S_TUNNEL}/24\n\n"
                f"[Socks]\nConnectTimeout = 3\nIdleTimeout = 60\n\n"
                f"[Server]\nSocks = {SOCKS_PORT}\nLocalSocks = {LOCAL_SOCKS[0]}:{LOCAL_SOCKS[1]}\n\n"
                f"[Metrics]\nListen = {METRICS}\n\n"
                + (a_peer if with_a else "") +
                f"[Peer]\nPublicKey = {self.b_pub}\nAllowedIPs = {B_TUNNEL}/32\n{b_rules}")

    def reload(self, **kw):
        """Rewrites the server's config and sends SIGHUP; waits for its reloaded line."""
        before = self.server.log().count("event=reloaded")
        pathlib.Path(self.server.conf_path).write_text(self.server_conf(**kw))
        os.kill(self.server.pid, signal.SIGHUP)
        assert netns.wait_until(lambda: self.server.log().count("event=reloaded") > before, 10), \
            self.server.log_tail()

    def wait_ready(self):
        for ns in (self.a, self.b):
            assert netns.wait_until(lambda: netns.ping(ns, S_TUNNEL, count=1, wait=1).received,
                                    30), f"no ping through the tunnel\n{self.logs()}"
        assert netns.wait_until(lambda: b"ready" in pathlib.Path(self.t_log).read_bytes(), 30), \
            "target did not start"

    def connect(self, ns, host, port, timeout=8.0):
        r = ns.run([sys.executable, "-c", CLIENT_TCP, host, str(port), str(timeout)],
                   check=False, timeout=timeout + 20)
        res, took = r.stdout.split()
        return res, float(took)

    def udp(self, ns, host, port):
        return ns.run([sys.executable, "-c", CLIENT_UDP, host, str(port)], check=False,
                      timeout=30).stdout.strip()

    def dns(self, ns, name):
        return ns.run([sys.executable, "-c", CLIENT_DNS, name, S_TUNNEL], check=False,
                      timeout=30).stdout.strip()

    def curl(self, ns, url):
        return ns.run(["curl", "-sS", "--max-time", "10", url], check=False, timeout=30)

    def metrics(self):
        r = self.s.run(["curl", "-sS", "--max-time", "5", f"http://{METRICS}/metrics"],
                       check=False, timeout=20)
        out = {}
        for line in r.stdout.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out

    def logs(self):
        return self.lab.logs(60)


@pytest.fixture(scope="module")
def pl(tmp_path_factory):
    with netns.open_lab(tmp_path_factory.mktemp("policy"),
                        tools=("ping", "wg", "wireguard-go", "curl")) as lab:
        yield PolicyLab(lab)


@pytest.fixture
def fresh(tmp_path):
    """A lab of its own, for a test that changes the server (reload, stop) or needs it idle:
    no test depends on another having run before it."""
    with netns.open_lab(tmp_path, tools=("ping", "wg", "wireguard-go", "curl")) as lab:
        yield PolicyLab(lab)


# ---- peer A: deny rules ---------------------------------------------------------------------


def test_connection_cap(fresh):
    """The cap test has a server of its own: UDP flows of other tests hold one of A's slots for
    a minute."""
    pl = fresh
    """MaxConnections = 3: a fourth connection is reset at once; closing one frees a slot."""
    assert netns.wait_until(lambda: pl.metrics().get("awgproxy_exit_connections") == 0, 15)
    hold = subprocess.Popen(pl.a.argv([sys.executable, "-c", CLIENT_HOLD, T_MAIN, "80", "4"]),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = hold.stdout.readline().split()
        assert line == ["connected"] * 3 + ["ECONNREFUSED"], f"{line}\n{pl.logs()}"
        res, took = pl.connect(pl.a, T_MAIN, 80)
        assert res == "ECONNREFUSED" and took < 1.0, res
        # Peer B is not affected by A's cap.
        assert pl.connect(pl.b, T_MAIN, 80)[0] == "connected"
    finally:
        hold.stdin.close()
        hold.wait(timeout=20)
    assert netns.wait_until(lambda: pl.connect(pl.a, T_MAIN, 80)[0] == "connected", 15), \
        f"slots were not given back\n{pl.logs()}"
    m = pl.metrics()
    assert m.get("awgproxy_exit_peer_cap_hits_total", 0) >= 2, m


def test_a_reaches_what_no_rule_denies(pl):
    r = pl.curl(pl.a, f"http://{T_MAIN}/")
    assert r.returncode == 0 and "hello" in r.stdout, f"{r.stderr}\n{pl.logs()}"
    assert netns.ping(pl.a, T_MAIN, count=1, wait=3).received, pl.logs()


def test_a_denied_prefix_is_prohibited(pl):
    res, took = pl.connect(pl.a, T_DENIED, 80)
    assert res == "EHOSTUNREACH", f"{res}\n{pl.logs()}"  # ICMP administratively prohibited
    assert took < 1.0
    # The same for UDP and ping: an entry without ports covers every protocol.
    assert pl.udp(pl.a, T_DENIED, 7) == "EHOSTUNREACH"
    out = netns.ping(pl.a, T_DENIED, count=1, wait=2)
    assert not out.received
    # Peer B has no such rule (its allow list decides): the rule is A's alone.
    assert pl.server.wait_log(r"event=denied.*dst=198\.51\.100\.81:80.*reason=\"?the peer's ExitDeny",
                              timeout=5)


def test_a_denied_port_only(pl):
    res, _ = pl.connect(pl.a, T_MAIN, 8081)
    assert res == "EHOSTUNREACH", f"{res}\n{pl.logs()}"
    assert pl.connect(pl.a, T_MAIN, 80)[0] == "connected"
    # UDP to another port of the same host is not covered by the TCP-port entry.
    assert pl.udp(pl.a, T_MAIN, 8) == "reply policy-udp"


def test_a_denied_domain_through_server_dns(pl):
    assert pl.dns(pl.a, "blocked.test") == "5"  # REFUSED
    assert pl.dns(pl.a, "www.blocked.test") == "5"
    assert pl.dns(pl.a, "target.test") == f"0 {T_MAIN}"
    r = pl.a.run(["getent", "ahostsv4", "blocked.test"], check=False)
    assert r.returncode != 0 and T_MAIN not in r.stdout
    r = pl.curl(pl.a, "http://blocked.test/")
    assert r.returncode == 6, r.stderr  # curl: could not resolve host


# ---- peer B: allow-list mode ----------------------------------------------------------------


def test_b_allow_list(pl):
    assert pl.connect(pl.b, T_MAIN, 80)[0] == "connected"
    assert pl.connect(pl.b, T_MAIN, 8081)[0] == "EHOSTUNREACH"   # port not listed
    assert pl.connect(pl.b, T_DENIED, 80)[0] == "EHOSTUNREACH"   # address not listed
    assert pl.udp(pl.b, T_MAIN, 7) == "reply policy-udp"          # listed, UDP too
    assert pl.udp(pl.b, T_MAIN, 8) == "EHOSTUNREACH"
    assert not netns.ping(pl.b, T_MAIN, count=1, wait=2).received  # port entries exclude ICMP


def test_b_names_and_learned_addresses(pl):
    # Before any DNS answer, allowed.test's address is not on B's list.
    assert pl.connect(pl.b, T_LEARNED, 80)[0] == "EHOSTUNREACH"
    assert pl.dns(pl.b, "other.test") == "5"  # ExitAllowDomain mode: other names are refused
    assert pl.dns(pl.b, "allowed.test") == f"0 {T_LEARNED}"
    # Now the address the server's DNS returned for an allowed name is reachable.
    r = pl.curl(pl.b, "http://allowed.test/")
    assert r.returncode == 0 and "hello" in r.stdout, f"{r.stderr}\n{pl.logs()}"
    # Peer A never asked: the learned address belongs to B only (A has no allow list, so it
    # reaches it anyway; check the other way round: B still cannot reach .81).
    assert pl.connect(pl.b, T_DENIED, 80)[0] == "EHOSTUNREACH"


# ---- bandwidth ------------------------------------------------------------------------------


def _download_rates(pl, seconds):
    procs = {name: subprocess.Popen(ns.argv([sys.executable, "-c", CLIENT_RATE, T_MAIN,
                                             str(seconds)]),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, ns in (("a", pl.a), ("b", pl.b))}
    out = {name: p.communicate(timeout=seconds + 100) for name, p in procs.items()}
    for name, p in procs.items():
        assert p.returncode == 0, f"{name}: {out[name]}\n{pl.logs()}"
    return float(out["a"][0]), float(out["b"][0])


def test_rate_limited_peer_and_unlimited_peer_at_once(pl):
    """A never gets more than its limit (+10 %), in any attempt. That it also gets at least 90 %
    of it, and B more than twice A's limit, depends on the machine having the capacity: on a
    heavily loaded one the tunnel path itself stalls, so up to three attempts are made."""
    results = []
    for attempt in range(3):
        rate_a, rate_b = _download_rates(pl, 20)
        results.append((rate_a, rate_b))
        print(f"A (DownloadLimit 8mbit = 1 MB/s): {rate_a / 1e6:.3f} MB/s; "
              f"B (no limit): {rate_b / 1e6:.3f} MB/s")
        assert rate_a <= 1.10 * LIMIT, f"A got {rate_a:.0f} B/s, above its limit {LIMIT}"
        if rate_a >= 0.90 * LIMIT and rate_b > 2 * LIMIT:
            break
    else:
        pytest.fail(f"A's rate was not within 10 % of {LIMIT} B/s with B clearly faster in any "
                    f"attempt: {results}\n{pl.logs()}")
    m = pl.metrics()
    assert m.get("awgproxy_exit_throttle_waits_total", 0) > 0, m


def test_metrics_count_rules_and_streams(pl):
    m = pl.metrics()
    assert m.get("awgproxy_exit_denied_by_peer_rule_total", 0) >= 5, m
    assert m.get("awgproxy_exit_dns_refused_total", 0) >= 3, m
    assert m.get('awgproxy_streams_total{kind="exit_tcp"}', 0) >= 5, m
    assert 'awgproxy_streams_active{kind="exit_udp"}' in m, m


HOLD_ONE = r'''
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=10)
s.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
s.recv(1000)
print("open", flush=True)
sys.stdin.readline()
s.settimeout(10)
try:
    while s.recv(1 << 16):
        pass
    print("ended")
except OSError as e:
    print("ended", type(e).__name__)
'''


def test_reload_applies_rules(fresh):
    """A reload (SIGHUP) applies changed rules at once."""
    pl = fresh
    assert pl.connect(pl.b, T_MAIN, 8081)[0] == "EHOSTUNREACH"  # B's allow list, before
    # B leaves allow-list mode, A loses its deny rules and cap.
    pl.reload(a_rules="", b_rules=f"ExitDeny = {T_MAIN}:7\n")
    assert pl.connect(pl.b, T_MAIN, 8081)[0] == "connected", pl.logs()
    assert pl.udp(pl.b, T_MAIN, 7) == "EHOSTUNREACH"
    assert pl.connect(pl.a, T_DENIED, 80)[0] == "connected", pl.logs()


def _socks_stream(pl, ns, proxy, name):
    """A SOCKS5 relay of GET /stream?NAME from T (streams without end), opened from ns; the
    socket, left unread so that flow control holds the relay."""
    r = socks5(ns, T_MAIN, 80, keep=True, proxy=proxy, timeout=20)
    assert r.rep == 0 and r.sock, f"{name}: {r}\n{pl.logs()}"
    r.sock.sendall(f"GET /stream?{name} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    r.sock.settimeout(20)
    assert r.sock.recv(1000), name
    return r.sock


def _reads_on(sock, nbytes, timeout):
    """True when nbytes more arrive within timeout: far more than the socket buffers, the relay
    and the window between S and T hold, so the relay must still be running to deliver them."""
    deadline, got = time.monotonic() + timeout, 0
    while got < nbytes and time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            d = sock.recv(1 << 16)
        except OSError:
            return False
        if not d:
            return False
        got += len(d)
    return got >= nbytes


def _target_closed(pl):
    return pathlib.Path(pl.t_log).read_text(errors="replace")


def test_removed_peer_flows_and_socks_relays_end(fresh):
    """A reload that removes A ends A's exit flows and its relays through the server's SOCKS
    service (the outbound side is closed by the server: the tunnel would drop A's packets anyway,
    so A itself cannot be told); B's relay (B is changed, not removed) and a LocalSocks relay (no
    peer) go on."""
    pl = fresh
    hold = subprocess.Popen(pl.a.argv([sys.executable, "-c", HOLD_ONE, T_MAIN]),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    socks = []
    try:
        assert hold.stdout.readline().strip() == "open"
        a = _socks_stream(pl, pl.a, (S_TUNNEL, SOCKS_PORT), "a-socks")
        b = _socks_stream(pl, pl.b, (S_TUNNEL, SOCKS_PORT), "b-socks")
        local = _socks_stream(pl, pl.s, LOCAL_SOCKS, "local-socks")
        socks = [a, b, local]
        m = pl.metrics()
        exit_before = m.get('awgproxy_streams_active{kind="exit_tcp"}', 0)
        socks_before = m.get('awgproxy_streams_active{kind="socks_tcp"}', 0)
        assert exit_before >= 1 and socks_before == 3, m
        pl.reload(with_a=False, b_rules="")
        assert pl.server.wait_log(r"event=peer_removed", timeout=5)
        line = pl.server.wait_log(r"component=server_socks .*event=peer_streams_ended.*$",
                                  timeout=5).group(0)
        assert f"peer={netns.fingerprint(pl.a_pub)}" in line and "streams=1" in line, line
        assert "peer removed by a reload" in line, line
        # The server closed A's outbound connection: T sees it end.
        assert netns.wait_until(lambda: "closed /stream?a-socks" in _target_closed(pl), 10), \
            f"{_target_closed(pl)}\n{pl.logs()}"
        assert netns.wait_until(
            lambda: pl.metrics().get('awgproxy_streams_active{kind="exit_tcp"}', 0) < exit_before,
            10), pl.logs()
        assert netns.wait_until(
            lambda: pl.metrics().get('awgproxy_streams_active{kind="socks_tcp"}', 0) == 2, 10), \
            pl.logs()
        # B's and the local relay still deliver (8 MiB each, after the reload).
        for name, sock in (("b-socks", b), ("local-socks", local)):
            assert _reads_on(sock, 8 << 20, 60), f"{name} stopped\n{pl.logs()}"
        closed = _target_closed(pl)
        assert "closed /stream?b-socks" not in closed and "closed /stream?local-socks" not in \
            closed, closed
        assert pl.metrics().get('awgproxy_streams_active{kind="socks_tcp"}', 0) == 2
    finally:
        for s in socks:
            s.close()
        hold.stdin.close()
        hold.kill()
        hold.wait()
    # B still works, with no rules now.
    assert pl.connect(pl.b, T_DENIED, 80)[0] == "connected"


def test_server_stops_cleanly_with_throttled_flows(fresh):
    """SIGTERM while a throttled download and a UDP flow are open (the peer objects and their
    buckets must outlive the exit until the last stream has closed). A is removed and B gets a
    limit by reload, which also shows a reload adding a limit applies."""
    pl = fresh
    pl.reload(with_a=False, b_rules="DownloadLimit = 8mbit\n")
    waits = pl.metrics().get("awgproxy_exit_throttle_waits_total", 0)
    # The UDP flow first: once the download has drained the bucket, replies are dropped.
    assert pl.udp(pl.b, T_MAIN, 7) == "reply policy-udp"
    dl = subprocess.Popen(pl.b.argv([sys.executable, "-c", CLIENT_RATE, T_MAIN, "30"]),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert netns.wait_until(lambda: pl.metrics().get("awgproxy_exit_throttle_waits_total", 0)
                                > waits, 10), pl.logs()
        rc = pl.server.stop(timeout=10)
    finally:
        dl.kill()
        dl.wait()
    log = pl.server.log()
    assert rc == 0, f"rc={rc}\n{pl.server.log_tail(80)}"
    assert "LeakSanitizer" not in log and "ERROR: AddressSanitizer" not in log and \
        "runtime error" not in log, pl.server.log_tail(80)
