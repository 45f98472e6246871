"""Three-namespace lab for `awgproxy client` (SOCKS through the tunnel), shared by the client tests.

    C (client)  awgproxy client, SOCKS on 127.0.0.1:1080          underlay 192.0.2.2/24
        |  veth 192.0.2.0/24
    S (server)  the server, tunnel addresses 10.66.0.1/24, fd66::1/64; 192.0.2.1 / 198.51.100.1:
                "wireguard-go": Debian's wireguard-go on TUN, IP forwarding, NAT (nft masquerade
                towards T);
                "awgproxy": `awgproxy server` (userspace exit: no TUN, no forwarding, no NAT; it
                connects to T from 198.51.100.1 itself and answers DNS on 10.66.0.1:53 with S's
                resolver, whose /etc/netns/S/resolv.conf points at T's DNS server)
        |  veth 198.51.100.0/24 (and 2001:db8:100::/64)
    T (target)  HTTP on :80 and echo on :7 (198.51.100.80, 2001:db8:100::80, dual stack),
                DNS on 198.51.100.53:53 (tiny Python server, see TARGET_SCRIPT)

build_topology(lab, server=...) picks the server kind (SERVER_KINDS); the client side and the
tests are the same for both.

C has routes only for 192.0.2.0/24 (and lo): anything that leaks outside the tunnel fails.
awgproxy's [Interface] Address is 10.66.0.2/32 (plus fd66::2/128 with v6_client=True), DNS =
198.51.100.53 with wireguard-go (T's server, reached through the NAT) or 10.66.0.1 with our
server (its DNS responder on the tunnel address, as a stock client config would have it), one
[Peer] (S) with AllowedIPs = 0.0.0.0/0, ::/0 and PersistentKeepalive = 25.

Extras for the reply-code tests:
  * 198.51.100.99 swallows SYNs silently (-> ConnectTimeout, 0x06): a blackhole route in S with
    wireguard-go (forwarded packets vanish); with our server, whose own connect() would fail at
    once on a blackhole route (EINVAL), the address lives on T and T's nft drops TCP to it. Our
    server's own ConnectTimeout is 30 s, so the client's (5 s) decides.
  * S has no default route: 203.0.113.1 draws an ICMP "net unreachable" through the tunnel (from
    S's kernel with wireguard-go; from the exit, whose connect() fails with ENETUNREACH, with
    ours). net.ipv4.icmp_ratelimit = 0 so repeated tests always get one.
  * NAT (wireguard-go only): nft (Debian package nftables) masquerades on S's T-facing
    interface. Without nft, T gets a route back to 10.66.0.0/24 (and fd66::/64) via S instead;
    the tests work the same (the only difference is the source address T sees). `topo.nat`
    tells which one is in use.

DNS names (answered by T's tiny server, TTL 5):
  target.test   A 198.51.100.80
  v6only.test   AAAA 2001:db8:100::80 (no A)
  dual.test     A 198.51.100.80 and AAAA 2001:db8:100::80
  noaddr.test   exists, no records (NODATA)
  anything else NXDOMAIN (e.g. nx.test)

The test process talks to the SOCKS port in C directly: in_netns(ns) switches the *calling thread*
into a namespace (setns(2) through ctypes), so sockets made inside the `with` belong to C and stay
there afterwards. socks5()/socks4() are hand-written SOCKS clients that return the raw reply.
"""
import contextlib
import ctypes
import hashlib
import ipaddress
import json
import os
import pathlib
import re
import shutil
import socket
import struct
import sys
import time

import impair
import netns
from netns import keypair

