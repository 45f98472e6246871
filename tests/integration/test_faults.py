"""Faults on the path between our client and our server (issue 10 item 3), through the userspace
impairment relay in C (tests/impair): every byte is checked, and recovery is timed.

- a 30 s blackhole in the middle of a transfer: the streams that were open resume and complete
  with every byte intact; a connection asked for during the blackhole fails with 0x01 (general
  failure) after TunnelWait; once the path is back a new connection works within 5 s;
- NAT rebinding in the middle of a transfer (the relay's source port towards the server
  changes): the transfer goes on and the server follows the peer to the new port without a new
  handshake;
- 2 % loss, 5 % reordering and 1 % duplication each way under 50 streams x 10 MB both ways, also
  through Debian's wireguard-go;
- throttled UDP (one way, and both ways at once), and 10,000 SOCKS connections at once; the
  MTU black hole.

Over both transports (ip: lwIP TCP in the tunnel; quic)."""
import hashlib
import os
import random
import re
import struct
import threading
import time

import pytest

import clientlab as cl
import netns
from clientlab import ECHO_PORT, HTTP_BODY, T_HTTP, in_netns, socks5
from integrity import run_integrity
from test_tunnel_repair import repair_metrics
from test_quic_transport import PROXY, build, lab  # noqa: F401  (the fixture)

PATH = {"both.delay_ms": 2}
BLACKHOLE_S = 30
TUNNEL_WAIT = 5  # build()'s [Socks] TunnelWait


def start_transfer(topo, streams, nbytes):
    """run_integrity in a thread; returns (thread, result dict)."""
    out = {}

    def run():
        out["r"] = run_integrity(topo, streams, nbytes, 300, stall_limit=BLACKHOLE_S + 30)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def check_transfer(topo, t, out, timeout):
    t.join(timeout)
    assert not t.is_alive(), f"the transfer did not end within {timeout} s\n{topo.logs()}"
    elapsed, stalled, prog, errors, samples = out["r"]
    # run_integrity printed the stall report and the logs if it came to this.
    assert not errors and not stalled and all(p[2] for p in prog), (errors[:5], stalled)
    return elapsed


def fetch_works(topo):
    r = topo.curl(f"http://{T_HTTP}/", "--socks5", PROXY, max_time=5)
    return r.returncode == 0 and r.stdout.encode() == HTTP_BODY


LOSS_REORDER_DUP = {"both.loss": 0.02, "both.reorder": 0.05, "both.reorder_ms": 10,
                    "both.dup": 0.01}


@pytest.mark.parametrize("server,transport", [("awgproxy", "ip"), ("awgproxy", "quic"),
                                              ("wireguard-go", "ip")])
def test_loss_reorder_duplication(lab, server, transport):
    """2 % loss, 5 % reordering (held 10 ms) and 1 % duplication each way, under 50 streams x 10
    MB both ways at once, every byte checked: through our server over both transports, and
    through Debian's wireguard-go (stock WireGuard: the ip path, with no tunnel repair below it,
    so lwIP's SACK recovery does it all). A duplicate must never reach an application twice: the
    tunnel's replay window drops it, and a copy that got through would show as a wrong byte."""
    streams = int(os.environ.get("AWG_FAULT_STREAMS", "50"))
    mb = float(os.environ.get("AWG_INTEGRITY_MB", "10"))
    topo = build(lab, server=server, transport=transport, log_level="info",
                 impair=LOSS_REORDER_DUP)
    if transport == "quic":
        topo.wait_quic(timeout=30)
    elapsed, stalled, prog, errors, samples = run_integrity(topo, streams, int(mb * (1 << 20)), 600)
    done = sum(1 for p in prog if p[2])
    st = topo.relay.stats()
    print(f"{server}/{transport}: {streams} streams x {mb} MB each way, {done} verified in "
          f"{elapsed:.1f} s ({streams * mb / elapsed:.1f} MB/s each way); relay: {st}")
    assert not errors and not stalled and done == streams, (errors[:5], stalled, samples,
                                                            topo.logs())
    for d in ("up", "down"):
        assert st[d]["dropped_loss"] > 0 and st[d]["reordered"] > 0 and st[d]["duplicated"] > 0, st
    assert topo.transport_now() == transport, topo.status()


