"""`awgproxy server`'s own SOCKS5 service (src/exit/exit_socks.c): [Server] Socks on the tunnel
addresses, [Server] LocalSocks on the server machine, both under the exit policy.

The lab is test_server_exit.py's (ExitLab): C runs Debian's wireguard-go (10.88.0.2, fd88::2), S
runs awgproxy server (tunnel 10.88.0.1, fd88::1; /etc/hosts: target.test -> 198.51.100.80; a
service on its own 198.51.100.1:8080; routes 203.0.113.0/25 unreachable, 203.0.113.128/25
prohibit; no default route), T is the target (HTTP :80, nothing on :81, TCP :9 dropped). Here the
server also has LocalSocks = 127.0.0.1:1081 and a [Socks] User, which LocalSocks requires and the
tunnel listener does not (peers are authenticated by their keys).

Checked: curl --socks5 / --socks5-hostname / PySocks through the tunnel listener (IPv4 and
IPv6), each SOCKS5 reply code provoked with raw bytes, the port absent from the host's real
interfaces, LocalSocks with its login and the same policy, hostile input and the handshake
timeout, the service's counters in the metrics (under the client's names, accepted by
`promtool check metrics`) and in `awgproxy ctl streams`, and a clean stop with sessions open.
"""
import json
import re
import shutil
import socket
import subprocess
import time

import pytest

import netns
from clientlab import in_netns, recv_exact, socks4, socks5
from test_server_exit import (HTTP_BODY, PROHIBITED, S_OWN_PORT, S_TARGET_SIDE, S_TUNNEL,
                              S_TUNNEL6, S_UNDERLAY, T_ADDR, T_ADDR6, UNREACHABLE, ExitLab,
                              C_TUNNEL, WG_PORT)

SOCKS_PORT, LOCAL_PORT = 1080, 1081
TUN_PROXY = (S_TUNNEL, SOCKS_PORT)
LOCAL_PROXY = ("127.0.0.1", LOCAL_PORT)
HANDSHAKE_TIMEOUT = 3
USER, PASSWORD = "alice", "s3cret-5d1c"
NO_ROUTE = "8.8.8.8"  # S has no default route: ENETUNREACH
METRICS, CONTROL = "127.0.0.1:9412", "127.0.0.1:9413"  # on S




class SocksLab(ExitLab):
    def server_conf(self):
        return (f"[Interface]\nPrivateKey = {self.s_priv}\nListenPort = {WG_PORT}\n"
                f"Address = {S_TUNNEL}/24, {S_TUNNEL6}/64\n\n"
                f"[Socks]\nConnectTimeout = 2\nIdleTimeout = 30\n"
                f"HandshakeTimeout = {HANDSHAKE_TIMEOUT}\n"
                f"User = {USER}:{netns.password_hash(PASSWORD)}\n\n"
                f"[Server]\nSocks = {SOCKS_PORT}\nLocalSocks = 127.0.0.1:{LOCAL_PORT}\n\n"
                f"[Metrics]\nListen = {METRICS}\n\n[Control]\nListen = {CONTROL}\n\n"
                f"[Peer]\nPublicKey = {self.c_pub}\nAllowedIPs = {C_TUNNEL}/32, fd88::2/128\n")


@pytest.fixture(scope="module")
def xl(tmp_path_factory):
    with netns.open_lab(tmp_path_factory.mktemp("ssocks"),
                        tools=("ping", "wg", "wireguard-go", "curl", "ss")) as lab:
        yield SocksLab(lab)


def tun_socks5(xl, host, port, **kw):
    return socks5(xl.c, host, port, proxy=TUN_PROXY, **kw)


def curl_in(ns, url, *opts, max_time=15):
    return ns.run(["curl", "-sS", "--max-time", str(max_time), *opts, url], check=False,
                  timeout=max_time + 15)


def test_startup_log_lists_listeners(xl):
    # With [Server] Threads > 1 every worker serves Socks on the tunnel addresses and worker 0
    # alone LocalSocks: the line that names the local listener is worker 0's.
    line = xl.server.wait_log(rf"component=server_socks.*event=listening.*127\.0\.0\.1:{LOCAL_PORT}.*$",
                              timeout=15).group(0)
    assert f"{S_TUNNEL}:{SOCKS_PORT}" in line and f"[{S_TUNNEL6}]:{SOCKS_PORT}" in line, line
    assert f"127.0.0.1:{LOCAL_PORT}" in line, line
    for other in re.findall(r"^.*component=server_socks.*event=listening.*$", xl.server.log(), re.M):
        assert f"{S_TUNNEL}:{SOCKS_PORT}" in other, other


