"""`awgproxy client`'s SOCKS server against hostile or broken clients: truncated, oversized and
wrong-version requests, bad name lengths, slow clients and a thousand abandoned connections. No
success reply may leave for any of them, the client never crashes, and its memory and descriptors
come back. Runs against wireguard-go alone: only the client is under test. Lab: clientlab.py."""
import random
import select
import socket
import struct
import threading
import time

import pytest

import clientlab as cl
import netns
from clientlab import BLACKHOLE, HTTP_BODY, HTTP_PORT, TARGET_NAME, T_HTTP, socks4, socks5
from socks_fixtures import (CONNECT_TIMEOUT, HANDSHAKE_TIMEOUT, PROXY, fetch_over_socks5,  # noqa: F401
                            lab, topo)


def raw_exchange(topo, chunks, half_close=True, wait=3.0, gap=0.0):
    """Sends chunks to the SOCKS port, optionally half-closes, then reads until the server closes
    or `wait` s pass. Returns (closed, bytes received, seconds)."""
    s = cl.connect_in(topo.c)
    try:
        for ch in chunks:
            s.sendall(ch)
            if gap:
                time.sleep(gap)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        return cl.wait_closed(s, wait)
    except (BrokenPipeError, ConnectionResetError):
        return True, b"", 0.0
    finally:
        s.close()


GREETING = b"\x05\x01\x00"


def _not_granted(data, v5_greeting_sent):
    """No success reply in data: SOCKS5 method reply alone is fine, a REP must be non-zero, a
    SOCKS4 CD must be 0x5B."""
    if v5_greeting_sent and data.startswith(b"\x05\x00"):
        data = data[2:]
    if not data:
        return True
    if data[0] == 5 and len(data) >= 2:
        return data[1] != 0
    if data[0] == 0 and len(data) >= 2:
        return data[1] != 0x5A
    return True


def assert_refused_then_usable(topo, cases, what_input, half_close, wait):
    """Each case's chunks (name -> list of bytes) are closed without a grant, the proxy stays
    up, and a normal request works afterwards."""
    bad = []
    for what, chunks in cases.items():
        closed, data, el = raw_exchange(topo, chunks, half_close=half_close, wait=wait)
        if not closed or not _not_granted(data, chunks[0] == GREETING):
            bad.append(f"{what}: closed={closed} after {el:.2f} s, received {data[:40].hex()}")
    assert topo.proxy.alive(), topo.logs()
    assert not bad, "\n".join(bad) + "\n" + topo.logs()
    r, body = fetch_over_socks5(topo, T_HTTP)
    assert body == HTTP_BODY, f"normal use after {what_input}: {r}\n{topo.logs()}"


def test_bad_input_truncated(topo):
    """Truncated greetings/requests followed by EOF: the proxy closes at once, grants nothing,
    stays up."""
    ip = socket.inet_aton(T_HTTP)
    cases = {
        "greeting: version only": [b"\x05"],
        "greeting: fewer methods than announced": [b"\x05\x02\x00"],
        "request: header only": [GREETING, b"\x05\x01\x00"],
        "request: IPv4 cut": [GREETING, b"\x05\x01\x00\x01" + ip[:2]],
        "request: port cut": [GREETING, b"\x05\x01\x00\x01" + ip + b"\x00"],
        "request: name cut": [GREETING, b"\x05\x01\x00\x03\x0btarget"],
        "request: IPv6 cut": [GREETING, b"\x05\x01\x00\x04" + b"\x20\x01\x0d\xb8"],
        "socks4: no user-id terminator": [b"\x04\x01\x00\x50" + ip + b"user"],
        "socks4a: name cut": [b"\x04\x01\x00\x50\x00\x00\x00\x01\x00target.te"],
    }
    assert_refused_then_usable(topo, cases, "truncated input", half_close=True, wait=2.0)


def test_bad_input_oversized(topo):
    """Requests beyond every SOCKS bound: the proxy rejects them and closes (no unbounded
    buffering), grants nothing, stays up."""
    ip = socket.inet_aton(T_HTTP)
    junk = random.Random(7).randbytes(1 << 20)
    cases = {
        "socks4 user-id of 4000 bytes": [b"\x04\x01\x00\x50" + ip + b"u" * 4000 + b"\0"],
        "socks4a host name of 300 bytes": [
            b"\x04\x01\x00\x50\x00\x00\x00\x01\x00" + b"a" * 300 + b"\0"],
        "socks5: 64 KB of junk as the request": [GREETING, b"\x41" * 65536],
        "socks5: 1 MB of random bytes after 0x05": [b"\x05" + junk],
        "socks4: 1 MB without a terminator": [b"\x04\x01\x00\x50" + ip + b"x" * (1 << 20)],
    }
    assert_refused_then_usable(topo, cases, "oversized input", half_close=False, wait=3.0)


