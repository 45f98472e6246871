"""A client with several servers (issue 11): probing, selection, failover, ctl connect/disconnect.

    C (client)  awgproxy client -c DIR (a.conf, b.conf), SOCKS on 127.0.0.1:1080
       |  veth 192.0.2.0/24          |  veth 192.0.3.0/24
    A (server a)                   B (server b: awgproxy, or Debian's wireguard-go)
      tunnel 10.66.0.1/24            tunnel 10.77.0.1/24
       |  veth 198.51.100.0/24       |  veth 198.51.101.0/24
    T (target)  HTTP on 203.0.113.80:80 (an address on T's loopback, routed to by A and B) that
                answers with the source address it sees: which server the stream left from.

The two servers have different keys, obfuscation parameters and tunnel subnets. C reaches T only
through a tunnel. With `delay`, an impairment relay in C adds that much each way in front of a.
"""
import json
import os
import pathlib
import signal
import socket
import sys
import time

import pytest

import clientlab as cl
import impair
import netns
from netns import keypair

T_ADDR = "203.0.113.80"
A_UNDER, B_UNDER = "192.0.2.1", "192.0.3.1"
A_EGRESS, B_EGRESS = "198.51.100.1", "198.51.101.1"
PORT = 51820
CONTROL_PORT = 9190

WHOAMI = r'''
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.client_address[0].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
s = S((sys.argv[1], 80), H)
print("ready", flush=True)
s.serve_forever()
'''

# Different obfuscation on each server (the client's file for it carries the same values).
OBFS = {
    "a": "Jc = 3\nJmin = 40\nJmax = 70\nS1 = 15\nS2 = 22\nH1 = 1111\nH2 = 2222\nH3 = 3333\nH4 = 4444\n",
    "b": "Jc = 5\nJmin = 30\nJmax = 90\nS1 = 31\nS2 = 12\nH1 = 5555\nH2 = 6666\nH3 = 7777\nH4 = 8888\n",
}