C_UNDERLAY, S_UNDERLAY = "192.0.2.2", "192.0.2.1"
S_TARGET_SIDE, T_HTTP, T_DNS = "198.51.100.1", "198.51.100.80", "198.51.100.53"
S_TARGET_SIDE6, T_HTTP6 = "2001:db8:100::1", "2001:db8:100::80"
S_TUNNEL, C_TUNNEL = "10.66.0.1", "10.66.0.2"
S_TUNNEL6, C_TUNNEL6 = "fd66::1", "fd66::2"
WG_PORT = 51820
SOCKS_PORT = 1080
HTTP_PORT, ECHO_PORT, CLOSED_PORT = 80, 7, 81
BLACKHOLE = "198.51.100.99"      # SYNs to it vanish (see above)
SERVER_KINDS = ("wireguard-go", "awgproxy")
UNROUTED = "203.0.113.1"         # S has no route: ICMP net unreachable
TARGET_NAME, V6_NAME, DUAL_NAME, NODATA_NAME, NX_NAME = (
    "target.test", "v6only.test", "dual.test", "noaddr.test", "nx.test")
HTTP_BODY = b"awgproxy target T says hello: 7f3c9e1d-http-body\n"

DNS_RECORDS = {
    TARGET_NAME: {"A": [T_HTTP]},
    V6_NAME: {"AAAA": [T_HTTP6]},
    DUAL_NAME: {"A": [T_HTTP], "AAAA": [T_HTTP6]},
    NODATA_NAME: {},
}


# ---- namespaces from the test process ------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def _setns(fd):
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


@contextlib.contextmanager
def in_netns(ns):
    """Runs the body with the calling thread in namespace ns; sockets created inside stay there."""
    with open("/proc/thread-self/ns/net") as orig, open(f"/run/netns/{ns.name}") as target:
        _setns(target.fileno())
        try:
            yield
        finally:
            _setns(orig.fileno())


def connect_in(ns, host="127.0.0.1", port=SOCKS_PORT, timeout=10.0):
    """A TCP connection made from inside ns (by default to the SOCKS port)."""
    with in_netns(ns):
        return socket.create_connection((host, port), timeout=timeout)


# ---- the target's servers (HTTP, echo, DNS) ------------------------------------------------------

TARGET_SCRIPT = r'''
import json, socket, socketserver, struct, sys, threading, http.server

cfg = json.loads(sys.argv[1])
body = cfg["body"].encode("latin-1")
records = cfg["records"]

LOG = threading.Lock()

def log(*a):
    with LOG:  # print() writes in pieces: lines from two threads would interleave
        print(*a, flush=True)

class Dual(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
    def __init__(self, addr, handler, v6):
        self.address_family = socket.AF_INET6 if v6 else socket.AF_INET
        super().__init__(addr, handler, bind_and_activate=False)
        if v6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.server_bind()
        self.server_activate()

class Http(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, fmt, *args):
        log("http", self.client_address[0], fmt % args)

class HttpServer(Dual):
    pass

class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        total = 0
        try:
            while True:
                d = s.recv(262144)
                if not d:
                    break
                s.sendall(d)
                total += len(d)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            log("echo error", self.client_address[0], total, e)
            return
        if total > 4 << 20:
            log("echo done", self.client_address[0], total)

def dns_name(pkt, off):
    labels = []
    while True:
        n = pkt[off]
        if n == 0:
            return ".".join(labels), off + 1
        if n & 0xC0:
            raise ValueError("compression in question")
        labels.append(pkt[off + 1: off + 1 + n].decode("latin-1"))
        off += 1 + n

def dns_serve(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    while True:
        pkt, peer = s.recvfrom(4096)
        try:
            qid, flags, qd = struct.unpack("!HHH", pkt[:6])
            name, off = dns_name(pkt, 12)
            qtype, qclass = struct.unpack("!HH", pkt[off:off + 4])
        except Exception as e:
            log("dns bad query", peer, e)
            continue
        question = pkt[12:off + 4]
        key = name.lower().rstrip(".")
        rec = records.get(key)
        answers = []
        rcode = 3 if rec is None else 0
        if rec is not None:
            if qtype == 1:
                answers = [(1, socket.inet_pton(socket.AF_INET, a)) for a in rec.get("A", [])]
            elif qtype == 28:
                answers = [(28, socket.inet_pton(socket.AF_INET6, a)) for a in rec.get("AAAA", [])]
        rflags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | rcode
        out = struct.pack("!HHHHHH", qid, rflags, 1, len(answers), 0, 0) + question
        for t, rd in answers:
            out += struct.pack("!HHHIH", 0xC00C, t, 1, 5, len(rd)) + rd
        s.sendto(out, peer)
        log("dns", peer[0], key, {1: "A", 28: "AAAA"}.get(qtype, qtype), "rcode", rcode,
            "answers", len(answers))

v6 = cfg["v6"]
any_addr = "::" if v6 else "0.0.0.0"
httpd = HttpServer((any_addr, cfg["http_port"]), Http, v6)
servers = [httpd.serve_forever]
if cfg.get("echo_bin"):
    # The C echo (tests/echo): the bulk tests' hop through this one would be bounded by Python's
    # interpreter lock. Started from the main thread, which lives as long as this process: the
    # echo dies with it (PR_SET_PDEATHSIG).
    import subprocess, time
    echo = subprocess.Popen([cfg["echo_bin"], "--port", str(cfg["echo_port"])] +
                            (["--v6"] if v6 else []))
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", cfg["echo_port"]), timeout=1).close()
            break
        except OSError:
            if echo.poll() is not None:
                sys.exit(f"echo_server exited with {echo.returncode}")
            time.sleep(0.02)
    else:
        sys.exit("echo_server did not listen within 4 s")
else:
    log("echo: no echo_server binary, the Python echo serves")
    servers.append(Dual((any_addr, cfg["echo_port"]), Echo, v6).serve_forever)
def udp_echo(port):
    u = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    if v6:
        u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    u.bind((any_addr, port))
    while True:
        d, peer = u.recvfrom(65535)
        u.sendto(d, peer)

for target in servers:
    threading.Thread(target=target, daemon=True).start()
threading.Thread(target=udp_echo, args=(cfg["echo_port"],), daemon=True).start()
threading.Thread(target=dns_serve, args=(cfg["dns"],), daemon=True).start()
log("ready")
threading.Event().wait()
'''