@pytest.mark.parametrize("transport", ["ip", "quic"])
def test_blackhole_30s(lab, transport):
    # ConnectTimeout above TunnelWait: the reply must come from the tunnel being found down, not
    # from whichever of two equal timers fires first (a slow machine let ConnectTimeout win).
    topo = build(lab, transport=transport, log_level="info", impair=PATH, connect_timeout=10)
    if transport == "quic":
        topo.wait_quic(timeout=30)
    assert fetch_works(topo), topo.logs()
    t, out = start_transfer(topo, 4, 6 << 20)
    time.sleep(1.5)  # the streams are open and moving
    topo.relay.blackhole(True)
    t_hole = time.monotonic()
    # A new connection while the path is dead: general failure (0x01) after TunnelWait, on both
    # transports, not a hang, not a timeout reply as if the destination had not answered.
    r = socks5(topo.c, T_HTTP, ECHO_PORT, timeout=40)
    waited = time.monotonic() - t_hole
    assert r.rep == 1 and TUNNEL_WAIT - 0.5 <= waited <= TUNNEL_WAIT + 3, (
        r.__dict__, waited, topo.logs())
    print(f"new connection during the blackhole: reply 0x{r.rep:02x} after {waited:.1f} s")
    time.sleep(max(0.0, BLACKHOLE_S - (time.monotonic() - t_hole)))
    topo.relay.blackhole(False)
    t_back = time.monotonic()
    # The path is back: a new connection works within 5 s.
    ok = False
    while not ok and time.monotonic() - t_back < 5:
        ok = fetch_works(topo)
    assert ok, f"no working connection within 5 s of the path's return\n{topo.logs()}"
    print(f"new connection works {time.monotonic() - t_back:.1f} s after the path returned")
    # The streams that were open resume and complete, every byte intact.
    check_transfer(topo, t, out, 120)
    assert topo.relay.stats()["up"]["dropped_blackhole"] > 0
    assert topo.proxy.alive() and topo.server.alive(), topo.logs()


@pytest.mark.parametrize("transport", ["ip", "quic"])
def test_nat_rebinding_mid_transfer(lab, transport):
    topo = build(lab, transport=transport, log_level="info", impair=PATH)
    if transport == "quic":
        topo.wait_quic(timeout=30)
    t, out = start_transfer(topo, 4, 32 << 20)
    time.sleep(0.5)
    handshakes = topo.server.log().count("component=handshake event=completed")
    port = topo.relay.rebind()
    # Mid-transfer indeed: the rebinding must not come after the last byte.
    assert t.is_alive(), "the transfer ended before the rebinding: make it longer"
    check_transfer(topo, t, out, 120)
    freed = [ln for ln in (topo.proxy.log() + topo.server.log()).splitlines()
             if "event=acked_segment_freed" in ln]
    print(f"acked segments lwIP left at a queue's head, freed by our glue: {len(freed)}",
          *freed, sep="\n")
    # The server answers the peer at its new place, in the same session.
    assert re.search(rf"event=endpoint_changed .*:{port}\b", topo.server.log()), topo.logs()
    assert topo.server.log().count("component=handshake event=completed") == handshakes, (
        "the rebinding took a new handshake", topo.logs())
    assert fetch_works(topo), topo.logs()