class Lab2:
    """C, A, B, T and the processes on them."""

    def __init__(self, lab, b_kind="awgproxy", delay_a_ms=0, probe_interval=5, extra_client="",
                 start=True, socks_extra="", server_socks=None, server_extra=None):
        self.lab = lab
        self.b_kind = b_kind
        self.c, self.a, self.b, self.t = (lab.netns("c"), lab.netns("a"), lab.netns("b"),
                                          lab.netns("t"))
        lab.veth(self.c, self.a, "192.0.2.2/24", f"{A_UNDER}/24")
        lab.veth(self.c, self.b, "192.0.3.2/24", f"{B_UNDER}/24")
        lab.veth(self.a, self.t, f"{A_EGRESS}/24", "198.51.100.2/24")
        lab.veth(self.b, self.t, f"{B_EGRESS}/24", "198.51.101.2/24")
        self.t.run(["ip", "addr", "add", f"{T_ADDR}/32", "dev", "lo"])
        self.a.run(["ip", "route", "add", f"{T_ADDR}/32", "via", "198.51.100.2"])
        self.b.run(["ip", "route", "add", f"{T_ADDR}/32", "via", "198.51.101.2"])
        r = self.c.run(["ip", "route", "get", T_ADDR], check=False)
        assert r.returncode != 0, "C has a route to T: the lab would not catch leaks"
        script = self.t.file("whoami.py")
        script.write_text(WHOAMI)
        self.web = netns.LoggedProcess(self.t, [sys.executable, "-u", str(script), T_ADDR],
                                       self.t.file("whoami.log"))
        self.web.wait_log(r"^ready$", timeout=10)
        lab.processes.append(self.web)
        self.keys = {n: keypair() for n in ("a", "b", "ca", "cb")}
        self.delay_a_ms = delay_a_ms
        self.socks_extra = socks_extra
        self.server_socks = server_socks or {}  # name -> extra [Socks] lines of that server
        self.server_extra = server_extra or {}  # name -> more sections of that server
        self.relay = None
        self.servers = {}
        self.start_server("a")
        self.start_server("b")
        self.a_endpoint = f"{A_UNDER}:{PORT}"
        if delay_a_ms:
            self.relay = impair.start(self.c, f"127.0.0.1:{PORT}", f"{A_UNDER}:{PORT}", seed=3,
                                      settings={"both.delay_ms": delay_a_ms})
            self.a_endpoint = f"127.0.0.1:{PORT}"
        self.client = self.start_client(probe_interval, extra_client, start)

    # -- servers
    def server_conf(self, name):
        net = "10.66.0" if name == "a" else "10.77.0"
        priv = self.keys[name][0]
        cpub = self.keys["c" + name][1]
        return (f"[Interface]\nPrivateKey = {priv}\nListenPort = {PORT}\nAddress = {net}.1/24\n"
                f"{OBFS[name]}\n[Socks]\nConnectTimeout = 10\n{self.server_socks.get(name, '')}\n"
                f"{self.server_extra.get(name, '')}\n"
                f"[Peer]\nPublicKey = {cpub}\nAllowedIPs = {net}.2/32\n")

    def start_server(self, name):
        ns = self.a if name == "a" else self.b
        if name == "b" and self.b_kind == "wireguard-go":
            self.b.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
            h = self.lab.wireguard_go(self.b, private_key=self.keys["b"][0], listen_port=PORT,
                                      address=["10.77.0.1/24"],
                                      peers=[{"public_key": self.keys["cb"][1],
                                              "allowed_ips": ["10.77.0.2/32"]}])
            self.t.run(["ip", "route", "add", "10.77.0.0/24", "via", B_EGRESS], check=False)
        else:
            h = self.lab.awgproxy(ns, "server", self.server_conf(name), log_level="debug")
            h.wait_log(r"event=started.*role=server|role=server.*event=started", timeout=10)
        self.servers[name] = h
        return h

    # -- the client
    def client_file(self, name, endpoint, front=""):
        net = "10.66.0" if name == "a" else "10.77.0"
        obfs = OBFS[name] if not (name == "b" and self.b_kind == "wireguard-go") else ""
        return (f"[Interface]\nPrivateKey = {self.keys['c' + name][0]}\nAddress = {net}.2/32\n"
                f"DNS = {net}.1\n{obfs}\n[Peer]\nPublicKey = {self.keys[name][1]}\n"
                f"Endpoint = {endpoint}\nAllowedIPs = 0.0.0.0/0\nPersistentKeepalive = 25\n"
                + front)

    def start_client(self, probe_interval, extra_client, start=True):
        d = pathlib.Path(self.c.file("servers.d"))
        d.mkdir()
        front = (cl.socks_section(connect_timeout=5, tunnel_wait=3) + self.socks_extra
                 + f"\n[Control]\nListen = 127.0.0.1:{CONTROL_PORT}\n"
                 + f"\n[Metrics]\nListen = 127.0.0.1:{CONTROL_PORT + 1}\n"
                 + f"\n[Client]\nProbeInterval = {probe_interval}\n{extra_client}")
        self.write(d / "a.conf", self.client_file("a", self.a_endpoint, front))
        self.write(d / "b.conf", self.client_file("b", f"{B_UNDER}:{PORT}"))
        self.confdir = d
        return self.run_client(["-c", str(d)]) if start else None

    def write(self, path, text):
        for line in text.splitlines():
            if line.startswith("PrivateKey"):
                netns.register_secret(line.split("=", 1)[1].strip(), keys_only=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)

    def run_client(self, args, wait=True):
        env = dict(os.environ, LOG_LEVEL="debug")
        env.pop("LOG_FORMAT", None)
        h = netns.Awgproxy(self.c, [str(netns.awgproxy_binary()), "client", *args],
                           self.c.file(netns.unique_name("awgc", maxlen=20) + ".log"), env,
                           str(self.confdir), "client")
        self.c.on_close(h.stop)
        self.lab.processes.append(h)
        if wait:
            h.wait_log(r"socks.*listening", timeout=10)
            # The control API, which the tests ask first, starts listening after the SOCKS
            # listener: a slow (sanitizer) build showed the gap.
            h.wait_log(r"component=control event=listening", timeout=10)
        return h

    # -- asking the client
    def api(self, method, path, body=b""):
        port = CONTROL_PORT + 1 if path == "/metrics" else CONTROL_PORT
        with cl.in_netns(self.c):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
        with s:
            s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        head, _, payload = data.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        return status, payload

    def servers_doc(self):
        st, body = self.api("GET", "/servers")
        assert st == 200, body
        return {s["name"]: s for s in json.loads(body)["servers"]}, json.loads(body)

    def selected(self):
        doc, _ = self.servers_doc()
        sel = [n for n, s in doc.items() if s["selected"]]
        return sel[0] if sel else None

    def wait_both_up(self, timeout=20):
        netns.wait_until(lambda: all(s["state"] == "up" for s in self.servers_doc()[0].values()),
                         timeout, what=f"both servers up: {self.servers_doc()[1]}")

    def ctl(self, *args):
        return self.c.run([str(netns.awgproxy_binary()), "ctl", "--connect",
                           f"127.0.0.1:{CONTROL_PORT}", *args], check=False, timeout=15)

    def whoami(self, max_time=8, login=None):
        """The source address T saw, through SOCKS (None when the request failed); login =
        (user, password) for a SOCKS5 login."""
        cred = f"{login[0]}:{login[1]}@" if login else ""
        r = self.c.run(["curl", "-sS", "--max-time", str(max_time), "--proxy",
                        f"socks5://{cred}127.0.0.1:{cl.SOCKS_PORT}", f"http://{T_ADDR}/"],
                       check=False, timeout=max_time + 10)
        return r.stdout.strip() if r.returncode == 0 else None

    def logs(self):
        return "\n".join(p.log_tail(30) for p in [self.client, *self.servers.values()])


