"""How a stream ends reaches the other side unchanged, through every transport: a clean end (FIN)
stays a clean end, and a reset stays a reset. A proxy that turns a reset into a FIN makes a cut-off
download or upload look complete to the application (an HTTP/1.0 body without Content-Length, a
tar stream, a database dump); this was the case for the application's side of every SOCKS stream.

- the target sends 300 kB and then resets: the application sees ECONNRESET, not EOF;
- the application sends 200 kB and then resets: the target sees ECONNRESET, not EOF;
- the same transfers ended with a FIN arrive whole, followed by a clean EOF.

Over our server's ip (lwIP) and QUIC transports, and through Debian's wireguard-go (where the
target's kernel TCP talks to our client's lwIP directly)."""
import socket
import struct
import sys
import time

import pytest

import netns
from clientlab import T_HTTP, socks5
from test_quic_transport import build, lab  # noqa: F401  (the fixture)

DOWN_PORT, UP_PORT = 9009, 9010
DOWN_BYTES, UP_BYTES = 300_000, 200_000

# In T: DOWN_PORT sends DOWN_BYTES then ends as the client's first byte asks ("R" reset, "F" FIN);
# UP_PORT reads until the end and logs how the upload ended and how many bytes came.
TARGET = r"""
import socket, struct, sys, threading
addr = sys.argv[1]
def listener(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    return s
def down(c):
    how = c.recv(1)
    c.sendall(b"d" * %d)
    if how == b"R":
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
def up(c):
    total = 0
    try:
        while True:
            d = c.recv(65536)
            if not d:
                print("upload eof", total, flush=True)
                break
            total += len(d)
    except ConnectionResetError:
        print("upload reset", total, flush=True)
    c.close()
def serve(port, fn):
    s = listener(port)
    while True:
        c, _ = s.accept()
        threading.Thread(target=fn, args=(c,), daemon=True).start()
threading.Thread(target=serve, args=(%d, down), daemon=True).start()
threading.Thread(target=serve, args=(%d, up), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
""" % (DOWN_BYTES, DOWN_PORT, UP_PORT)

PATHS = [("awgproxy", "ip"), ("awgproxy", "quic"), ("wireguard-go", None)]


def start(lab, server, transport):
    topo = build(lab, server=server, transport=transport, log_level="info")
    if transport == "quic":
        topo.wait_quic()
    tgt = netns.LoggedProcess(topo.t, [sys.executable, "-u", "-c", TARGET, T_HTTP],
                              topo.t.file("stream_end_target.log"))
    lab.processes.append(tgt)
    tgt.wait_log(r"^ready", timeout=10)
    return topo, tgt


def open_stream(topo, port):
    r = socks5(topo.c, T_HTTP, port, keep=True, timeout=15)
    assert r.rep == 0 and r.sock is not None, (r.__dict__, topo.logs())
    r.sock.settimeout(20)
    return r.sock


def read_to_end(sock):
    """Returns (bytes read, "eof" | "reset")."""
    got = 0
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                return got, "eof"
            got += len(d)
    except ConnectionResetError:
        return got, "reset"


@pytest.mark.parametrize("server,transport", PATHS)
def test_download_end(lab, server, transport):
    topo, _ = start(lab, server, transport)
    s = open_stream(topo, DOWN_PORT)
    s.sendall(b"F")
    got, how = read_to_end(s)
    s.close()
    assert (got, how) == (DOWN_BYTES, "eof"), topo.logs()
    s = open_stream(topo, DOWN_PORT)
    s.sendall(b"R")
    got, how = read_to_end(s)
    s.close()
    assert how == "reset" and got <= DOWN_BYTES, (got, how, topo.logs())


@pytest.mark.parametrize("server,transport", PATHS)
def test_upload_end(lab, server, transport):
    topo, tgt = start(lab, server, transport)
    s = open_stream(topo, UP_PORT)
    s.sendall(b"u" * UP_BYTES)
    s.shutdown(socket.SHUT_WR)
    tgt.wait_log(rf"^upload eof {UP_BYTES}$", timeout=20)
    s.close()
    s = open_stream(topo, UP_PORT)
    s.sendall(b"u" * UP_BYTES)
    time.sleep(0.5)  # most of it through, so that a wrong FIN could not hide behind a short count
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    tgt.wait_log(r"^upload (eof|reset) \d+\n[\s\S]*^upload (eof|reset) \d+$", timeout=20)
    lines = [ln for ln in tgt.log().splitlines() if ln.startswith("upload")]
    assert len(lines) == 2 and lines[1].startswith("upload reset"), (lines, topo.logs())