THROTTLE_RATE = 2_000_000  # bytes/s each way ("2M" to the relay)
THROTTLE_QUEUE = 100_000   # bytes: 50 ms at that rate
THROTTLE = {"both.delay_ms": 5, "both.rate": THROTTLE_RATE, "both.queue": THROTTLE_QUEUE}
# What each transport must keep of the limit in payload (goodput) whatever the machine's load
# (the ASan build too): no stall. Measured on this machine: 81-90 % (ip) and 82-84 % (quic; 75-82
# % while the server's QUIC packets were sized for IPv6 headers on an IPv4 path, which split each
# full packet it relayed in two); before the ip path's senders answered the standing queue
# (src/device/tcp_bw_floor.h), 44-63 %.
THROTTLE_GOODPUT_FLOOR = {"ip": 0.60, "quic": 0.60}
SERVER_METRICS_PORT = 9101


def sample_forwarded(relay, transfer, every=0.2):
    """(time, up bytes forwarded, down bytes forwarded) every `every` s while `transfer` runs."""
    samples = []
    while transfer.is_alive():
        st = relay.stats()
        samples.append((time.monotonic(), st["up"]["bytes_forwarded"],
                        st["down"]["bytes_forwarded"]))
        transfer.join(every)
    st = relay.stats()  # the transfer's last bytes
    samples.append((time.monotonic(), st["up"]["bytes_forwarded"], st["down"]["bytes_forwarded"]))
    return samples


def steady_rate(samples, direction):
    """The relay's forwarding rate in one direction while the transfer was under way: from the
    sample where a tenth of the bytes had passed to the one where nine tenths had. The first
    tenth holds the SOCKS connects and the senders' slow start, the last the streams that finish
    one by one; both belong to any transfer, not to how well the link is used, and on a loaded
    machine they alone moved the whole-transfer figure by several points (CI: 90 % against 93-98
    %). The whole-transfer figure is printed too, and the payload floor bounds it."""
    col = 1 if direction == "up" else 2
    total = samples[-1][col]
    first = next(s for s in samples if s[col] >= total * 0.1)
    last = next(s for s in samples if s[col] >= total * 0.9)
    assert last[0] - first[0] >= 2, ("too few samples while the transfer ran", samples)
    return (last[col] - first[col]) / (last[0] - first[0])


