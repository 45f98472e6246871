"""The client's HTTP proxy front-end ([Http] Listen, issue 13 items 1-2) in clientlab's three
namespaces: C runs `awgproxy client` with SOCKS on 1080 and the HTTP proxy on 8118, S runs
`awgproxy server` (our exit, with ExitDeny for port 8081, so "denied by policy" can be provoked),
T runs clientlab's servers and httpweb.py on :8080 (echo of the headers it received, bodies,
every response framing, a static directory with a dumb-HTTP git repository, a PEP 503 simple
index and a page for the browser). C has no route to T: whatever reaches T went through the
tunnel, and names (target.test) are resolved by the server, never in C.

- real clients: curl -x (absolute URI) and -p -x (CONNECT), Python requests, git clone over
  http_proxy, pip download from the simple index, headless Chromium; the PAC file;
- forwarding: hop-by-hop and Proxy-* headers never reach T, keep-alive with the upstream stream
  reused per host:port and a new one when it changes, pipelining, request bodies (Content-Length,
  chunked), HTTP/1.0, responses chunked / close-delimited / HEAD / 204 / 304 / 100-continue;
- every status code: 400, 403, 405, 407, 408, 414, 431, 502 (refused, NXDOMAIN), 503 (tunnel
  down, MaxConnections), 504, 505;
- hostile input (truncated requests, 1 MB of headers, 10,000 headers, one byte per second,
  pipelined garbage): the client stays up and its RSS returns near its baseline;
- `awgproxy check` and reload ([Http] keys need a restart, as [Socks] Listen).
"""
import base64
import hashlib
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import zipfile

import pytest

import clientlab as cl
import netns
from clientlab import BLACKHOLE, CLOSED_PORT, ECHO_PORT, HTTP_BODY, NX_NAME, T_HTTP, TARGET_NAME

HTTP_PROXY_PORT = 8118
HTTP_PROXY_PORT6 = 8119  # a second listener, on [::1]
PROXY = f"http://127.0.0.1:{HTTP_PROXY_PORT}"
WEB_PORT = 8080
DENIED_PORT = 8081
WEB = f"http://{TARGET_NAME}:{WEB_PORT}"
TLS_PORT = 8443
WEBS = f"https://{TARGET_NAME}:{TLS_PORT}"
HEADER_TIMEOUT = 2
MAX_CONNECTIONS = 40
PAGE_MARKER = "awgproxy-browser-page-5c1e"


class HttpTopology(cl.Topology):
    http_section = ""

    def server_conf(self):
        return super().server_conf() + f"ExitDeny = 198.51.100.0/24:{DENIED_PORT}\n"

    def client_conf(self, socks=None, extra_interface=""):
        return super().client_conf(socks, extra_interface) + self.http_section


def http_section(header_timeout=HEADER_TIMEOUT, max_connections=MAX_CONNECTIONS):
    return (f"\n[Http]\nListen = 127.0.0.1:{HTTP_PROXY_PORT}, [::1]:{HTTP_PROXY_PORT6}\n"
            f"HeaderTimeout = {header_timeout}\nMaxConnections = {max_connections}\n")


def socks(users="", idle_timeout=None):
    return cl.socks_section(connect_timeout=4, tunnel_wait=3, idle_timeout=idle_timeout) + users


@pytest.fixture
def lab(tmp_path):
    with netns.open_lab(tmp_path, tools=("curl", "git", "chromium", "nft", "openssl")) as lab:
        yield lab


