"""The TLS carrier (issue 12): AWG datagrams over TLS on port 443 when UDP is blocked, and a decoy
web server for everyone else.

The lab is clientlab's (C client, S = awgproxy server, T target), with S listening for TLS on
192.0.2.1:443 ([Server] TlsListen) and C's nftables dropping every UDP datagram to S: the client
(`Carrier = tls`, `TlsEndpoint = 192.0.2.1:443`) reaches T only through the TLS carrier. The drop
rule counts what it dropped, so the tests also see that a TLS-carried client sends no UDP.
"""
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

import clientlab as cl
import netns
import tls_hello
from integrity import run_integrity

TLS_PORT = 443
CONTROL_PORT = 9190
METRICS_PORT = 9191


class TlsTopology(cl.Topology):
    decoy_dir = None
    cert = None  # (cert file, key file) for TlsCert/TlsKey; None: self-signed
    decoy_upstream = None  # TlsDecoyUpstream
    carrier = "tls"
    udp_retry = None

    def server_conf(self):
        decoy = f"TlsDecoy = {self.decoy_dir}\n" if self.decoy_dir else ""
        if self.decoy_upstream:
            decoy += f"TlsDecoyUpstream = {self.decoy_upstream}\n"
        if self.cert:
            decoy += f"TlsCert = {self.cert[0]}\nTlsKey = {self.cert[1]}\n"
        return super().server_conf() + (f"\n[Server]\nTlsListen = {cl.S_UNDERLAY}:{TLS_PORT}\n"
                                         f"TlsName = www.example.org\n{decoy}"
                                         f"\n[Control]\nListen = 127.0.0.1:{CONTROL_PORT}\n"
                                         f"\n[Metrics]\nListen = 127.0.0.1:{METRICS_PORT}\n")

    def client_conf(self, socks=None, extra_interface=""):
        text = super().client_conf(socks, extra_interface)
        peer = "PersistentKeepalive = 25\n"
        retry = f"UdpRetry = {self.udp_retry}\n" if self.udp_retry else ""
        return text.replace(peer, peer + f"TlsEndpoint = {cl.S_UNDERLAY}:{TLS_PORT}\n"
                            f"Carrier = {self.carrier}\n{retry}", 1)


def block_udp(ns, dst):
    """Drops (and counts) every UDP datagram from ns to dst."""
    ns.run(["nft", f"add table ip blk; add chain ip blk out {{ type filter hook output priority 0; }};"
                   f" add rule ip blk out ip daddr {dst} meta l4proto udp counter drop"])


def udp_dropped(ns):
    out = ns.run(["nft", "list table ip blk"]).stdout
    return int(out.split("packets ")[1].split()[0])


@pytest.fixture
def lab(tmp_path):
    if not shutil.which("nft"):
        pytest.fail("nft (Debian package nftables) is needed to block UDP")
    with netns.open_lab(tmp_path, tools=("curl", "openssl")) as lab_:
        yield lab_


def build(lab, decoy_dir=None, carrier="tls", udp_retry=None, block=True, before_client=None,
          cert=None, decoy_upstream=None):
    def make(lab_, server):
        topo = TlsTopology(lab_, server=server)
        topo.decoy_dir, topo.cert, topo.decoy_upstream = decoy_dir, cert, decoy_upstream
        topo.carrier, topo.udp_retry = carrier, udp_retry
        return topo

    topo = cl.build_topology(lab, server="awgproxy", start_client=False, topology=make)
    if block:
        block_udp(topo.c, cl.S_UNDERLAY)
    if before_client:
        before_client(topo)
    topo.start_client(wait_tunnel=False)
    return topo