@pytest.mark.parametrize("transport", ["ip", "quic"])
def test_throttled_udp(lab, transport):
    """A throttling ISP: the relay passes 2 MB/s each way through a 50 ms queue and drops what
    overflows it. Both transports adapt: no stall, every byte intact, the tunnel keeps the
    queue from overflowing (its loss repair must not resend congestion losses), and the streams
    move at least their floor of the limit in payload. On the wire: at least 90 % of the limit
    over the ip path, 80 % over QUIC both ways at once (see the end; one way, both transports
    must reach 90 %: test_throttled_udp_one_way). Payload is less by the tunnel's and the inner
    transport's headers (7-9 %)."""
    topo = build(lab, transport=transport, log_level="info", impair=THROTTLE,
                 server_extra=f"\n[Metrics]\nListen = 127.0.0.1:{SERVER_METRICS_PORT}\n")
    if transport == "quic":
        topo.wait_quic(timeout=30)
    streams, nbytes = 4, 6 << 20  # 24 MiB each way: ~13 s at the limit
    t0 = time.monotonic()
    t, out = start_transfer(topo, streams, nbytes)
    samples = sample_forwarded(topo.relay, t)
    elapsed = check_transfer(topo, t, out, 180)
    rate = streams * nbytes / elapsed
    st = topo.relay.stats()
    wire = min(st["up"]["bytes_forwarded"], st["down"]["bytes_forwarded"]) / elapsed
    steady = min(steady_rate(samples, d) for d in ("up", "down"))
    overflow = max(st[d]["dropped_queue"] / max(st[d]["received"], 1) for d in ("up", "down"))
    print(f"{transport}: {rate / 1e6:.2f} MB/s each way in {elapsed:.1f} s "
          f"({rate / THROTTLE_RATE:.0%} of the limit in payload, {wire / THROTTLE_RATE:.0%} on "
          f"the wire from first to last byte, {steady / THROTTLE_RATE:.0%} while under way, "
          f"{overflow:.1%} overflowed the queue); relay: {st}")
    assert time.monotonic() - t0 < 180
    # The client's uploads overflowed the queue, the server NACKed them, and the client saw from
    # the NACKs' delay that a queue stood there: it answered GIVEUP instead of resending.
    m = repair_metrics(topo)
    ms = repair_metrics(topo, topo.s, SERVER_METRICS_PORT)
    print(f"repair, client: {m}\nrepair, server: {ms}")
    assert m.get("congestion", 0) > 0, m
    # The ends do not resend congestion losses: what a queue dropped, a resend only adds to it.
    # Resends of both ends together: 0 in every run here, normal and sanitizer build, loaded or
    # not; 474 of 48,899 datagrams kept (1 %) once, when a sanitizer-build server starved by two
    # test suites at once judged none of the NACKs it got a queue's. Blind repair resent every
    # datagram the queue dropped, and the queue then dropped 15-22 % of them.
    resent = m.get("resent", 0) + ms.get("resent", 0)
    kept = m.get("kept", 0) + ms.get("kept", 0)
    assert resent <= 0.02 * kept, (f"the ends resent {resent:.0f} of {kept:.0f} datagrams through "
                                   "a queue", m, ms, topo.logs())
    assert rate >= THROTTLE_GOODPUT_FLOOR[transport] * THROTTLE_RATE, (
        f"{transport}: {rate / THROTTLE_RATE:.0%} of the limit in payload, under the floor of "
        f"{THROTTLE_GOODPUT_FLOOR[transport]:.0%}", topo.logs())
    # Both pace their way into the queue once they have seen it (QUIC: BBR; the ip path: lwIP's
    # windows shrink while the queue stands): it overflows rarely (0.1-0.7 % here, loaded or
    # not; 3-8 % on the ip path before). One CI run read 4.7 %: the relay is a process too, and
    # one that a loaded machine holds back may find a burst waiting when it runs again. Resending
    # congestion losses is asserted above; this bound catches a sender that no longer paces.
    assert overflow < 0.08, (f"{overflow:.1%} of the datagrams overflowed the queue",
                             topo.logs())
    # The same payload went each way, so about as many datagrams did: 1.09-1.13 times as many
    # down as up over QUIC here, 1.00-1.02 on the ip path; 1.32-1.45 while the server sized its
    # QUIC packets for IPv6 headers on this IPv4 path and relayed each full packet in two.
    fewer, more = sorted(st[d]["forwarded"] for d in ("up", "down"))
    assert more <= 1.25 * fewer, (f"{transport}: {more} datagrams one way, {fewer} the other, "
                                  "for the same payload", topo.logs())
    # While under way, here: ip 92-100 % (55-72 % over the whole transfer before the window
    # answered the queue); quic 86-96 % with BBR, the default, on an idle machine and 87-96 % with
    # both cores busy beside it, 84 % and 88 % in CI runs (89-93 % while the server split every
    # relayed full packet in two, which the datagram count above catches). Under load the dips
    # are one direction's sender held back for a few hundred ms, not the link left idle by the
    # transport, so QUIC's floor is 80 %.
    # Issue 10's 90 % is asserted for both transports by test_throttled_udp_one_way (98-100 %).
    # Both ways at once, QUIC's one connection reads less than the ip path's four TCP
    # connections, whose windows' sawtooths average out: each end's ACKs wait behind its own data
    # in the other direction's queue, and every 5-7 s both directions fall to ~45 % for 200-300
    # ms together (BBR's ProbeRTT: no RTT sample reaches the minimum while both queues stand).
    # CUBIC reads 95 % here, Reno 85 %; ngtcp2 1.11 exposes none of BBR's parameters.
    floor = 0.9 if transport == "ip" else 0.80
    assert steady >= floor * THROTTLE_RATE, (
        f"{transport}: {steady / THROTTLE_RATE:.0%} of the limit on the wire, under "
        f"{floor:.0%}", topo.logs())


