#!/usr/bin/env python3
"""Load tool for bench/server_bench.sh: the target service and the many-peer load client.

    server_load.py serve --listen IP:PORT
    server_load.py load  --mode down|up|cps --sources IP,IP,... --target IP:PORT [--streams K]
    server_load.py prime --sources IP,IP,... --target IP:PORT [--timeout S]

Every peer of the benchmark is a wireguard-go client with its own TUN address in the client
namespace; policy routing sends traffic *from* that address through that peer's tunnel. So a
load client binds each connection to a peer's source address, and one process drives all peers.

serve   the target. Per connection, the first byte selects:
          'D'  it sends zeros until the client closes (download)
          'U'  it reads and counts everything until EOF (upload)
          'P'  it answers 'p' and waits for EOF (connections/s)
        stdin "stats" prints {"up_bytes": total read by 'U' streams, "conns": accepted}.
load    keeps K streams per source running (down/up: one long transfer each; cps: a loop of
        connect + 'P' -> 'p' + close), prints "ready" once every stream is connected, then
        answers stdin "stats" with {"bytes": received (down) or sent (up), "conns": completed
        exchanges (cps), "errors", "first_error"}; stdin "stop" (or EOF) ends it.
prime   one 'P' exchange per source (retried until --timeout): every peer has a session with
        the server before anything is measured. Prints {"ok": n, "failed": [...]}.
Counting at the receiver (down: here; up: the target) keeps socket buffers out of the figures.
"""
import argparse
import asyncio
import json
import os
import socket
import struct
import sys
import threading
import time

CHUNK = 1 << 20
ZEROS = memoryview(bytes(CHUNK))
IP_BIND_ADDRESS_NO_PORT = 24  # linux/in.h: pick the port at connect(), per destination


def hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


# ---- target ----------------------------------------------------------------------------------

STATS = {"up_bytes": 0, "conns": 0}


async def _serve_conn(loop, sock):
    STATS["conns"] += 1
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cmd = await loop.sock_recv(sock, 1)
        if cmd == b"D":
            while True:
                await loop.sock_sendall(sock, ZEROS)
        elif cmd == b"U":
            buf = bytearray(CHUNK)
            while True:
                k = await loop.sock_recv_into(sock, buf)
                if not k:
                    break
                STATS["up_bytes"] += k
        elif cmd == b"P":
            await loop.sock_sendall(sock, b"p")
            while await loop.sock_recv(sock, 4096):
                pass
    except OSError:
        pass
    finally:
        sock.close()


async def _serve(listen):
    loop = asyncio.get_running_loop()
    host, port = hostport(listen)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(4096)
    ls.setblocking(False)

    def stdin_loop():
        for line in sys.stdin:
            if line.strip() == "stats":
                print(json.dumps(STATS), flush=True)

    threading.Thread(target=stdin_loop, daemon=True).start()
    print("ready", flush=True)
    while True:
        c, _ = await loop.sock_accept(ls)
        c.setblocking(False)
        loop.create_task(_serve_conn(loop, c))


# ---- client ----------------------------------------------------------------------------------


def connect_from(src, target, timeout=10.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((src, 0))
        s.settimeout(timeout)
        s.connect(target)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s
    except BaseException:
        s.close()
        raise


def exchange(src, target, timeout=10.0):
    s = connect_from(src, target, timeout)
    try:
        s.sendall(b"P")
        if s.recv(1) != b"p":
            raise ConnectionError("no answer byte")
    finally:
        s.close()


class Load:
    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.bytes = 0
        self.conns = 0
        self.errors = 0
        self.first_error = None
        self.stop = threading.Event()
        self.connected = threading.Semaphore(0)

    def error(self, e):
        with self.lock:
            self.errors += 1
            if self.first_error is None:
                self.first_error = repr(e)

    def bulk(self, src):
        try:
            s = connect_from(src, self.a.target, timeout=30.0)
            s.sendall(self.a.mode[:1].upper().encode())  # 'D' or 'U'
        except OSError as e:
            self.error(e)
            self.connected.release()
            return
        self.connected.release()
        s.settimeout(None)
        # At "stop" the process exits: a reset, so no megabytes of queued upload keep flowing
        # (an orphaned socket still sends its buffer) into the next figure.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        buf = bytearray(CHUNK)
        try:
            while not self.stop.is_set():
                if self.a.mode == "down":
                    k = s.recv_into(buf)
                    if not k:
                        raise ConnectionError("the target closed the download")
                else:
                    k = s.send(ZEROS)
                with self.lock:
                    self.bytes += k
        except OSError as e:
            if not self.stop.is_set():
                self.error(e)
        finally:
            s.close()

    def cps(self, src):
        self.connected.release()
        while not self.stop.is_set():
            try:
                exchange(src, self.a.target)
                with self.lock:
                    self.conns += 1
            except OSError as e:
                self.error(e)
                time.sleep(0.01)

    def run(self):
        fn = self.cps if self.a.mode == "cps" else self.bulk
        threads = [threading.Thread(target=fn, args=(src,), daemon=True)
                   for src in self.a.sources for _ in range(self.a.streams)]
        for t in threads:
            t.start()
        for _ in threads:
            self.connected.acquire()
        print("ready", flush=True)
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "stats":
                with self.lock:
                    print(json.dumps({"bytes": self.bytes, "conns": self.conns,
                                      "errors": self.errors, "first_error": self.first_error,
                                      "t": time.monotonic()}), flush=True)
            elif cmd == "stop":
                break
        self.stop.set()
        os._exit(0)  # blocked sends/receives end with the process


def prime(a):
    failed = []
    deadline = time.monotonic() + a.timeout

    def one(src):
        while True:
            try:
                exchange(src, a.target, timeout=5.0)
                return
            except OSError as e:
                if time.monotonic() > deadline:
                    failed.append(f"{src}: {e!r}")
                    return
                time.sleep(0.2)

    threads = [threading.Thread(target=one, args=(s,)) for s in a.sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"ok": len(a.sources) - len(failed), "failed": failed}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("cmd", choices=["serve", "load", "prime"])
    ap.add_argument("--listen")
    ap.add_argument("--mode", choices=["down", "up", "cps"])
    ap.add_argument("--sources", type=lambda s: [x for x in s.split(",") if x])
    ap.add_argument("--target", type=hostport)
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()
    if a.cmd == "serve":
        asyncio.run(_serve(a.listen))
    elif a.cmd == "prime":
        prime(a)
    else:
        Load(a).run()


if __name__ == "__main__":
    main()
