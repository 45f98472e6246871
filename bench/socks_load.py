#!/usr/bin/env python3
"""Load tool for bench/socks_bench.sh: the target service and the measuring client, one file.

    socks_load.py serve --listen IP:PORT [--listen IP:PORT ...]
    socks_load.py down  --target IP:PORT [--proxy IP:PORT] --bytes N
    socks_load.py up    --target IP:PORT [--proxy IP:PORT] --bytes N
    socks_load.py cps   --target IP:PORT [--proxy IP:PORT] --seconds S --concurrency K [--procs P]
    socks_load.py idle  --target IP:PORT [--proxy IP:PORT] --count N

Without --proxy the client connects to the target directly; with it, it speaks SOCKS5 (no auth,
CONNECT to an IPv4 literal) to the proxy first. Every client mode prints one JSON line.

The target's protocol (first byte the client sends after the connection is up):
    'D' + 8-byte big-endian N   the target sends N zero bytes as fast as it can, then closes
    'U' + 8-byte big-endian N   the target reads N bytes, then answers one byte 'K'
    'P'                         the target answers one byte 'p', then waits for EOF
    'I'                         nothing: the connection stays open until the client closes it
The target is asyncio (one thread, no per-connection threads), so thousands of idle connections
cost it little; bulk sends go out in 1 MiB slices straight from one shared zero buffer.
"""
import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import struct
import sys
import threading
import time

CHUNK = 1 << 20
ZEROS = memoryview(bytes(CHUNK))


def hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


# ---- target ----------------------------------------------------------------------------------


async def _recv_exact(loop, sock, n):
    buf = bytearray()
    while len(buf) < n:
        d = await loop.sock_recv(sock, n - len(buf))
        if not d:
            return bytes(buf)
        buf += d
    return bytes(buf)


async def _serve_conn(loop, sock):
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cmd = await loop.sock_recv(sock, 1)
        if cmd in (b"D", b"U"):
            hdr = await _recv_exact(loop, sock, 8)
            if len(hdr) < 8:
                return
            n = struct.unpack("!Q", hdr)[0]
            if cmd == b"D":
                left = n
                while left:
                    k = min(left, CHUNK)
                    await loop.sock_sendall(sock, ZEROS[:k])
                    left -= k
                sock.shutdown(socket.SHUT_WR)
                # Drain until the client closes, so the close is the client's (no RST races).
                while await loop.sock_recv(sock, 65536):
                    pass
            else:
                buf = bytearray(CHUNK)
                got = 0
                while got < n:
                    k = await loop.sock_recv_into(sock, buf)
                    if not k:
                        return
                    got += k
                await loop.sock_sendall(sock, b"K")
                while await loop.sock_recv(sock, 65536):
                    pass
        elif cmd == b"P":
            await loop.sock_sendall(sock, b"p")
            while await loop.sock_recv(sock, 65536):
                pass
        elif cmd == b"I":
            while await loop.sock_recv(sock, 65536):
                pass
    except OSError:
        pass
    finally:
        sock.close()


async def _serve(listens):
    loop = asyncio.get_running_loop()
    servers = []
    for hp in listens:
        host, port = hostport(hp)
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(4096)
        s.setblocking(False)
        servers.append(s)

    async def accept_loop(ls):
        while True:
            c, _ = await loop.sock_accept(ls)
            c.setblocking(False)
            loop.create_task(_serve_conn(loop, c))

    tasks = [loop.create_task(accept_loop(s)) for s in servers]
    print("ready", flush=True)
    await asyncio.gather(*tasks)


# ---- client ----------------------------------------------------------------------------------


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        d = sock.recv(n - len(buf))
        if not d:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += d
    return buf


def open_stream(target, proxy, timeout=30.0):
    """A connected socket to target, through the SOCKS5 proxy if one is given."""
    if proxy is None:
        s = socket.create_connection(target, timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s
    s = socket.create_connection(proxy, timeout=timeout)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"\x05\x01\x00")
        m = recv_exact(s, 2)
        if m != b"\x05\x00":
            raise ConnectionError(f"SOCKS5 method reply {m.hex()}")
        s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(target[0]) + struct.pack("!H", target[1]))
        h = recv_exact(s, 4)
        if h[1] != 0:
            raise ConnectionError(f"SOCKS5 reply 0x{h[1]:02x}")
        alen = {1: 4, 4: 16}.get(h[3])
        if alen is None:
            alen = recv_exact(s, 1)[0]
        recv_exact(s, alen + 2)
        return s
    except BaseException:
        s.close()
        raise