# On T: "D" + size (8 bytes) sends that many bytes; "U" + size reads them and answers their hash.
ONE_WAY_PORT = 9098
ONE_WAY_SCRIPT = r"""
import hashlib, random, socket, struct, threading
BLOCK = memoryview(random.Random(7).randbytes(1 << 20))
def serve(c):
    with c:
        head = b""
        while len(head) < 9:
            b = c.recv(9 - len(head))
            if not b:
                return
            head += b
        n = struct.unpack("!Q", head[1:])[0]
        if head[:1] == b"D":
            sent = 0
            while sent < n:  # the block repeats; a short send goes on where it stopped
                off = sent %% len(BLOCK)
                sent += c.send(BLOCK[off:off + min(n - sent, len(BLOCK) - off)])
            return
        h = hashlib.sha256()
        while n:
            b = c.recv(min(n, 1 << 20))
            if not b:
                return
            h.update(b)
            n -= len(b)
        c.sendall(h.digest())
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", %d))
s.listen(64)
print("ready", flush=True)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
""" % ONE_WAY_PORT


def one_way_stream(topo, direction, nbytes, errors):
    """One SOCKS stream moving nbytes of ONE_WAY_SCRIPT's data in one direction ("down": T sends;
    "up": T hashes what it read); appends what went wrong to errors."""
    block = memoryview(random.Random(7).randbytes(1 << 20))
    r = socks5(topo.c, T_HTTP, ONE_WAY_PORT, keep=True)
    if not r.sock:
        errors.append(f"SOCKS connect failed: {r.__dict__}")
        return
    s = r.sock
    s.settimeout(60)
    try:
        s.sendall((b"D" if direction == "down" else b"U") + struct.pack("!Q", nbytes))
        if direction == "down":
            got = 0
            while got < nbytes:
                b = s.recv(1 << 20)
                if not b:
                    break
                pos = 0
                while pos < len(b):  # compared in place: the block repeats
                    off = (got + pos) % len(block)
                    n = min(len(b) - pos, len(block) - off)
                    if b[pos:pos + n] != block[off:off + n]:
                        errors.append(f"wrong bytes at offset {got + pos}")
                        return
                    pos += n
                got += len(b)
            if got != nbytes:
                errors.append(f"{got} of {nbytes} bytes came")
        else:
            h, left = hashlib.sha256(), nbytes
            while left:
                chunk = block[:min(left, len(block))]
                s.sendall(chunk)
                h.update(chunk)
                left -= len(chunk)
            digest = cl.recv_exact(s, 32, time.monotonic() + 60)
            if digest != h.digest():
                errors.append(f"the target's hash of the upload differs ({len(digest)} bytes)")
    except OSError as e:
        errors.append(f"{direction}: {e}")
    finally:
        s.close()


