"""Observability end to end (issue 6): the Prometheus endpoint, the control API with `awgproxy ctl`,
and a log audit for secrets. awgproxy runs as a client against wireguard-go, as in
test_tunnel_interop.py:

    namespace W: wireguard-go, tunnel 10.78.0.1/24, underlay 192.168.78.1
    namespace A: awgproxy client (lwIP owns 10.78.0.2, answers ICMP echo), underlay 192.168.78.2
                 [Metrics] Listen = 127.0.0.1:9100 (inside A), [Control] Listen = a unix socket

The unix socket lives in the file system, so `awgproxy ctl` runs from the test's own namespace;
the metrics endpoint is scraped with curl inside A.

What is checked:
* /metrics is Prometheus text 0.0.4 (content type, every family typed, `promtool check metrics`
  when promtool is installed: Debian package prometheus, see scripts/setup-deps.sh);
* the peer's rx/tx byte and packet counters move by what a ping of N echo requests of S bytes
  from W must cost: at least N * (S + 28 inner + 32 WireGuard), at most N * (32 + the inner
  packet padded to 16) plus a few keepalives/handshakes;
* `ctl status --json`: tunnel up, the peer's last handshake within 1 s of wireguard-go's
  `latest-handshakes` (whole seconds) and of the time on awgproxy's "handshake completed" log line;
* the human output of status/peers/streams, `reload` of an unchanged file, the 0600 socket,
  `-c FILE`;
* log audit: a session with a PresharedKey and a SOCKS user with a password, at LOG_LEVEL=debug,
  used through SOCKS (right and wrong password): the whole log holds no private key, no PSK
  (base64 or hex), no password and no password hash; SOCKS events carry an 8-hex-digit sid; at
  LOG_LEVEL=info no destination address:port appears.
"""
import datetime
import json
import os
import pathlib
import re
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

import netns
from netns import keypair, ping

W_UNDERLAY, A_UNDERLAY = "192.168.78.1", "192.168.78.2"
W_TUNNEL, A_TUNNEL = "10.78.0.1", "10.78.0.2"
W_PORT = 51820
METRICS_PORT = 9100
PING_COUNT, PING_SIZE = 20, 1000
HTTP_PORT = 8080


# ---- helpers -------------------------------------------------------------------------------------


