"""`awgproxy server` as a userspace exit for stock WireGuard clients (src/exit/exit.h).

    C (client)  Debian wireguard-go on TUN wg0, 10.88.0.2/24 + fd88::2/64, peer S with
                AllowedIPs 0.0.0.0/0, ::/0; routes: only the test destinations (198.51.100.0/24,
                203.0.113.0/24, 2001:db8:100::/64, 2001:db8:dead::/48 and the private ranges
                below) via wg0; the underlay 192.0.2.0/24 stays on the veth.
                /etc/netns/C/resolv.conf: nameserver 10.88.0.1 (the exit's DNS responder)
        |  veth 192.0.2.0/24
    S (server)  awgproxy server, ListenPort 51820, Address 10.88.0.1/24 + fd88::1/64,
                peer C = 10.88.0.2/32, fd88::2/128; [Socks] ConnectTimeout = 2
                /etc/netns/S/hosts: target.test -> 198.51.100.80 (uv_getaddrinfo reads it)
                routes: 203.0.113.0/25 unreachable, 203.0.113.128/25 prohibit,
                2001:db8:dead::/48 unreachable; net.ipv4.ping_group_range open (ping proxy)
                a TCP service on 198.51.100.1:8080 (S's own address: must stay unreachable)
        |  veth 198.51.100.0/24, 2001:db8:100::/64
    T (target)  198.51.100.80 and 2001:db8:100::80: HTTP on :80, UDP echo on :7, nothing on
                :81 (refused); TCP :9 silently dropped (nft) for the connect timeout

The exit contract checked here:
  * TCP to any public destination works; a refused port answers RST at once (ECONNREFUSED),
    an unreachable or locally prohibited one ICMP unreachable (EHOSTUNREACH), a silent one ICMP
    host unreachable after [Socks] ConnectTimeout.
  * UDP works both ways (with IP fragments); a closed UDP port comes back as ECONNREFUSED.
  * DNS to 10.88.0.1:53 is answered from the server's resolver (A, AAAA; other types NODATA).
  * Default deny: RFC 1918, CGNAT, ULA, NAT64-embedded private addresses and the server's own
    addresses are refused with ICMP administratively prohibited well under a second
    (EHOSTUNREACH for IPv4 TCP, EACCES for IPv6 TCP).
  * ICMP echo to allowed destinations is proxied; denied ones are answered "administratively
    prohibited" (ping prints "Packet filtered"); the server's own tunnel address answers ping.
  * A source address outside the peer's AllowedIPs is dropped by the tunnel.
"""
import pathlib
import re
import shutil
import subprocess
import sys
import time

import pytest

import netns
from netns import keypair

C_UNDERLAY, S_UNDERLAY = "192.0.2.2", "192.0.2.1"
S_TARGET_SIDE, T_ADDR = "198.51.100.1", "198.51.100.80"
S_TUNNEL, C_TUNNEL = "10.88.0.1", "10.88.0.2"
WG_PORT = 51820
HTTP_BODY = b"exit target says hello: 5d1c0e7a\n"
UNREACHABLE = "203.0.113.5"   # S: "unreachable" route -> EHOSTUNREACH
PROHIBITED = "203.0.113.200"  # S: "prohibit" route -> EACCES
S_OWN_PORT = 8080             # a service on S's own 198.51.100.1
S_TARGET_SIDE6, T_ADDR6 = "2001:db8:100::1", "2001:db8:100::80"
S_TUNNEL6, C_TUNNEL6 = "fd88::1", "fd88::2"
UNREACHABLE6 = "2001:db8:dead::5"  # S: "unreachable" route

BIG_LEN = 8 << 20

TARGET_SCRIPT = r'''
import hashlib, http.server, socket, socketserver, sys, threading
body = sys.argv[1].encode()
big = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range((8 << 20) // 32))
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        data = big if self.path == "/big" else body
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_PUT(self):
        n = int(self.headers["Content-Length"])
        h = hashlib.sha256()
        while n:
            d = self.rfile.read(min(n, 65536))
            if not d:
                break
            h.update(d)
            n -= len(d)
        out = h.hexdigest().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        print("http", self.client_address[0], flush=True)
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
fam = socket.AF_INET6 if ":" in sys.argv[2] else socket.AF_INET
S.address_family = fam
srv = S((sys.argv[2], int(sys.argv[3])), H)
def udp_echo():
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.bind((sys.argv[2], 7))
    while True:
        d, a = u.recvfrom(65535)
        print("udp", a, len(d), flush=True)
        u.sendto(d, a)
if len(sys.argv) > 4:
    threading.Thread(target=udp_echo, daemon=True).start()
print("ready", flush=True)
srv.serve_forever()
'''

