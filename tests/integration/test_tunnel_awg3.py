"""AmneziaWG 3.x between two awgproxy instances (client in C, server in S, target T reachable only
through the tunnel; clientlab.py), with every AWG 3.x key set on both sides:
HeaderProtectionKey, ContentPaddingAddition, RandomTrailers, DisableCookies, the five timing ranges
and a PersistentKeepalive range (docs/config-reference.md, ../shared/spec/awg3-obfuscation.md).

What the capture between C and S must show:
  * no datagram carries a value of H1..H4 at the offset where an AWG 2.0 receiver would read the
    type (S1/S2/S3/S4): the headers are masked;
  * the initiation/response are not at their fixed AWG 2.0 lengths every time (random trailers),
    and transport lengths are not S4 + 32 + 16k (content padding instead of 16-byte rounding);
  * once unmasked with the key (ChaCha20, nonce = the first 12 bytes, counter 0), the types are
    in H1..H4, exactly as the receiver sees them;
and the data fetched and echoed through SOCKS arrives intact.
"""
import base64
import hashlib
import os
import socket
import time

import pytest

import clientlab as cl
import netns
import pcap

S = (15, 18, 20, 23)
H = ((100000, 100100), (200000, 200100), (300000, 300100), (400000, 400100))
BASE = (148, 92, 64, 32)
HP_KEY = os.urandom(32)
AWG3 = ("Jc = 3\nJmin = 40\nJmax = 70\n"
        + "".join(f"S{i} = {s}\n" for i, s in enumerate(S, 1))
        + "".join(f"H{i} = {a}-{b}\n" for i, (a, b) in enumerate(H, 1))
        + "I1 = <b 0xc0ffee><r 16><t>\n"
        f"HeaderProtectionKey = {base64.b64encode(HP_KEY).decode()}\n"
        "ContentPaddingAddition = 10-100\nRandomTrailers = on\nDisableCookies = on\n"
        "RekeyAfterTime = 100-120\nRekeyTimeout = 4-6\nRejectAfterTime = 170-180\n"
        "KeepaliveTimeout = 8-10\nMaxHandshakeAttempts = 10-15\n")
PROXY = f"127.0.0.1:{cl.SOCKS_PORT}"


# One datagram per capture record: with UDP GSO the capture would show the kernel's super-packets.
NO_GSO = {"AWG_UDP_NO_GSO": "1"}


class Awg3Topology(cl.Topology):
    def start_awg_server(self, log_level="debug"):
        self.server = self.lab.awgproxy(self.s, "server", self.server_conf(), log_level=log_level,
                                        env=NO_GSO)
        self.server.wait_log(r"event=started", timeout=10)
        return self.server

    def server_conf(self):
        return super().server_conf().replace("Address = ", AWG3 + "Address = ", 1)

    def client_conf(self, socks=None, extra_interface=""):
        text = super().client_conf(socks, extra_interface + AWG3)
        return text.replace("PersistentKeepalive = 25\n", "PersistentKeepalive = 2-3\n", 1)


@pytest.fixture
def lab(tmp_path):
    with netns.open_lab(tmp_path) as lab:
        yield lab


# ---- our own ChaCha20 keystream (RFC 8439), independent of the implementation under test -------

def _rotl(v, n):
    return ((v << n) & 0xFFFFFFFF) | (v >> (32 - n))


def chacha20_block(key, counter, nonce):
    import struct
    st = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574, *struct.unpack("<8I", key), counter,
          *struct.unpack("<3I", nonce)]
    x = list(st)

    def qr(a, b, c, d):
        x[a] = (x[a] + x[b]) & 0xFFFFFFFF; x[d] = _rotl(x[d] ^ x[a], 16)
        x[c] = (x[c] + x[d]) & 0xFFFFFFFF; x[b] = _rotl(x[b] ^ x[c], 12)
        x[a] = (x[a] + x[b]) & 0xFFFFFFFF; x[d] = _rotl(x[d] ^ x[a], 8)
        x[c] = (x[c] + x[d]) & 0xFFFFFFFF; x[b] = _rotl(x[b] ^ x[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)
        qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)
    return struct.pack("<16I", *[(a + b) & 0xFFFFFFFF for a, b in zip(x, st)])