def ctl(*args, timeout=15):
    """Runs `awgproxy ctl ARGS` from the test's namespace; returns the CompletedProcess."""
    env = dict(os.environ)
    env.pop("LOG_LEVEL", None)
    env.pop("LOG_FORMAT", None)
    return subprocess.run([str(netns.awgproxy_binary()), "ctl", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def scrape(ns, path="/metrics", port=METRICS_PORT):
    """GET http://127.0.0.1:PORT/PATH from inside ns: (status, headers dict, body)."""
    r = ns.run(["curl", "-sS", "--max-time", "10", "-D", "-", f"http://127.0.0.1:{port}{path}"],
               check=False)
    assert r.returncode == 0, f"curl failed: {r.stderr}"
    # Text mode has turned the CRLFs into newlines.
    head, _, body = r.stdout.partition("\n\n")
    lines = head.splitlines()
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    return status, headers, body


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} and the TYPE of each family."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = dict(_LABEL.findall(m.group(3) or ""))
        samples[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return samples, types


def metric(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def log_time(line):
    """The time= field of a logfmt line as Unix seconds."""
    m = re.search(r"time=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z", line)
    assert m, f"no time in {line!r}"
    dt = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp()


def client_conf(priv, peer_pub, ctl_listen, psk=None, socks_user=None, metrics=True):
    text = (f"[Interface]\nPrivateKey = {priv}\nAddress = {A_TUNNEL}/24\n\n"
            f"[Peer]\nPublicKey = {peer_pub}\nEndpoint = {W_UNDERLAY}:{W_PORT}\n"
            f"AllowedIPs = {W_TUNNEL}/32\nPersistentKeepalive = 25\n"
            # the byte counters are checked against ping alone: no QUIC probe of wireguard-go
            f"Transport = ip\n")
    if psk:
        text += f"PresharedKey = {psk}\n"
    text += "\n[Socks]\nListen = 127.0.0.1:1080\n"
    if socks_user:
        text += f"User = {socks_user[0]}:{socks_user[1]}\n"
    if metrics:
        text += f"\n[Metrics]\nListen = 127.0.0.1:{METRICS_PORT}\n"
    text += f"\n[Control]\nListen = {ctl_listen}\n"
    return text


def short_tmpdir():
    """A short directory for unix sockets (sun_path holds 107 bytes)."""
    d = tempfile.mkdtemp(prefix="awgobs", dir="/tmp")
    return pathlib.Path(d)


def pad16(n):
    return (n + 15) // 16 * 16


# ---- one session shared by the metrics and control tests ------------------------------------------


class Session:
    pass


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    with netns.open_lab(tmp_path_factory.mktemp("obs"),
                        tools=("ping", "wg", "wireguard-go", "curl")) as lab:
        s = Session()
        s.lab = lab
        s.w, s.a = lab.netns("w"), lab.netns("a")
        lab.veth(s.w, s.a, f"{W_UNDERLAY}/24", f"{A_UNDERLAY}/24")
        s.a_priv, s.a_pub = keypair()
        s.wg = lab.wireguard_go(s.w, listen_port=W_PORT, address=f"{W_TUNNEL}/24",
                                peers=[{"public_key": s.a_pub, "allowed_ips": f"{A_TUNNEL}/32"}])
        s.dir = short_tmpdir()
        s.sock = s.dir / "ctl.sock"
        s.proxy = lab.awgproxy(s.a, "client", client_conf(s.a_priv, s.wg.public_key, s.sock))
        try:
            s.wg.wait_handshake(s.a_pub, timeout=10)
            s.proxy.wait_log(r"component=metrics.*event=listening", timeout=5)
            s.proxy.wait_log(r"component=control.*event=listening", timeout=5)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{s.proxy.log_tail()}") from None
        s.fp = netns.fingerprint(s.wg.public_key)
        _, _, s.before_text = scrape(s.a)
        s.ping = ping(s.w, A_TUNNEL, count=PING_COUNT, size=PING_SIZE, interval=0.2, wait=2)
        s.status, s.headers, s.after_text = scrape(s.a)
        s.status_json = ctl("-s", s.sock, "--json", "status")
        s.wg_handshake = s.wg.latest_handshake(s.a_pub)
        try:
            yield s
        finally:
            shutil.rmtree(s.dir, ignore_errors=True)


def test_metrics_endpoint(session):
    s = session
    assert s.status == 200, s.after_text
    assert s.headers.get("content-type", "").startswith("text/plain; version=0.0.4"), s.headers
    samples, types = parse_metrics(s.after_text)
    expected = {
        "awgproxy_build_info": "gauge", "awgproxy_sessions_active": "gauge",
        "awgproxy_handshakes_total": "counter", "awgproxy_reconnects_total": "counter",
        "awgproxy_peer_rx_bytes_total": "counter", "awgproxy_peer_tx_bytes_total": "counter",
        "awgproxy_peer_rx_packets_total": "counter", "awgproxy_peer_tx_packets_total": "counter",
        "awgproxy_peer_last_handshake_seconds": "gauge", "awgproxy_streams_active": "gauge",
        "awgproxy_stream_failures_total": "counter", "awgproxy_junk_packets_sent_total": "counter",
        "awgproxy_signature_packets_sent_total": "counter",
        "awgproxy_dropped_datagrams_total": "counter",
        "awgproxy_handshake_duration_seconds": "histogram",
        "awgproxy_dns_queries_total": "counter", "awgproxy_dns_cache_hits_total": "counter",
    }
    for name, kind in expected.items():
        assert types.get(name) == kind, f"{name}: TYPE {types.get(name)!r}, want {kind}"
    # Every sample belongs to a typed family.
    for (name, _), _ in samples.items():
        assert any(name == f or (types.get(f) == "histogram" and name.startswith(f + "_"))
                   for f in types), f"sample {name} has no TYPE line"
    assert metric(samples, "awgproxy_build_info", version=_version(), role="client") == 1
    assert metric(samples, "awgproxy_sessions_active") == 1
    assert metric(samples, "awgproxy_tunnel_up") == 1
    assert metric(samples, "awgproxy_handshakes_total", result="ok") >= 1
    assert metric(samples, "awgproxy_handshake_duration_seconds_count") >= 1
    inf = metric(samples, "awgproxy_handshake_duration_seconds_bucket", le="+Inf")
    assert inf == metric(samples, "awgproxy_handshake_duration_seconds_count")
    assert metric(samples, "awgproxy_dropped_datagrams_total", reason="decrypt") == 0
    assert metric(samples, "awgproxy_stream_failures_total", reply="connection-refused") == 0
    assert metric(samples, "awgproxy_streams_active", kind="socks_tcp") == 0
    # Plain WireGuard: no junk, no I-packets.
    assert metric(samples, "awgproxy_junk_packets_sent_total") == 0
    last = metric(samples, "awgproxy_peer_last_handshake_seconds", peer=s.fp)
    assert last and abs(last - s.wg_handshake) <= 1.05, (last, s.wg_handshake)


def _version():
    out = subprocess.run([str(netns.awgproxy_binary()), "version"], capture_output=True,
                         text=True).stdout
    return out.split()[1]


def test_promtool_accepts_scrape(session, tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        netns._skip("promtool is not installed (Debian package prometheus; scripts/setup-deps.sh)")
    r = subprocess.run([promtool, "check", "metrics"], input=session.after_text,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"promtool check metrics: {r.stdout}{r.stderr}"


def test_transfer_counters_match_ping(session):
    s = session
    assert s.ping.rc == 0 and s.ping.received >= PING_COUNT - 1, s.ping
    before, _ = parse_metrics(s.before_text)
    after, _ = parse_metrics(s.after_text)

    def delta(name):
        a, b = metric(after, name, peer=s.fp), metric(before, name, peer=s.fp)
        assert a is not None and b is not None, f"{name}{{peer={s.fp!r}}} missing"
        return a - b

    inner = PING_SIZE + 28                   # ICMP echo + IPv4 header
    lo_wire, hi_wire = inner + 32, pad16(inner) + 32  # + WireGuard header and tag
    slack = 6 * 148                          # keepalives and a handshake, at most
    rx, tx = delta("awgproxy_peer_rx_bytes_total"), delta("awgproxy_peer_tx_bytes_total")
    rxp, txp = delta("awgproxy_peer_rx_packets_total"), delta("awgproxy_peer_tx_packets_total")
    requests, replies = s.ping.transmitted, s.ping.received
    assert rx >= requests * PING_SIZE and tx >= replies * PING_SIZE, (rx, tx)
    assert requests * lo_wire <= rx <= requests * hi_wire + slack, \
        f"rx bytes moved {rx} for {requests} echo requests of {inner} bytes"
    assert replies * lo_wire <= tx <= replies * hi_wire + slack, \
        f"tx bytes moved {tx} for {replies} echo replies of {inner} bytes"
    assert requests <= rxp <= requests + 6, rxp
    assert replies <= txp <= replies + 6, txp


def test_ctl_status_json(session):
    s = session
    r = s.status_json
    assert r.returncode == 0, f"{r.stdout}{r.stderr}\n{s.proxy.log_tail()}"
    doc = json.loads(r.stdout)
    assert doc["state"] == "up" and doc["role"] == "client", doc
    assert doc["version"] == _version()
    (peer,) = doc["peers"]
    assert peer["peer"] == s.fp
    assert peer["has_session"] is True
    assert peer["endpoint"] == f"{W_UNDERLAY}:{W_PORT}"
    assert peer["rx_bytes"] > PING_COUNT * PING_SIZE and peer["tx_bytes"] > 0
    hs = peer["last_handshake"]
    # Milliseconds, not more: the JSON number has at most three decimals.
    assert re.search(r'"last_handshake":\d+\.\d{3}[,}]', r.stdout), r.stdout
    # wireguard-go reports whole seconds (truncated); both sides complete within milliseconds.
    assert abs(hs - s.wg_handshake) <= 1.0 + 0.05, (hs, s.wg_handshake)
    lines = s.proxy.handshake_completed_lines(s.wg.public_key)
    assert lines, s.proxy.log_tail()
    assert abs(hs - log_time(lines[-1])) <= 1.0, (hs, lines[-1])
    assert doc["streams"]["active"] == 0
    assert set(doc["streams"]["by_kind"]) >= {"socks_tcp", "socks_udp", "forward_tcp"}


def test_ctl_human_output_and_api(session):
    s = session
    mode = stat.S_IMODE(os.stat(s.sock).st_mode)
    assert stat.S_ISSOCK(os.stat(s.sock).st_mode) and mode == 0o600, oct(mode)

    r = ctl("-s", s.sock, "status")
    assert r.returncode == 0, r
    assert "tunnel: up" in r.stdout and f"peer {s.fp}: session up" in r.stdout, r.stdout
    assert re.search(r"latest handshake: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC", r.stdout)
    assert "streams: 0 active" in r.stdout

    r = ctl("--socket", s.sock, "peers")
    assert r.returncode == 0 and f"allowed ips: {W_TUNNEL}/32" in r.stdout, r
    assert "persistent keepalive: every 25 s" in r.stdout

    r = ctl("-s", s.sock, "streams")
    assert r.returncode == 0 and "socks: " in r.stdout and "failed requests: none" in r.stdout, r

    # The socket path can come from the config file.
    r = ctl("-c", s.proxy.conf_path, "--json", "peers")
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["peers"][0]["peer"] == s.fp

    # Reloading the unchanged file keeps the peer and its session (test_reload.py does the rest).
    r = ctl("-s", s.sock, "reload")
    assert r.returncode == 0, r
    assert "reloaded: 0 peer(s) added, 0 removed, 0 changed, 1 unchanged" in r.stdout, r.stdout
    r = ctl("-s", s.sock, "--json", "reload")
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["ok"] is True and doc["peers"]["unchanged"] == 1, r
    assert doc["restart_required"] == [], doc
    r = ctl("-s", s.sock, "status")
    assert r.returncode == 0 and f"peer {s.fp}: session up" in r.stdout, r.stdout

    r = ctl("-s", s.dir / "nothing.sock", "status")
    assert r.returncode == 1 and "cannot connect" in r.stderr, r
    assert ctl("-s", s.sock, "frobnicate").returncode == 2
    assert ctl("status", "-s").returncode == 2

    # Anything but GET /metrics is 404 on the metrics port.
    status, _, _ = scrape(s.a, "/")
    assert status == 404
    status, _, body = scrape(s.a, "/metrics?x=1")
    assert status == 200 and "awgproxy_build_info" in body
    assert s.proxy.alive(), s.proxy.log_tail()


def test_socket_removed_on_stop(session):
    s = session
    assert s.proxy.stop() == 0, s.proxy.log_tail()
    assert not s.sock.exists()


# ---- AWG counters: two awgproxy instances with junk and I-packets ---------------------------------

JC, S1 = 3, 15
AWG_BLOCK = ("Jc = 3\nJmin = 50\nJmax = 90\nS1 = 15\nS2 = 18\nS3 = 20\nS4 = 23\n"
             "H1 = 100000-100100\nH2 = 200000-200100\nH3 = 300000-300100\nH4 = 400000-400100\n"
             "I1 = <b 0xc0ffee><r 8>\nI2 = <t><c>\n")


def awg_conf(priv, address, peer_pub, peer_allowed, listen_port=None, endpoint=None):
    text = f"[Interface]\nPrivateKey = {priv}\nAddress = {address}\n{AWG_BLOCK}"
    if listen_port:
        text += f"ListenPort = {listen_port}\n"
    text += f"\n[Peer]\nPublicKey = {peer_pub}\nAllowedIPs = {peer_allowed}\n"
    if endpoint:
        text += f"Endpoint = {endpoint}\nPersistentKeepalive = 25\n"
    return text + f"\n[Metrics]\nListen = 127.0.0.1:{METRICS_PORT}\n"


def test_awg_counters_between_two_instances(lab):
    """Client and server are both awgproxy with Jc = 3 and two I-packets: the client counts the
    junk and signature datagrams it sends, the server counts them as unclassifiable drops, and a
    forged initiation (right size and type, wrong MACs) is counted as a mac1 drop."""
    w, a = lab.netns("w"), lab.netns("a")
    lab.veth(w, a, f"{W_UNDERLAY}/24", f"{A_UNDERLAY}/24")
    s_priv, s_pub = keypair()
    c_priv, c_pub = keypair()
    server = lab.awgproxy(w, "server", awg_conf(s_priv, f"{W_TUNNEL}/24", c_pub,
                                                f"{A_TUNNEL}/32", listen_port=W_PORT))
    server.wait_log(r"component=metrics.*event=listening", timeout=10)
    client = lab.awgproxy(a, "client", awg_conf(c_priv, f"{A_TUNNEL}/24", s_pub, f"{W_TUNNEL}/32",
                                                endpoint=f"{W_UNDERLAY}:{W_PORT}"))
    try:
        client.wait_handshake(s_pub, timeout=10)
        server.wait_handshake(c_pub, timeout=10)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{client.log_tail()}\n{server.log_tail()}") from None
    forged = os.urandom(S1) + (100050).to_bytes(4, "little") + os.urandom(144)
    netns.send_udp(a, W_UNDERLAY, W_PORT, [forged, forged])

    def scraped(ns):
        return parse_metrics(scrape(ns)[2])[0]

    cm = scraped(a)
    inits = metric(cm, "awgproxy_peer_tx_packets_total", peer=netns.fingerprint(s_pub))
    assert metric(cm, "awgproxy_junk_packets_sent_total") >= JC
    assert metric(cm, "awgproxy_junk_packets_sent_total") % JC == 0
    assert metric(cm, "awgproxy_signature_packets_sent_total") >= 2
    assert metric(cm, "awgproxy_signature_packets_sent_total") * JC == \
        metric(cm, "awgproxy_junk_packets_sent_total") * 2
    assert inits >= JC + 2 + 1
    assert metric(cm, "awgproxy_handshake_duration_seconds_count") >= 1
    assert metric(cm, "awgproxy_sessions_active") == 1

    def server_ok():
        sm = scraped(w)
        return sm if metric(sm, "awgproxy_dropped_datagrams_total", reason="mac1") >= 2 else None

    sm = netns.wait_until(server_ok, 5)
    assert sm, f"{scrape(w)[2]}\n{server.log_tail()}"
    assert metric(sm, "awgproxy_build_info", version=_version(), role="server") == 1
    assert metric(sm, "awgproxy_dropped_datagrams_total", reason="unknown-class") >= JC + 2
    assert metric(sm, "awgproxy_handshakes_total", result="ok") >= 1
    assert metric(sm, "awgproxy_sessions_active") == 1
    assert metric(sm, "awgproxy_peer_rx_packets_total", peer=netns.fingerprint(c_pub)) >= 2
    # The server answered, it never initiated: no handshake duration to report.
    assert metric(sm, "awgproxy_handshake_duration_seconds_count") == 0
    assert client.stop() == 0 and server.stop() == 0


def test_reconnects_counted_but_rekeys_not(lab):
    """With netns.FAST_TIMERS (rekey after 4 s, sessions die after 8 s) and a keepalive
    every second: routine rekeys leave awgproxy_reconnects_total at 0; when wireguard-go goes away
    long enough for the session to die and comes back, the new session counts as a reconnect."""
    w, a = lab.netns("w"), lab.netns("a")
    lab.veth(w, a, f"{W_UNDERLAY}/24", f"{A_UNDERLAY}/24")
    a_priv, a_pub = keypair()
    w_priv, _ = keypair()
    peers = [{"public_key": a_pub, "allowed_ips": f"{A_TUNNEL}/32"}]
    wg = lab.wireguard_go(w, private_key=w_priv, listen_port=W_PORT, address=f"{W_TUNNEL}/24",
                          peers=peers)
    conf = client_conf(a_priv, wg.public_key, "127.0.0.1:9101").replace(
        "PersistentKeepalive = 25", "PersistentKeepalive = 1")
    proxy = lab.awgproxy(a, "client", netns.fast_timers(conf))
    wg.wait_handshake(a_pub, timeout=10)

    def counters():
        m = parse_metrics(scrape(a)[2])[0]
        return (metric(m, "awgproxy_handshakes_total", result="ok"),
                metric(m, "awgproxy_reconnects_total"))

    assert netns.wait_until(lambda: counters()[0] >= 2, 10), \
        f"no rekey within 10 s\n{proxy.log_tail()}"
    assert counters()[1] == 0, f"a routine rekey was counted as a reconnect\n{proxy.log_tail()}"

    wg.stop()
    netns.wait_until(lambda: w.run(["ip", "link", "show", wg.ifname], check=False).returncode, 5)
    # Long enough for the session to die (REJECT_AFTER_TIME = 8 s with the fast timers).
    assert netns.wait_until(lambda: json.loads(a.run(
        [str(netns.awgproxy_binary()), "ctl", "--connect", "127.0.0.1:9101", "--json",
         "status"]).stdout)["state"] == "down", 15), proxy.log_tail()
    ok_before = counters()[0]
    lab.wireguard_go(w, private_key=w_priv, listen_port=W_PORT, address=f"{W_TUNNEL}/24",
                     peers=peers)
    assert netns.wait_until(lambda: counters()[0] > ok_before, 20), proxy.log_tail()
    assert counters()[1] == 1, f"{counters()}\n{proxy.log_tail()}"
    assert proxy.stop() == 0, proxy.log_tail()


# ---- log audit -----------------------------------------------------------------------------------


@pytest.fixture
def lab(tmp_path):
    with netns.open_lab(tmp_path, tools=("ping", "wg", "wireguard-go", "curl")) as lab:
        yield lab


def _socks_get(ns, user, password):
    """curl through the SOCKS port in ns to W's HTTP server; returns (rc, stdout, stderr)."""
    r = ns.run(["curl", "-sS", "--max-time", "15", "--socks5", "127.0.0.1:1080",
                "--proxy-user", f"{user}:{password}", f"http://{W_TUNNEL}:{HTTP_PORT}/"],
               check=False, timeout=30)
    return r.returncode, r.stdout, r.stderr


def test_log_audit_no_secrets(lab):
    w, a = lab.netns("w"), lab.netns("a")
    lab.veth(w, a, f"{W_UNDERLAY}/24", f"{A_UNDERLAY}/24")
    a_priv, a_pub = keypair()
    psk = netns.genkey()  # any 32 random bytes in base64 will do as a PSK
    password = "Corr3ct-h0rse-" + os.urandom(6).hex()
    netns.register_secret(password)
    hashed = subprocess.run([str(netns.awgproxy_binary()), "passwd"], input=password + "\n",
                            capture_output=True, text=True, check=True).stdout.strip()
    wg = lab.wireguard_go(w, listen_port=W_PORT, address=f"{W_TUNNEL}/24",
                          peers=[{"public_key": a_pub, "allowed_ips": f"{A_TUNNEL}/32",
                                  "preshared_key": psk}])
    web = w.file("www")
    web.mkdir()
    (web / "index.html").write_text("observability audit page\n")
    server = netns.LoggedProcess(w, [sys.executable, "-m", "http.server", str(HTTP_PORT), "--bind",
                                     W_TUNNEL, "--directory", str(web)], w.file("http.log"))
    lab.processes.append(server)

    def run_client(level):
        proxy = lab.awgproxy(a, "client",
                             client_conf(a_priv, wg.public_key, "127.0.0.1:9101", psk=psk,
                                         socks_user=("alice", hashed)),
                             log_level=level)
        try:
            # awgproxy's own log line: the second run may handshake within the same second as
            # the first, which wireguard-go's whole-second latest-handshake cannot tell apart.
            proxy.wait_handshake(wg.public_key, timeout=10)
            proxy.wait_log(r"component=socks.*event=listening", timeout=5)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{proxy.log_tail()}") from None
        ok = netns.wait_until(lambda: _socks_get(a, "alice", password)[0] == 0, 15, interval=0.5)
        assert ok, f"{_socks_get(a, 'alice', password)}\n{proxy.log_tail()}\n{server.log_tail()}"
        rc, out, _ = _socks_get(a, "alice", password)
        assert rc == 0 and "observability audit page" in out
        rc, _, _ = _socks_get(a, "alice", password + "x")  # wrong password
        assert rc != 0
        rc, _, _ = _socks_get(a, "mallory", password)      # unknown user
        assert rc != 0
        # The control API over loopback TCP, from inside A.
        r = a.run([str(netns.awgproxy_binary()), "ctl", "--connect", "127.0.0.1:9101", "--json",
                   "streams"], check=False)
        assert r.returncode == 0, r
        streams = json.loads(r.stdout)
        assert streams["socks"]["accepted"] >= 3 and streams["socks"]["handshake_failures"] >= 2
        _, _, metrics = scrape(a)
        samples, _ = parse_metrics(metrics)
        assert metric(samples, "awgproxy_streams_total", kind="socks_tcp") >= 1
        assert proxy.stop() == 0, proxy.log_tail()
        return proxy.log()

    debug_log = run_client("debug")
    secrets = {"client private key": a_priv, "wireguard-go private key": wg.private_key,
               "preshared key": psk}
    for what, key in secrets.items():
        for form in netns.key_forms(key):
            assert form not in debug_log, f"the {what} appears in the debug log (as {form})"
    assert password not in debug_log, "the SOCKS password appears in the debug log"
    assert hashed not in debug_log and hashed.split("$")[-1] not in debug_log, \
        "the SOCKS password hash appears in the debug log"
    # SOCKS events carry a session id; the destination shows at debug level only.
    socks_lines = [l for l in debug_log.splitlines() if "component=socks" in l and "sid=" in l]
    assert socks_lines, debug_log[-3000:]
    for line in socks_lines:
        assert re.search(r"\bsid=[0-9a-f]{8}\b", line), line
    assert any("event=auth_failed" in l for l in socks_lines), socks_lines
    connected = [l for l in socks_lines if "event=connected" in l]
    assert connected and f"{W_TUNNEL}:{HTTP_PORT}" in connected[0], connected
    sid = re.search(r"sid=([0-9a-f]{8})", connected[0]).group(1)
    assert any("event=stream_closed" in l and f"sid={sid}" in l for l in socks_lines), \
        f"no stream_closed event for sid {sid}"

    info_log = run_client("info")
    assert password not in info_log and a_priv not in info_log and psk not in info_log
    assert f"{W_TUNNEL}:{HTTP_PORT}" not in info_log, \
        "a destination address appears in the info-level log"
    assert not re.search(r"level=debug", info_log)