@pytest.mark.parametrize("direction", ["down", "up"])
@pytest.mark.parametrize("transport", ["ip", "quic"])
def test_throttled_udp_one_way(lab, transport, direction):
    """Issue 10's throttled UDP as a user meets it: a download (or an upload) through a relay that
    passes 2 MB/s each way through a 50 ms queue. Every byte is checked, and the transfer must use
    at least 90 % of the limit on the wire while under way. (test_throttled_udp sends both ways at
    once, where QUIC's single connection reads less: see there.)"""
    topo = build(lab, transport=transport, log_level="info",
                 impair=THROTTLE)
    if transport == "quic":
        topo.wait_quic(timeout=30)
    topo.t.popen(["python3", "-c", ONE_WAY_SCRIPT])
    netns.wait_until(lambda: topo.t.run(["ss", "-ltn", f"sport = :{ONE_WAY_PORT}"],
                                        check=False).stdout.count("LISTEN") > 0, 10)
    streams, nbytes, errors = 4, 6 << 20, []  # 24 MiB: ~13 s at the limit
    threads = [threading.Thread(target=one_way_stream, args=(topo, direction, nbytes, errors),
                                daemon=True) for _ in range(streams)]

    def transfer():  # one thread for sample_forwarded to watch
        for w in threads:
            w.start()
        for w in threads:
            w.join()

    t0 = time.monotonic()
    t = threading.Thread(target=transfer, daemon=True)
    t.start()
    samples = sample_forwarded(topo.relay, t)
    elapsed = time.monotonic() - t0
    assert not errors, (errors, topo.logs())
    rate = streams * nbytes / elapsed
    steady = steady_rate(samples, direction)
    st = topo.relay.stats()[direction]
    print(f"{transport} {direction}: {rate / 1e6:.2f} MB/s in {elapsed:.1f} s "
          f"({rate / THROTTLE_RATE:.0%} of the limit in payload, {steady / THROTTLE_RATE:.0%} on "
          f"the wire while under way); relay {direction}: {st}")
    assert rate >= THROTTLE_GOODPUT_FLOOR[transport] * THROTTLE_RATE, (
        f"{transport}: {rate / THROTTLE_RATE:.0%} of the limit in payload", topo.logs())
    assert st["dropped_queue"] < 0.03 * st["received"], (st, topo.logs())
    # Here: ip 100 %, quic 98 % down (payload 89-91 % and 88-89 %: the headers of the tunnel
    # and of the inner transport).
    assert steady >= 0.9 * THROTTLE_RATE, (
        f"{transport} {direction}: {steady / THROTTLE_RATE:.0%} of the limit on the wire, under "
        "90 %", topo.logs())


HOLD_PORT = 9099  # on T: accepts and holds connections, one asyncio task each
HOLD_SCRIPT = r'''
import asyncio
async def hold(r, w):
    await r.read()  # until the peer closes
    w.close()
async def main():
    srv = await asyncio.start_server(hold, "0.0.0.0", %d, backlog=4096)
    print("ready", flush=True)
    await srv.serve_forever()
asyncio.run(main())
''' % HOLD_PORT
FLOOD_CONNS, SOCKS_CAP = 10_000, 400


def socks_flood(ns, n, port):
    """n SOCKS5 CONNECTs to T:HOLD_PORT opened at once, held until every one has its reply; the
    replies' REP bytes (None: no reply, the connection closed or stalled)."""
    import asyncio
    import resource
    import struct
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1024), hard))
    req = b"\x05\x01\x00\x01" + bytes(map(int, T_HTTP.split("."))) + struct.pack("!H", HOLD_PORT)

    async def one(writers):
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 60)
        except (OSError, asyncio.TimeoutError):
            return None
        writers.append(w)
        try:
            w.write(b"\x05\x01\x00" + req)
            m = await asyncio.wait_for(r.readexactly(2), 60)
            rep = await asyncio.wait_for(r.readexactly(10), 60)
            return rep[1] if m == b"\x05\x00" else None
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            return None

    async def main():
        writers = []
        reps = await asyncio.gather(*(one(writers) for _ in range(n)))
        for w in writers:
            w.close()
        return reps

    with in_netns(ns):
        return asyncio.run(main())


