"""Bulk integrity through the SOCKS client: many streams, each echoing its own slice of one random
pool through the tunnel, every byte compared (the issues' "N streams x M MB both ways,
hash-verified"). A wrong run of bytes is located (a repeat, a skip, another stream's data, or
corruption), and a run that stalls leaves a report of the far end's TCP state and of awgproxy's
lwIP connections. Used by test_client_socks.py and the transport, carrier and fault tests."""
import asyncio
import os
import signal
import time

import clientlab as cl
from clientlab import ECHO_PORT, SOCKS_PORT, T_HTTP, in_netns


def first_difference(got, want):
    n = min(len(got), len(want))
    for i in range(n):
        if got[i] != want[i]:
            return i
    return n if len(got) != len(want) else None


def locate(chunk, pool, expected_pos, nbytes, offsets):
    """Where a wrong run of received bytes came from: elsewhere in this stream (duplicate or
    skip), another stream's data, or nowhere (corruption)."""
    needle = bytes(chunk[:32])
    if len(needle) < 16:
        return "too short to locate"
    pos = bytes(pool).find(needle)
    if pos < 0:
        return "these bytes were never sent by anyone: corrupted"
    return (f"these bytes were sent at pool offset {pos}, {pos - expected_pos:+d} bytes from "
            f"where this stream expected them (negative: a repeat, positive: a skip, unless they "
            f"belong to another stream: its ranges overlap this one)")


async def _integrity_stream(i, nbytes, pool, off, prog, errors, offsets, deadline):
    chunk = 65536
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", SOCKS_PORT, limit=1 << 20)
    except OSError as e:
        errors.append(f"stream {i}: cannot reach the SOCKS port: {e}")
        return
    try:
        writer.write(b"\x05\x01\x00")
        await writer.drain()
        m = await reader.readexactly(2)
        writer.write(cl.socks5_request_bytes(T_HTTP, ECHO_PORT))
        await writer.drain()
        h = await reader.readexactly(4)
        if m != b"\x05\x00" or h[1] != 0:
            errors.append(f"stream {i}: SOCKS reply {m.hex()} {h.hex()}")
            return
        await reader.readexactly({1: 4, 4: 16}.get(h[3], 0) + 2)
        expected = pool[off:off + nbytes]

        async def send():
            sent = 0
            while sent < nbytes:
                n = min(chunk, nbytes - sent)
                writer.write(expected[sent:sent + n])
                await writer.drain()
                sent += n
                prog[i][0] = sent
            writer.write_eof()

        async def recv():
            got = 0
            while got < nbytes:
                d = await reader.read(min(1 << 20, nbytes - got))
                if not d:
                    errors.append(f"stream {i}: EOF after {got} of {nbytes} bytes")
                    return
                want = expected[got:got + len(d)]
                if d != want:
                    k = first_difference(d, want)
                    errors.append(f"stream {i}: data differs at byte {got + k}: got "
                                  f"{d[k:k + 8].hex()} want {bytes(want[k:k + 8]).hex()}; "
                                  f"{locate(d[k:], pool, off + got + k, nbytes, offsets)}")
                    return
                got += len(d)
                prog[i][1] = got
            try:
                tail = await asyncio.wait_for(reader.read(1), 30)
            except asyncio.TimeoutError:
                tail = None
            if tail != b"":
                errors.append(f"stream {i}: all {nbytes} bytes echoed but then "
                              f"{'no EOF within 30 s (half-close not relayed?)' if tail is None else f'extra bytes {tail!r}'}")
                return
            prog[i][2] = True

        await asyncio.gather(send(), recv())
    except (OSError, asyncio.IncompleteReadError) as e:
        errors.append(f"stream {i}: {e!r} (sent {prog[i][0]}, received {prog[i][1]})")
    finally:
        writer.close()


def stall_report(topo):
    """What the kernels at the far end think of the echo connections still open (window, RTO,
    backoff, unacknowledged bytes) when a run stalls: it tells a zero window waiting on a probe
    from retransmissions being lost."""
    out = []
    for name in ("t", "s"):
        ns = getattr(topo, name, None)
        if ns is None:
            continue
        r = ns.run(["ss", "-tinoe", "state", "established", f"( sport = :{ECHO_PORT} or "
                    f"dport = :{ECHO_PORT} )"], check=False)
        lines = r.stdout.splitlines()
        out.append(f"--- ss in {name} ({max(0, len(lines) - 1) // 2} connections) ---")
        out.extend(lines[:41])
    # awgproxy logs its lwIP connections (windows, queues, timers, buffered bytes) on SIGUSR1.
    for name in ("proxy", "server"):
        p = getattr(topo, name, None)
        if p is None or not hasattr(p, "proc") or getattr(p, "kind", "") != "awgproxy" or \
                not p.alive():
            continue
        before = len(p.log().splitlines())
        p.proc.send_signal(signal.SIGUSR1)
        time.sleep(1)
        dump = [ln for ln in p.log().splitlines()[before:] if "component=tcp" in ln]
        out.append(f"--- lwIP connections in {name} ---")
        out.extend(dump[-40:])
    return "\n".join(out)


def run_integrity(topo, streams, nbytes, timeout, stall_limit=60):
    """Gives up early when no byte moved in any stream for stall_limit seconds."""
    pool = memoryview(os.urandom(nbytes + 64 * 1024 * 1024 // 2))
    span = len(pool) - nbytes
    offsets = {i: (i * 1_000_003 + 4099 * i * i) % span for i in range(streams)}
    prog = [[0, 0, False] for _ in range(streams)]
    errors = []
    samples = []

    async def main():
        t0 = time.monotonic()

        async def monitor():
            while True:
                await asyncio.sleep(5)
                samples.append((round(time.monotonic() - t0), sum(p[0] for p in prog) >> 20,
                                sum(p[1] for p in prog) >> 20))

        mon = asyncio.create_task(monitor())
        tasks = [asyncio.create_task(_integrity_stream(i, nbytes, pool, offsets[i], prog, errors,
                                                       offsets, t0 + timeout))
                 for i in range(streams)]
        pending, last, last_change = set(tasks), None, t0
        while pending:
            _, pending = await asyncio.wait(pending, timeout=2)
            now, moved = time.monotonic(), sum(p[0] + p[1] for p in prog)
            if moved != last:
                last, last_change = moved, now
            if now - t0 >= timeout or now - last_change >= stall_limit:
                break
        if pending:
            topo.stall_report = stall_report(topo)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        mon.cancel()
        return time.monotonic() - t0, len(pending)

    with in_netns(topo.c):
        elapsed, stalled = asyncio.run(main())
    if stalled or errors:
        # Printed (pytest shows a failed test's output in full) rather than left to the callers'
        # assertion messages, which pytest shortens: the stall report tells a stall's cause.
        unfinished = [(i, p[0], p[1]) for i, p in enumerate(prog) if not p[2]]
        print(f"run_integrity: {stalled} streams still running after {elapsed:.0f} s, "
              f"{len(errors)} failed: {errors[:5]}\nunfinished (stream, sent, received): "
              f"{unfinished[:20]}\nprogress (s, MB sent, MB echoed): {samples}\n"
              f"{getattr(topo, 'stall_report', '')}\n{topo.logs() if hasattr(topo, 'logs') else ''}")
    return elapsed, stalled, prog, errors, samples
