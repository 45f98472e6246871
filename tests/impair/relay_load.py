#!/usr/bin/env python3
"""How fast impair_relay relays: a by-hand measurement (not a test; timing belongs here, not in
pytest). Needs root (network namespaces).

    C (sender)  --veth--  R (impair_relay)  --veth--  S (receiver)

Python senders in C blast SIZE-byte datagrams at the relay for SECONDS; a receiver in S counts
what arrives. Reported: the relay's forwarded rate (MB/s = 10^6 bytes/s, datagrams/s), what
it dropped (its counters), and its CPU time per datagram, which gives its capacity on one core
independent of how busy this (shared) machine is: capacity = 1 / (CPU seconds per datagram).

    sudo python3 tests/impair/relay_load.py [--seconds 5] [--size 1400] [--senders 2]
        [--set both.loss=0.01 ...]
"""
import argparse
import json
import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import impair  # noqa: E402
import netns  # noqa: E402

SENDER = r"""
import socket, sys, time
dst, port, size, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((dst, port))
buf = bytes(size)
n = 0
end = time.monotonic() + secs
while time.monotonic() < end:
    for _ in range(256):
        try:
            s.send(buf)
            n += 1
        except OSError:
            pass
print(n)
"""

RECEIVER = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
buf = bytearray(65536)
n = nbytes = 0
s.settimeout(30)
first = last = None
while True:
    try:
        k = s.recv_into(buf)
    except socket.timeout:
        break
    now = time.monotonic()
    first = first or now
    last = now
    n += 1
    nbytes += k
    s.settimeout(1.0)
print(n, nbytes, (last or 0) - (first or 0))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--size", type=int, default=1400)
    ap.add_argument("--senders", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="DIR.KEY=VALUE")
    a = ap.parse_args()
    netns.require_netns = lambda *t: None
    lab = netns.Lab()
    try:
        c, r, s = lab.netns("c"), lab.netns("r"), lab.netns("s")
        cr, rs = lab.veth(c, r), lab.veth(r, s)
        settings = dict(kv.split("=", 1) for kv in a.set)
        relay = impair.start(r, f"{cr.ip_b}:7000", f"{rs.ip_b}:9000", settings=settings, seed=1)
        rx = netns.LoggedProcess(s, [sys.executable, "-c", RECEIVER, rs.ip_b, "9000"],
                                 s.file("rx.log"))
        rx.wait_log("ready")
        cpu0 = relay.cpu_seconds()
        senders = [c.popen([sys.executable, "-c", SENDER, cr.ip_b, "7000", str(a.size),
                            str(a.seconds)], stdout=__import__("subprocess").PIPE, text=True)
                   for _ in range(a.senders)]
        sent = sum(int(p.communicate()[0]) for p in senders)
        st = relay.wait_idle(timeout=30, quiet=1.0)
        cpu = relay.cpu_seconds() - cpu0
        rx.wait_log(r"^\d+ \d+ ", timeout=40)
        got, nbytes, span = rx.log().split()[-3:]
        up = st["up"]
        print(json.dumps({"sent": sent, "relay": up, "receiver_datagrams": int(got)}))
        span = float(span) or 1e-9
        per = cpu / max(1, up["received"])
        print(f"sent {sent} x {a.size} B by {a.senders} senders in {a.seconds:.1f} s; relay "
              f"received {up['received']} (the rest: kernel drops before it), forwarded "
              f"{up['forwarded']}, dropped {up['dropped']}")
        print(f"receiver: {int(got)} datagrams, {int(nbytes) / span / 1e6:.1f} MB/s, "
              f"{int(got) / span:.0f} datagrams/s over {span:.2f} s")
        print(f"relay CPU {cpu:.2f} s = {per * 1e6:.2f} us per datagram received -> capacity "
              f"~{1 / per:.0f} datagrams/s, ~{a.size / per / 1e6:.0f} MB/s at {a.size} B on one "
              f"core")
    finally:
        lab.close()


if __name__ == "__main__":
    main()
