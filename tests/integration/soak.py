"""A soak of awgproxy client -> server through the impairment relay (issue 10 item 4), shared by
`scripts/soak.sh --minutes N` and tests/integration/test_soak.py (CI's short run).

Traffic, all through the client's SOCKS5 port to the target T, at the same time:
  * bulk: echo streams moving 1 MiB chunks both ways, every byte compared;
  * churn: a new connection per HTTP request, the body compared;
  * UDP: UDP ASSOCIATE to T's echo, every datagram compared (a lost one is sent again);
  * idle: 32 connections opened and left alone, then checked to still echo.
Events on a schedule over the run: 2 % loss each way switched on and off, a server reload
(SIGHUP), one server restart (SIGKILL and start again: the streams of that moment are cut and
counted apart, never as errors, and must come back within 20 s).

Every 5 s it samples RSS, open file descriptors and CPU time of the client and of the server
(its supervisor and workers together). The summary: bytes moved, requests, datagrams, errors
(anything that came back altered, or a failure outside the restart's window: expected 0), cuts,
and RSS / fds at the start and the end."""
import os
import pathlib
import signal
import socket
import struct
import threading
import time

import clientlab as cl
from clientlab import ECHO_PORT, HTTP_BODY, T_HTTP, http_body, http_get_over, in_netns, socks5

CHUNK = 1 << 20
IDLE_STREAMS = 32
RESTART_GRACE = 20.0  # s after a restart in which failures count as cuts


def _pids_of(proc):
    pids = [proc.pid]
    try:
        kids = pathlib.Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        pids += [int(k) for k in kids]
    except OSError:
        pass
    return pids


