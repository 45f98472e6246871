"""Latency to the first byte through awgproxy client -> awgproxy server with a tunnel round trip
of RTT_MS (the impairment relay adds RTT_MS / 2 each way; nothing else is impaired): issue 17's
"SOCKS reply for a connect by name" and "first byte of an HTTP response" figures, for the ip
and quic transports, [Socks] FastOpen off and on. Each case runs REPS exchanges on fresh
connections and prints the median and the spread in milliseconds and in round trips:
  reply(name)  CONNECT to the target by name -> SOCKS reply
  reply(ip)    CONNECT to the target's IP literal -> SOCKS reply
  first(name)  CONNECT by name, the GET sent as soon as the reply is in -> first response byte

  sudo RTT_MS=50 REPS=15 /usr/bin/python3 -m pytest -q -s -p no:cacheprovider \\
       bench/first_byte.py | grep RESULT

AWGPROXY_BIN selects the binary (default build/awgproxy). The lab is
tests/integration/test_quic_transport.py's (target reachable only from the server).
"""
import os
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "integration"))

import pytest  # noqa: E402

import clientlab as cl  # noqa: E402
import netns  # noqa: E402
from clientlab import HTTP_BODY, HTTP_PORT, T_HTTP, TARGET_NAME, recv_exact  # noqa: E402
from test_quic_transport import build  # noqa: E402

RTT_MS = int(os.environ.get("RTT_MS", "50"))
REPS = int(os.environ.get("REPS", "15"))
CASES = os.environ.get("CASES", "ip-off,quic-off,quic-on").split(",")


def exchange(topo, host, get):
    """(seconds to the SOCKS reply, seconds to the first response byte or None)."""
    s = cl.connect_in(topo.c)
    try:
        s.sendall(b"\x05\x01\x00")
        assert recv_exact(s, 2, time.monotonic() + 10) == b"\x05\x00"
        t0 = time.monotonic()
        s.sendall(cl.socks5_request_bytes(host, HTTP_PORT))
        head = recv_exact(s, 4, t0 + 20)
        assert len(head) == 4 and head[1] == 0, head
        recv_exact(s, 6, t0 + 20)
        t_reply = time.monotonic() - t0
        if not get:
            return t_reply, None
        s.sendall(b"GET / HTTP/1.0\r\nHost: target.test\r\n\r\n")
        s.settimeout(20)
        first = s.recv(65536)
        t_first = time.monotonic() - t0
        rest = first
        while True:
            d = s.recv(65536)
            if not d:
                break
            rest += d
        assert rest.endswith(HTTP_BODY), rest
        return t_reply, t_first
    finally:
        s.close()


def summary(name, xs):
    ms = sorted(x * 1000 for x in xs)
    med = statistics.median(ms)
    return f"{name} {med:.0f} ms = {med / RTT_MS:.2f} RTT (min {ms[0]:.0f}, max {ms[-1]:.0f})"


@pytest.mark.parametrize("case", CASES)
def test_first_byte(tmp_path, case):
    transport, fast = case.split("-")
    with netns.open_lab(tmp_path, tools=("curl",)) as lab:
        topo = build(lab, transport=transport, log_level="info",
                     impair={"both.delay_ms": RTT_MS // 2},
                     extra="FastOpen = on\n" if fast == "on" else "")
        if transport == "quic":
            topo.wait_quic(timeout=30)
        exchange(topo, T_HTTP, True)  # warm: the session and, on ip, the tunnel probe
        by_name, by_ip, first = [], [], []
        for _ in range(REPS):
            by_name.append(exchange(topo, TARGET_NAME, False)[0])
            by_ip.append(exchange(topo, T_HTTP, False)[0])
            first.append(exchange(topo, TARGET_NAME, True)[1])
        print(f"\nRESULT {transport} FastOpen={fast} RTT {RTT_MS} ms, {REPS} each: "
              f"{summary('reply(name)', by_name)}; {summary('reply(ip)', by_ip)}; "
              f"{summary('first(name)', first)}")
