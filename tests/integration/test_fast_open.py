"""[Socks] FastOpen (issue 17): the client answers CONNECT with success at once, and over QUIC
the application's first bytes leave right behind the stream request instead of waiting for the
server's reply, so an HTTP response's first byte comes one tunnel round trip after the request
instead of two. A connect that then fails shows up as a closed connection.

The lab is test_quic_transport's (client C, server S, target T reachable only from S, every
obfuscation parameter set), with an impairment relay in C that adds DELAY_MS each way, so one
tunnel round trip is at least 2 * DELAY_MS. The round-trip counts are asserted with a margin of
half a round trip on each side, which the lab's sub-millisecond local hops leave untouched.
"""
import socket
import time

import clientlab as cl
from clientlab import CLOSED_PORT, ECHO_PORT, HTTP_BODY, HTTP_PORT, T_HTTP, recv_exact
from test_quic_transport import build, lab  # noqa: F401  (the fixture)

DELAY_MS = 150
RTT = 2 * DELAY_MS / 1000


def fast_open_lab(lab, fast_open=True, transport=None):
    extra = "FastOpen = on\n" if fast_open else ""
    topo = build(lab, transport=transport, impair={"both.delay_ms": DELAY_MS}, extra=extra)
    if transport != "ip":
        topo.wait_quic(timeout=20)
    return topo


def open_socks(topo, host, port):
    """Greeting done (one local round trip); returns the socket, ready for the request."""
    s = cl.connect_in(topo.c)
    s.sendall(b"\x05\x01\x00")
    assert recv_exact(s, 2, time.monotonic() + 10) == b"\x05\x00"
    return s


def request(host, port):
    return cl.socks5_request_bytes(host, port)


def read_reply(s, deadline):
    head = recv_exact(s, 4, deadline)
    assert len(head) == 4, f"no SOCKS reply: {head!r}"
    assert head[3] == 1, head
    rest = recv_exact(s, 6, deadline)
    assert len(rest) == 6
    return head[1]


def http_first_byte(topo):
    """Seconds from the CONNECT request to the first byte of the HTTP response, with the HTTP
    request sent as soon as the SOCKS reply is in (as a browser does); and the response."""
    s = open_socks(topo, T_HTTP, HTTP_PORT)
    t0 = time.monotonic()
    s.sendall(request(T_HTTP, HTTP_PORT))
    rep = read_reply(s, t0 + 20)
    t_reply = time.monotonic() - t0
    s.sendall(b"GET / HTTP/1.0\r\nHost: target.test\r\n\r\n")
    s.settimeout(20)
    first = s.recv(65536)
    t_first = time.monotonic() - t0
    resp = first
    while True:
        d = s.recv(65536)
        if not d:
            break
        resp += d
    s.close()
    return rep, t_reply, t_first, resp


def test_fast_open_over_quic_one_round_trip(lab):
    topo = fast_open_lab(lab)
    http_first_byte(topo)  # warm: the first stream also carries nothing else
    rep, t_reply, t_first, resp = http_first_byte(topo)
    assert rep == 0
    assert resp.endswith(HTTP_BODY), resp
    # success is answered locally, before any tunnel round trip
    assert t_reply < RTT / 2, f"reply after {t_reply:.3f}s, RTT {RTT}s\n{topo.logs()}"
    # request + first bytes in one flight: one round trip (+ the server's local connect)
    assert RTT <= t_first < 1.5 * RTT, f"first byte after {t_first:.3f}s, RTT {RTT}s"
    assert topo.transport_now() == "quic"


def test_without_fast_open_two_round_trips(lab):
    """The anchor of the test above: without FastOpen the same exchange takes two round trips,
    so the one-round-trip figure is FastOpen's doing, not the lab's."""
    topo = fast_open_lab(lab, fast_open=False)
    http_first_byte(topo)
    rep, t_reply, t_first, resp = http_first_byte(topo)
    assert rep == 0 and resp.endswith(HTTP_BODY)
    assert t_reply >= RTT, t_reply
    assert t_first >= 2 * RTT, t_first


def test_fast_open_refused_closes_the_connection(lab):
    topo = fast_open_lab(lab)
    before = topo.result("refused")
    s = open_socks(topo, T_HTTP, CLOSED_PORT)
    t0 = time.monotonic()
    s.sendall(request(T_HTTP, CLOSED_PORT) + b"GET / HTTP/1.0\r\n\r\n")
    assert read_reply(s, t0 + 10) == 0  # success was promised at once
    closed, data, secs = cl.wait_closed(s, 10)
    assert closed and data == b"", (closed, data, topo.logs())
    s.close()
    topo.proxy.wait_log(r"event=request_failed .*reply=connection-refused.*fast_open=yes", 10)
    deadline = time.monotonic() + 5
    while topo.result("refused") != before + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert topo.result("refused") == before + 1, topo.metrics()


def test_fast_open_data_and_half_close_before_the_connect(lab):
    """Bytes and the EOF the client sends before the server answered all arrive, in order."""
    topo = fast_open_lab(lab)
    payload = bytes(range(256)) * 1024  # 256 KiB: more than fits in one flight
    s = open_socks(topo, T_HTTP, ECHO_PORT)
    s.sendall(request(T_HTTP, ECHO_PORT))
    assert read_reply(s, time.monotonic() + 10) == 0
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    got = recv_exact(s, len(payload) + 1, time.monotonic() + 30)
    s.close()
    assert got == payload, (len(got), topo.logs())


def test_fast_open_on_the_ip_path(lab):
    """Transport = ip: the lwIP dialer ignores the early flag; the reply is still immediate and
    the bytes wait for the connect."""
    topo = fast_open_lab(lab, transport="ip")
    rep, t_reply, t_first, resp = http_first_byte(topo)
    assert rep == 0 and resp.endswith(HTTP_BODY), resp
    assert t_reply < RTT / 2, t_reply
    s = open_socks(topo, T_HTTP, CLOSED_PORT)
    s.sendall(request(T_HTTP, CLOSED_PORT))
    assert read_reply(s, time.monotonic() + 10) == 0
    closed, data, _ = cl.wait_closed(s, 15)
    assert closed and data == b""