def sample(proc):
    """(rss MiB, fds, cpu s) of a process and its children."""
    rss = fds = 0
    cpu = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in _pids_of(proc):
        try:
            for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
            fds += len(os.listdir(f"/proc/{pid}/fd"))
            st = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(st[11]) + int(st[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return rss / 1024, fds, cpu


class Soak:
    def __init__(self, topo, seconds, log=print):
        self.topo, self.seconds, self.log = topo, seconds, log
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.stats = {"bulk_bytes": 0, "requests": 0, "datagrams": 0, "udp_resent": 0,
                      "idle_checked": 0, "errors": 0, "cuts": 0, "events": []}
        self.error_notes = []  # the first 10 and the last 10
        self.errors_by_kind = {}
        self.restart_at = None  # monotonic time of the restart's kill
        self.restart_up = None  # and of the new server being up
        self.samples = []

    # -- accounting
    def add(self, key, n=1):
        with self.lock:
            self.stats[key] += n

    def failed(self, what, exc, altered=False, started=None):
        """A failure: a cut if nothing came back altered and it falls in the restart's window, or
        belongs to a stream opened before the new server was up (such a stream can only end by
        its own timeout, as any TCP connection to a vanished host), else an error."""
        now = time.monotonic()
        in_window = self.restart_at is not None and self.restart_at - 2 <= now <= \
            (self.restart_up or now) + RESTART_GRACE
        predates = self.restart_at is not None and started is not None and \
            started <= (self.restart_up or now)
        with self.lock:
            if (in_window or predates) and not altered:
                self.stats["cuts"] += 1
            else:
                self.stats["errors"] += 1
                self.errors_by_kind[what] = self.errors_by_kind.get(what, 0) + 1
                note = f"{time.strftime('%H:%M:%S')} {what}: {exc}"
                if len(self.error_notes) >= 20:
                    del self.error_notes[10]
                self.error_notes.append(note)
        time.sleep(0.5)

    # -- traffic
    def bulk(self):
        pattern = os.urandom(CHUNK)
        while not self.stop.is_set():
            r = socks5(self.topo.c, T_HTTP, ECHO_PORT, keep=True, timeout=15)
            if r.rep != 0 or r.sock is None:
                self.failed("bulk connect", f"reply {r.rep} {r.error}")
                continue
            s = r.sock
            s.settimeout(30)
            started = time.monotonic()
            try:
                for i in range(16):
                    if self.stop.is_set():
                        break
                    chunk = pattern[i * 4099 % 4096:] + pattern[:i * 4099 % 4096]
                    s.sendall(chunk)
                    got = bytearray()
                    while len(got) < CHUNK:
                        d = s.recv(CHUNK - len(got))
                        if not d:
                            raise ConnectionError("closed early")
                        got += d
                    if got != chunk:
                        self.failed("bulk", "echo came back altered", altered=True)
                        break
                    self.add("bulk_bytes", 2 * CHUNK)
            except OSError as e:
                self.failed("bulk", e, started=started)
            finally:
                s.close()

    def churn(self):
        while not self.stop.is_set():
            r = socks5(self.topo.c, T_HTTP, cl.HTTP_PORT, keep=True, timeout=15)
            if r.rep != 0 or r.sock is None:
                self.failed("churn connect", f"reply {r.rep} {r.error}")
                continue
            try:
                head, body = http_body(http_get_over(r.sock, host=T_HTTP))
                if body != HTTP_BODY:
                    self.failed("churn", f"body {body[:40]!r}", altered=bool(body))
                else:
                    self.add("requests")
            except OSError as e:
                self.failed("churn", e)
            finally:
                r.sock.close()
            time.sleep(0.02)

    def udp(self):
        while not self.stop.is_set():
            r = socks5(self.topo.c, "0.0.0.0", 0, cmd=3, keep=True, timeout=15)
            if r.rep != 0 or r.sock is None:
                self.failed("udp associate", f"reply {r.rep} {r.error}")
                continue
            with in_netns(self.topo.c):
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.settimeout(1.0)
            relay = ("127.0.0.1" if r.bnd_addr in ("0.0.0.0", None) else r.bnd_addr, r.bnd_port)
            hdr = b"\0\0\0\x01" + socket.inet_aton(T_HTTP) + struct.pack("!H", ECHO_PORT)
            sent = []
            started = time.monotonic()
            try:
                for _ in range(2000):
                    if self.stop.is_set():
                        break
                    payload = os.urandom(1000)
                    data = self.udp_exchange(u, relay, hdr + payload, sent)
                    sent.append(hdr + payload)
                    del sent[:-64]
                    if data != hdr + payload:
                        self.failed("udp", "datagram came back altered", altered=True)
                        break
                    self.add("datagrams")
            except OSError as e:
                self.failed("udp", e, started=started)
            finally:
                u.close()
                r.close()

    def udp_exchange(self, u, relay, dgram, earlier):
        """Sends dgram (again, up to 5 times) until its echo comes back; late echoes of earlier
        datagrams (ones that were sent twice) are skipped. Returns what came back."""
        for _attempt in range(5):
            u.sendto(dgram, relay)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                try:
                    data, _ = u.recvfrom(4096)
                except socket.timeout:
                    break
                if data in earlier:
                    continue
                return data
            self.add("udp_resent")
        raise TimeoutError("no echo in 5 tries")

    def open_idle(self):
        socks = []
        for _ in range(IDLE_STREAMS):
            r = socks5(self.topo.c, T_HTTP, ECHO_PORT, keep=True, timeout=15)
            if r.rep == 0 and r.sock is not None:
                socks.append(r.sock)
            else:
                self.failed("idle connect", f"reply {r.rep} {r.error}")
        return socks

    def check_idle(self, socks, close=True):
        """Each idle stream echoes a line; close=False keeps them (a word every 4 minutes keeps
        them inside the client's and the server's IdleTimeout, 300 s by default)."""
        for i, s in enumerate(socks):
            try:
                s.settimeout(15)
                msg = f"idle {i} still here\n".encode()
                s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    d = s.recv(len(msg) - len(got))
                    if not d:
                        raise ConnectionError("closed")
                    got += d
                if got != msg:
                    self.failed("idle", "echo altered", altered=True)
                elif close:
                    self.add("idle_checked")
            except OSError as e:
                self.failed("idle", e)
            finally:
                if close:
                    s.close()

    # -- events
    def event(self, what):
        self.stats["events"].append(f"{time.monotonic() - self.t0:6.1f}s {what}")
        self.log(f"soak: {what}")

    def restart_server(self):
        self.restart_at = time.monotonic()
        self.topo.server.stop(sig=signal.SIGKILL)
        self.topo.start_awg_server(log_level="info")
        self.restart_up = time.monotonic()

    def run(self):
        topo = self.topo
        self.t0 = time.monotonic()
        threads = [threading.Thread(target=f, args=a, daemon=True) for f, a in
                   ((self.bulk, ()), (self.bulk, ()), (self.churn, ()), (self.udp, ()))]
        for t in threads:
            t.start()
        idle = self.open_idle()
        d = self.seconds
        schedule = [(d * k / 6, "loss", k % 2 == 1) for k in range(1, 6)]
        schedule += [(0.3 * d, "reload", None), (0.45 * d, "check idle", None),
                     (0.55 * d, "restart", None), (0.55 * d + RESTART_GRACE + 1, "open idle", None)]
        schedule.sort(key=lambda e: e[0])
        next_sample, next_touch = 0.0, 240.0
        while True:
            now = time.monotonic() - self.t0
            if now >= next_sample:
                self.samples.append((round(now, 1), sample(topo.proxy), sample(topo.server)))
                next_sample += 5
            if now >= next_touch:
                self.check_idle(idle, close=False)
                next_touch += 240
            while schedule and schedule[0][0] <= now:
                _, what, arg = schedule.pop(0)
                if what == "loss":
                    topo.relay.configure({"both.loss": 0.02 if arg else 0})
                    self.event(f"loss {'2 %' if arg else 'off'}")
                elif what == "reload":
                    os.kill(topo.server.pid, signal.SIGHUP)
                    self.event("server reload (SIGHUP)")
                elif what == "check idle":
                    self.check_idle(idle)
                    self.event(f"idle streams checked: {self.stats['idle_checked']}")
                    idle = []
                elif what == "restart":
                    self.restart_server()
                    self.event("server restarted (SIGKILL, started again)")
                elif what == "open idle":
                    idle = self.open_idle()
                    self.event(f"{len(idle)} idle streams opened again")
            if now >= d:
                break
            time.sleep(0.2)
        before = self.stats["idle_checked"]
        self.check_idle(idle)
        self.event(f"idle streams checked at the end: {self.stats['idle_checked'] - before}")
        self.stop.set()
        for t in threads:
            t.join(60)
        topo.relay.configure({"both.loss": 0})
        time.sleep(2)  # let the last connections close before the final sample
        self.samples.append((round(time.monotonic() - self.t0, 1), sample(topo.proxy),
                             sample(topo.server)))
        return self.summary()

    def summary(self):
        s = dict(self.stats)
        first, last = self.samples[0], self.samples[-1]
        peak = max(x[1][0] for x in self.samples)
        s.update(seconds=self.seconds, error_notes=self.error_notes,
                 errors_by_kind=self.errors_by_kind,
                 client_rss_mib=(round(first[1][0], 1), round(peak, 1), round(last[1][0], 1)),
                 client_fds=(first[1][1], last[1][1]), client_cpu_s=round(last[1][2], 1),
                 server_rss_mib_end=round(last[2][0], 1), server_fds_end=last[2][1],
                 restart_at_s=round(self.restart_at - self.t0, 1) if self.restart_at else None)
        return s


def format_summary(s):
    mib = s["bulk_bytes"] / (1 << 20)
    lines = [
        f"soak of {s['seconds']:.0f} s: {mib:.0f} MiB of echo (both ways), {s['requests']} HTTP "
        f"requests on new connections, {s['datagrams']} UDP datagrams ({s['udp_resent']} sent "
        f"again), {s['idle_checked']} idle streams checked",
        f"errors: {s['errors']} (expected 0) {s['errors_by_kind']}; cut by the server restart: "
        f"{s['cuts']}",
        f"client RSS start / peak / end: {s['client_rss_mib'][0]} / {s['client_rss_mib'][1]} / "
        f"{s['client_rss_mib'][2]} MiB; fds start / end: {s['client_fds'][0]} / "
        f"{s['client_fds'][1]}; CPU {s['client_cpu_s']} s",
        f"server (after its restart) RSS at the end: {s['server_rss_mib_end']} MiB, "
        f"fds {s['server_fds_end']}",
    ]
    lines += [f"  event at {e}" for e in s["events"]]
    lines += [f"  error: {n}" for n in s["error_notes"]]
    return "\n".join(lines)


def main():
    """scripts/soak.sh: a soak of --minutes through a fresh lab; prints the summary and writes
    it as JSON to WORKDIR/soak.json."""
    import argparse
    import json
    import tempfile

    import netns
    from test_quic_transport import build

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--minutes", type=float, default=3)
    ap.add_argument("--transport", choices=("ip", "quic"), default="quic")
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    workdir = pathlib.Path(a.workdir or tempfile.mkdtemp(prefix="awgsoak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    with netns.open_lab(workdir, tools=("wg", "wireguard-go", "curl")) as lab:
        topo = build(lab, transport=a.transport, log_level="info", server_log_level="info",
                     impair={"both.delay_ms": 2})
        if a.transport == "quic":
            topo.wait_quic(timeout=30)
        s = Soak(topo, max(60.0, a.minutes * 60)).run()
    s["transport"] = a.transport
    (workdir / "soak.json").write_text(json.dumps(s, indent=1))
    print(format_summary(s))
    print(f"logs and soak.json in {workdir}")
    return 0 if s["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