def test_udp_blocked_tls_carries_everything(lab):
    topo = build(lab)
    topo.server.wait_log(r"component=tls.*event=peer_connected", timeout=15)
    topo.wait_client_handshake(timeout=15)
    for opt in ("--socks5", "--socks5-hostname", "--socks4", "--socks4a"):
        host = cl.TARGET_NAME if opt.endswith(("hostname", "4a")) else cl.T_HTTP
        r = topo.curl(f"http://{host}/", opt, f"127.0.0.1:{cl.SOCKS_PORT}")
        assert r.returncode == 0 and r.stdout.encode() == cl.HTTP_BODY, (opt, r, topo.logs())
    # 8 MiB each way through the echo service, every byte checked.
    data = os.urandom(8 << 20)
    with cl.in_netns(topo.c):
        s = socket.create_connection(("127.0.0.1", cl.SOCKS_PORT), timeout=30)
    s.sendall(b"\x05\x01\x00" + cl.socks5_request_bytes(cl.T_HTTP, cl.ECHO_PORT))
    assert s.recv(2) == b"\x05\x00" and s.recv(10)[:2] == b"\x05\x00"
    got = bytearray()
    sender = threading.Thread(target=s.sendall, args=(data,))
    sender.start()
    s.settimeout(60)
    while len(got) < len(data):
        chunk = s.recv(1 << 16)
        assert chunk, (len(got), topo.logs())
        got += chunk
    sender.join()
    s.close()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert udp_dropped(topo.c) == 0, "a client on the TLS carrier sent UDP to the server"
    assert "component=tls event=connected" in topo.proxy.log(), topo.logs()
    # Repair runs between the two ends, but TCP loses nothing below TLS: neither end kept a copy
    # of its 8 MiB of sealed datagrams for a resend (test_auto_moves_to_tls_and_back_to_udp
    # sees the same counter move on UDP).
    topo.server.wait_log(r"component=tunnel event=repair_on", timeout=10)
    assert repair_kept(topo) == 0, server_metrics(topo, "awgproxy_repair_total")
    # The server says which carrier its peer is on.
    r = topo.s.run([str(netns.awgproxy_binary()), "ctl", "--connect", f"127.0.0.1:{CONTROL_PORT}",
                    "status"], check=False)
    assert r.returncode == 0 and "carrier tls" in r.stdout, r