def echo_binary():
    """The C echo for T (tests/echo/echo_server.c): AWG_ECHO_BIN, else next to the impairment
    relay; None (the Python echo serves) when it was not built."""
    env = os.environ.get("AWG_ECHO_BIN")
    if env:
        return env
    cand = impair.relay_binary().parent / "echo_server"
    return str(cand) if cand.is_file() else None


def start_target_servers(ns, v6=True):
    """Starts HTTP (:80), echo (TCP and UDP :7) and DNS (T_DNS:53) in ns; returns the
    LoggedProcess."""
    script = ns.file("target_servers.py")
    script.write_text(TARGET_SCRIPT)
    cfg = {"body": HTTP_BODY.decode("latin-1"), "records": DNS_RECORDS, "v6": v6,
           "http_port": HTTP_PORT, "echo_port": ECHO_PORT, "dns": T_DNS,
           "echo_bin": echo_binary()}
    p = netns.LoggedProcess(ns, [sys.executable, "-u", str(script), json.dumps(cfg)],
                            ns.file("target_servers.log"))
    p.kind = "target servers"
    p.wait_log(r"^ready$", timeout=10)
    return p


# ---- the topology --------------------------------------------------------------------------------


def socks_section(listen=f"127.0.0.1:{SOCKS_PORT}", connect_timeout=5, tunnel_wait=3,
                  handshake_timeout=None, idle_timeout=None):
    text = f"\n[Socks]\nListen = {listen}\n"
    if connect_timeout is not None:
        text += f"ConnectTimeout = {connect_timeout}\n"
    if tunnel_wait is not None:
        text += f"TunnelWait = {tunnel_wait}\n"
    if handshake_timeout is not None:
        text += f"HandshakeTimeout = {handshake_timeout}\n"
    if idle_timeout is not None:
        text += f"IdleTimeout = {idle_timeout}\n"
    return text