def connected_count(xl):
    return len(re.findall(r"component=server_socks .*event=connected", xl.server.log()))


def test_curl_socks5_through_tunnel(xl):
    before = connected_count(xl)
    for opt, url in (("--socks5", f"http://{T_ADDR}/"),
                     ("--socks5-hostname", "http://target.test/"),
                     ("--socks5", f"http://[{T_ADDR6}]/")):
        r = curl_in(xl.c, url, opt, f"{S_TUNNEL}:{SOCKS_PORT}")
        assert r.returncode == 0 and r.stdout.encode() == HTTP_BODY, \
            f"{opt} {url}: {r.stderr}\n{xl.logs()}"
    # The service on the IPv6 tunnel address, and a name resolved on the server.
    r = curl_in(xl.c, "http://target.test/", "--socks5-hostname", f"[{S_TUNNEL6}]:{SOCKS_PORT}")
    assert r.returncode == 0 and r.stdout.encode() == HTTP_BODY, f"{r.stderr}\n{xl.logs()}"
    # Each went through the server's SOCKS service (not the exit's transparent path).
    assert connected_count(xl) - before == 4, xl.logs()


def test_parallel_sessions(xl):
    procs = [subprocess.Popen(xl.c.argv(["curl", "-sS", "--max-time", "20", "--socks5-hostname",
                                         f"{S_TUNNEL}:{SOCKS_PORT}", "http://target.test/"]),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(8)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), f"{outs}\n{xl.logs()}"
    assert all(o[0] == HTTP_BODY for o in outs)


PYSOCKS = r'''
import socks, sys
s = socks.socksocket()
s.set_proxy(socks.SOCKS5, sys.argv[1], int(sys.argv[2]), rdns=True)
s.settimeout(15)
try:
    s.connect((sys.argv[3], int(sys.argv[4])))
except socks.ProxyError as e:
    print("error", e); sys.exit(0)
s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
print("body", data.partition(b"\r\n\r\n")[2].decode())
'''


def pysocks(ns, proxy, host, port):
    r = ns.run(["/usr/bin/python3", "-c", PYSOCKS, proxy[0], str(proxy[1]), host, str(port)],
               check=False, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_pysocks(xl):
    try:
        import socks  # noqa: F401
    except ImportError:
        netns._skip("PySocks is not installed for this python")
    out = pysocks(xl.c, TUN_PROXY, "target.test", 80)
    assert out == f"body {HTTP_BODY.decode().strip()}", f"{out}\n{xl.logs()}"
    out = pysocks(xl.c, TUN_PROXY, T_ADDR, 81)
    assert out.startswith("error") and "refused" in out.lower(), out


def test_socks4a_through_tunnel(xl):
    r = socks4(xl.c, "target.test", 80, proxy=TUN_PROXY)
    assert r.rep == 0x5A, f"{r}\n{xl.logs()}"
    r = socks4(xl.c, "127.0.0.1", 80, proxy=TUN_PROXY)
    assert r.rep == 0x5B, r


@pytest.mark.parametrize("host,port", [
    ("127.0.0.1", 80),             # loopback
    ("192.168.1.1", 80),           # RFC 1918
    ("100.64.0.1", 80),            # CGNAT
    (S_TARGET_SIDE, S_OWN_PORT),   # the server's own interface address
    (S_TUNNEL, SOCKS_PORT),        # the server's own tunnel address
    ("::1", 80),
    ("fd00::1", 80),               # ULA
    ("localhost", 80),             # a name resolving to loopback on the server
    (PROHIBITED, 80),              # allowed by the policy, prohibited by S's routing (EACCES)
])
def test_reply_not_allowed(xl, host, port):
    r = tun_socks5(xl, host, port)
    assert r.rep == 0x02, f"{host}: {r}\n{xl.logs()}"


def test_own_service_really_not_reached(xl):
    """The denial comes from the policy: S's own service on 198.51.100.1:8080 is up."""
    r = xl.s.run(["curl", "-sS", "--max-time", "5", f"http://{S_TARGET_SIDE}:{S_OWN_PORT}/"],
                 check=False)
    assert r.returncode == 0, r.stderr
    r = tun_socks5(xl, S_TARGET_SIDE, S_OWN_PORT)
    assert r.rep == 0x02, r


def test_reply_refused(xl):
    r = tun_socks5(xl, T_ADDR, 81)
    assert r.rep == 0x05, f"{r}\n{xl.logs()}"
    assert r.elapsed < 2, r


def test_reply_host_unreachable(xl):
    r = tun_socks5(xl, UNREACHABLE, 80)
    assert r.rep == 0x04, f"{r}\n{xl.logs()}"


def test_reply_net_unreachable(xl):
    r = tun_socks5(xl, NO_ROUTE, 80)
    assert r.rep == 0x03, f"{r}\n{xl.logs()}"


def test_reply_dns_failure(xl):
    r = tun_socks5(xl, "nx.invalid", 80)
    assert r.rep == 0x04, f"{r}\n{xl.logs()}"


def test_reply_timeout(xl):
    if not xl.has_nft:
        netns._skip("nft is not installed: no silent drop on the target")
    r = tun_socks5(xl, T_ADDR, 9, timeout=20)
    assert r.rep == 0x06, f"{r}\n{xl.logs()}"
    assert 1.5 < r.elapsed < 10, r  # ConnectTimeout = 2


@pytest.mark.parametrize("cmd", [2, 3, 9])  # BIND, UDP ASSOCIATE (not offered), unknown
def test_reply_command_not_supported(xl, cmd):
    r = tun_socks5(xl, T_ADDR, 80, cmd=cmd)
    assert r.rep == 0x07, f"{r}\n{xl.logs()}"


def test_reply_address_type_not_supported(xl):
    r = tun_socks5(xl, None, 0, request=b"\x05\x01\x00\x02" + b"\x00" * 6)
    assert r.rep == 0x08, r


def test_no_listener_on_real_interfaces(xl):
    # Nothing on the host: no OS socket bound to the SOCKS port in S.
    r = xl.s.run(["ss", "-Htln"])
    ports = [line.split()[3] for line in r.stdout.splitlines() if line.strip()]
    assert not [p for p in ports if p.endswith(f":{SOCKS_PORT}")], r.stdout
    assert [p for p in ports if p == f"127.0.0.1:{LOCAL_PORT}"], r.stdout
    # From C, S's underlay address refuses the port; the tunnel address serves it.
    with in_netns(xl.c):
        s = socket.socket()
        s.settimeout(5)
        assert s.connect_ex((S_UNDERLAY, SOCKS_PORT)) != 0
        s.close()
    r = tun_socks5(xl, T_ADDR, 80)
    assert r.rep == 0x00, r
    # Nor from inside S on its own addresses.
    with in_netns(xl.s):
        for addr in ("127.0.0.1", S_UNDERLAY, S_TUNNEL):
            s = socket.socket()
            s.settimeout(3)
            assert s.connect_ex((addr, SOCKS_PORT)) != 0, addr
            s.close()


def test_local_socks_with_login(xl):
    r = curl_in(xl.s, "http://target.test/", "--socks5-hostname", f"127.0.0.1:{LOCAL_PORT}",
                "--proxy-user", f"{USER}:{PASSWORD}")
    assert r.returncode == 0 and r.stdout.encode() == HTTP_BODY, f"{r.stderr}\n{xl.logs()}"
    r = curl_in(xl.s, "http://target.test/", "--socks5-hostname", f"127.0.0.1:{LOCAL_PORT}",
                "--proxy-user", f"{USER}:wrong")
    assert r.returncode != 0
    # Without a login offer: no acceptable method.
    r = socks5(xl.s, T_ADDR, 80, proxy=LOCAL_PROXY)
    assert r.method == 0xFF, r
    # The tunnel listener asks for nothing.
    r = tun_socks5(xl, T_ADDR, 80)
    assert r.method == 0x00 and r.rep == 0x00, r


def local_login_request(host, port):
    from clientlab import socks5_request_bytes
    u, p = USER.encode(), PASSWORD.encode()
    return (b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p, socks5_request_bytes(host, port))


def local_socks5(xl, host, port, timeout=20):
    """SOCKS5 with username/password on LocalSocks; returns the reply byte."""
    auth, req = local_login_request(host, port)
    with in_netns(xl.s):
        s = socket.create_connection(LOCAL_PROXY, timeout=timeout)
    try:
        deadline = time.monotonic() + timeout
        s.sendall(b"\x05\x01\x02")
        assert recv_exact(s, 2, deadline) == b"\x05\x02"
        s.sendall(auth)
        assert recv_exact(s, 2, deadline) == b"\x01\x00"
        s.sendall(req)
        h = recv_exact(s, 4, deadline)
        return h[1] if len(h) == 4 else None
    finally:
        s.close()


@pytest.mark.parametrize("host,port,rep", [
    ("127.0.0.1", 8080, 0x02),
    (S_TARGET_SIDE, S_OWN_PORT, 0x02),
    ("10.1.2.3", 80, 0x02),
    (T_ADDR, 81, 0x05),
    (T_ADDR, 80, 0x00),
])
def test_local_socks_same_policy(xl, host, port, rep):
    assert local_socks5(xl, host, port) == rep, xl.logs()


def raw(xl, chunks, half_close=False, wait=4.0):
    """Sends chunks to the tunnel listener, then reads until close/timeout: (closed, data)."""
    with in_netns(xl.c):
        s = socket.create_connection(TUN_PROXY, timeout=10)
    try:
        for c in chunks:
            s.sendall(c)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + wait
        data = b""
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                d = s.recv(65536)
            except socket.timeout:
                return False, data
            except OSError:
                return True, data
            if not d:
                return True, data
            data += d
        return False, data
    except (BrokenPipeError, ConnectionResetError):
        return True, b""
    finally:
        s.close()


GREETING = b"\x05\x01\x00"


def granted(data, greeting_sent):
    """A success reply anywhere in what came back (SOCKS5 REP 0 or SOCKS4 CD 0x5A)."""
    if greeting_sent and data.startswith(b"\x05\x00"):
        data = data[2:]
    return len(data) >= 2 and ((data[0] == 5 and data[1] == 0) or (data[0] == 0 and data[1] == 0x5A))


def test_bad_input(xl):
    ip = socket.inet_aton(T_ADDR)
    cases = {
        "truncated greeting": ([b"\x05"], True),
        "greeting: fewer methods than announced": ([b"\x05\x02\x00"], True),
        "truncated request": ([GREETING, b"\x05\x01\x00\x01" + ip[:2]], True),
        "truncated name": ([GREETING, b"\x05\x01\x00\x03\x0btarget"], True),
        "socks4a: name cut": ([b"\x04\x01\x00\x50\x00\x00\x00\x01\x00target.te"], True),
        "version 0x06": ([b"\x06\x01\x00"], False),
        "HTTP request": ([b"GET / HTTP/1.1\r\nHost: target.test\r\n\r\n"], False),
        "request with VER 4": ([GREETING, b"\x04\x01\x00\x01" + ip + b"\x00\x50"], False),
        "64 KB of junk as the request": ([GREETING, b"\x41" * 65536], False),
        "socks4 user-id of 4000 bytes": ([b"\x04\x01\x00\x50" + ip + b"u" * 4000 + b"\0"], False),
        "1 MB after 0x05": ([b"\x05" + bytes(range(256)) * 4096], False),
        "zero-length name": ([GREETING, b"\x05\x01\x00\x03\x00\x00\x50"], False),
    }
    bad = []
    for what, (chunks, half_close) in cases.items():
        closed, data = raw(xl, chunks, half_close=half_close)
        if not closed or granted(data, chunks[0] == GREETING):
            bad.append(f"{what}: closed={closed}, received {data[:40].hex()}")
    assert xl.server.alive(), xl.logs()
    assert not bad, "\n".join(bad) + "\n" + xl.logs()
    # A silent client is dropped after HandshakeTimeout.
    t0 = time.monotonic()
    closed, data = raw(xl, [GREETING], wait=HANDSHAKE_TIMEOUT + 10)
    assert closed and data == b"\x05\x00", data
    assert time.monotonic() - t0 >= HANDSHAKE_TIMEOUT - 0.5
    # Still serving.
    r = tun_socks5(xl, "target.test", 80)
    assert r.rep == 0x00, f"{r}\n{xl.logs()}"


def scrape(xl):
    r = xl.s.run(["curl", "-sS", "--max-time", "5", f"http://{METRICS}/metrics"], check=False,
                 timeout=20)
    assert r.returncode == 0, r.stderr
    return r.stdout


def sample(text, name):
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert m, f"{name} missing from the scrape:\n{text}"
    return float(m.group(1))


def ctl_streams(xl):
    r = xl.s.run([str(netns.awgproxy_binary()), "ctl", "--connect", CONTROL, "--json", "streams"],
                 check=False, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_metrics_and_ctl_count_the_service(xl):
    """The server's SOCKS counters are reported as the client's are: N denied requests move
    awgproxy_stream_failures_total{reply="not-allowed"} and connections_total by exactly N, and
    `ctl streams` shows the same; a relay is a socks_tcp stream. Nothing else uses the service
    while this runs (tests run one at a time)."""
    n = 3
    before, st_before = scrape(xl), ctl_streams(xl)["socks"]
    for _ in range(n):
        assert tun_socks5(xl, S_TARGET_SIDE, S_OWN_PORT).rep == 0x02
    relayed = tun_socks5(xl, T_ADDR, 80, keep=True)
    try:
        assert relayed.rep == 0 and relayed.sock is not None, relayed
        after, st_after = scrape(xl), ctl_streams(xl)
    finally:
        if relayed.sock:
            relayed.sock.close()
    denied = 'awgproxy_stream_failures_total{reply="not-allowed"}'
    assert sample(after, denied) - sample(before, denied) == n, after
    assert (sample(after, "awgproxy_socks_connections_total")
            - sample(before, "awgproxy_socks_connections_total")) == n + 1
    for rep in ("general-failure", "connection-refused", "host-unreachable"):
        name = f'awgproxy_stream_failures_total{{reply="{rep}"}}'
        assert sample(after, name) == sample(before, name), name
    assert sample(after, 'awgproxy_streams_active{kind="socks_tcp"}') >= 1
    assert 'awgproxy_build_info{version=' in after and 'role="server"' in after
    socks = st_after["socks"]
    assert socks["failures_by_reply"]["not-allowed"] - \
        st_before["failures_by_reply"]["not-allowed"] == n, socks
    assert socks["accepted"] - st_before["accepted"] == n + 1, socks
    assert st_after["by_kind"]["socks_tcp"] >= 1, st_after
    human = xl.s.run([str(netns.awgproxy_binary()), "ctl", "--connect", CONTROL, "streams"],
                     check=False, timeout=30)
    assert human.returncode == 0 and re.search(r"^socks: \d+ connections accepted", human.stdout,
                                               re.M), human.stdout
    promtool = shutil.which("promtool")
    if promtool is None:
        netns._skip("promtool is not installed (Debian package prometheus; scripts/setup-deps.sh)")
    r = subprocess.run([promtool, "check", "metrics"], input=after, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, f"promtool check metrics: {r.stdout}{r.stderr}"


def test_sessions_counted_in_logs(xl):
    """Each outcome of a request leaves its log line (made here: not relying on other tests)."""
    assert tun_socks5(xl, S_TARGET_SIDE, S_OWN_PORT).rep == 0x02
    assert tun_socks5(xl, T_ADDR, 80).rep == 0
    log = xl.server.log()
    assert re.search(r"component=server_socks.*event=request_failed.*reply=not-allowed", log), \
        log[-2000:]
    assert re.search(r"component=server_socks.*event=connected", log), log[-2000:]


@pytest.fixture
def fresh(tmp_path):
    """A lab of its own, for the stop test: it counts exactly what it did."""
    with netns.open_lab(tmp_path, tools=("ping", "wg", "wireguard-go", "curl", "ss")) as lab:
        yield SocksLab(lab)


def test_stops_cleanly_with_sessions_open(fresh):
    """SIGTERM with a relay, a session stuck in its greeting and a local one open; the stopped
    line's totals are exactly what this test made: 2 succeeded (one relay still open), 3 denied,
    1 broken handshake, plus the 2 left in their greeting."""
    xl = fresh
    for _ in range(3):
        assert tun_socks5(xl, S_TARGET_SIDE, S_OWN_PORT).rep == 0x02
    assert tun_socks5(xl, T_ADDR, 80).rep == 0
    closed, _ = raw(xl, [b"\x06\x01\x00"], half_close=False)
    assert closed
    relayed = tun_socks5(xl, T_ADDR, 80, keep=True)
    assert relayed.rep == 0 and relayed.sock is not None, relayed
    with in_netns(xl.c):
        idle = socket.create_connection(TUN_PROXY, timeout=10)
    idle.sendall(b"\x05\x01\x00")
    with in_netns(xl.s):
        local = socket.create_connection(LOCAL_PROXY, timeout=10)
    local.sendall(b"\x05\x01\x02")
    time.sleep(0.5)
    rc = xl.server.stop()
    assert rc == 0, xl.server.log_tail(40)
    log = xl.server.log()
    assert "event=stopped" in log
    # One line per process that ran the service: each worker of a server with Threads > 1
    # counts its own peers' sessions, so the totals are their sum.
    lines = re.findall(r"component=server_socks event=stopped accepted=(\d+) succeeded=(\d+) "
                       r"failed=(\d+) handshake_failures=(\d+)", log)
    assert lines, log[-3000:]
    accepted, ok, failed, hs = (sum(int(x[i]) for x in lines) for i in range(4))
    assert (ok, failed, hs) == (2, 3, 1), lines
    assert accepted == 8, lines  # and the two still in their greeting when it stopped
    for s in (relayed.sock, idle, local):
        s.close()