def make_site(root):
    """The static directory: a bare git repository served as dumb HTTP, a simple index with one
    wheel, a page for the browser."""
    root.mkdir(parents=True, exist_ok=True)
    work = root.parent / "gitwork"
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t", HOME=str(root.parent))
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True, env=env)
    (work / "README").write_text("through the tunnel\n")
    subprocess.run(["git", "-C", str(work), "add", "README"], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "commit", "-qm", "first"], check=True, env=env)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(root / "repo.git")], check=True,
                   env=env)
    subprocess.run(["git", "-C", str(root / "repo.git"), "update-server-info"], check=True, env=env)
    pkgs = root / "packages"
    pkgs.mkdir()
    whl = pkgs / "awgdemo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("awgdemo/__init__.py", "VALUE = 1\n")
        z.writestr("awgdemo-1.0.dist-info/METADATA",
                   "Metadata-Version: 2.1\nName: awgdemo\nVersion: 1.0\n")
        z.writestr("awgdemo-1.0.dist-info/WHEEL",
                   "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("awgdemo-1.0.dist-info/RECORD", "")
    digest = hashlib.sha256(whl.read_bytes()).hexdigest()
    (root / "simple" / "awgdemo").mkdir(parents=True)
    (root / "simple" / "index.html").write_text('<html><body><a href="awgdemo/">awgdemo</a>'
                                               "</body></html>\n")
    (root / "simple" / "awgdemo" / "index.html").write_text(
        f'<html><body><a href="../../packages/{whl.name}#sha256={digest}">{whl.name}</a>'
        "</body></html>\n")
    (root / "page.html").write_text(f"<html><body><p id=m>{PAGE_MARKER}</p></body></html>\n")
    return digest


def build(lab, users="", max_connections=MAX_CONNECTIONS, idle_timeout=None):
    def make(lab_, server):
        t = HttpTopology(lab_, server=server)
        t.http_section = http_section(max_connections=max_connections)
        return t

    # Under the sanitizers, freed memory would sit in ASan's quarantine and never show as
    # returned: the hostile-input test measures RSS, so the client runs without one.
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = {"ASAN_OPTIONS": f"{asan}:quarantine_size_mb=0:thread_local_quarantine_size_kb=0"}
    topo = cl.build_topology(lab, socks=socks(users, idle_timeout), server="awgproxy", topology=make,
                             env=env)
    topo.proxy.wait_log(r"component=http event=listening", timeout=10)
    root = pathlib.Path(topo.t.file("site"))
    topo.wheel_sha = make_site(root)
    topo.cert, key = pathlib.Path(topo.t.file("cert.pem")), topo.t.file("key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(topo.cert), "-days", "2", "-subj", f"/CN={TARGET_NAME}",
                    "-addext", f"subjectAltName=DNS:{TARGET_NAME}"],
                   check=True, capture_output=True, timeout=60)
    here = pathlib.Path(__file__).parent
    topo.web = netns.LoggedProcess(topo.t, [sys.executable, "-u", str(here / "httpweb.py"),
                                            str(root), str(WEB_PORT), str(TLS_PORT),
                                            str(topo.cert), str(key)], topo.t.file("web.log"))
    topo.web.kind = "web server"
    lab.processes.append(topo.web)
    topo.web.wait_log(r"^ready$", timeout=10)
    return topo


def restart_client(topo, users="", wait_tunnel=True):
    topo.proxy.stop()
    topo.start_client(socks=socks(users), wait_tunnel=wait_tunnel)
    topo.proxy.wait_log(r"component=http event=listening", timeout=10)


def web_requests(topo):
    """[(port, method, path)] T's web server has served."""
    return [(int(m.group(1)), m.group(2), m.group(3))
            for m in re.finditer(r"^req (\d+) (\S+) (\S+)$", topo.web.log(), re.M)]


# ---- a small HTTP client over a raw socket ------------------------------------------------------


class Resp:
    def __init__(self, status, headers, body, raw_head):
        self.status, self.headers, self.body, self.raw_head = status, headers, body, raw_head

    def __repr__(self):
        return f"Resp({self.status}, {self.raw_head[:300]!r}, body={self.body[:200]!r})"