@pytest.fixture
def lab(tmp_path):
    with netns.open_lab(tmp_path, tools=("wireguard-go", "curl")) as lab_:
        yield lab_


def egress_of(addr):
    # wireguard-go forwards without NAT: T sees the client's tunnel address in b's subnet
    return {A_EGRESS: "a", B_EGRESS: "b", "10.77.0.2": "b"}.get(addr, addr)


def test_auto_picks_the_lower_rtt_server(lab):
    """40 ms more round trip to a: auto selects b, and traffic leaves from b."""
    l2 = Lab2(lab, delay_a_ms=20)
    l2.wait_both_up()
    doc, _ = l2.servers_doc()
    assert doc["a"]["rtt_ms"] > doc["b"]["rtt_ms"] + 30, doc
    assert l2.selected() == "b", (doc, l2.logs())
    assert egress_of(l2.whoami()) == "b", l2.logs()
    # Quiet standby: QUIC (and its PINGs) only to the server in use.
    netns.wait_until(lambda: l2.servers_doc()[0]["b"]["transport"] == "quic", 10,
                     what="QUIC up with the selected server")
    assert l2.servers_doc()[0]["a"]["transport"] == "ip", l2.servers_doc()[1]
    r = l2.ctl("servers")
    assert r.returncode == 0 and "Valid" in r.stdout and "*  b" in r.stdout, r
    assert "failovers: 0" in r.stdout, r


def test_failover_when_the_selected_server_is_killed(lab):
    l2 = Lab2(lab, probe_interval=30)
    l2.wait_both_up()
    first = l2.selected()
    other = "b" if first == "a" else "a"
    assert egress_of(l2.whoami()) == first
    # A stream open on the server that will die.
    with cl.in_netns(l2.c):
        held = socket.create_connection(("127.0.0.1", cl.SOCKS_PORT), timeout=10)
    held.sendall(b"\x05\x01\x00")
    assert held.recv(2) == b"\x05\x00"
    held.sendall(cl.socks5_request_bytes(T_ADDR, 80))
    assert held.recv(10)[:2] == b"\x05\x00"

    l2.servers[first].stop(sig=signal.SIGKILL)
    killed = time.monotonic()
    got = None
    while time.monotonic() - killed < 5 and got is None:
        got = l2.whoami(max_time=4)
    took = time.monotonic() - killed
    assert got is not None and egress_of(got) == other, (got, took, l2.logs())
    assert took < 5, took
    # The stream on the dead server was ended, not left hanging.
    held.settimeout(10)
    try:
        rest = held.recv(100)
    except (ConnectionResetError, socket.timeout) as e:
        rest = e
    assert rest == b"" or isinstance(rest, ConnectionResetError), rest
    held.close()
    doc, whole = l2.servers_doc()
    assert doc[other]["selected"] and whole["failovers"] >= 1, whole
    st, metrics = l2.api("GET", "/metrics")
    text = metrics.decode()
    assert st == 200 and f'awgproxy_server_failovers_total{{server="{first}"}} 1' in text, text
    assert f'awgproxy_server_selected{{server="{other}"}} 1' in text, text
    r = l2.ctl("servers")
    assert r.returncode == 0 and "failovers: 1" in r.stdout, r


