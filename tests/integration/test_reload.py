"""Configuration reload of a running `awgproxy server` (SIGHUP, `awgproxy ctl reload`), the session
log lines and [Server] MaxSessions (issue 5 items 6 and 7, issue 6 "reload").

    A, C, D (clients)  Debian wireguard-go on TUN, tunnel 10.89.0.{2,3,4}/24, one peer: the server,
                       routes 198.51.100.0/24 via the tunnel; each on its own veth to S
                       (underlays 10.10.{1,3,4}.0/24, S = .1)
    S (server)         awgproxy server, ListenPort 51820, Address 10.89.0.1/24,
                       [Control] Listen = a unix socket; [Peer]s from the test
    T (target)         198.51.100.80: TCP echo on :7 (reached only through S's exit)

What is checked:
* SIGHUP removing peer A and adding peer D while C runs a steady TCP echo through the exit:
  the echo never breaks (every byte comes back, no pause of 5 s or more), C keeps its session
  (no new handshake on either side), A's traffic stops and its new initiations are refused as
  unknown-peer, D completes a handshake and reaches the server; one `event=reloaded` line with
  the counts; session_end for A with reason=peer-removed; `ctl peers` lists C and D, not A.
* An invalid file (SIGHUP and `ctl reload`) changes nothing: errors logged with file and line,
  `ctl reload` exits 1 and prints them, the peer keeps working; a changed ListenPort is kept and
  named as needing a restart.
* A changed PresharedKey (on both sides) ends the session (reason=psk-changed) and a new
  handshake makes a new one.
* session_start (peer, endpoint) and session_end (reason, duration_s, rx_bytes, tx_bytes) lines,
  with reasons expired (fast test timers: REJECT_AFTER_TIME = 8 s) and shutdown.
* MaxSessions = 1: a second peer's initiation is refused (reason=max-sessions) while the first
  keeps its session (skipped until the config loader parses the key).
* The client role (awgproxy client against wireguard-go): two reloads keep the session and SOCKS.
"""
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest

import netns
from netns import keypair, ping

S_TUNNEL = "10.89.0.1"
T_SIDE, T_ADDR = "198.51.100.1", "198.51.100.80"
WG_PORT = 51820
ECHO_PORT = 7

ECHO_SERVER = r'''
import socket, socketserver, sys
class H(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            d = self.request.recv(65536)
            if not d:
                return
            self.request.sendall(d)
class S(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
S((sys.argv[1], int(sys.argv[2])), H).serve_forever()
'''

# Sends numbered 1 KiB chunks every 20 ms for argv[3] seconds and checks each comes back intact.
# Prints one JSON line: chunks, bytes, errors, the longest wait for an echo.
ECHO_CLIENT = r'''
import json, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
s.settimeout(30)
end = time.monotonic() + float(sys.argv[3])
res = {"chunks": 0, "bytes": 0, "errors": [], "max_wait": 0.0}
i = 0
print("started", flush=True)
try:
    while time.monotonic() < end:
        chunk = (b"%08d" % i) * 128
        t0 = time.monotonic()
        s.sendall(chunk)
        got = b""
        while len(got) < len(chunk):
            d = s.recv(len(chunk) - len(got))
            if not d:
                raise OSError("connection closed by the other side")
            got += d
        res["max_wait"] = max(res["max_wait"], time.monotonic() - t0)
        if got != chunk:
            res["errors"].append(f"chunk {i} came back different")
            break
        res["chunks"] += 1
        res["bytes"] += len(chunk)
        i += 1
        time.sleep(0.02)
except Exception as e:
    res["errors"].append(repr(e))
print(json.dumps(res), flush=True)
'''