CLIENT_UDP = r'''
import errno, socket, sys, time
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(float(sys.argv[4]))
s.connect((sys.argv[1], int(sys.argv[2])))
payload = sys.argv[3].encode()
for attempt in range(3):
    s.send(payload)
    try:
        d = s.recv(65535)
    except socket.timeout:
        continue
    except ConnectionRefusedError:
        print("refused"); sys.exit(0)
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno))); sys.exit(0)
    print("reply", d.decode()); sys.exit(0)
print("timeout")
'''


# A TCP connect from C. Python's socket.connect() with a timeout polls once and trusts a single
# SO_ERROR read; on this kernel (6.18) poll() now and then reports POLLERR for a SYN that an ICMP
# error is failing while SO_ERROR still reads 0 (it reads EHOSTUNREACH a moment later), and
# connect() then returns as if connected although no SYN-ACK ever arrived (tcpdump on wg0 shows
# only the SYN and the ICMP; getpeername() says ENOTCONN). That is what made a denied destination
# look "connected" once in CI. So: "connected" only when getpeername() confirms an established
# connection; readiness without an outcome yet means poll again.
CLIENT_TCP = r'''
import errno, select, socket, sys, time
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_STREAM)
s.setblocking(False)
t0 = time.monotonic()
deadline = t0 + float(sys.argv[3])
rc = s.connect_ex((sys.argv[1], int(sys.argv[2])))
r = None
if rc not in (0, errno.EINPROGRESS):
    r = errno.errorcode.get(rc, str(rc))
p = select.poll()
p.register(s, select.POLLOUT | select.POLLERR)
while r is None:
    left = deadline - time.monotonic()
    if left <= 0 or not p.poll(max(1, int(left * 1000))):
        r = "timeout"
        break
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        r = errno.errorcode.get(err, str(err))
        break
    try:
        s.getpeername()
        r = "connected"
    except OSError:
        time.sleep(0.001)  # ready without an outcome yet (see above): ask again
print(r, round(time.monotonic() - t0, 3))
'''


def _free_netns_dir(name):
    d = pathlib.Path("/etc/netns") / name
    shutil.rmtree(d, ignore_errors=True)