def test_switch_keeps_streams_on_a_live_server(lab):
    """ctl connect to the other server while a stream is open: the stream (and its server, which
    is up) carries on, new streams leave from the new one, and the old server's QUIC connection
    ends once its last stream has (quiet standby)."""
    l2 = Lab2(lab)
    l2.wait_both_up()
    first = l2.selected()
    other = "b" if first == "a" else "a"
    netns.wait_until(lambda: l2.servers_doc()[0][first]["transport"] == "quic", 10,
                     what="QUIC up with the selected server")
    with cl.in_netns(l2.c):
        held = socket.create_connection(("127.0.0.1", cl.SOCKS_PORT), timeout=10)
    held.sendall(b"\x05\x01\x00" + cl.socks5_request_bytes(T_ADDR, 80))
    assert held.recv(2) == b"\x05\x00" and held.recv(10)[:2] == b"\x05\x00"
    r = l2.ctl("connect", other)
    assert r.returncode == 0 and l2.selected() == other, r
    assert egress_of(l2.whoami()) == other, l2.logs()
    held.settimeout(10)
    held.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    reply = b""
    while chunk := held.recv(4096):
        reply += chunk
    held.close()
    assert reply.startswith(b"HTTP/1.0 200") or reply.startswith(b"HTTP/1.1 200"), reply
    assert egress_of(reply.split(b"\r\n\r\n", 1)[1].decode()) == first, reply
    netns.wait_until(lambda: l2.servers_doc()[0][first]["transport"] == "ip", 10,
                     what=f"QUIC to {first} closed once its last stream ended: {l2.logs()}")
    assert "component=quic event=standby" in l2.client.log(), l2.logs()


def test_disconnect_and_connect(lab):
    l2 = Lab2(lab)
    l2.wait_both_up()
    with cl.in_netns(l2.c):
        held = socket.create_connection(("127.0.0.1", cl.SOCKS_PORT), timeout=10)
    held.sendall(b"\x05\x01\x00" + cl.socks5_request_bytes(T_ADDR, 80))
    assert held.recv(2) == b"\x05\x00" and held.recv(10)[:2] == b"\x05\x00"
    r = l2.ctl("disconnect")
    assert r.returncode == 0, r
    held.settimeout(10)
    try:
        assert held.recv(100) == b""
    except ConnectionResetError:
        pass
    rep = cl.socks5(l2.c, T_ADDR, 80)
    assert rep.rep == 0x01, rep
    assert l2.selected() is None
    for name in ("b", "a", "b"):
        r = l2.ctl("connect", name)
        assert r.returncode == 0, r
        assert egress_of(l2.whoami()) == name, l2.logs()
    r = l2.ctl("connect", "nosuch")
    assert r.returncode == 1 and "no server named" in r.stderr, r
    r = l2.ctl("connect")
    assert r.returncode == 0 and l2.selected() in ("a", "b")


def test_stock_wireguard_go_takes_part(lab):
    """b is Debian's wireguard-go: NotListening, and the failover target when a dies."""
    l2 = Lab2(lab, b_kind="wireguard-go", extra_client="Select = a\n")
    l2.wait_both_up()
    doc, _ = l2.servers_doc()
    assert doc["b"]["socks"] == "NotListening" and doc["a"]["socks"] == "Valid", doc
    assert l2.selected() == "a"
    assert egress_of(l2.whoami()) == "a"
    l2.servers["a"].stop(sig=signal.SIGKILL)
    killed = time.monotonic()
    got = None
    while time.monotonic() - killed < 5 and got is None:
        got = l2.whoami(max_time=4)
    assert got is not None and egress_of(got) == "b", (got, l2.logs())


def test_directory_with_a_broken_file(lab):
    """c.conf has an error: a and b run, and the log names c.conf and its line."""
    l2 = Lab2(lab, start=False)
    l2.write(l2.confdir / "c.conf", "[Interface]\nPrivateKey = nonsense\nAddress = 10.88.0.2/32\n"
             "\n[Peer]\nPublicKey = x\nEndpoint = 192.0.2.9:51820\nAllowedIPs = 0.0.0.0/0\n")
    l2.client = l2.run_client(["-c", str(l2.confdir)])
    l2.wait_both_up()
    log = l2.client.log()
    assert "c.conf:2:" in log and "server_left_out" in log, log[-3000:]
    assert set(l2.servers_doc()[0]) == {"a", "b"}
    assert egress_of(l2.whoami()) in ("a", "b")
    r = l2.c.run([str(netns.awgproxy_binary()), "check", "-c", str(l2.confdir)], check=False)
    assert r.returncode == 1 and "c.conf:2:" in r.stdout + r.stderr, r




