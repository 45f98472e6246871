"""An HTTP/1.1 origin server for the HTTP proxy tests (test_http_proxy.py), run in T beside
clientlab's servers: keep-alive, request bodies (Content-Length and chunked), responses framed
every way the proxy must follow, and a static directory (a dumb-HTTP git repository, a PEP 503
simple index, a page for the browser).

    /echo          JSON: the request line, every header as received, the body's length and
                   SHA-256 (POST/PUT bodies with Content-Length or chunked)
    /chunked?n=K   K chunks of a known pattern (Transfer-Encoding: chunked)
    /close?n=K     K bytes with neither Content-Length nor chunked: ends when the server closes
    /big?n=K       K bytes with Content-Length
    /status/NNN    an empty response with that status (204, 304)
    /dropnext      answered, but the next request on that connection is read and the connection
                   closed without an answer (an origin whose keep-alive timeout crossed it)
    /static/...    files under the root directory

With a TLS port, a certificate and its key as extra arguments, the same is also served over
HTTPS (what clients reach through CONNECT).

Every request is logged as `req PORT METHOD PATH` (PORT: the peer's source port, which tells
whether two requests shared one connection).
"""
import hashlib
import json
import socketserver
import ssl
import sys
import threading
import http.server

LOG = threading.Lock()


def log(*a):
    with LOG:
        print(*a, flush=True)


def pattern(n):
    unit = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
    return (unit * (n // len(unit) + 1))[:n]


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def __init__(self, *a, **kw):
        super().__init__(*a, directory=ROOT, **kw)

    def log_message(self, fmt, *args):
        pass

    def _query(self):
        path, _, q = self.path.partition("?")
        args = dict(p.split("=", 1) for p in q.split("&") if "=" in p)
        return path, args

    def _send(self, status, body, ctype="text/plain", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n else b""

    def _route(self):
        log("req", self.client_address[1], self.command, self.path)
        if getattr(self, "drop_next", False):
            self.close_connection = True
            return None
        path, args = self._query()
        if path == "/dropnext":
            self.drop_next = True
            return self._send(200, b"the next one is dropped\n")
        if path == "/echo":
            body = self._body()
            doc = {"request_line": self.requestline, "headers": list(self.headers.items()),
                   "body_len": len(body), "body_sha256": hashlib.sha256(body).hexdigest()}
            return self._send(200, json.dumps(doc).encode(), "application/json")
        if path == "/chunked":
            data = pattern(int(args.get("n", "10")) * 1000)
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(data), 1000):
                c = data[i:i + 1000]
                self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(c), c))
            self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")
            return None
        if path == "/close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(pattern(int(args.get("n", "1000"))))
            self.close_connection = True
            return None
        if path == "/big":
            return self._send(200, pattern(int(args.get("n", "1000"))))
        if path.startswith("/status/"):
            self.send_response(int(path[8:]))
            self.end_headers()
            return None
        if path.startswith("/static/"):
            self.path = self.path[7:]
            return super().do_GET() if self.command == "GET" else super().do_HEAD()
        return self._send(404, b"not found\n")

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _route


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        # One line, under the log's lock (the default traceback interleaves with `req` lines):
        # `error PORT EXCEPTION`, e.g. a connection the proxy reset.
        log("error", client_address[1], sys.exc_info()[0].__name__)


class TlsServer(Server):
    def get_request(self):
        sock, addr = super().get_request()
        return CTX.wrap_socket(sock, server_side=True), addr


ROOT = sys.argv[1]
srv = Server(("0.0.0.0", int(sys.argv[2])), Handler)
if len(sys.argv) > 5:
    CTX = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    CTX.load_cert_chain(sys.argv[4], sys.argv[5])
    tls = TlsServer(("0.0.0.0", int(sys.argv[3])), Handler)
    threading.Thread(target=tls.serve_forever, daemon=True).start()
log("ready")
srv.serve_forever()