def ctl(*args, timeout=20):
    env = dict(os.environ)
    env.pop("LOG_LEVEL", None)
    return subprocess.run([str(netns.awgproxy_binary()), "ctl", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


class Client:
    """A stock WireGuard client (wireguard-go) in its own namespace."""

    def __init__(self, lab, s_ns, s_pub, idx, psk=None, keepalive=5):
        self.idx = idx
        self.ns = lab.netns(f"c{idx}")
        self.underlay = f"10.10.{idx}.2"
        lab.veth(self.ns, s_ns, f"{self.underlay}/24", f"10.10.{idx}.1/24")
        self.priv, self.pub = keypair()
        self.tunnel = f"10.89.0.{idx}"
        self.s_pub = s_pub
        self.endpoint = f"10.10.{idx}.1:{WG_PORT}"
        self.wg = lab.wireguard_go(self.ns, private_key=self.priv, address=f"{self.tunnel}/24",
                                   peers=[self.peer_spec(psk, keepalive)])
        self.ns.run(["ip", "route", "add", "198.51.100.0/24", "dev", self.wg.ifname])

    def peer_spec(self, psk=None, keepalive=5):
        return {"public_key": self.s_pub, "endpoint": self.endpoint, "allowed_ips": "0.0.0.0/0",
                "persistent_keepalive": keepalive, "preshared_key": psk}

    @property
    def fp(self):
        return netns.fingerprint(self.pub)

    def server_peer(self, psk=None):
        text = f"\n[Peer]\nPublicKey = {self.pub}\nAllowedIPs = {self.tunnel}/32\n"
        if psk:
            text += f"PresharedKey = {psk}\n"
        return text

    def ping_server(self, count=2, wait=2):
        return ping(self.ns, S_TUNNEL, count=count, wait=wait)

    def handshake(self):
        return self.wg.latest_handshake(self.s_pub)

    def connected(self, timeout=30):
        """Pings the server until one answer comes (wireguard-go retries its handshake every 5 s,
        and the first may have gone out before the server listened)."""
        return netns.wait_until(lambda: self.ping_server(count=1).received, timeout)


class ReloadLab:
    def __init__(self, lab, fast_timers=False, max_sessions=None):
        self.lab = lab
        self.s, self.t = lab.netns("s"), lab.netns("t")
        lab.veth(self.s, self.t, f"{T_SIDE}/24", f"{T_ADDR}/24")
        self.t.popen([sys.executable, "-c", ECHO_SERVER, T_ADDR, str(ECHO_PORT)],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.s_priv, self.s_pub = keypair()
        self.sock = self.s.file("control.sock")
        self.fast_timers = fast_timers
        self.max_sessions = max_sessions
        self.server = None

    def client(self, idx, **kw):
        return Client(self.lab, self.s, self.s_pub, idx, **kw)

    def conf(self, peers_text, listen_port=WG_PORT, extra=""):
        text = (f"[Interface]\nPrivateKey = {self.s_priv}\nListenPort = {listen_port}\n"
                f"Address = {S_TUNNEL}/24\n\n[Control]\nListen = {self.sock}\n")
        if self.max_sessions is not None:
            text += f"\n[Server]\nMaxSessions = {self.max_sessions}\n"
        text += extra + peers_text
        return netns.fast_timers(text) if self.fast_timers else text

    def start(self, peers_text):
        self.server = self.lab.awgproxy(self.s, "server", self.conf(peers_text))
        self.server.wait_log(r"event=started.*role=server", timeout=15)
        assert netns.wait_until(lambda: os.path.exists(self.sock), 10), self.server.log_tail()
        return self.server

    def write_conf(self, text):
        pathlib.Path(self.server.conf_path).write_text(text)

    def sighup(self):
        os.kill(self.server.pid, signal.SIGHUP)

    def log_after(self, mark):
        return self.server.log()[mark:]

    def mark(self):
        return len(self.server.log())

    def wait_log_after(self, mark, regex, timeout=20):
        rx = re.compile(regex, re.MULTILINE)
        m = netns.wait_until(lambda: rx.search(self.log_after(mark)), timeout, interval=0.2)
        assert m, f"no log line matched {regex!r} within {timeout} s\n{self.server.log_tail(60)}"
        return m

    def logs(self):
        return self.lab.logs(40)


@pytest.fixture
def lab(tmp_path):
    with netns.open_lab(tmp_path, tools=("ping", "wg", "wireguard-go")) as lab:
        yield lab


def handshakes_of(server, fp):
    return [l for l in server.log().splitlines()
            if "component=handshake" in l and "event=completed" in l and f"peer={fp}" in l]


def fields(line):
    return dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line))


def test_sighup_removes_and_adds_peers_while_another_transfers(lab):
    rl = ReloadLab(lab)
    a, c, d = rl.client(2), rl.client(3), rl.client(4)
    _, b_pub = keypair()  # a configured peer that never connects
    b_peer = f"\n[Peer]\nPublicKey = {b_pub}\nAllowedIPs = 10.89.0.9/32\n"
    server = rl.start(a.server_peer() + b_peer + c.server_peer())
    for cl in (a, c):
        assert cl.connected(), f"{cl.fp}\n{rl.logs()}"
    # D is not configured yet: its initiations are refused as from an unknown peer.
    rl.wait_log_after(0, r"event=rejected.*peer=unknown.*reason=unknown-peer", timeout=20)
    assert d.ping_server(count=1).received == 0

    # C: a steady TCP echo through the exit for the whole reload.
    echo = c.ns.popen([sys.executable, "-c", ECHO_CLIENT, T_ADDR, str(ECHO_PORT), "14"],
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert echo.stdout.readline().strip() == "started", rl.logs()
    time.sleep(3)
    c_hs_client, c_hs_server = c.handshake(), len(handshakes_of(server, c.fp))
    assert c_hs_client and c_hs_server

    mark = rl.mark()
    rl.write_conf(rl.conf(b_peer + c.server_peer() + d.server_peer()))
    rl.sighup()
    m = rl.wait_log_after(mark, r"^.*component=daemon event=reloaded.*$")
    f = fields(m.group(0))
    assert (f["peers_added"], f["peers_removed"], f["peers_changed"], f["peers_unchanged"]) == \
        ("1", "1", "0", "2"), m.group(0)
    assert f["restart_required"] == "none", m.group(0)
    rl.wait_log_after(mark, rf"event=session_end peer={re.escape(a.fp)} .*reason=peer-removed")

    out, _ = echo.communicate(timeout=90)
    res = json.loads(out.strip().splitlines()[-1])
    assert res["errors"] == [] and res["chunks"] > 100, f"{res}\n{rl.logs()}"
    assert res["max_wait"] < 5.0, f"the echo paused {res['max_wait']:.1f} s\n{rl.logs()}"
    # C's session is the one it had: no handshake on either side since before the reload.
    assert c.handshake() == c_hs_client
    assert len(handshakes_of(server, c.fp)) == c_hs_server, server.log_tail(60)

    # D: connects now.
    assert netns.wait_until(lambda: d.ping_server(count=1).received, 40), rl.logs()
    assert handshakes_of(server, d.fp), server.log_tail(60)

    # A: its traffic stops; a fresh handshake from it is refused as an unknown peer.
    assert a.ping_server(count=2).received == 0
    a.wg.set_peer(a.s_pub, remove=True)
    a.wg.set_peer(**a.peer_spec())
    mark = rl.mark()
    a.ping_server(count=3)
    rl.wait_log_after(mark, r"event=rejected kind=initiation .*peer=unknown reason=unknown-peer")
    assert not handshakes_of(server, a.fp)[1:], "A completed a handshake after its removal"

    r = ctl("-s", rl.sock, "--json", "peers")
    assert r.returncode == 0, r
    listed = [p["peer"] for p in json.loads(r.stdout)["peers"]]
    assert listed == [netns.fingerprint(b_pub), c.fp, d.fp], listed
    # A clean exit after the reload (under the sanitizer build: no leak, no use after free).
    assert server.stop() == 0, server.log_tail()


def test_invalid_file_keeps_running_config(lab):
    rl = ReloadLab(lab)
    a = rl.client(2)
    good = rl.conf(a.server_peer())
    server = rl.start(a.server_peer())
    assert a.connected(), rl.logs()

    bad = good + "AllowedIPs = 10.89.0.300/32\n"
    bad_line = bad.splitlines().index("AllowedIPs = 10.89.0.300/32") + 1
    rl.write_conf(bad)
    mark = rl.mark()
    rl.sighup()
    m = rl.wait_log_after(mark, r"^.*component=config event=invalid.*$")
    assert f"file={server.conf_path}" in m.group(0) and f"line={bad_line} " in m.group(0), m.group(0)
    rl.wait_log_after(mark, r"component=daemon event=reload_failed")
    assert "event=reloaded" not in rl.log_after(mark)

    r = ctl("-s", rl.sock, "reload")
    assert r.returncode == 1, r
    assert "error(s) in the file; nothing changed" in r.stderr, r.stderr
    assert f"{server.conf_path}:{bad_line}: error:" in r.stderr, r.stderr
    r = ctl("-s", rl.sock, "--json", "reload")
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and any(f":{bad_line}: error:" in e for e in doc["errors"]), doc
    assert a.ping_server().received, rl.logs()

    # A restart-only key: kept as running, named in the answer and the log.
    rl.write_conf(rl.conf(a.server_peer(), listen_port=WG_PORT + 1))
    mark = rl.mark()
    r = ctl("-s", rl.sock, "reload")
    assert r.returncode == 0, r
    assert "needs a restart (running value kept): [Interface] ListenPort" in r.stdout, r.stdout
    assert "0 peer(s) added, 0 removed, 0 changed, 1 unchanged" in r.stdout, r.stdout
    rl.wait_log_after(mark, r'event=reload_needs_restart key="\[Interface\] ListenPort"')
    assert a.ping_server().received, rl.logs()
    assert server.stop() == 0, server.log_tail()


def test_changed_psk_forces_new_handshake(lab):
    rl = ReloadLab(lab)
    psk1, psk2 = netns.genkey(), netns.genkey()
    a = rl.client(2, psk=psk1)
    server = rl.start(a.server_peer(psk=psk1))
    assert a.connected(), rl.logs()
    rl.wait_log_after(0, rf"event=session_start peer={re.escape(a.fp)} ")
    n_before = len(handshakes_of(server, a.fp))

    a.wg.set_peer(a.s_pub, preshared_key=psk2)
    rl.write_conf(rl.conf(a.server_peer(psk=psk2)))
    mark = rl.mark()
    r = ctl("-s", rl.sock, "--json", "reload")
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["peers"]["changed"] == 1, r
    rl.wait_log_after(mark, rf"event=peer_changed peer={re.escape(a.fp)} changed=preshared_key")
    rl.wait_log_after(mark, rf"event=session_end peer={re.escape(a.fp)} .*reason=psk-changed")
    rl.wait_log_after(mark, rf"component=handshake event=completed peer={re.escape(a.fp)} ")
    rl.wait_log_after(mark, rf"event=session_start peer={re.escape(a.fp)} ")
    assert len(handshakes_of(server, a.fp)) > n_before
    assert netns.wait_until(lambda: a.ping_server(count=1).received, 20), rl.logs()
    assert server.stop() == 0, server.log_tail()
    for k in (psk1, psk2):
        assert not server.leaked_keys(k), "a PresharedKey appears in the log"


def test_session_log_lines_expiry_and_shutdown(lab):
    # Fast test timers: REJECT_AFTER_TIME = 8 s, so an idle session expires quickly.
    rl = ReloadLab(lab, fast_timers=True)
    a, c = rl.client(2, keepalive=0), rl.client(3)
    server = rl.start(a.server_peer() + c.server_peer())
    assert a.connected(), rl.logs()
    assert a.ping_server(count=3).received == 3, rl.logs()
    m = rl.wait_log_after(0, rf"^.*event=session_start peer={re.escape(a.fp)} .*$")
    assert fields(m.group(0))["endpoint"] == f"{a.underlay}:{WG_PORT}" or \
        fields(m.group(0))["endpoint"].startswith(f"{a.underlay}:"), m.group(0)
    # A goes quiet (no keepalive, wireguard-go stopped): its session expires on the server.
    a.wg.stop()
    m = rl.wait_log_after(0, rf"^.*event=session_end peer={re.escape(a.fp)} .*$", timeout=40)
    f = fields(m.group(0))
    assert f["reason"] == "expired", m.group(0)
    assert f["endpoint"].startswith(f"{a.underlay}:"), m.group(0)
    # Ends when its keys expired (8 s after the handshake), however late that was noticed.
    assert 4.0 < float(f["duration_s"]) <= 8.5, m.group(0)
    # At least the 3 echo requests and replies (84 bytes inside, + 32 of WireGuard each).
    assert int(f["rx_bytes"]) >= 3 * 116 and int(f["tx_bytes"]) >= 3 * 116, m.group(0)

    assert c.connected(), rl.logs()
    rl.wait_log_after(0, rf"event=session_start peer={re.escape(c.fp)} ")
    assert server.stop() == 0
    m = re.search(rf"^.*event=session_end peer={re.escape(c.fp)} .*$", server.log(), re.M)
    assert m and fields(m.group(0))["reason"] == "shutdown", server.log_tail(30)
    for line in server.log().splitlines():
        if "event=session_" in line:
            assert not server.leaked_keys(a.priv, c.priv, rl.s_priv), line


def max_sessions_supported(tmp_path):
    """True once the config layer parses [Server] MaxSessions."""
    conf = tmp_path / "probe.conf"
    conf.write_text(f"[Interface]\nPrivateKey = {netns.genkey()}\nAddress = 10.0.0.1/24\n"
                    "\n[Server]\nMaxSessions = 1\n")
    conf.chmod(0o600)
    r = subprocess.run([str(netns.awgproxy_binary()), "check", "-c", str(conf)],
                       capture_output=True, text=True)
    return r.returncode == 0 and not re.search(r"(error|warning):.*MaxSessions", r.stdout + r.stderr)


def test_max_sessions_refuses_extra_peer(lab, tmp_path):
    assert max_sessions_supported(tmp_path), "[Server] MaxSessions is not accepted by check"
    rl = ReloadLab(lab, max_sessions=1)
    a, c = rl.client(2), rl.client(3)
    server = rl.start(a.server_peer() + c.server_peer())
    assert netns.wait_until(lambda: a.ping_server(count=1).received or
                            c.ping_server(count=1).received, 20), rl.logs()
    first, second = (a, c) if handshakes_of(server, a.fp) else (c, a)
    rl.wait_log_after(0, rf"event=rejected kind=initiation .*peer={re.escape(second.fp)} "
                         r"reason=max-sessions", timeout=30)
    assert second.ping_server(count=2).received == 0
    assert first.ping_server(count=2).received, rl.logs()
    assert not handshakes_of(server, second.fp), server.log_tail(40)
    r = ctl("-s", rl.sock, "--json", "status")
    peers = {p["peer"]: p["has_session"] for p in json.loads(r.stdout)["peers"]}
    assert peers == {first.fp: True, second.fp: False}, peers


def test_client_reload_keeps_session_and_socks(lab, tmp_path):
    """The client role: two reloads (a changed PersistentKeepalive, then also a [Socks] key that
    needs a restart) keep the session and SOCKS working; the SOCKS server keeps the config it
    started with while the reloaded ones are swapped and freed (the sanitizer build checks)."""
    w, a = lab.netns("w"), lab.netns("a")
    lab.veth(w, a, "10.11.0.1/24", "10.11.0.2/24")
    a_priv, a_pub = keypair()
    wg = lab.wireguard_go(w, listen_port=WG_PORT, address="10.90.0.1/24",
                          peers=[{"public_key": a_pub, "allowed_ips": "10.90.0.2/32"}])
    docroot = tmp_path / "www"
    docroot.mkdir()
    (docroot / "hello.txt").write_text("reload keeps me reachable\n")
    w.popen([sys.executable, "-m", "http.server", "--bind", "10.90.0.1", "8080", "--directory",
             str(docroot)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sock = a.file("ctl.sock")

    def conf(keepalive, idle=300):
        return (f"[Interface]\nPrivateKey = {a_priv}\nAddress = 10.90.0.2/24\n\n"
                f"[Peer]\nPublicKey = {wg.public_key}\nEndpoint = 10.11.0.1:{WG_PORT}\n"
                f"AllowedIPs = 10.90.0.1/32\nPersistentKeepalive = {keepalive}\n\n"
                f"[Socks]\nListen = 127.0.0.1:1080\nIdleTimeout = {idle}\n\n"
                f"[Control]\nListen = {sock}\n")

    proxy = lab.awgproxy(a, "client", conf(25))
    wg.wait_handshake(a_pub, timeout=15)
    w_fp = netns.fingerprint(wg.public_key)

    def fetch():
        def once():
            r = a.run(["curl", "-sS", "--max-time", "10", "--socks5-hostname", "127.0.0.1:1080",
                       "http://10.90.0.1:8080/hello.txt"], check=False, timeout=30)
            return r.returncode == 0 and r.stdout == "reload keeps me reachable\n"
        return netns.wait_until(once, 30, interval=1)

    assert fetch(), proxy.log_tail()
    hs, n_hs = wg.latest_handshake(a_pub), len(handshakes_of(proxy, wg.public_key[:8]))
    for keepalive, idle, restart in ((20, 300, []), (15, 60, ["[Socks] IdleTimeout"])):
        pathlib.Path(proxy.conf_path).write_text(conf(keepalive, idle))
        r = ctl("-s", sock, "--json", "reload")
        doc = json.loads(r.stdout)
        assert r.returncode == 0 and doc["peers"] == {"added": 0, "removed": 0, "changed": 1,
                                                      "unchanged": 0}, r
        assert doc["restart_required"] == restart, doc
        assert fetch(), proxy.log_tail()
    peers = json.loads(ctl("-s", sock, "--json", "peers").stdout)["peers"]
    assert [(p["peer"], p["persistent_keepalive"], p["has_session"]) for p in peers] == \
        [(w_fp, 15, True)], peers
    assert wg.latest_handshake(a_pub) == hs
    assert len(handshakes_of(proxy, wg.public_key[:8])) == n_hs, proxy.log_tail(40)
    assert proxy.stop() == 0, proxy.log_tail()