def cpu_of(pid):
    """utime + stime of pid in seconds (None when pid is 0 or gone)."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


def mode_down(a):
    try:
        s = open_stream(a.target, a.proxy)
    except OSError as e:
        return {"bytes": 0, "seconds": 0, "MBps": 0, "complete": False,
                "error": "connect: " + repr(e), "proxy_cpu_s": None}
    buf = bytearray(4 << 20)
    mv = memoryview(buf)
    c0 = cpu_of(a.watch_pid)
    t0 = time.perf_counter()
    s.sendall(b"D" + struct.pack("!Q", a.bytes))
    got = 0
    error = None
    try:
        while got < a.bytes:
            k = s.recv_into(mv)
            if not k:
                break
            got += k
    except OSError as e:
        error = repr(e)
    dt = time.perf_counter() - t0
    c1 = cpu_of(a.watch_pid)
    s.close()
    return {"bytes": got, "seconds": dt, "MBps": got / dt / 1e6, "complete": got == a.bytes,
            "error": error,
            "proxy_cpu_s": None if c0 is None or c1 is None else c1 - c0}


def mode_up(a):
    try:
        s = open_stream(a.target, a.proxy)
    except OSError as e:
        return {"bytes": 0, "seconds": 0, "MBps": 0, "complete": False,
                "error": "connect: " + repr(e), "proxy_cpu_s": None}
    c0 = cpu_of(a.watch_pid)
    t0 = time.perf_counter()
    left = a.bytes
    error = None
    try:
        s.sendall(b"U" + struct.pack("!Q", a.bytes))
        while left:
            k = min(left, CHUNK)
            s.sendall(ZEROS[:k])
            left -= k
        ok = s.recv(1) == b"K"
    except OSError as e:
        ok, error = False, repr(e)
    dt = time.perf_counter() - t0
    c1 = cpu_of(a.watch_pid)
    s.close()
    return {"bytes": a.bytes - left, "seconds": dt, "MBps": (a.bytes - left) / dt / 1e6,
            "complete": ok, "error": error,
            "proxy_cpu_s": None if c0 is None or c1 is None else c1 - c0}


def one_exchange(target, proxy):
    s = open_stream(target, proxy, timeout=10.0)
    try:
        s.sendall(b"P")
        if s.recv(1) != b"p":
            raise ConnectionError("no answer byte")
    finally:
        s.close()


def _cps_threads(target, proxy, stop_at, concurrency):
    """Exchanges on `concurrency` threads until stop_at: (connections, errors, latencies,
    first error or None)."""
    counts = [0] * concurrency
    errors = [0] * concurrency
    first_error = []
    lat = [[] for _ in range(concurrency)]

    def worker(i):
        while True:
            t = time.perf_counter()
            if t >= stop_at:
                return
            try:
                one_exchange(target, proxy)
                counts[i] += 1
                lat[i].append(time.perf_counter() - t)
            except OSError as e:
                errors[i] += 1
                if not first_error:
                    first_error.append(repr(e))
                time.sleep(0.01)

    if concurrency == 1:
        worker(0)
    else:
        th = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
        for t in th:
            t.start()
        for t in th:
            t.join()
    return (sum(counts), sum(errors), [x for l in lat for x in l],
            first_error[0] if first_error else None)


def _cps_child(args):
    return _cps_threads(*args)


def mode_cps(a):
    """--procs P > 1 spreads the threads over P processes: one Python process runs its threads
    one at a time (the GIL), and 20 threads in one process measured the load client, not the
    proxies, once the proxies needed less than the rest of the machine."""
    t0 = time.perf_counter()
    stop_at = t0 + a.seconds  # perf_counter is CLOCK_MONOTONIC: the same in forked children
    procs = max(1, min(a.procs, a.concurrency))
    if procs == 1:
        parts = [_cps_threads(a.target, a.proxy, stop_at, a.concurrency)]
    else:
        shares = [a.concurrency // procs + (i < a.concurrency % procs) for i in range(procs)]
        with multiprocessing.get_context("fork").Pool(procs) as pool:
            parts = pool.map(_cps_child, [(a.target, a.proxy, stop_at, n) for n in shares])
    dt = time.perf_counter() - t0
    done = sum(p[0] for p in parts)
    all_lat = sorted(x for p in parts for x in p[2])
    p50 = all_lat[len(all_lat) // 2] * 1e3 if all_lat else None
    p99 = all_lat[int(len(all_lat) * 0.99)] * 1e3 if all_lat else None
    first_error = next((p[3] for p in parts if p[3]), None)
    return {"connections": done, "errors": sum(p[1] for p in parts), "seconds": dt,
            "per_s": done / dt, "p50_ms": p50, "p99_ms": p99, "procs": procs,
            "first_error": first_error}


def mode_idle(a):
    """Opens --count streams in two halves. After each half it prints a line and waits for one on
    stdin (the orchestrator reads the proxy's RSS meanwhile); the second line closes them all.
    The growth from the first half to the second is what a stream costs by itself: costs paid
    once per process or per peer (the tunnel's repair ring, pools, the allocator's arenas) are
    paid while the first half opens."""
    socks = []
    t0 = time.perf_counter()
    for half in (a.count // 2, a.count - a.count // 2):
        for _ in range(half):
            s = open_stream(a.target, a.proxy)
            s.sendall(b"P")  # proves the stream reaches the target end to end
            if s.recv(1) != b"p":
                raise ConnectionError("no answer byte")
            socks.append(s)
        print(json.dumps({"open": len(socks), "setup_seconds": time.perf_counter() - t0}),
              flush=True)
        sys.stdin.readline()
    for s in socks:
        s.close()
    return {"closed": len(socks)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("mode", choices=["serve", "down", "up", "cps", "idle"])
    ap.add_argument("--listen", action="append", default=[])
    ap.add_argument("--target", type=hostport)
    ap.add_argument("--proxy", type=hostport, default=None)
    ap.add_argument("--bytes", type=int, default=1 << 30)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--procs", type=int, default=1, help="cps: load processes sharing the threads")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--watch-pid", type=int, default=0, help="report this process's CPU time")
    a = ap.parse_args()
    if a.mode == "serve":
        asyncio.run(_serve(a.listen))
        return
    fn = {"down": mode_down, "up": mode_up, "cps": mode_cps, "idle": mode_idle}[a.mode]
    print(json.dumps(fn(a)), flush=True)


if __name__ == "__main__":
    main()
