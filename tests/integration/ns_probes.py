"""Traffic from inside a namespace for the integration tests: UDP datagrams sent from a socket in
the namespace, and ping. netns.py re-exports these names (the tests call netns.ping)."""
import re
import sys

from netns import _txt, tail


# ---- UDP from inside a namespace -----------------------------------------------------------------

_SEND_SCRIPT = r"""
import socket, sys, time, base64, json
spec = json.loads(sys.stdin.read())
fam = socket.AF_INET6 if ':' in spec['dst'] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((spec.get('src', ''), spec.get('sport', 0)))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
sent = 0
for d in spec['datagrams']:
    data = base64.b64decode(d)
    for attempt in range(50):
        try:
            s.sendto(data, (spec['dst'], spec['dport']))
            sent += 1
            break
        except (BlockingIOError, OSError) as e:
            if getattr(e, 'errno', None) not in (11, 105, 111):  # EAGAIN, ENOBUFS, ECONNREFUSED
                raise
            time.sleep(0.01)
    if spec.get('gap'):
        time.sleep(spec['gap'])
print(sent, s.getsockname()[1])
"""


def send_udp(ns, dst, dport, datagrams, sport=0, src="", gap=0.0, timeout=60):
    """Sends each bytes object in `datagrams` as one UDP datagram from ns to dst:dport (one socket,
    bound to src:sport). Returns (number sent, source port)."""
    import base64
    import json
    spec = {"dst": dst, "dport": dport, "sport": sport, "src": src, "gap": gap,
            "datagrams": [base64.b64encode(d).decode() for d in datagrams]}
    r = ns.run([sys.executable, "-c", _SEND_SCRIPT], input=json.dumps(spec), timeout=timeout)
    n, port = r.stdout.split()
    return int(n), int(port)


# ---- ping ----------------------------------------------------------------------------------------


class PingResult:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.stdout, self.stderr = _txt(proc.stdout), _txt(proc.stderr)
        m = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", self.stdout)
        self.transmitted = int(m.group(1)) if m else 0
        self.received = int(m.group(2)) if m else 0

    @property
    def lost(self):
        return self.transmitted - self.received

    def __repr__(self):
        return (f"PingResult(rc={self.rc}, {self.received}/{self.transmitted} received)\n"
                f"{tail(self.stdout, 8)}\n{self.stderr.strip()}")


def ping_argv(dst, count=3, wait=2, interval=None, size=None):
    argv = ["ping", "-n", "-c", str(count), "-W", str(wait)]
    if interval is not None:
        argv += ["-i", str(interval)]
    if size is not None:
        argv += ["-s", str(size)]
    argv.append(dst)
    return argv


def ping(ns, dst, count=3, wait=2, interval=None, size=None, timeout=None):
    """Runs ping in ns and returns a PingResult (rc, transmitted, received, lost)."""
    argv = ping_argv(dst, count, wait, interval, size)
    if timeout is None:
        timeout = count * (interval or 1) + wait + 15
    return PingResult(ns.run(argv, check=False, timeout=timeout))