class ExitLab:
    def __init__(self, lab):
        self.lab = lab
        self.c, self.s, self.t = lab.netns("c"), lab.netns("s"), lab.netns("t")
        self.cs = lab.veth(self.c, self.s, f"{C_UNDERLAY}/24", f"{S_UNDERLAY}/24")
        self.st = lab.veth(self.s, self.t, f"{S_TARGET_SIDE}/24", f"{T_ADDR}/24",
                           addr6_a=f"{S_TARGET_SIDE6}/64", addr6_b=f"{T_ADDR6}/64")
        # Per-namespace /etc files (ip netns exec bind-mounts /etc/netns/NAME/* over /etc/*).
        for ns in (self.c, self.s):
            d = pathlib.Path("/etc/netns") / ns.name
            d.mkdir(parents=True, exist_ok=True)
            ns.on_close(lambda n=ns.name: _free_netns_dir(n))
        (pathlib.Path("/etc/netns") / self.c.name / "resolv.conf").write_text(
            f"nameserver {S_TUNNEL}\noptions timeout:2 attempts:2\n")
        (pathlib.Path("/etc/netns") / self.s.name / "hosts").write_text(
            f"127.0.0.1 localhost\n{T_ADDR} target.test\n")
        (pathlib.Path("/etc/netns") / self.s.name / "resolv.conf").write_text(
            "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        # S: special routes, and a service on its own address that the exit must not reach.
        self.s.run(["ip", "route", "add", "unreachable", "203.0.113.0/25"])
        self.s.run(["ip", "route", "add", "prohibit", "203.0.113.128/25"])
        self.s.run(["ip", "-6", "route", "add", "unreachable", "2001:db8:dead::/48"])
        self.own_srv = self.s.popen([sys.executable, "-c", TARGET_SCRIPT, "S-OWN", S_TARGET_SIDE,
                                     str(S_OWN_PORT)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        # T: HTTP + UDP echo; TCP :9 dropped silently (for the connect timeout).
        self.t_log = self.t.file("target.log")
        self.t_out = open(self.t_log, "wb")
        for addr in (T_ADDR, T_ADDR6):
            self.t.popen([sys.executable, "-c", TARGET_SCRIPT, HTTP_BODY.decode(), addr, "80",
                          "udp"], stdout=self.t_out, stderr=subprocess.STDOUT)
        self.has_nft = shutil.which("nft") is not None
        if self.has_nft:
            self.t.run(["nft", "add table inet f; add chain inet f in "
                        "{ type filter hook input priority 0; }; "
                        "add rule inet f in tcp dport 9 drop"])
        # Unprivileged ICMP sockets for the exit's ping proxy (root's group 0 in range).
        self.s.run(["sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647"])
        # Keys, the server, the client.
        self.s_priv, self.s_pub = keypair()
        self.c_priv, self.c_pub = keypair()
        self.server = lab.awgproxy(self.s, "server", self.server_conf())
        self.server.wait_log(r"event=started.*role=server|role=server.*event=started", timeout=10)
        self.wg = lab.wireguard_go(self.c, private_key=self.c_priv,
                                   address=[f"{C_TUNNEL}/24", f"{C_TUNNEL6}/64"],
                                   peers=[{"public_key": self.s_pub,
                                           "endpoint": f"{S_UNDERLAY}:{WG_PORT}",
                                           "allowed_ips": "0.0.0.0/0,::/0",
                                           "persistent_keepalive": 25}])
        for net in ("198.51.100.0/24", "203.0.113.0/24", "10.99.0.0/16", "192.168.200.0/24",
                    "100.64.0.0/10", "172.16.0.0/12"):
            self.c.run(["ip", "route", "add", net, "dev", self.wg.ifname])
        for net in ("2001:db8:100::/64", "2001:db8:dead::/48", "fd99::/16", "64:ff9b::/96"):
            self.c.run(["ip", "-6", "route", "add", net, "dev", self.wg.ifname])
        self.wait_ready()

    def server_conf(self):
        return (f"[Interface]\nPrivateKey = {self.s_priv}\nListenPort = {WG_PORT}\n"
                f"Address = {S_TUNNEL}/24, {S_TUNNEL6}/64\n\n"
                f"[Socks]\nConnectTimeout = 2\nIdleTimeout = 30\n\n"
                f"[Peer]\nPublicKey = {self.c_pub}\nAllowedIPs = {C_TUNNEL}/32, {C_TUNNEL6}/128\n")

    def wait_ready(self):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if netns.ping(self.c, S_TUNNEL, count=1, wait=1).received:
                break
        else:
            raise AssertionError(f"no ping through the tunnel\n{self.lab.logs()}")
        def target_up():
            return pathlib.Path(self.t_log).read_bytes().count(b"ready") == 2
        assert netns.wait_until(target_up, 30), "target servers did not start"

    def curl(self, url, *opts, max_time=10):
        t0 = time.monotonic()
        r = self.c.run(["curl", "-sS", "--max-time", str(max_time), *opts, url], check=False,
                       timeout=max_time + 10)
        return r, time.monotonic() - t0

    def connect(self, host, port, timeout=10.0):
        """A plain TCP connect from C: (result, seconds); result is "connected", "timeout" or
        the errno name (ECONNREFUSED, EHOSTUNREACH, ...)."""
        r = self.c.run([sys.executable, "-c", CLIENT_TCP, host, str(port), str(timeout)],
                       check=False, timeout=timeout + 20)
        res, took = r.stdout.split()
        return res, float(took)

    def udp(self, host, port, payload, timeout=2.0):
        r = self.c.run([sys.executable, "-c", CLIENT_UDP, host, str(port), payload, str(timeout)],
                       check=False, timeout=30)
        return r.stdout.strip()

    def logs(self):
        return self.lab.logs(60)


@pytest.fixture(scope="module")
def xl(tmp_path_factory):
    with netns.open_lab(tmp_path_factory.mktemp("exit"),
                        tools=("ping", "wg", "wireguard-go", "curl")) as lab:
        yield ExitLab(lab)


def test_tcp_http_to_public_destination(xl):
    # The connect helper reports a real handshake as such (the denial tests rely on it).
    res, _ = xl.connect(T_ADDR, 80)
    assert res == "connected", f"{res}\n{xl.logs()}"
    r, took = xl.curl(f"http://{T_ADDR}/")
    assert r.returncode == 0, f"{r.stderr}\n{xl.logs()}"
    assert r.stdout.encode() == HTTP_BODY
    # Several in a row and in parallel: each gets its own accepted lwIP connection.
    procs = [subprocess.Popen(xl.c.argv(["curl", "-sS", "--max-time", "10",
                                         f"http://{T_ADDR}/"]),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(8)]
    outs = [p.communicate(timeout=30) for p in procs]
    assert all(p.returncode == 0 for p in procs), f"{outs}\n{xl.logs()}"
    assert all(o[0] == HTTP_BODY for o in outs)


def test_tcp_large_transfer_both_ways(xl, tmp_path):
    import hashlib
    big = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(BIG_LEN // 32))
    out = tmp_path / "down.bin"
    r = xl.c.run(["curl", "-sS", "--max-time", "60", "-o", str(out), f"http://{T_ADDR}/big"],
                 check=False, timeout=90)
    assert r.returncode == 0, f"{r.stderr}\n{xl.logs()}"
    assert out.read_bytes() == big
    up = tmp_path / "up.bin"
    up.write_bytes(big[::-1])
    r = xl.c.run(["curl", "-sS", "--max-time", "20", "-T", str(up), f"http://{T_ADDR}/up"],
                 check=False, timeout=90)
    assert r.returncode == 0, f"{r.stderr}\n{xl.logs()}"
    assert r.stdout.strip() == hashlib.sha256(big[::-1]).hexdigest()


def test_tcp_refused_port_is_fast(xl):
    res, took = xl.connect(T_ADDR, 81)
    assert res == "ECONNREFUSED", f"{res}\n{xl.logs()}"
    assert took < 0.5, f"refusal took {took:.2f} s"
    r, _ = xl.curl(f"http://{T_ADDR}:81/")
    assert r.returncode == 7, r.stderr  # curl: couldn't connect


def test_tcp_unreachable_destination(xl):
    res, took = xl.connect(UNREACHABLE, 80)
    assert res == "EHOSTUNREACH", f"{res}\n{xl.logs()}"  # ICMP host unreachable
    assert took < 0.5, f"took {took:.2f} s"


def test_tcp_locally_prohibited_destination(xl):
    res, took = xl.connect(PROHIBITED, 80)
    assert res == "EHOSTUNREACH", f"{res}\n{xl.logs()}"  # ICMP administratively prohibited
    assert took < 0.5, f"took {took:.2f} s"


def test_tcp_connect_timeout(xl):
    if not xl.has_nft:
        netns._skip("nft is not installed: no silent drop on the target")
    res, took = xl.connect(T_ADDR, 9, timeout=15)
    assert res == "EHOSTUNREACH", f"{res}\n{xl.logs()}"  # ICMP host unreachable after the timeout
    assert 1.5 < took < 4.0, f"took {took:.2f} s (ConnectTimeout = 2)"


def test_udp_echo(xl):
    out = xl.udp(T_ADDR, 7, "ping-5d1c")
    assert out == "reply ping-5d1c", f"{out}\n{xl.logs()}"
    # A second flow from another source port, and a larger datagram (IP fragments inside the
    # tunnel on the way back).
    big = "x" * 3000
    out = xl.udp(T_ADDR, 7, big)
    assert out == f"reply {big}", f"{out[:80]}\n{xl.logs()}"


def test_udp_closed_port_reports_refused(xl):
    out = xl.udp(T_ADDR, 5999, "anyone")
    assert out == "refused", f"{out}\n{xl.logs()}"


def test_dns_through_server_resolver(xl):
    r = xl.c.run(["getent", "ahostsv4", "target.test"], check=False)
    assert r.returncode == 0 and T_ADDR in r.stdout, f"{r.stdout}{r.stderr}\n{xl.logs()}"
    r, took = xl.curl("http://target.test/")
    assert r.returncode == 0, f"{r.stderr}\n{xl.logs()}"
    assert r.stdout.encode() == HTTP_BODY


DNS_CLIENT = r'''
import socket, struct, sys
def q(name, qtype, flags=0x0100, qid=0x4242):
    m = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 0)
    for l in name.split("."):
        m += bytes([len(l)]) + l.encode()
    return m + bytes([0]) + struct.pack(">HH", qtype, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[1], 53))
for name, qtype, flags in (("target.test", 1, 0x0100), ("target.test", 28, 0x0100),
                           ("target.test", 16, 0x0100), ("target.test", 1, 0x8100)):
    s.send(q(name, qtype, flags))
    try:
        r = s.recv(600)
    except socket.timeout:
        print(qtype, flags, "timeout"); continue
    qid, fl, qd, an = struct.unpack(">HHHH", r[:8])
    addrs = []
    if an and qtype == 1:
        addrs = [socket.inet_ntoa(r[-4:])]
    print(qtype, flags, hex(qid), hex(fl), qd, an, *addrs)
'''


def test_dns_messages(xl):
    r = xl.c.run([sys.executable, "-c", DNS_CLIENT, S_TUNNEL], check=False, timeout=30)
    lines = r.stdout.splitlines()
    assert lines == [
        f"1 256 0x4242 0x8180 1 1 {T_ADDR}",   # A: the address from S's /etc/hosts
        "28 256 0x4242 0x8180 1 0",            # AAAA: NOERROR, no data
        "16 256 0x4242 0x8180 1 0",            # TXT: not served, NOERROR without data
        "1 33024 timeout",                     # a response is never answered
    ], f"{r.stdout}{r.stderr}\n{xl.logs()}"


# 172.16.5.5 once came out "connected" in a full CI run: a client-side kernel race in Python's
# connect(), not an answer from the exit (see CLIENT_TCP). The helper now only reports
# "connected" for an established connection.
@pytest.mark.parametrize("dst", ["10.99.1.1", "192.168.200.1", "100.64.0.1", "172.16.5.5"])
def test_private_destinations_denied(xl, dst):
    res, took = xl.connect(dst, 80)
    assert res == "EHOSTUNREACH", f"{res}\n{xl.logs()}"  # ICMP administratively prohibited
    assert took < 0.5, f"took {took:.2f} s"
    assert re.search(rf"event=denied proto=tcp dst={re.escape(dst)}:80 ", xl.server.log())
    out = xl.udp(dst, 53, "q", timeout=1.0)
    assert out == "EHOSTUNREACH", out  # ICMP administratively prohibited
    assert re.search(rf"event=denied proto=udp dst={re.escape(dst)}:53", xl.server.log())


def test_server_own_addresses_denied(xl):
    # S's own interface address (routed into the tunnel by C): the service there stays closed.
    res, took = xl.connect(S_TARGET_SIDE, S_OWN_PORT)
    assert res == "EHOSTUNREACH" and took < 0.5, f"{res} {took}\n{xl.logs()}"
    assert re.search(rf"event=denied proto=tcp dst={S_TARGET_SIDE}:{S_OWN_PORT} "
                     r"reason=\"the server's own", xl.server.log())
    # The server's tunnel address is lwIP's own: nothing listens on :22, so a RST at once.
    res, took = xl.connect(S_TUNNEL, 22)
    assert res == "ECONNREFUSED" and took < 0.5, f"{res} {took}"


def test_ping(xl):
    assert "event=started" in xl.server.log() and "icmp_echo=proxied" in xl.server.log()
    ok = netns.ping(xl.c, S_TUNNEL, count=2, wait=2)  # lwIP itself
    assert ok.received == 2, ok
    ok = netns.ping(xl.c, T_ADDR, count=3, wait=2, interval=0.2)  # proxied through a ping socket
    assert ok.received == 3, f"{ok}\n{xl.logs()}"
    ok = netns.ping(xl.c, T_ADDR, count=1, wait=2, size=3000)  # fragments both ways
    assert ok.received == 1, ok
    r = xl.c.run(["ping", "-6", "-n", "-c", "2", "-i", "0.2", "-W", "2", T_ADDR6], check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    # Denied by the policy: "administratively prohibited", which ping calls "Packet filtered".
    r = xl.c.run(["ping", "-n", "-c", "1", "-W", "2", "10.99.1.1"], check=False)
    assert r.returncode != 0 and "Packet filtered" in r.stdout, r.stdout
    # No route on the server: the ping socket's error comes back as ICMP unreachable.
    r = xl.c.run(["ping", "-n", "-c", "1", "-W", "2", UNREACHABLE], check=False)
    assert r.returncode != 0 and "Unreachable" in r.stdout, r.stdout


def test_source_outside_allowed_ips_is_dropped(xl):
    # A second address on C's wg0 outside the peer's AllowedIPs (10.88.0.2/32): the server's
    # tunnel layer drops its packets, so nothing reaches the target.
    xl.c.run(["ip", "addr", "add", "10.88.0.77/32", "dev", xl.wg.ifname])
    try:
        r, took = xl.curl(f"http://{T_ADDR}/", "--interface", "10.88.0.77", max_time=3)
        assert r.returncode == 28, f"{r.stdout}{r.stderr}"  # timeout: dropped silently
        assert "inner source not in the peer's AllowedIPs" in xl.server.log()
    finally:
        xl.c.run(["ip", "addr", "del", "10.88.0.77/32", "dev", xl.wg.ifname], check=False)


def test_server_still_healthy(xl):
    r, _ = xl.curl(f"http://{T_ADDR}/")
    assert r.returncode == 0 and r.stdout.encode() == HTTP_BODY
    assert xl.server.alive(), xl.logs()
    assert "lwIP assertion" not in xl.server.log()


def test_ipv6_tcp_udp(xl):
    r, _ = xl.curl(f"http://[{T_ADDR6}]/")
    assert r.returncode == 0 and r.stdout.encode() == HTTP_BODY, f"{r.stderr}\n{xl.logs()}"
    res, took = xl.connect(T_ADDR6, 81)
    assert res == "ECONNREFUSED" and took < 0.5, (res, took)
    out = xl.udp(T_ADDR6, 7, "v6-echo")
    assert out == "reply v6-echo", f"{out}\n{xl.logs()}"
    big = "y" * 3000
    assert xl.udp(T_ADDR6, 7, big) == f"reply {big}"


def test_ipv6_refusals(xl):
    res, took = xl.connect(UNREACHABLE6, 80)
    assert res in ("ENETUNREACH", "EHOSTUNREACH") and took < 0.5, (res, took)
    # ULA, and a NAT64 address that embeds a private IPv4 address: ICMPv6 prohibited (EACCES).
    for dst in ("fd99::1", "64:ff9b::a63:101"):
        res, took = xl.connect(dst, 80)
        assert res == "EACCES" and took < 0.5, (dst, res, took)
    # S's own address on the target link.
    res, took = xl.connect(S_TARGET_SIDE6, S_OWN_PORT)
    assert res == "EACCES" and took < 0.5, (res, took)
    ok = netns.ping(xl.c, S_TUNNEL6, count=1, wait=2)
    assert ok.received == 1, ok


HOLD_OPEN = r'''
import socket, sys, time
fam = socket.AF_INET
a = socket.create_connection((sys.argv[1], 80), timeout=5)   # established, idle
b = socket.socket(fam, socket.SOCK_STREAM); b.setblocking(False)
try:
    b.connect((sys.argv[1], 9))                              # connecting out (dropped by T)
except BlockingIOError:
    pass
u = socket.socket(fam, socket.SOCK_DGRAM); u.sendto(b"x", (sys.argv[1], 7))  # a UDP flow
print("held", flush=True)
time.sleep(30)
'''


@pytest.fixture
def fresh(tmp_path):
    """A server of its own for the stop test, so that no test depends on running before it."""
    with netns.open_lab(tmp_path, tools=("ping", "wg", "wireguard-go", "curl")) as lab:
        yield ExitLab(lab)


def test_server_stops_cleanly_with_flows_open(fresh):
    """SIGTERM while a relay, a pending connect and a UDP flow exist."""
    xl = fresh
    p = xl.c.popen([sys.executable, "-c", HOLD_OPEN, T_ADDR], stdout=subprocess.PIPE)
    assert p.stdout.readline().strip() == b"held"
    time.sleep(0.5)
    rc = xl.server.stop(timeout=10)
    log = xl.server.log()
    # A clean exit: no memory error and, under the sanitizers, no leak (the daemon lets closing
    # streams free themselves before it closes what is left).
    assert rc == 0, f"rc={rc}\n{xl.server.log_tail(80)}"
    assert "LeakSanitizer" not in log and "ERROR: AddressSanitizer" not in log and \
        "runtime error" not in log, xl.server.log_tail(80)