def test_bad_input_wrong_versions(topo):
    """Wrong version bytes (and other protocols on the SOCKS port) are closed without a grant."""
    ip = socket.inet_aton(T_HTTP)
    cases = {
        "version 0x06": [b"\x06\x01\x00"],
        "version 0x00": [b"\x00\x01\x00"],
        "version 0xff": [b"\xff\x01\x00"],
        "HTTP request": [b"GET / HTTP/1.1\r\nHost: target.test\r\n\r\n"],
        "HTTP CONNECT": [b"CONNECT target.test:80 HTTP/1.1\r\nHost: target.test:80\r\n\r\n"],
        "TLS ClientHello": [bytes.fromhex("160301020001") + b"\x03\x03" + b"\0" * 64],
        "socks5 request with VER 4": [GREETING, b"\x04\x01\x00\x01" + ip + b"\x00\x50"],
        "socks5 request with RSV 0x01, then VER 6": [GREETING, b"\x06\x01\x01\x01" + ip + b"\0P"],
        "socks5 user/pass sub-negotiation without users": [b"\x05\x01\x02",
                                                           b"\x01\x01a\x01b"],
        "socks4 BIND": [b"\x04\x02\x00\x50" + ip + b"\0"],
    }
    bad = []
    for what, chunks in cases.items():
        closed, data, el = raw_exchange(topo, chunks, half_close=False, wait=3.0)
        if not closed or not _not_granted(data, chunks[0] == GREETING):
            bad.append(f"{what}: closed={closed} after {el:.2f} s, received {data[:40].hex()}")
        if what.startswith("socks5 user/pass") and data[:2] not in (b"\x05\xff", b""):
            bad.append(f"{what}: method reply {data[:2].hex()}, want 05ff")
    assert topo.proxy.alive(), topo.logs()
    assert not bad, "\n".join(bad) + "\n" + topo.logs()


def test_bad_input_name_lengths(topo):
    """A zero-length name is rejected (no connection attempt, non-success reply or close); a
    255-byte name (the SOCKS5 maximum) is accepted and fails at DNS with 0x04, as does a 253-byte
    name that does not exist."""
    r = socks5(topo.c, request=b"\x05\x01\x00\x03\x00\x00\x50", timeout=5)
    assert (r.rep is None and r.closed) or (r.rep not in (None, 0x00)), (
        f"zero-length name: {r}\n{topo.logs()}")
    if r.rep is None:
        assert r.closed, f"zero-length name: connection neither answered nor closed: {r}"

    r4 = socks4(topo.c, b"", HTTP_PORT, timeout=5)
    assert r4.rep in (None, 0x5B) and (r4.rep is not None or r4.closed), (
        f"SOCKS4a zero-length name: {r4}\n{topo.logs()}")

    name255 = ".".join(["a" * 63] * 4)  # 4 * 63 + 3 = 255
    assert len(name255) == 255
    r = socks5(topo.c, name255, HTTP_PORT, timeout=CONNECT_TIMEOUT + 10)
    assert r.rep == 0x04, f"255-byte name: {r}\n{topo.logs()}"

    name253 = ".".join(["b" * 63] * 3 + ["c" * 61])  # 3 * 63 + 61 + 3 = 253
    assert len(name253) == 253
    r = socks5(topo.c, name253, HTTP_PORT, timeout=CONNECT_TIMEOUT + 10)
    assert r.rep == 0x04, f"253-byte nonexistent name: {r}\n{topo.logs()}"
    assert topo.proxy.alive(), topo.logs()