class Conn:
    """A connection to the HTTP proxy in C that reads responses by their framing."""

    def __init__(self, topo, timeout=20):
        self.s = cl.connect_in(topo.c, "127.0.0.1", HTTP_PROXY_PORT, timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("closed")
        self.buf += d

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def response(self, head=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        raw, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            headers.setdefault(k.strip().lower(), v.strip())
        if head or status < 200 or status in (204, 304):
            body = b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if not size:
                    while self._line():
                        pass
                    break
                body += self._take(size)
                self._line()
        elif "content-length" in headers:
            body = self._take(int(headers["content-length"]))
        else:
            body = self.rest()
        return Resp(status, headers, body, raw)

    def rest(self):
        """Everything until the proxy closes."""
        try:
            while True:
                self._fill()
        except EOFError:
            pass
        except OSError:
            pass
        out, self.buf = self.buf, b""
        return out

    def closed(self, timeout=5):
        ok, _, _ = cl.wait_closed(self.s, timeout)
        return ok

    def close(self):
        self.s.close()


def get(url, extra=b"", version=b"HTTP/1.1", method=b"GET"):
    host = url.split("/")[2].encode()
    return method + b" " + url.encode() + b" " + version + b"\r\nHost: " + host + b"\r\n" + extra \
        + b"\r\n"


def one(topo, request, head=False, timeout=20):
    c = Conn(topo, timeout=timeout)
    try:
        c.send(request)
        return c.response(head=head)
    finally:
        c.close()


# ---- 1. real clients ------------------------------------------------------------------------------


def test_real_clients_fetch_through_the_tunnel(lab, tmp_path):
    topo = build(lab)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}

    # curl -x: absolute-URI requests, by name (resolved by the server) and by address
    for url in (f"{WEB}/big?n=300000", f"http://{T_HTTP}/"):
        r = topo.curl(url, "-x", PROXY, "-o", "-", "-w", "")
        want = HTTP_BODY.decode() if url.endswith(f"{T_HTTP}/") else None
        assert r.returncode == 0, f"curl -x {url}: {r.stderr}\n{topo.logs()}"
        if want:
            assert r.stdout == want
        else:
            assert len(r.stdout) == 300000
    # curl -p -x: CONNECT
    r = topo.curl(f"{WEB}/echo", "-p", "-x", PROXY, "-v")
    assert r.returncode == 0, f"curl -p -x: {r.stderr}\n{topo.logs()}"
    assert "200 Connection established" in r.stderr
    assert json.loads(r.stdout)["request_line"] == "GET /echo HTTP/1.1"

    # https through CONNECT: curl verifies T's certificate by name (target.test)
    r = topo.curl(f"{WEBS}/echo", "-x", PROXY, "--cacert", str(topo.cert))
    assert r.returncode == 0 and json.loads(r.stdout)["request_line"] == "GET /echo HTTP/1.1", (
        r.stderr, topo.logs())

    # Python requests (python3-requests), in C's namespace, http and https
    import requests
    with cl.in_netns(topo.c):
        s = requests.Session()
        s.trust_env = False
        proxies = {"http": PROXY, "https": PROXY}
        resp = s.get(f"{WEB}/echo?x=1", proxies=proxies, timeout=20)
        resp2 = s.post(f"{WEB}/echo", data=b"z" * 100000, proxies=proxies, timeout=20)
        resp3 = s.get(f"{WEBS}/echo?tls=1", proxies=proxies, timeout=20, verify=str(topo.cert))
        s.close()
    assert resp.status_code == 200 and resp.json()["request_line"] == "GET /echo?x=1 HTTP/1.1"
    assert resp2.json()["body_len"] == 100000
    assert resp3.json()["request_line"] == "GET /echo?tls=1 HTTP/1.1"

    # git clone (dumb HTTP) over http_proxy and over https_proxy (CONNECT)
    for url, var in ((f"{WEB}/static/repo.git", "http_proxy"),
                     (f"{WEBS}/static/repo.git", "https_proxy")):
        dest = tmp_path / f"clone-{var}"
        r = topo.c.run(["git", "clone", url, str(dest)], check=False, timeout=60,
                       env=dict(env, GIT_TERMINAL_PROMPT="0", GIT_SSL_CAINFO=str(topo.cert),
                                **{var: PROXY}))
        assert r.returncode == 0, f"git clone {url} over {var}: {r.stderr}\n{topo.logs()}"
        assert (dest / "README").read_text() == "through the tunnel\n"

    # pip download from a PEP 503 simple index on T, over http and over https
    for index, var, extra in ((f"{WEB}/static/simple/", "http_proxy",
                               ["--trusted-host", TARGET_NAME]),
                              (f"{WEBS}/static/simple/", "https_proxy", ["--cert", str(topo.cert)])):
        dl = tmp_path / f"pip-{var}"
        r = topo.c.run([sys.executable, "-m", "pip", "download", "--no-cache-dir", "--no-deps",
                        "--disable-pip-version-check", "--index-url", index, *extra,
                        "--dest", str(dl), "awgdemo"],
                       check=False, timeout=90, env=dict(env, **{var: PROXY}))
        assert r.returncode == 0, f"pip download {index}: {r.stdout}\n{r.stderr}\n{topo.logs()}"
        got = dl / "awgdemo-1.0-py3-none-any.whl"
        assert hashlib.sha256(got.read_bytes()).hexdigest() == topo.wheel_sha

    # headless Chromium with --proxy-server, http and https (through CONNECT)
    for url in (f"{WEB}/static/page.html", f"{WEBS}/static/page.html"):
        r = topo.c.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", "--ignore-certificate-errors",
                        f"--user-data-dir={tmp_path / 'chromium'}",
                        f"--proxy-server={PROXY}", "--dump-dom", url],
                       check=False, timeout=90, env=env)
        assert PAGE_MARKER in r.stdout, (
            f"chromium {url}: rc={r.returncode} {r.stderr[-2000:]}\n{topo.logs()}")
    assert topo.proxy.log().count("component=http event=connected") >= 5  # the CONNECTs above
    # names went through the tunnel as names: the server resolved them (C cannot)
    assert f"dst={TARGET_NAME}:{WEB_PORT}" in topo.server.log()
    assert f"dst={TARGET_NAME}:{TLS_PORT}" in topo.server.log()

    # the PAC file points at this listener and the SOCKS port
    r = topo.curl(f"http://127.0.0.1:{HTTP_PROXY_PORT}/proxy.pac", "-i")
    assert r.returncode == 0, r.stderr
    assert "content-type: application/x-ns-proxy-autoconfig" in r.stdout.lower()
    assert (f'return "PROXY 127.0.0.1:{HTTP_PROXY_PORT}; SOCKS5 127.0.0.1:{cl.SOCKS_PORT}; '
            f'SOCKS 127.0.0.1:{cl.SOCKS_PORT}";') in r.stdout
    assert "function FindProxyForURL(url, host)" in r.stdout
    assert "DIRECT" not in r.stdout
    # the second listener (IPv6) serves too, and its PAC names itself
    r = topo.curl(f"http://[::1]:{HTTP_PROXY_PORT6}/proxy.pac")
    assert f'"PROXY [::1]:{HTTP_PROXY_PORT6}; SOCKS5 127.0.0.1:{cl.SOCKS_PORT};' in r.stdout, r
    r = topo.curl(f"{WEB}/echo", "-x", f"http://[::1]:{HTTP_PROXY_PORT6}")
    assert r.returncode == 0 and json.loads(r.stdout)["request_line"] == "GET /echo HTTP/1.1", r
    assert topo.proxy.alive(), topo.logs()