def unmasked_type(p, off):
    mask = chacha20_block(HP_KEY, 0, bytes(p[:12]))[:4]
    return int.from_bytes(bytes(a ^ b for a, b in zip(p[off:off + 4], mask)), "little")


def classify(p):
    """The receiver's view (spec R23, RandomTrailers on): kind index 0..3 or None."""
    if len(p) < 32:
        return None
    for k in range(3):
        if len(p) >= S[k] + BASE[k] and H[k][0] <= unmasked_type(p, S[k]) <= H[k][1]:
            return k
    if len(p) >= S[3] + 32 and H[3][0] <= unmasked_type(p, S[3]) <= H[3][1]:
        return 3
    return None


def echo_roundtrip(topo, nbytes):
    """nbytes of random data to T's echo service through SOCKS; returns what came back."""
    data = os.urandom(nbytes)
    r = cl.socks5(topo.c, cl.T_HTTP, cl.ECHO_PORT, keep=True, timeout=20)
    assert r.rep == 0 and r.sock, f"SOCKS CONNECT to the echo service failed: {r}\n{topo.logs()}"
    s = r.sock
    got = bytearray()
    deadline = time.monotonic() + 60
    try:
        s.setblocking(True)
        sent = 0
        while sent < len(data) or len(got) < len(data):
            if sent < len(data):
                s.settimeout(5)
                sent += s.send(data[sent:sent + 65536])
            s.settimeout(0.05 if sent < len(data) else max(0.1, deadline - time.monotonic()))
            try:
                chunk = s.recv(262144)
                if not chunk:
                    break
                got += chunk
            except socket.timeout:
                if time.monotonic() > deadline:
                    break
    finally:
        s.close()
    return data, bytes(got)


def test_awg3_every_key_masked_and_unaligned(lab):
    topo = cl.build_topology(lab, server="awgproxy", start_client=False, topology=Awg3Topology,
                             socks=cl.socks_section(connect_timeout=10, tunnel_wait=10))
    cap = lab.tcpdump(topo.s, topo.cs.ifname_b, filter=f"udp and host {cl.C_UNDERLAY}")
    try:
        topo.start_client(env=NO_GSO)
        # An HTTP fetch (curl through SOCKS, the name resolved by the server) and a 2 MB echo.
        r = topo.curl(f"http://{cl.TARGET_NAME}/", "--socks5-hostname", PROXY)
        assert r.returncode == 0 and r.stdout.encode() == cl.HTTP_BODY, (
            f"fetch through the AWG 3.x tunnel failed: {r}\n{topo.logs()}")
        sent, got = echo_roundtrip(topo, 2 * 1024 * 1024)
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(sent).hexdigest(), (
            f"echo through the tunnel: sent {len(sent)} bytes, got {len(got)} back, "
            f"{'different content' if len(got) == len(sent) else 'short'}\n{topo.logs()}")
        # Idle a little: keepalives (PersistentKeepalive 2-3) are part of the capture too.
        time.sleep(4)
    finally:
        dgs = cap.stop()
    assert topo.proxy.alive() and topo.server.alive(), topo.logs()

    wg = [d for d in dgs if cl.WG_PORT in (d.sport, d.dport)]
    assert len(wg) > 100, f"only {len(wg)} tunnel datagrams captured\n{topo.logs()}"
    kinds = [classify(d.payload) for d in wg]

    # 1. Masked: no datagram shows a plain H value where an AWG 2.0 receiver reads the type.
    for d in wg:
        p = d.payload
        for k in range(4):
            if len(p) >= S[k] + 4:
                v = pcap.le32(p, S[k])
                assert not H[k][0] <= v <= H[k][1], (
                    f"{len(p)}-byte datagram carries H{k + 1} value {v} in clear at offset {S[k]}")

    # 2. With the key, the receiver's view: a handshake and lots of transport, types in range.
    inits = [d for d, k in zip(wg, kinds) if k == 0 and d.sport != cl.WG_PORT]
    resps = [d for d, k in zip(wg, kinds) if k == 1 and d.sport == cl.WG_PORT]
    transport = [d for d, k in zip(wg, kinds) if k == 3]
    assert inits and resps, f"no unmaskable initiation/response among {len(wg)} datagrams"
    assert len(transport) > 100, f"only {len(transport)} transport datagrams unmask to H4"
    # Everything that is neither is junk or I1 from the client, before an initiation.
    for d, k in zip(wg, kinds):
        if k is None:
            assert d.sport != cl.WG_PORT and (len(d.payload) == 3 + 16 + 4
                                              or 40 <= len(d.payload) <= 70), (
                f"unclassifiable {len(d.payload)}-byte datagram from port {d.sport}")

    # 3. Sizes: random trailers on handshakes (below the 500-byte window), content padding instead
    #    of 16-byte alignment on transport.
    for d in inits + resps:
        base = S[0] + 148 if d in inits else S[1] + 92
        assert base <= len(d.payload) < 500, f"handshake datagram of {len(d.payload)} bytes"
    assert any(len(d.payload) != S[0] + 148 for d in inits) or len(inits) == 1, (
        "every initiation has the bare AWG 2.0 length")
    # Full-MTU packets are capped at the MTU either way; the grid shows below that.
    biggest = max(len(d.payload) for d in transport)
    below = [d for d in transport if len(d.payload) < biggest]
    unaligned = [d for d in below if (len(d.payload) - S[3] - 32) % 16]
    assert len(below) > 20 and len(unaligned) > len(below) // 2, (
        f"only {len(unaligned)} of {len(below)} transport datagrams below the MTU are off the "
        f"16-byte grid")
    keepalive_sizes = {len(d.payload) for d in transport if len(d.payload) < S[3] + 32 + 101}
    assert keepalive_sizes and min(keepalive_sizes) >= S[3] + 32 + 10, (
        f"padded keepalives expected (S4 + 32 + 10..100 bytes), saw sizes {sorted(keepalive_sizes)}")
    assert len({len(d.payload) for d in transport}) > 20, "transport sizes barely vary"

    assert topo.proxy.stop() == 0, topo.proxy.log_tail()
    assert topo.server.stop() == 0, topo.server.log_tail()