class Topology:
    """C, S, T and their processes. Build with build_topology(lab, ...)."""

    def __init__(self, lab, server="wireguard-go"):
        assert server in SERVER_KINDS, server
        self.lab = lab
        self.server_kind = server
        self.c = self.s = self.t = None
        self.cs = self.st = None
        self.wg = None          # wireguard-go in S (server="wireguard-go")
        self.server = None      # awgproxy server in S (server="awgproxy")
        self.proxy = None
        self.servers = None
        self.nat = None
        self.wg_priv, self.wg_pub = keypair()
        self.c_priv, self.c_pub = keypair()
        self.v6_client = False

    # -- the server in S (either kind)
    @property
    def dns(self):
        """The client config's DNS server: T's through NAT, or our server's tunnel address."""
        return T_DNS if self.server_kind == "wireguard-go" else S_TUNNEL

    def start_server(self):
        if self.server_kind == "wireguard-go":
            return self.start_wg()
        return self.start_awg_server(log_level=getattr(self, "server_log_level", "debug"))

    def stop_server(self):
        if self.server_kind == "wireguard-go":
            self.stop_wg()
        elif self.server is not None:
            self.server.stop()

    def wait_client_handshake(self, timeout=15):
        """Waits until S saw the client's handshake."""
        srv = self.wg if self.server_kind == "wireguard-go" else self.server
        srv.wait_handshake(self.c_pub, timeout=timeout)

    def server_conf(self):
        allowed = f"{C_TUNNEL}/32" + (f", {C_TUNNEL6}/128" if self.v6_client else "")
        return (f"[Interface]\nPrivateKey = {self.wg_priv}\nListenPort = {WG_PORT}\n"
                f"Address = {S_TUNNEL}/24, {S_TUNNEL6}/64\n\n"
                f"[Socks]\nConnectTimeout = 30\n\n"
                f"[Peer]\nPublicKey = {self.c_pub}\nAllowedIPs = {allowed}\n")

    def start_awg_server(self, log_level="debug"):
        """`awgproxy server` in S (a fresh process and log each time; same key and port)."""
        self.server = self.lab.awgproxy(self.s, "server", self.server_conf(), log_level=log_level)
        try:
            self.server.wait_log(r"event=started.*role=server|role=server.*event=started",
                                 timeout=10)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.server.log_tail()}") from None
        return self.server

    # -- wireguard-go in S
    def start_wg(self):
        allowed = [f"{C_TUNNEL}/32"] + ([f"{C_TUNNEL6}/128"] if self.v6_client else [])
        self.wg = self.lab.wireguard_go(
            self.s, private_key=self.wg_priv, listen_port=WG_PORT,
            address=[f"{S_TUNNEL}/24", f"{S_TUNNEL6}/64"],
            peers=[{"public_key": self.c_pub, "allowed_ips": allowed}])
        return self.wg

    def stop_wg(self):
        if self.wg is not None:
            self.wg.stop()
            # The TUN device dies with the process; wait until it is gone so a restart can reuse
            # the name-independent parts (port 51820).
            netns.wait_until(lambda: self.s.run(["ip", "link", "show", self.wg.ifname],
                                                check=False).returncode != 0, 5)

    # -- the client in C
    def client_conf(self, socks=None, extra_interface=""):
        addr = f"{C_TUNNEL}/32" + (f", {C_TUNNEL6}/128" if self.v6_client else "")
        return (f"[Interface]\nPrivateKey = {self.c_priv}\nAddress = {addr}\nDNS = {self.dns}\n"
                f"{extra_interface}"
                f"\n[Peer]\nPublicKey = {self.wg_pub}\nEndpoint = {S_UNDERLAY}:{WG_PORT}\n"
                f"AllowedIPs = 0.0.0.0/0, ::/0\nPersistentKeepalive = 25\n"
                + (socks if socks is not None else socks_section()))

    def start_client(self, socks=None, env=None, wait_tunnel=True, log_level="debug"):
        self.proxy = self.lab.awgproxy(self.c, "client", self.client_conf(socks), env=env,
                                       log_level=log_level)
        self.proxy.wait_log(r"component=socks.*event=listening|event=listening.*component=socks"
                            r"|socks.*listening", timeout=10)
        if wait_tunnel:
            try:
                self.wait_client_handshake(timeout=15)
            except AssertionError as e:
                raise AssertionError(f"{e}\n{self.proxy.log_tail()}") from None
        return self.proxy

    # -- diagnostics
    def logs(self, lines=40):
        parts = []
        if self.proxy is not None:
            parts.append(self.proxy.log_tail(lines))
        if self.wg is not None:
            parts.append(self.wg.log_tail(10))
        if self.server is not None:
            parts.append(self.server.log_tail(20))
        if self.servers is not None:
            parts.append(self.servers.log_tail(15))
        return "\n".join(parts)

    def rss_kb(self):
        """awgproxy's VmRSS in kB."""
        text = pathlib.Path(f"/proc/{self.proxy.pid}/status").read_text()
        return int(re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.M).group(1))

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.proxy.pid}/fd"))

    # -- running things in C
    def curl(self, url, *opts, timeout=30, max_time=15):
        argv = ["curl", "-sS", "--max-time", str(max_time), *opts, url]
        return self.c.run(argv, check=False, timeout=timeout)