def test_bad_input_slow_client(topo):
    """HandshakeTimeout = 3: a client that trickles one byte per second (never finishing), one
    that sends nothing, and one stuck after the greeting are all closed after ~3 s."""
    results = {}

    def trickle(name, first, per_second):
        s = cl.connect_in(topo.c)
        t0 = time.monotonic()
        closed_at = None
        try:
            if first:
                s.sendall(first)
            s.setblocking(False)
            deadline = t0 + HANDSHAKE_TIMEOUT + 6
            i = 0
            while time.monotonic() < deadline:
                if per_second is not None and i < len(per_second):
                    try:
                        s.send(per_second[i:i + 1])
                    except (BrokenPipeError, ConnectionResetError):
                        closed_at = time.monotonic() - t0
                        break
                    i += 1
                r, _, _ = select.select([s], [], [], 1.0)
                if r:
                    try:
                        d = s.recv(4096)
                    except ConnectionResetError:
                        d = b""
                    if not d:
                        closed_at = time.monotonic() - t0
                        break
        finally:
            s.close()
        results[name] = closed_at

    threads = [
        threading.Thread(target=trickle, args=("one byte per second", None,
                                               b"\x05\xff" + bytes(range(1, 256)))),
        threading.Thread(target=trickle, args=("silent", None, None)),
        threading.Thread(target=trickle, args=("stuck after greeting", GREETING,
                                               b"\x05\x01\x00\x03\xff" + b"z" * 255)),
        threading.Thread(target=trickle, args=("socks4 one byte per second", None,
                                               b"\x04\x01\x00\x50" + b"\x00\x00\x00\x01" +
                                               b"u" * 300)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    bad = {k: v for k, v in results.items()
           if v is None or not (HANDSHAKE_TIMEOUT - 0.5 <= v <= HANDSHAKE_TIMEOUT + 2.5)}
    assert not bad, (f"HandshakeTimeout = {HANDSHAKE_TIMEOUT}: seconds until closed (None = "
                     f"still open after {HANDSHAKE_TIMEOUT + 6} s): {results}\n{topo.logs()}")
    assert topo.proxy.alive(), topo.logs()


def test_bad_input_abandoned_connections_memory(topo):
    """1000 connections opened and abandoned (silent, half a greeting, half a request, or a full
    CONNECT to a silent destination; some closed with RST): the proxy stays up, reaps the stalled
    ones after HandshakeTimeout, a normal curl works afterwards, and its RSS and open descriptors
    return to their warm-up baseline (RSS within 10 MB)."""
    def curl_ok():
        r = topo.curl(f"http://{TARGET_NAME}/", "--socks5-hostname", PROXY)
        return r.returncode == 0 and r.stdout.encode() == HTTP_BODY, r

    # Warm-up: the allocator, lwIP pools, the DNS cache, a few handshake timeouts.
    for _ in range(10):
        ok, r = curl_ok()
        assert ok, f"warm-up curl: {r}\n{topo.logs()}"
    warm = []
    for i in range(50):
        s = cl.connect_in(topo.c)
        if i % 2:
            s.sendall(b"\x05")
        warm.append(s)
    for s in warm:
        s.close()
    time.sleep(HANDSHAKE_TIMEOUT + 1)
    base_rss, base_fds = topo.rss_kb(), topo.fd_count()

    ip = socket.inet_aton(BLACKHOLE)
    kinds = [b"", b"\x05", GREETING + b"\x05\x01\x00\x01",
             GREETING + b"\x05\x01\x00\x01" + ip + b"\x00\x50"]
    socks_ = []
    t0 = time.monotonic()
    for i in range(1000):
        try:
            s = cl.connect_in(topo.c, timeout=5)
        except OSError as e:
            pytest.fail(f"connection {i} to the SOCKS port failed: {e}\n{topo.logs()}")
        if kinds[i % 4]:
            s.sendall(kinds[i % 4])
        socks_.append(s)
    opened = time.monotonic() - t0
    peak_rss, peak_fds = topo.rss_kb(), topo.fd_count()

    # The handshake-stalled ones (kinds 0-2) must be closed by the proxy after HandshakeTimeout.
    time.sleep(HANDSHAKE_TIMEOUT + 1.5)
    still_open = 0
    for i, s in enumerate(socks_):
        if i % 4 == 3:
            continue
        closed, _, _ = cl.wait_closed(s, 0.01)
        if not closed:
            still_open += 1
    # Abandon everything; half of them with an RST.
    for i, s in enumerate(socks_):
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    assert topo.proxy.alive(), f"awgproxy died under 1000 abandoned connections\n{topo.logs()}"
    assert still_open == 0, (f"{still_open} of 750 handshake-stalled connections still open "
                             f"{HANDSHAKE_TIMEOUT + 1.5} s after they stalled\n{topo.logs()}")

    time.sleep(CONNECT_TIMEOUT + 2)  # the abandoned CONNECTs' dials end too
    ok, r = curl_ok()
    assert ok, f"curl after 1000 abandoned connections: {r}\n{topo.logs()}"

    def settled():
        return topo.rss_kb() - base_rss <= 10 * 1024 and topo.fd_count() <= base_fds + 5

    netns.wait_until(settled, 15, interval=0.5)
    rss, fds = topo.rss_kb(), topo.fd_count()
    msg = (f"baseline RSS {base_rss} kB / {base_fds} fds; peak {peak_rss} kB / {peak_fds} fds "
           f"(1000 opened in {opened:.1f} s); after {rss} kB / {fds} fds")
    print(msg)
    assert rss - base_rss <= 10 * 1024, f"RSS did not come back: {msg}\n{topo.logs()}"
    assert fds <= base_fds + 5, f"descriptors leaked: {msg}\n{topo.logs()}"