def test_awg3_timing_ranges_drive_retries(lab):
    """RekeyTimeout = 1-2 and MaxHandshakeAttempts = 1, the server absent: the client sends its
    first initiation and exactly two retries (value + 2 in all, spec R53), each 1 s to 2.33 s
    (range + jitter) after the previous one, then gives up; every initiation masked."""
    a, b = lab.netns("a"), lab.netns("b")
    link = lab.veth(a, b, "192.168.77.1/24", "192.168.77.2/24")
    a_priv, _ = netns.keypair()
    _, b_pub = netns.keypair()
    text = (f"[Interface]\nPrivateKey = {a_priv}\nAddress = 10.67.0.2/32\n"
            + AWG3.replace("RekeyTimeout = 4-6", "RekeyTimeout = 1-2")
                  .replace("MaxHandshakeAttempts = 10-15", "MaxHandshakeAttempts = 1")
            + f"\n[Peer]\nPublicKey = {b_pub}\nAllowedIPs = 10.67.0.1/32\n"
            f"Endpoint = 192.168.77.2:{cl.WG_PORT}\nPersistentKeepalive = 60\n")
    cap = lab.tcpdump(a, link.ifname_a, filter="udp")
    pa = lab.awgproxy(a, "client", text, env=NO_GSO)
    try:
        pa.wait_log(r"component=handshake event=failed", timeout=15)
        time.sleep(3)  # nothing more may follow the give-up
    finally:
        dgs = cap.stop()
    assert pa.alive(), pa.log_tail()
    inits = [d for d in dgs if classify(d.payload) == 0]
    assert len(inits) == 3, (f"expected 3 initiations (MaxHandshakeAttempts 1 + 2), saw "
                             f"{len(inits)}\n{pa.log_tail()}")
    gaps = [y.time - x.time for x, y in zip(inits, inits[1:])]
    assert all(0.95 <= g <= 2.45 for g in gaps), f"retry gaps {gaps} outside RekeyTimeout 1-2 s"
    for d in dgs:
        if len(d.payload) >= S[0] + 4:
            assert not H[0][0] <= pcap.le32(d.payload, S[0]) <= H[0][1], "an H1 type in clear"
    assert pa.stop() == 0, pa.log_tail()