def test_forward_mode_runs_socks_end_to_end(lab):
    """[Socks] Mode = forward: the application speaks SOCKS with the server itself. Auto skips a
    (its SOCKS service wants a password), an explicit connect uses it, with the login end to
    end."""
    pw = "alice-pw-7c41"
    l2 = Lab2(lab, socks_extra="Mode = forward\n",
              server_socks={"a": f"User = alice:{netns.password_hash(pw)}\n"},
              server_extra={"a": "[Server]\nSocksAuth = on\n"})
    l2.wait_both_up()
    doc, _ = l2.servers_doc()
    assert doc["a"]["socks"] == "AuthenticationRequired" and doc["b"]["socks"] == "Valid", doc
    assert l2.selected() == "b"
    assert egress_of(l2.whoami()) == "b", l2.logs()
    r = l2.ctl("connect", "a")
    assert r.returncode == 0, r
    assert egress_of(l2.whoami(login=("alice", pw))) == "a", l2.logs()
    assert l2.whoami(login=("alice", "wrong")) is None
    assert l2.whoami() is None  # no login offered: a's service refuses
    assert "alice" not in l2.client.log().replace("alice:", "")  # never logged by the client


def test_users_pinned_to_servers(lab):
    """User = alice:HASH:a and bob:HASH:b: their streams leave from their servers whatever is
    selected; the target sees two different source addresses."""
    pa, pb = "pin-alice-51", "pin-bob-93"
    users = (f"User = alice:{netns.password_hash(pa)}:a\n"
             f"User = bob:{netns.password_hash(pb)}:b\n")
    l2 = Lab2(lab, socks_extra=users,
              extra_client="\n[Http]\nListen = 127.0.0.1:8080\n")
    l2.wait_both_up()
    for sel in ("a", "b"):
        assert l2.ctl("connect", sel).returncode == 0
        assert egress_of(l2.whoami(login=("alice", pa))) == "a", l2.logs()
        assert egress_of(l2.whoami(login=("bob", pb))) == "b", l2.logs()
        # The HTTP proxy's logins are the same users, pinned the same way.
        for user, pw, want in (("alice", pa, "a"), ("bob", pb, "b")):
            r = l2.c.run(["curl", "-sS", "--max-time", "8", "--proxy",
                          f"http://{user}:{pw}@127.0.0.1:8080", f"http://{T_ADDR}/"],
                         check=False, timeout=20)
            assert r.returncode == 0 and egress_of(r.stdout.strip()) == want, (r, l2.logs())
    assert l2.whoami(login=("bob", "nope")) is None
    # Pinned streams never fail over: with b gone, bob's connections fail; alice's still work.
    l2.servers["b"].stop(sig=signal.SIGKILL)
    assert l2.whoami(login=("bob", pb), max_time=6) is None
    assert egress_of(l2.whoami(login=("alice", pa))) == "a"


def test_reload_with_several_files(lab):
    """ctl reload reads every file again: an error anywhere changes nothing (422 naming the file
    and line); a valid change applies to its server, whose session is kept; a new file is named
    as needing a restart; a file removed refuses the reload."""
    l2 = Lab2(lab)
    l2.wait_both_up()
    b_conf = l2.confdir / "b.conf"
    good = b_conf.read_text()
    l2.write(b_conf, good.replace("PersistentKeepalive = 25", "PersistentKeepalive = banana"))
    r = l2.ctl("reload")
    assert r.returncode == 1 and "b.conf:" in r.stderr and "PersistentKeepalive" in r.stderr, r
    l2.write(b_conf, good.replace("PersistentKeepalive = 25", "PersistentKeepalive = 15"))
    st, body = l2.api("POST", "/reload")
    doc = json.loads(body)
    assert st == 200 and doc["ok"] and doc["peers"]["changed"] == 1, doc
    assert doc["peers"]["unchanged"] == 1, doc
    st, peers = l2.api("GET", "/servers")
    assert egress_of(l2.whoami()) in ("a", "b")
    l2.write(l2.confdir / "c.conf", l2.client_file("a", "192.0.2.1:51820")
             .replace(l2.keys["ca"][0], keypair()[0]))
    st, body = l2.api("POST", "/reload")
    doc = json.loads(body)
    assert st == 200 and any("added" in k for k in doc["restart_required"]), doc
    (l2.confdir / "c.conf").unlink()
    (l2.confdir / "b.conf").unlink()
    st, body = l2.api("POST", "/reload")
    assert st == 422 and "server b" in json.loads(body)["error"], body
    assert set(l2.servers_doc()[0]) == {"a", "b"}