def test_ten_thousand_socks_connections_at_once(lab):
    """10,000 SOCKS connections opened at once on the client, whose [Socks] MaxConnections is 400:
    every one gets a reply (success within the cap, general failure past it, never a bare close
    or a hang), memory stays bounded and comes back once they close, and the client keeps
    serving."""
    topo = build(lab, log_level="info", extra=f"MaxConnections = {SOCKS_CAP}\n")
    topo.t.popen(["python3", "-c", HOLD_SCRIPT])
    netns.wait_until(lambda: topo.t.run(["ss", "-ltn", f"sport = :{HOLD_PORT}"],
                                        check=False).stdout.count("LISTEN") > 0, 10)
    assert fetch_works(topo), topo.logs()
    base = topo.rss_kb()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], topo.rss_kb())
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    reps = socks_flood(topo.c, FLOOD_CONNS, cl.SOCKS_PORT)
    took = time.monotonic() - t0
    done.set()
    sampler.join(5)
    ok, refused = reps.count(0), reps.count(1)
    other = len(reps) - ok - refused
    print(f"{FLOOD_CONNS} connections in {took:.1f} s: {ok} relayed, {refused} general failure, "
          f"{other} other; RSS {base} -> peak {peak[0]} kB")
    assert other == 0, ({r: reps.count(r) for r in set(reps)}, topo.logs())
    assert SOCKS_CAP // 2 <= ok <= SOCKS_CAP, (ok, topo.logs())
    assert topo.status()["streams"]["socks"]["over_cap"] >= FLOOD_CONNS - SOCKS_CAP - ok
    # Bounded: well under what 10,000 relays would take; then back near the start.
    assert peak[0] - base < 200 * 1024, (base, peak[0])
    netns.wait_until(lambda: topo.rss_kb() - base < 24 * 1024, 30,
                     what=f"RSS back near {base} kB (now {topo.rss_kb()} kB)")
    assert fetch_works(topo), topo.logs()
    assert topo.proxy.alive()


BLACK_HOLE = 1280  # the relay drops datagrams with more payload than this, both ways


@pytest.mark.parametrize("server", ["awgproxy", "wireguard-go"])
def test_mtu_black_hole(lab, server):
    """A path that silently drops datagrams above 1280 bytes: handshakes and small packets pass,
    full-size ones vanish, so a transfer stalls. The client notices (its TCP times out twice),
    probes, names the cause and the remedy within 10 s of the transfer's start and lowers its
    MTU by itself: new connections then fit and complete intact. (The stalled one cannot be
    saved: the far end chose its segment size when it connected.) Against our server and a
    stock wireguard-go (both answer ping on the server's tunnel address). A healthy path is never
    probed (test_tunnel_interop's captures would show it)."""
    topo = build(lab, server=server, transport="ip", log_level="info",
                 impair={"both.delay_ms": 2, "both.mtu": BLACK_HOLE})
    assert fetch_works(topo), topo.logs()  # small packets: fine
    t0 = time.monotonic()
    out = {}

    def run():  # the transfer that meets the black hole: it stalls and gives up
        out["r"] = run_integrity(topo, 1, 4 << 20, 60, stall_limit=15)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    line = None
    while time.monotonic() - t0 < 30 and not line:
        m = re.search(r"^.*event=mtu_black_hole.*$", topo.proxy.log(), re.M)
        line = m.group(0) if m else None
        time.sleep(0.2)
    took = time.monotonic() - t0
    assert line, f"no mtu_black_hole line\n{topo.logs()}"
    assert took <= 10.0, (took, line)
    works = int(re.search(r"\bworks=(\d+)", line).group(1))
    # the largest probe that came back fits: inner packet + 32 + padding to 16 + S4 <= 1280
    assert 1000 <= works <= BLACK_HOLE - 32 and f"MTU = {works}" in line, line
    print(f"{server}: named {took:.1f} s after the transfer started: {line}")
    # new connections fit the lowered MTU from the start
    elapsed, stalled, prog, errors, samples = run_integrity(topo, 2, 4 << 20, 60, stall_limit=20)
    assert not errors and not stalled and all(p[2] for p in prog), (errors[:5], topo.logs())
    t.join(90)
    st = topo.relay.stats()
    assert st["up"]["dropped_mtu"] + st["down"]["dropped_mtu"] > 0, st
    assert topo.proxy.alive(), topo.logs()