def _netns_etc(ns, files):
    """Per-namespace /etc files: `ip netns exec` bind-mounts /etc/netns/NAME/* over /etc/*."""
    d = pathlib.Path("/etc/netns") / ns.name
    d.mkdir(parents=True, exist_ok=True)
    ns.on_close(lambda: shutil.rmtree(d, ignore_errors=True))
    for name, text in files.items():
        (d / name).write_text(text)


def build_topology(lab, v6=True, v6_client=False, start_client=True, socks=None, env=None,
                   log_level="debug", server="wireguard-go", topology=None):
    """Creates C, S, T with links, routing, the target servers, the server in S (`server`: one of
    SERVER_KINDS; NAT and forwarding for wireguard-go) and (unless start_client=False) the
    awgproxy client in C, connected (S saw the handshake)."""
    topo = (topology or Topology)(lab, server=server)
    topo.v6_client = v6_client
    c, s, t = lab.netns("c"), lab.netns("s"), lab.netns("t")
    topo.c, topo.s, topo.t = c, s, t
    topo.cs = lab.veth(c, s, f"{C_UNDERLAY}/24", f"{S_UNDERLAY}/24")
    kw = {"addr6_a": f"{S_TARGET_SIDE6}/64", "addr6_b": f"{T_HTTP6}/64"} if v6 else {}
    topo.st = lab.veth(s, t, f"{S_TARGET_SIDE}/24", f"{T_HTTP}/24", **kw)
    t.run(["ip", "addr", "add", f"{T_DNS}/24", "dev", topo.st.ifname_b])

    s.run(["sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"])
    s.run(["sysctl", "-qw", "net.ipv6.icmp.ratelimit=0"], check=False)
    if server == "awgproxy":
        _netns_etc(s, {"resolv.conf": f"nameserver {T_DNS}\noptions timeout:2 attempts:2\n",
                       "hosts": "127.0.0.1 localhost\n::1 localhost\n"})
        if shutil.which("nft"):
            t.run(["ip", "addr", "add", f"{BLACKHOLE}/24", "dev", topo.st.ifname_b])
            t.run(["nft", "add table ip bh; add chain ip bh in "
                          "{ type filter hook input priority 0; }; "
                          f"add rule ip bh in ip daddr {BLACKHOLE} meta l4proto tcp drop"])
        topo.nat = "none (userspace exit)"
    else:
        _setup_forwarding(topo)

    # C must not be able to reach T by itself.
    r = c.run(["ip", "route", "get", T_HTTP], check=False)
    assert r.returncode != 0, f"C has a route to T ({r.stdout.strip()}): the lab would not catch leaks"

    topo.servers = start_target_servers(t, v6=v6)
    lab.processes.append(topo.servers)
    topo.start_server()
    # Sanity: S reaches T's services directly.
    r = s.run(["curl", "-sS", "--max-time", "5", f"http://{T_HTTP}/"], check=False)
    assert r.returncode == 0 and r.stdout.encode() == HTTP_BODY, f"S cannot fetch from T: {r}"
    if start_client:
        topo.start_client(socks=socks, env=env, log_level=log_level)
    return topo