def keystream(nonce, n):
    return b"".join(chacha20_block(HP_KEY, i, nonce) for i in range((n + 63) // 64))[:n]


def fake_initiation(server_pub, sender):
    """An initiation with a valid mac1 for the server but garbage inside (the Noise part fails)
    and no mac2: under load the server must ask for a cookie, or with DisableCookies stay silent.
    Built, masked and prefixed by the AWG 3.x send rules."""
    import struct
    msg = bytearray(struct.pack("<II", H[0][0] + 7, sender) + os.urandom(140))
    key = hashlib.blake2s(b"mac1----" + base64.b64decode(server_pub)).digest()
    msg[116:132] = hashlib.blake2s(bytes(msg[:116]), digest_size=16, key=key).digest()
    msg[132:148] = bytes(16)
    prefix = os.urandom(S[0])
    ks = keystream(prefix[:12], 148)
    return prefix + bytes(a ^ b for a, b in zip(msg, ks))


@pytest.mark.parametrize("disable_cookies", [False, True], ids=["cookies", "disable-cookies"])
def test_awg3_cookie_reply_masked_or_disabled(lab, disable_cookies):
    """A flood of initiations (valid mac1, no mac2) puts the server under load. With cookies it
    answers with cookie replies: masked (type in H3 only after unmasking), addressed to the
    initiation's sender index, with a random trailer below 500 bytes. With DisableCookies it sends
    nothing at all."""
    a, b = lab.netns("a"), lab.netns("b")
    lab.veth(a, b, "192.168.78.1/24", "192.168.78.2/24")
    b_priv, b_pub = netns.keypair()
    _, a_pub = netns.keypair()
    block = AWG3 if disable_cookies else AWG3.replace("DisableCookies = on", "DisableCookies = off")
    text = (f"[Interface]\nPrivateKey = {b_priv}\nListenPort = {cl.WG_PORT}\n"
            f"Address = 10.68.0.1/24\n{block}\n[Peer]\nPublicKey = {a_pub}\n"
            f"AllowedIPs = 10.68.0.2/32\n")
    pb = lab.awgproxy(b, "server", text, env=NO_GSO)
    pb.wait_log(r"event=started", timeout=10)
    with cl.in_netns(a):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        senders = set()
        for i in range(600):
            sender = 0x10000 + i
            senders.add(sender)
            s.sendto(fake_initiation(b_pub, sender), ("192.168.78.2", cl.WG_PORT))
            if i % 50 == 49:
                time.sleep(0.01)  # do not overrun the server's receive buffer
        replies = []
        s.settimeout(1.5)
        while True:
            try:
                replies.append(s.recv(4096))
            except socket.timeout:
                break
    finally:
        s.close()
    assert pb.alive(), pb.log_tail()
    if disable_cookies:
        assert not replies, (f"DisableCookies: the server sent {len(replies)} datagrams, sizes "
                             f"{sorted({len(r) for r in replies})}\n{pb.log_tail()}")
    else:
        assert len(replies) > 50, f"only {len(replies)} cookie replies\n{pb.log_tail()}"
        for r in replies:
            assert classify(r) == 2, f"a {len(r)}-byte reply is not a cookie reply"
            assert S[2] + 64 <= len(r) < 500, f"cookie reply of {len(r)} bytes"
            assert not H[2][0] <= pcap.le32(r, S[2]) <= H[2][1], "cookie reply type in clear"
            receiver = int.from_bytes(bytes(x ^ y for x, y in zip(r[S[2] + 4:S[2] + 8],
                                                                  keystream(r[:12], 8)[4:])),
                                      "little")
            assert receiver in senders, f"cookie reply to unknown index {receiver:#x}"
        assert len({len(r) for r in replies}) > 10, "cookie reply lengths do not vary (trailers)"
    assert pb.stop() == 0, pb.log_tail()