# ---- 2. forwarding --------------------------------------------------------------------------------


def echo(resp):
    assert resp.status == 200, resp
    return json.loads(resp.body)


IDLE_TIMEOUT = 5  # [Socks] IdleTimeout for the forwarding test: longer than HEADER_TIMEOUT + 1


def test_forwarding_headers_keepalive_bodies_framing(lab):
    topo = build(lab, idle_timeout=IDLE_TIMEOUT)
    # An idle keep-alive connection is closed after IdleTimeout with a FIN, as servers do: a
    # client reads EOF and opens a new connection (a reset would be reported as an error).
    idle = Conn(topo)
    idle.send(get(f"{WEB}/echo?idle"))
    echo(idle.response())
    idle.s.settimeout(IDLE_TIMEOUT + 10)
    t0 = time.monotonic()
    assert idle.s.recv(1) == b"" and time.monotonic() - t0 >= IDLE_TIMEOUT - 1
    idle.s.close()
    # Its upstream ended with a FIN too: T's server read the end, not a reset.
    port = [port for port, _, p in web_requests(topo) if p == "/echo?idle"][0]
    time.sleep(1)
    assert f"error {port} " not in topo.web.log(), topo.web.log()
    c = Conn(topo)
    # Hop-by-hop and Proxy-* headers never reach T; the target is sent in origin-form with the
    # URI's Host; end-to-end headers pass unchanged.
    c.send(get(f"{WEB}/echo?q=1#frag",
               b"Proxy-Authorization: Basic dXNlcjpwYXNz\r\nProxy-Connection: keep-alive\r\n"
               b"Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\n"
               b"TE: trailers\r\nUpgrade: websocket\r\nX-End: kept\r\nHost: wrong.example\r\n"))
    doc = echo(c.response())
    names = [k.lower() for k, _ in doc["headers"]]
    assert doc["request_line"] == "GET /echo?q=1 HTTP/1.1", doc
    for hop in ("proxy-authorization", "proxy-connection", "connection", "x-hop", "keep-alive",
                "te", "upgrade"):
        assert hop not in names, (hop, doc)
    assert dict((k.lower(), v) for k, v in doc["headers"])["host"] == f"{TARGET_NAME}:{WEB_PORT}"
    assert names.count("host") == 1 and ("X-End", "kept") in map(tuple, doc["headers"])

    # An idle keep-alive connection outlives HeaderTimeout (that limit runs from a head's first
    # byte); [Socks] IdleTimeout closes it
    time.sleep(HEADER_TIMEOUT + 1)
    # Keep-alive: the same client connection, the same upstream stream for the same host:port
    # (T sees one source port), a new one for another host:port and again on the way back.
    c.send(get(f"{WEB}/echo?q=2"))
    echo(c.response())
    c.send(get(f"http://{T_HTTP}/"))
    r = c.response()
    assert r.status == 200 and r.body == HTTP_BODY, r
    c.send(get(f"{WEB}/echo?q=3"))
    echo(c.response())
    ports = {p: port for port, _, p in web_requests(topo)}
    assert ports["/echo?q=1"] == ports["/echo?q=2"] != ports["/echo?q=3"], web_requests(topo)

    # A kept stream the origin closes under the next request: sent once more on a new stream
    c.send(get(f"{WEB}/dropnext"))
    assert c.response().status == 200
    c.send(get(f"{WEB}/echo?retried"))
    echo(c.response())
    seen = [port for port, _, p in web_requests(topo) if p == "/echo?retried"]
    assert len(seen) == 2 and seen[0] != seen[1], web_requests(topo)
    assert "event=retry" in topo.proxy.log()

    # Pipelined requests, answered in order
    c.send(get(f"{WEB}/echo?p=1") + get(f"{WEB}/big?n=5000") + get(f"{WEB}/echo?p=2"))
    assert echo(c.response())["request_line"] == "GET /echo?p=1 HTTP/1.1"
    assert len(c.response().body) == 5000
    assert echo(c.response())["request_line"] == "GET /echo?p=2 HTTP/1.1"

    # Request bodies: Content-Length (1 MB) and chunked
    body = os.urandom(1 << 20)
    c.send(get(f"{WEB}/echo", b"Content-Length: %d\r\n" % len(body), method=b"POST") + body)
    doc = echo(c.response())
    assert doc["body_len"] == len(body) and doc["body_sha256"] == hashlib.sha256(body).hexdigest()
    chunks = [os.urandom(n) for n in (1, 4000, 70000, 3)]
    wire = b"".join(b"%x;e=1\r\n%s\r\n" % (len(x), x) for x in chunks) + b"0\r\nX-T: 1\r\n\r\n"
    c.send(get(f"{WEB}/echo", b"Transfer-Encoding: chunked\r\n", method=b"PUT") + wire)
    doc = echo(c.response())
    assert doc["body_sha256"] == hashlib.sha256(b"".join(chunks)).hexdigest(), doc
    # 100-continue: the interim response is passed on, then the final one
    c.send(get(f"{WEB}/echo", b"Content-Length: 5\r\nExpect: 100-continue\r\n", method=b"POST"))
    r = c.response()
    assert r.status == 100, r
    c.send(b"hello")
    assert echo(c.response())["body_len"] == 5

    # Response framings: chunked (passed through), HEAD, 204, 304, all on the same connection
    c.send(get(f"{WEB}/chunked?n=70"))
    r = c.response()
    assert r.headers.get("transfer-encoding") == "chunked" and r.body == httpweb_pattern(70000)
    c.send(get(f"{WEB}/big?n=1000", method=b"HEAD"))
    r = c.response(head=True)
    assert r.status == 200 and r.headers["content-length"] == "1000"
    for st in (204, 304):
        c.send(get(f"{WEB}/status/{st}"))
        assert c.response().status == st
    c.send(get(f"{WEB}/echo?after=1"))
    echo(c.response())
    # A close-delimited response ends the client connection too (that is how its end is told)
    c.send(get(f"{WEB}/close?n=200000"))
    r = c.response()
    assert r.status == 200 and r.body == httpweb_pattern(200000)
    assert r.headers.get("connection") == "close"
    assert c.closed(), "the proxy kept the connection after a close-delimited response"
    c.close()

    # HTTP/1.0: forwarded as 1.0 (so the origin does not answer chunked), the connection closed
    # after the response unless the client asked for keep-alive
    c = Conn(topo)
    c.send(get(f"{WEB}/echo", version=b"HTTP/1.0"))
    doc = echo(c.response())
    assert doc["request_line"] == "GET /echo HTTP/1.0"
    assert c.closed()
    c.close()
    c = Conn(topo)
    c.send(get(f"{WEB}/big?n=10", b"Connection: keep-alive\r\n", version=b"HTTP/1.0"))
    r = c.response()
    assert r.status == 200 and r.headers.get("connection") == "keep-alive", r
    c.send(get(f"{WEB}/big?n=20", version=b"HTTP/1.0"))
    assert len(c.response().body) == 20
    c.close()

    # CONNECT carries any TCP: 1 MB through T's echo service
    c = Conn(topo)
    c.send(b"CONNECT %s:%d HTTP/1.1\r\nHost: x\r\n\r\n" % (TARGET_NAME.encode(), ECHO_PORT))
    r = c.response(head=True)
    assert r.status == 200, r
    payload = os.urandom(1 << 20)
    threading.Thread(target=c.send, args=(payload,), daemon=True).start()
    got = c._take(len(payload))
    assert got == payload
    c.close()

    # `awgproxy check` reads the section; a reload keeps the running listener and names the
    # changed key as needing a restart, as for [Socks] Listen
    conf = pathlib.Path(topo.proxy.conf_path)
    r = subprocess.run([str(netns.awgproxy_binary()), "check", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and f"http proxy: 127.0.0.1:{HTTP_PROXY_PORT}" in r.stdout, r
    conf.write_text(conf.read_text().replace(f"Listen = 127.0.0.1:{HTTP_PROXY_PORT}",
                                             "Listen = 127.0.0.1:8120"))
    topo.proxy.proc.send_signal(signal.SIGHUP)
    topo.proxy.wait_log(r"event=reload_needs_restart key=\"?\[Http\] Listen", timeout=10)
    topo.proxy.wait_log(r"event=reloaded", timeout=10)
    echo(one(topo, get(f"{WEB}/echo?after-reload")))
    assert topo.proxy.alive(), topo.logs()


def httpweb_pattern(n):
    unit = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
    return (unit * (n // len(unit) + 1))[:n]


# ---- 3. status codes ------------------------------------------------------------------------------


def expect(resp, status, text=None):
    assert resp.status == status, resp
    assert resp.headers.get("content-type", "").startswith("text/plain"), resp
    assert resp.body.endswith(b"\n") and resp.body.count(b"\n") == 1, resp  # one line
    if text:
        assert text.encode() in resp.body, resp


def test_status_codes(lab):
    topo = build(lab)
    before = len(web_requests(topo))
    # dial failures, mapped as the SOCKS replies are
    expect(one(topo, get(f"http://{T_HTTP}:{CLOSED_PORT}/")), 502, "refused")
    expect(one(topo, get(f"http://{NX_NAME}/")), 502)
    expect(one(topo, b"CONNECT %s:80 HTTP/1.1\r\n\r\n" % NX_NAME.encode()), 502)
    expect(one(topo, get(f"http://{T_HTTP}:{DENIED_PORT}/")), 403)
    expect(one(topo, b"CONNECT %s:%d HTTP/1.1\r\n\r\n" % (T_HTTP.encode(), DENIED_PORT)), 403)
    t0 = time.monotonic()
    expect(one(topo, get(f"http://{BLACKHOLE}/"), timeout=30), 504)
    assert time.monotonic() - t0 < 15
    # malformed or refused requests
    expect(one(topo, b"GET http://x/ HTTP/1.1 extra\r\n\r\n"), 400)
    expect(one(topo, get("https://target.test/")), 400, "CONNECT")
    expect(one(topo, b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "proxy")
    expect(one(topo, get(f"{WEB}/", b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
                         method=b"POST")), 400)
    expect(one(topo, get(f"{WEB}/", b" folded\r\n")), 400)
    expect(one(topo, b"CONNECT target.test HTTP/1.1\r\n\r\n"), 400)
    expect(one(topo, get(f"{WEB}/", method=b"TRACE")), 405)
    r = one(topo, get(f"{WEB}/", method=b"PROPFIND"))
    expect(r, 405)
    assert "CONNECT" in r.headers["allow"]
    expect(one(topo, get(f"{WEB}/", version=b"HTTP/2.0")), 505)
    expect(one(topo, get(f"{WEB}/" + "a" * 9000)), 414)
    expect(one(topo, get(f"{WEB}/", b"X-Big: " + b"b" * 9000 + b"\r\n")), 431)
    expect(one(topo, get(f"{WEB}/", b"".join(b"X-%d: 1\r\n" % i for i in range(150)))), 431)
    # a request head that does not complete within HeaderTimeout
    c = Conn(topo)
    c.send(b"GET http://target.test/ HTTP/1.1\r\n")
    t0 = time.monotonic()
    expect(c.response(), 408, "HeaderTimeout")
    assert HEADER_TIMEOUT - 0.5 < time.monotonic() - t0 < HEADER_TIMEOUT + 3
    c.close()
    assert len(web_requests(topo)) == before, "a refused request reached T"
    # MaxConnections: the next connection is answered 503 and closed
    idle = [Conn(topo) for _ in range(MAX_CONNECTIONS)]
    for c in idle:
        c.send(b"G")  # keeps each in its header read
    time.sleep(0.3)
    expect(one(topo, get(f"{WEB}/echo")), 503, "MaxConnections")
    for c in idle:
        c.close()
    time.sleep(0.5)
    assert one(topo, get(f"{WEB}/echo")).status == 200
    # the tunnel down: the server gone, a client started without a session
    topo.stop_server()
    restart_client(topo, wait_tunnel=False)
    t0 = time.monotonic()
    expect(one(topo, get(f"{WEB}/echo"), timeout=30), 503, "tunnel down")
    expect(one(topo, b"CONNECT %s:80 HTTP/1.1\r\n\r\n" % T_HTTP.encode(), timeout=30), 503)
    assert time.monotonic() - t0 < 20
    assert topo.proxy.alive(), topo.logs()


# ---- 4. authentication ----------------------------------------------------------------------------




def basic(user, password):
    return b"Proxy-Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()) + \
        b"\r\n"


def test_proxy_authorization(lab):
    users = (f"User = alice:{netns.password_hash('wonderland')}\n"
             f"User = bob:{netns.password_hash('builder')}\n")
    topo = build(lab, users=users)
    before = len(web_requests(topo))
    for hdr in (b"", basic("alice", "wrong"), basic("mallory", "wonderland"),
                b"Proxy-Authorization: Bearer abc\r\n", b"Proxy-Authorization: Basic !!!\r\n"):
        r = one(topo, get(f"{WEB}/echo", hdr))
        expect(r, 407)
        assert r.headers["proxy-authenticate"] == 'Basic realm="awgproxy"', r
        r = one(topo, b"CONNECT %s:%d HTTP/1.1\r\n%s\r\n" % (TARGET_NAME.encode(), WEB_PORT, hdr))
        expect(r, 407)
    assert len(web_requests(topo)) == before, "an unauthenticated request reached T"
    # the right password: forwarded, and the header itself never reaches T; keep-alive requests
    # with the same header are not checked again (the log shows one check per connection)
    c = Conn(topo)
    for i in range(3):
        c.send(get(f"{WEB}/echo?i={i}", basic("bob", "builder")))
        doc = echo(c.response())
        assert "proxy-authorization" not in [k.lower() for k, _ in doc["headers"]]
    c.close()
    assert topo.proxy.log().count("event=auth_failed") == 4  # two wrong pairs, GET and CONNECT
    assert topo.proxy.log().count("event=auth_ok") == 1
    # real clients with credentials: curl -U with -x and with -p -x (CONNECT)
    for mode in ((), ("-p",)):
        r = topo.curl(f"{WEB}/echo", *mode, "-x", PROXY, "-U", "alice:wonderland")
        assert r.returncode == 0 and json.loads(r.stdout)["request_line"].startswith("GET /echo"), (
            r.stderr, topo.logs())
        r = topo.curl(f"{WEB}/echo", *mode, "-x", PROXY, "-U", "alice:nope", "-w",
                      "%{http_code}")
        assert "407" in r.stdout + r.stderr, (r.stdout, r.stderr)
    assert topo.proxy.alive(), topo.logs()


# ---- 5. hostile input -----------------------------------------------------------------------------


def hostile(topo, payload, delay=0.0, wait=3.0):
    """Sends payload (maybe byte by byte with delay), then reads what comes back until the proxy
    closes or wait passes; returns the bytes read."""
    try:
        s = cl.connect_in(topo.c, "127.0.0.1", HTTP_PROXY_PORT, timeout=10)
    except OSError:
        return b""
    try:
        if delay:
            for b in payload:
                s.sendall(bytes([b]))
                time.sleep(delay)
        else:
            s.sendall(payload)
    except OSError:
        pass  # the proxy may close (answering first) while we still send
    _, data, _ = cl.wait_closed(s, wait)  # truncated requests: closed by HeaderTimeout
    s.close()
    return data


PER_CASE = 20  # parallel connections per case and round


def test_hostile_input_keeps_client_up_and_memory_bounded(lab):
    topo = build(lab, max_connections=1000)
    for _ in range(20):  # warm-up: allocator arenas, the QUIC stream machinery
        echo(one(topo, get(f"{WEB}/echo")))
    time.sleep(0.5)
    base = topo.rss_kb()
    cases = {
        "truncated": (get(f"{WEB}/echo")[:30], b""),
        "truncated-body": (get(f"{WEB}/echo", b"Content-Length: 100000\r\n", method=b"POST")
                           + b"x" * 5000, b""),
        "1MB-headers": (b"GET http://target.test/ HTTP/1.1\r\n" +
                        b"X-A: " + b"a" * (1 << 20) + b"\r\n\r\n", b"431"),
        "10000-headers": (b"GET http://target.test/ HTTP/1.1\r\n" +
                          b"".join(b"X-%d: v\r\n" % i for i in range(10000)) + b"\r\n", b"431"),
        "pipelined-garbage": (get(f"{WEB}/echo") + os.urandom(3000) + b"\r\n\r\n", b"400"),
        "binary": (os.urandom(20000), b"HTTP/1.1 4"),
        "bad-chunks": (get(f"{WEB}/echo", b"Transfer-Encoding: chunked\r\n", method=b"POST")
                       + b"zz\r\n", b""),
    }
    for rnd in range(3):
        threads = []
        results = {}
        for name, (payload, _) in cases.items():
            for k in range(PER_CASE):
                def run(name=name, payload=payload, k=k):
                    results[(name, k)] = hostile(topo, payload)
                threads.append(threading.Thread(target=run))
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for (name, k), data in results.items():
            want = cases[name][1]
            assert want in data, (name, data[:300])
        assert topo.proxy.alive(), topo.logs()
    # one byte per second: HeaderTimeout answers 408 and closes, whatever keeps trickling in
    s = cl.connect_in(topo.c, "127.0.0.1", HTTP_PROXY_PORT, timeout=10)
    s.setblocking(False)
    data, t0 = b"", time.monotonic()
    for b in b"GET http://target.test/ HTTP/1.1\r\nX: " + b"y" * 30:
        try:
            s.send(bytes([b]))
            data += s.recv(4096)
        except BlockingIOError:
            pass
        except OSError:
            break
        if b"408" in data:
            break
        time.sleep(1.0)
    s.close()
    assert b"408" in data and time.monotonic() - t0 < HEADER_TIMEOUT + 2, data
    # memory back near the baseline once the connections are gone
    time.sleep(1.5)
    rss = topo.rss_kb()
    print(f"RSS {base} kB before, {rss} kB after the hostile input")
    assert rss < base + 8 * 1024, f"RSS {base} kB before, {rss} kB after the hostile input"
    echo(one(topo, get(f"{WEB}/echo")))
    assert topo.proxy.alive(), topo.logs()
    assert "AddressSanitizer" not in topo.proxy.log()


# ---- 6. volume and flow control -------------------------------------------------------------------


def test_parallel_transfers_and_backpressure(lab):
    """16 keep-alive clients at once, each a 3 MB chunked download, a 2 MB upload (chunked) and a
    CONNECT echo, all hash-checked; then a client that reads a 24 MB response slowly: the proxy
    holds back (about STREAM_HIGH_WATER per direction), its RSS does not take the response in."""
    topo = build(lab, max_connections=200)
    errors = []

    def worker(i):
        try:
            c = Conn(topo, timeout=60)
            c.send(get(f"{WEB}/chunked?n=3000"))
            r = c.response()
            assert r.body == httpweb_pattern(3_000_000), (i, len(r.body))
            body = os.urandom(2 << 20)
            wire = b"".join(b"%x\r\n%s\r\n" % (len(body[k:k + 65536]), body[k:k + 65536])
                            for k in range(0, len(body), 65536)) + b"0\r\n\r\n"
            c.send(get(f"{WEB}/echo", b"Transfer-Encoding: chunked\r\n", method=b"POST") + wire)
            assert echo(c.response())["body_sha256"] == hashlib.sha256(body).hexdigest(), i
            c.close()
            e = Conn(topo, timeout=60)
            e.send(b"CONNECT %s:%d HTTP/1.1\r\n\r\n" % (T_HTTP.encode(), ECHO_PORT))
            assert e.response(head=True).status == 200
            payload = os.urandom(1 << 20)
            threading.Thread(target=e.send, args=(payload,), daemon=True).start()
            assert e._take(len(payload)) == payload, i
            e.close()
        except Exception:  # reported below with the worker's number
            errors.append(f"worker {i}: {traceback.format_exc()}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, "\n".join(errors) + "\n" + topo.logs()

    time.sleep(0.5)
    base = topo.rss_kb()
    size = 24 << 20
    c = Conn(topo, timeout=60)
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    c.send(get(f"{WEB}/big?n={size}"))
    got, peak = 0, 0
    while b"\r\n\r\n" not in c.buf:
        c._fill()
    got = len(c.buf.partition(b"\r\n\r\n")[2])
    deadline = time.monotonic() + 60
    while got < size and time.monotonic() < deadline:
        if got < 4 << 20:
            time.sleep(0.05)  # slow for the first 4 MB: the proxy must hold back, not buffer
            peak = max(peak, topo.rss_kb())
        d = c.s.recv(65536)
        if not d:
            break
        got += len(d)
    c.close()
    assert got == size, f"{got} of {size} bytes"
    # Half the response: a proxy that took it in would cross it. The margin is for what is not
    # the response: under ASan its quarantine keeps freed buffers resident (seen: +7 to +9 MB
    # here with the sanitizer build on a long-running machine, before and after d90c51a).
    assert peak < base + 12 * 1024, f"RSS {base} kB, {peak} kB while the client read slowly"
    assert topo.proxy.alive(), topo.logs()