def _setup_forwarding(topo):
    """wireguard-go's S: IP forwarding, a blackhole route, NAT towards T (or routes back)."""
    s, t, v6 = topo.s, topo.t, topo.st.ip6_a is not None
    s.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    s.run(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
    s.run(["ip", "route", "add", "blackhole", f"{BLACKHOLE}/32"])

    if shutil.which("nft"):
        out_if = topo.st.ifname_a
        for fam, table in (("ip", "awgnat"), ("ip6", "awgnat6")):
            s.run(["nft", "add", "table", fam, table])
            s.run(["nft", f"add chain {fam} {table} post "
                          "{ type nat hook postrouting priority 100 ; }"])
            s.run(["nft", "add", "rule", fam, table, "post", "oifname", out_if, "masquerade"])
        topo.nat = "nft masquerade"
    else:
        t.run(["ip", "route", "add", "10.66.0.0/24", "via", S_TARGET_SIDE])
        if v6:
            t.run(["ip", "-6", "route", "add", "fd66::/64", "via", S_TARGET_SIDE6])
        topo.nat = "route back via S (no nft)"


# ---- hand-written SOCKS clients ------------------------------------------------------------------


class Reply:
    """What a SOCKS server answered. rep is the reply byte (SOCKS5 REP or SOCKS4 CD), or None when
    the connection closed (closed=True) or stalled (timed_out=True) before a full reply."""

    def __init__(self):
        self.method = None
        self.rep = None
        self.atyp = None
        self.bnd_addr = None
        self.bnd_port = None
        self.raw = b""
        self.closed = False
        self.timed_out = False
        self.error = None
        self.elapsed = None
        self.sock = None

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __repr__(self):
        rep = "None" if self.rep is None else f"0x{self.rep:02x}"
        return (f"Reply(rep={rep}, method={self.method}, bnd={self.bnd_addr}:{self.bnd_port}, "
                f"raw={self.raw.hex()}, closed={self.closed}, timed_out={self.timed_out}, "
                f"error={self.error}, elapsed={self.elapsed and round(self.elapsed, 3)})")


def recv_exact(sock, n, deadline):
    """n bytes, or fewer if the peer closes; raises socket.timeout past deadline."""
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline")
        sock.settimeout(left)
        d = sock.recv(n - len(buf))
        if not d:
            break
        buf += d
    return buf


def addr_bytes(host):
    """SOCKS5 ATYP + DST.ADDR for an IPv4/IPv6 literal or a name (str or bytes)."""
    if isinstance(host, str):
        try:
            ip = ipaddress.ip_address(host)
            return (b"\x01" if ip.version == 4 else b"\x04") + ip.packed
        except ValueError:
            host = host.encode()
    return b"\x03" + bytes([len(host)]) + host


def socks5_request_bytes(host, port, cmd=1):
    return b"\x05" + bytes([cmd]) + b"\x00" + addr_bytes(host) + struct.pack("!H", port)


def socks5(ns, host=None, port=0, cmd=1, request=None, greeting=b"\x05\x01\x00", timeout=15.0,
           keep=False, proxy=("127.0.0.1", SOCKS_PORT)):
    """Hand-written SOCKS5 exchange from inside ns. `request` (bytes) replaces the request built
    from cmd/host/port. Returns a Reply; with keep=True (and success) reply.sock is the open
    tunnelled connection, otherwise it is closed."""
    r = Reply()
    t0 = time.monotonic()
    deadline = t0 + timeout
    try:
        s = connect_in(ns, *proxy, timeout=timeout)
    except OSError as e:
        r.error = f"connect to the SOCKS port failed: {e}"
        return r
    try:
        s.sendall(greeting)
        m = recv_exact(s, 2, deadline)
        r.raw += m
        if len(m) < 2:
            r.closed = True
            return r
        r.method = m[1]
        if m[1] != 0:
            return r
        t0 = time.monotonic()
        s.sendall(request if request is not None else socks5_request_bytes(host, port, cmd))
        h = recv_exact(s, 4, deadline)
        r.raw += h
        if len(h) < 4:
            r.closed = True
            return r
        r.rep, r.atyp = h[1], h[3]
        alen = {1: 4, 4: 16}.get(h[3])
        if alen is None and h[3] == 3:
            ln = recv_exact(s, 1, deadline)
            r.raw += ln
            alen = ln[0] if ln else 0
        if alen is None:
            alen = 0
        rest = recv_exact(s, alen + 2, deadline)
        r.raw += rest
        if len(rest) == alen + 2:
            a = rest[:alen]
            r.bnd_addr = (socket.inet_ntop(socket.AF_INET, a) if h[3] == 1 else
                          socket.inet_ntop(socket.AF_INET6, a) if h[3] == 4 else
                          a.decode(errors="replace"))
            r.bnd_port = struct.unpack("!H", rest[alen:])[0]
        else:
            r.closed = True
    except socket.timeout:
        r.timed_out = True
    except OSError as e:
        r.error = str(e)
        r.closed = True
    finally:
        r.elapsed = time.monotonic() - t0
        if keep and r.rep == 0 and not r.closed:
            s.settimeout(timeout)
            r.sock = s
        else:
            s.close()
    return r


def socks4(ns, host, port, cmd=1, user=b"", timeout=15.0, keep=False,
           proxy=("127.0.0.1", SOCKS_PORT)):
    """Hand-written SOCKS4 (IPv4 literal) or SOCKS4a (name) exchange from inside ns."""
    r = Reply()
    try:
        ip = ipaddress.IPv4Address(host)
        req = b"\x04" + bytes([cmd]) + struct.pack("!H", port) + ip.packed + user + b"\0"
    except ValueError:
        name = host.encode() if isinstance(host, str) else host
        req = (b"\x04" + bytes([cmd]) + struct.pack("!H", port) + b"\0\0\0\x01" + user + b"\0"
               + name + b"\0")
    t0 = time.monotonic()
    deadline = t0 + timeout
    try:
        s = connect_in(ns, *proxy, timeout=timeout)
    except OSError as e:
        r.error = f"connect to the SOCKS port failed: {e}"
        return r
    try:
        s.sendall(req)
        h = recv_exact(s, 8, deadline)
        r.raw = h
        if len(h) < 8:
            r.closed = True
        else:
            r.rep = h[1]
            r.bnd_port = struct.unpack("!H", h[2:4])[0]
            r.bnd_addr = socket.inet_ntop(socket.AF_INET, h[4:8])
    except socket.timeout:
        r.timed_out = True
    except OSError as e:
        r.error = str(e)
        r.closed = True
    finally:
        r.elapsed = time.monotonic() - t0
        if keep and r.rep == 0x5A:
            s.settimeout(timeout)
            r.sock = s
        else:
            s.close()
    return r


def http_get_over(sock, host="target.test", timeout=15.0):
    """Sends a GET / on an established tunnelled socket; returns the whole response (bytes)."""
    sock.settimeout(timeout)
    sock.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    out = b""
    while True:
        d = sock.recv(65536)
        if not d:
            return out
        out += d


def http_body(resp):
    head, _, body = resp.partition(b"\r\n\r\n")
    return head, body


def wait_closed(sock, timeout):
    """Reads until EOF/reset or timeout. Returns (closed: bool, data received, seconds)."""
    t0 = time.monotonic()
    data = b""
    deadline = t0 + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False, data, time.monotonic() - t0
        sock.settimeout(left)
        try:
            d = sock.recv(65536)
        except socket.timeout:
            return False, data, time.monotonic() - t0
        except OSError:
            return True, data, time.monotonic() - t0
        if not d:
            return True, data, time.monotonic() - t0
        data += d


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def dns_query(name, qtype=1, qid=0x4242):
    """A DNS query for name (type qtype, A by default), as bytes."""
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack("!HH", qtype, 1)