def test_probers_find_a_web_server(lab, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>Welcome</h1>\n")
    topo = build(lab, decoy_dir=site)
    url = f"https://{cl.S_UNDERLAY}:{TLS_PORT}"
    # curl offers h2 and http/1.1 and takes h2, as from nginx with `http2 on`.
    r = topo.c.run(["curl", "-sk", "-i", "--max-time", "10", f"{url}/"], check=False)
    assert r.returncode == 0 and r.stdout.startswith("HTTP/2 200"), r
    assert "<h1>Welcome</h1>" in r.stdout and "server: nginx" in r.stdout, r
    r = topo.c.run(["curl", "-sk", "-i", "--max-time", "10", f"{url}/wp-admin/"], check=False)
    assert r.returncode == 0 and r.stdout.startswith("HTTP/2 404"), r
    assert "<center>nginx</center>" in r.stdout, r
    r = topo.c.run(["curl", "-sk", "-I", "--max-time", "10", f"{url}/"], check=False)
    assert r.returncode == 0 and r.stdout.startswith("HTTP/2 200"), r
    assert "content-length: 17" in r.stdout, r
    # Several requests on one HTTP/2 connection, and a large file read slowly (paced).
    big = os.urandom(3 << 20)
    (site / "big.bin").write_bytes(big)
    out = tmp_path / "got.bin"
    r = topo.c.run(["curl", "-sk", "--max-time", "30", "--limit-rate", "2M", "-o", str(out),
                    f"{url}/big.bin", "-o", "/dev/null", f"{url}/"], check=False, timeout=40)
    assert r.returncode == 0 and out.read_bytes() == big, r
    # HTTP/1.1 for clients that ask for it.
    r = topo.c.run(["curl", "-sk", "-i", "--http1.1", "--max-time", "10", f"{url}/"], check=False)
    assert r.returncode == 0 and "HTTP/1.1 200 OK" in r.stdout and "<h1>Welcome</h1>" in r.stdout, r
    assert "Server: nginx" in r.stdout, r
    r = topo.c.run(["curl", "-sk", "-i", "--http1.1", "--max-time", "10", f"{url}/wp-admin/"],
                   check=False)
    assert r.returncode == 0 and "HTTP/1.1 404 Not Found" in r.stdout, r
    # TLS 1.3 with the certificate made for TlsName.
    r = topo.c.run(["openssl", "s_client", "-connect", f"{cl.S_UNDERLAY}:{TLS_PORT}",
                    "-servername", "www.example.org"], input="", check=False, timeout=15)
    assert "TLSv1.3" in r.stdout and "CN = www.example.org" in r.stdout, r.stdout[-3000:]
    # Bytes that are not HTTP: 400, then the connection is closed, as nginx does.
    with tls_connect(topo) as t:
        t.sendall(b"\xfe" + os.urandom(63))
        reply = b""
        while chunk := t.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n"), reply
    # Each of them met the decoy, none reached the tunnel (the lab's own client is the only peer).
    log = topo.server.log()
    assert log.count("component=tls event=decoy") >= 3, topo.logs()
    assert log.count("component=tls event=peer_connected") == 1, topo.logs()
    # The metrics say the same, and count the peer's datagrams.
    m = server_metrics(topo)
    assert m['awgproxy_tls_connections_total{kind="decoy"}'] >= 3, m
    assert m['awgproxy_tls_connections_total{kind="peer"}'] == 1, m
    assert m["awgproxy_tls_connections_open"] >= 1, m
    assert m['awgproxy_tls_datagrams_total{direction="in"}'] > 0, m
    assert m['awgproxy_tls_datagrams_total{direction="out"}'] > 0, m


def server_metrics(topo, prefix="awgproxy_tls_"):
    r = topo.s.run(["curl", "-sS", "--max-time", "5", f"http://127.0.0.1:{METRICS_PORT}/metrics"],
                   check=False)
    assert r.returncode == 0, r
    return {k: float(v) for k, v in (line.rsplit(" ", 1) for line in r.stdout.splitlines()
                                     if line.startswith(prefix))}


def repair_kept(topo):
    """Sealed datagrams the server kept for a resend (loss repair's ring)."""
    return server_metrics(topo, "awgproxy_repair_total")['awgproxy_repair_total{event="kept"}']


def tls_connect(topo):
    """A TLS connection from C to the server's TLS port, as a prober makes it (no verification)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with cl.in_netns(topo.c):
        raw = socket.create_connection((cl.S_UNDERLAY, TLS_PORT), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="www.example.org")


def server_status(topo):
    r = topo.s.run([str(netns.awgproxy_binary()), "ctl", "--connect", f"127.0.0.1:{CONTROL_PORT}",
                    "status"], check=False)
    assert r.returncode == 0, r
    return r.stdout


def echo_roundtrip(sock, n=256 << 10):
    data = os.urandom(n)
    sock.sendall(data)
    got = bytearray()
    while len(got) < n:
        chunk = sock.recv(1 << 16)
        assert chunk, len(got)
        got += chunk
    assert bytes(got) == data


def test_auto_moves_to_tls_and_back_to_udp(lab):
    """Carrier = auto: UDP blocked, the client moves to TLS by itself (the curl matrix works within
    15 s of the start); UDP unblocked, it returns within UdpRetry; a stream open across both moves
    carries on."""
    started = time.monotonic()
    topo = build(lab, carrier="auto", udp_retry=3)
    r = None
    while time.monotonic() - started < 15:
        r = topo.curl(f"http://{cl.TARGET_NAME}/", "--socks5-hostname",
                      f"127.0.0.1:{cl.SOCKS_PORT}", max_time=3)
        if r.returncode == 0:
            break
    took = time.monotonic() - started
    assert r.returncode == 0 and r.stdout.encode() == cl.HTTP_BODY, (r, topo.logs())
    assert took < 15, took
    log = topo.proxy.log()
    assert "event=carrier_switched" in log and "to=tls" in log and "unanswered" in log, log[-3000:]
    for opt in ("--socks5", "--socks4", "--socks4a"):
        host = cl.TARGET_NAME if opt.endswith("4a") else cl.T_HTTP
        r = topo.curl(f"http://{host}/", opt, f"127.0.0.1:{cl.SOCKS_PORT}")
        assert r.returncode == 0 and r.stdout.encode() == cl.HTTP_BODY, (opt, r)
    assert "carrier tls" in server_status(topo)
    with cl.in_netns(topo.c):
        held = socket.create_connection(("127.0.0.1", cl.SOCKS_PORT), timeout=30)
    held.sendall(b"\x05\x01\x00" + cl.socks5_request_bytes(cl.T_HTTP, cl.ECHO_PORT))
    assert held.recv(2) == b"\x05\x00" and held.recv(10)[:2] == b"\x05\x00"
    held.settimeout(30)
    kept = repair_kept(topo)
    echo_roundtrip(held)
    # Over TLS no sealed datagram is kept for loss repair: TCP loses nothing below.
    assert repair_kept(topo) == kept, server_metrics(topo, "awgproxy_repair_total")
    # UDP works again: back within UdpRetry (3 s) plus a handshake.
    topo.c.run(["nft", "delete table ip blk"])
    netns.wait_until(lambda: "to=udp" in topo.proxy.log(), 12,
                     what=f"the client back on UDP: {topo.logs()}")
    netns.wait_until(lambda: "carrier udp" in server_status(topo), 5,
                     what="the server following the client back to UDP")
    kept = repair_kept(topo)
    echo_roundtrip(held)
    # On UDP the server keeps what it sends, for a resend should the client miss it.
    assert repair_kept(topo) > kept, server_metrics(topo, "awgproxy_repair_total")
    held.close()
    r = topo.curl(f"http://{cl.T_HTTP}/", "--socks5", f"127.0.0.1:{cl.SOCKS_PORT}")
    assert r.returncode == 0 and r.stdout.encode() == cl.HTTP_BODY, r


def test_replayed_initiation_gets_nothing(lab):
    """A censor who recorded a client's initiation (over UDP) and replays it inside TLS passes the
    gate (its mac1 is valid) but gets no answer: no AWG byte, no web page, no close."""
    cap = {}

    def start_capture(topo):
        cap["t"] = netns.tcpdump(topo.s, topo.cs.ifname_b, filter=f"udp and dst port {cl.WG_PORT}")

    topo = build(lab, carrier="udp", block=False, before_client=start_capture)
    topo.wait_client_handshake(timeout=15)
    inits = [d.payload for d in cap["t"].stop() if len(d.payload) == 148 and d.payload[0] == 1]
    assert inits, "no initiation captured"
    with tls_connect(topo) as t:
        t.sendall(len(inits[0]).to_bytes(2, "big") + inits[0])
        t.settimeout(3)
        with pytest.raises(socket.timeout):
            got = t.recv(4096)
            raise AssertionError(f"the server answered a replayed initiation: {got!r}")
    log = topo.server.log()
    assert "kind=initiation from=tls:" in log and "reason=stale-timestamp" in log, log[-3000:]


def test_parallel_streams_over_tls(lab):
    """100 streams x 10 MB both ways at once over the TLS carrier (UDP blocked), every byte
    checked, as the issue asks (AWG_INTEGRITY_MB lowers it: the sanitizer build's 1 MB)."""
    streams = int(os.environ.get("AWG_INTEGRITY_STREAMS", "100"))
    mb = float(os.environ.get("AWG_INTEGRITY_MB", "10"))
    topo = build(lab)
    topo.wait_client_handshake(timeout=15)
    elapsed, stalled, prog, errors, samples = run_integrity(topo, streams, int(mb * (1 << 20)), 300)
    done = sum(1 for p in prog if p[2])
    print(f"{streams} streams x {mb} MB each way over TLS: {done} verified in {elapsed:.1f} s "
          f"({streams * mb / elapsed:.1f} MB/s each way), RSS {topo.rss_kb()} kB")
    assert not errors and not stalled and done == streams, (errors[:5], stalled, samples,
                                                            topo.logs())
    assert udp_dropped(topo.c) == 0


def catch_hello(ns, trigger):
    """The ClientHello that trigger(port) makes a client send to a listener on 127.0.0.1:port
    in ns."""
    with cl.in_netns(ns):
        catcher = tls_hello.HelloCatcher()
    try:
        trigger(catcher.port)
        return catcher.wait(timeout=20)
    finally:
        catcher.close()


def test_client_hello_is_a_debian_gnutls_clients(lab):
    """Our ClientHello is the one Debian's GnuTLS clients send (issue 12, "looking ordinary"):
    apt's, plus curl's ALPN (h2, http/1.1); git's (libcurl-gnutls), plus session tickets (our
    resumption). Same ciphers, groups, key shares, signature algorithms, extension order."""
    if not shutil.which("git"):
        pytest.fail("git (Debian package git, with libcurl3-gnutls) is needed for the comparison")
    ns = lab.netns("hello")
    priv, _ = netns.keypair()
    _, server_pub = netns.keypair()

    def ours(port):
        conf = (f"[Interface]\nPrivateKey = {priv}\nAddress = 10.99.0.2/32\n\n"
                f"[Peer]\nPublicKey = {server_pub}\nAllowedIPs = 0.0.0.0/0\n"
                f"Endpoint = 127.0.0.1:9\nTlsEndpoint = 127.0.0.1:{port}\n"
                f"TlsServerName = localhost\nCarrier = tls\n\n"
                f"[Socks]\nListen = 127.0.0.1:{cl.SOCKS_PORT}\n")
        proc = lab.awgproxy(ns, "client", conf)
        proc.wait_log(r"component=socks event=listening", timeout=10)
        # A connection through the proxy makes the tunnel start its handshake, over TLS.
        ns.run(["curl", "-s", "--max-time", "3", "--socks5", f"127.0.0.1:{cl.SOCKS_PORT}",
                "http://192.0.2.9/"], check=False)

    def apt(port):
        # apt retries once the listener has closed: `timeout` ends it (the hello is caught).
        ns.run(["timeout", "8", "/usr/lib/apt/apt-helper", "-o", "Acquire::Retries=0",
                "-o", "Acquire::https::Verify-Peer=false",
                "download-file", f"https://localhost:{port}/x", str(ns.file("apt-x"))],
               check=False, timeout=20)

    def git(port):
        ns.run(["timeout", "8", "git", "-c", "http.sslVerify=false", "ls-remote",
                f"https://localhost:{port}/x"],
               check=False, timeout=20)

    us, them_apt, them_git = catch_hello(ns, ours), catch_hello(ns, apt), catch_hello(ns, git)
    for name, h in (("awgproxy", us), ("apt", them_apt), ("git", them_git)):
        print(f"{name}: {tls_hello.describe(h)}")
    assert us.version == 0x0304 and us.sni == "localhost" and us.alpn == ["h2", "http/1.1"]
    for field in ("ciphers", "groups", "key_share_groups", "sig_algs", "point_formats"):
        assert getattr(us, field) == getattr(them_apt, field) == getattr(them_git, field), field
    tickets = [tls_hello.EXT_SESSION_TICKET, 0x002D]  # session_ticket, psk_key_exchange_modes
    assert [e for e in us.extensions if e != tls_hello.EXT_ALPN] == them_apt.extensions
    assert [e for e in us.extensions if e not in tickets] == them_git.extensions
    assert them_git.alpn == us.alpn
    # JA4's cipher and extension hashes are apt's: only the ALPN part of JA4_a differs.
    assert tls_hello.ja4(us).split("_")[1:] == tls_hello.ja4(them_apt).split("_")[1:]


def make_cert(cert, key, name):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj", f"/CN={name}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)


def served_cert_subject(topo):
    """The subject of the certificate the server's TLS port shows a new connection."""
    r = topo.c.run(["openssl", "s_client", "-connect", f"{cl.S_UNDERLAY}:{TLS_PORT}",
                    "-servername", "www.example.org"], input="", check=False, timeout=15)
    for line in r.stdout.splitlines():
        if line.startswith("subject="):
            return line.split("=", 1)[1].strip()
    raise AssertionError(f"no certificate seen: {r.stdout[-2000:]} {r.stderr[-1000:]}")


def server_ctl(topo, *args):
    return topo.s.run([str(netns.awgproxy_binary()), "ctl", "--connect",
                       f"127.0.0.1:{CONTROL_PORT}", *args], check=False)


def test_reload_takes_a_renewed_certificate(lab, tmp_path):
    """TlsCert/TlsKey are read again at each reload, as certbot renews them in place: new
    connections get the new certificate, a peer's open connection and its streams carry on, and
    a broken file fails the reload and leaves the running certificate in place."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make_cert(cert, key, "first.example.org")
    topo = build(lab, cert=(cert, key))
    topo.wait_client_handshake(timeout=15)
    assert served_cert_subject(topo) == "CN = first.example.org"
    with cl.in_netns(topo.c):
        s = socket.create_connection(("127.0.0.1", cl.SOCKS_PORT), timeout=30)
    s.sendall(b"\x05\x01\x00" + cl.socks5_request_bytes(cl.T_HTTP, cl.ECHO_PORT))
    assert s.recv(2) == b"\x05\x00" and s.recv(10)[:2] == b"\x05\x00"
    echo_roundtrip(s)

    make_cert(cert, key, "renewed.example.org")  # in place, as certbot does
    r = server_ctl(topo, "reload")
    assert r.returncode == 0, (r, topo.server.log_tail(20))
    topo.server.wait_log(r"component=tls event=reloaded", timeout=10)
    assert served_cert_subject(topo) == "CN = renewed.example.org"
    echo_roundtrip(s)  # the peer's connection, made with the first certificate, carries on

    cert.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    r = server_ctl(topo, "reload")
    assert r.returncode != 0 and "cert.pem" in r.stdout + r.stderr, r
    assert served_cert_subject(topo) == "CN = renewed.example.org"
    echo_roundtrip(s)
    s.close()
    assert "component=tls event=peer_disconnected" not in topo.server.log(), topo.logs()


UPSTREAM_PORT = 8080


def test_decoy_passes_probers_to_a_real_site(lab, tmp_path):
    """TlsDecoyUpstream: a prober's requests reach a real web server (here Python's, on S's
    loopback) and its answers come back through our TLS, pages, headers and large files intact,
    also to a prober that reads slowly; our peer still gets through the gate. With the site
    down, probers' connections are closed and the log says why, once."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>The real site</h1>\n")
    big = os.urandom(6 << 20)
    (site / "big.bin").write_bytes(big)
    topo = build(lab, decoy_upstream=f"127.0.0.1:{UPSTREAM_PORT}")
    web = netns.LoggedProcess(topo.s, [sys.executable, "-u", "-m", "http.server", "--bind",
                                       "127.0.0.1", "--directory", str(site), str(UPSTREAM_PORT)],
                              topo.s.file("upstream.log"))
    lab.processes.append(web)
    web.wait_log(r"Serving HTTP", timeout=10)
    topo.server.wait_log(r"component=tls.*event=peer_connected", timeout=15)
    url = f"https://{cl.S_UNDERLAY}:{TLS_PORT}"
    r = topo.c.run(["curl", "-sk", "-i", "--max-time", "10", f"{url}/"], check=False)
    assert r.returncode == 0 and "HTTP/1.0 200 OK" in r.stdout, r
    assert "Server: SimpleHTTP" in r.stdout and "<h1>The real site</h1>" in r.stdout, r
    r = topo.c.run(["curl", "-sk", "-i", "--max-time", "10", f"{url}/nothing-here"], check=False)
    assert r.returncode == 0 and "HTTP/1.0 404" in r.stdout, r
    # 6 MiB, once at full speed and once read at 2 MB/s (the pass-through pauses the site).
    for limit in ([], ["--limit-rate", "2M"]):
        out = tmp_path / "got.bin"
        r = topo.c.run(["curl", "-sk", "--max-time", "30", *limit, "-o", str(out),
                        f"{url}/big.bin"], check=False, timeout=40)
        assert r.returncode == 0 and out.read_bytes() == big, (limit, r)
    assert web.log().count('"GET /big.bin HTTP/1.1" 200') == 2, web.log()
    # The peer's traffic is unaffected.
    r = topo.curl(f"http://{cl.T_HTTP}/", "--socks5", f"127.0.0.1:{cl.SOCKS_PORT}")
    assert r.returncode == 0 and r.stdout.encode() == cl.HTTP_BODY, (r, topo.logs())
    # The site goes down: a prober's connection is closed, and the log says so once.
    web.stop()
    for _ in range(3):
        r = topo.c.run(["curl", "-sk", "--max-time", "10", f"{url}/"], check=False)
        assert r.returncode != 0 and "real site" not in r.stdout, r
    log = topo.server.log()
    assert log.count("event=decoy_upstream_unreachable") == 1, topo.logs()
    assert server_metrics(topo)["awgproxy_tls_decoy_upstream_failures_total"] == 3
    assert "TlsDecoyUpstream" in log
