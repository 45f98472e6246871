"""AmneziaWG obfuscation on the wire, between two awgproxy instances in network namespaces.

Expected wire format (docs/spec/awg-obfuscation.md §2, §3, §5, §6 and docs/spec/decisions.md):

  initiator A -> B, per initiation:  I1 I2 I3 I4 I5, then Jc junk datagrams (sizes in [Jmin, Jmax]),
                                      then the initiation: S1 + 148 bytes, LE32 at S1 in H1
  responder B -> A:                   the response only (no I, no junk): S2 + 92, LE32 at S2 in H2
  afterwards, both ways:              transport S4 + 32 + 16k bytes, LE32 at S4 in H4; keepalives
                                      are padded too (decisions.md #1): S4 + 32, never a bare 32
  <t> = BE32 unix time, <c> = BE32 count of datagrams the device has sent (decisions.md #2),
  <rc N> letters, <rd N> digits, <dz N> N zero bytes, <d>/<ds> nothing (decisions.md #3).

The first tests only exercise tests/integration/pcap.py against the recorded vectors and always run.

The retry test uses netns.FAST_TIMERS (REKEY_TIMEOUT 1 s, see test_tunnel_interop.py) but
also passes with the normal 5 s timers, only slower.
"""
import re
import string
import struct
import time

import pytest

import netns
import pcap
from conftest import SOURCE_DIR
from netns import keypair

VECTORS = SOURCE_DIR / "tests" / "vectors"

# ---- pcap reader vs. the recorded vectors -------------------------------------------------------

_SUMMARY_LINE = re.compile(
    r"^\s*(\d+)\s+([\d.]+)\s+([\d.]+):(\d+)\s+>\s+([\d.]+):(\d+)\s+len=\s*(\d+)\s+(\S+).*?"
    r"head=([0-9a-f]*)\s*$")


def _summary(name):
    rows = []
    for line in (VECTORS / f"{name}.summary.txt").read_text().splitlines():
        m = _SUMMARY_LINE.match(line)
        if m:
            rows.append(m)
    return rows


@pytest.mark.parametrize("name", ["awg-demo", "awg-default"])
def test_pcap_reader_matches_vector_summary(name):
    dgs = pcap.read_udp(VECTORS / f"{name}.pcap")
    rows = _summary(name)
    assert rows, f"{name}.summary.txt has no datagram lines"
    assert len(dgs) == len(rows), f"{name}: read {len(dgs)} datagrams, summary lists {len(rows)}"
    t0 = dgs[0].time
    for d, m in zip(dgs, rows):
        n = m.group(1)
        assert (d.src, d.sport, d.dst, d.dport) == (
            m.group(3), int(m.group(4)), m.group(5), int(m.group(6))), f"datagram {n}"
        assert len(d.payload) == int(m.group(7)), f"datagram {n}: length"
        assert d.payload[:12].hex() == m.group(9), f"datagram {n}: first bytes"
        assert abs((d.time - t0) - float(m.group(2))) < 0.0015, f"datagram {n}: time"
    # The totals line agrees with a classification of our own (demo: S1=15, S2=18, S4=23).
    total = (VECTORS / f"{name}.summary.txt").read_text().strip().splitlines()[-1]
    counts = dict(re.findall(r"([\w-]+)=(\d+)", total.split(":", 1)[1]))
    assert sum(map(int, counts.values())) == len(dgs)


def _frame(linktype, ip_packet):
    if linktype == pcap.LINKTYPE_ETHERNET:
        et = 0x86DD if ip_packet[0] >> 4 == 6 else 0x0800
        # one 802.1Q tag, and Ethernet padding after a short packet
        frame = b"\x02" * 6 + b"\x04" * 6 + struct.pack("!HHH", 0x8100, 5, et) + ip_packet
        return frame + b"\xee" * max(0, 64 - len(frame))
    if linktype == pcap.LINKTYPE_LINUX_SLL:
        et = 0x86DD if ip_packet[0] >> 4 == 6 else 0x0800
        return struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 6 + b"\0\0", et) + ip_packet
    if linktype == pcap.LINKTYPE_LINUX_SLL2:
        et = 0x86DD if ip_packet[0] >> 4 == 6 else 0x0800
        return struct.pack("!HHIHBB8s", et, 0, 3, 1, 0, 6, b"\x02" * 6 + b"\0\0") + ip_packet
    return ip_packet


def _ip4_udp(src, dst, sport, dport, payload, ident=1, frag=None):
    import ipaddress
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if frag is None:
        pieces = [(0, True, udp)]
    else:
        pieces = [(0, False, udp[:frag]), (frag, True, udp[frag:])]
    out = []
    for off, last, body in pieces:
        flags = (0 if last else 0x2000) | (off // 8)
        out.append(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident, flags, 64, 17, 0,
                               ipaddress.IPv4Address(src).packed,
                               ipaddress.IPv4Address(dst).packed) + body)
    return out


def _ip6_udp(src, dst, sport, dport, payload):
    import ipaddress
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    # with a destination-options extension header in front of UDP
    ext = bytes([17, 0]) + b"\x01\x04\0\0\0\0"
    return (struct.pack("!IHBB", 6 << 28, len(ext) + len(udp), 60, 64)
            + ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + ext + udp)


@pytest.mark.parametrize("linktype", [pcap.LINKTYPE_ETHERNET, pcap.LINKTYPE_LINUX_SLL,
                                      pcap.LINKTYPE_LINUX_SLL2, pcap.LINKTYPE_RAW])
@pytest.mark.parametrize("endian,nano", [("<", False), (">", True)])
def test_pcap_reader_link_types(tmp_path, linktype, endian, nano):
    big = bytes(range(256)) * 8  # 2048 bytes: sent as two IPv4 fragments
    packets = [
        (1.25, _ip4_udp("192.0.2.1", "192.0.2.2", 1000, 2000, b"\x01")),
        (1.5, [_ip6_udp("2001:db8::1", "2001:db8::2", 3000, 4000, b"hello")]),
        (2.0, _ip4_udp("192.0.2.2", "192.0.2.1", 2000, 1000, big, ident=7, frag=1480)),
        (2.5, _ip4_udp("192.0.2.2", "192.0.2.1", 2000, 1000, b"")),
    ]
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    unit = 1e9 if nano else 1e6
    path = tmp_path / "t.pcap"
    with open(path, "wb") as f:
        f.write(struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype))
        for t, ips in packets:
            for ip in ips:
                fr = _frame(linktype, ip)
                f.write(struct.pack(endian + "IIII", int(t), int(round((t % 1) * unit)), len(fr),
                                    len(fr)))
                f.write(fr)
        f.write(struct.pack(endian + "IIII", 3, 0, 500, 500) + b"\0" * 10)  # truncated record
    dgs = pcap.read_udp(path)
    assert [(d.src, d.sport, d.dst, d.dport, d.payload) for d in dgs] == [
        ("192.0.2.1", 1000, "192.0.2.2", 2000, b"\x01"),
        ("2001:db8::1", 3000, "2001:db8::2", 4000, b"hello"),
        ("192.0.2.2", 2000, "192.0.2.1", 1000, big),
        ("192.0.2.2", 2000, "192.0.2.1", 1000, b""),
    ]
    assert [round(d.time, 3) for d in dgs] == [1.25, 1.5, 2.0, 2.5]


# ---- two awgproxy instances, every obfuscation parameter set -------------------------------------

JC, JMIN, JMAX = 3, 50, 90
S1, S2, S3, S4 = 15, 18, 20, 23
H1, H2, H3, H4 = (100000, 100100), (200000, 200100), (300000, 300100), (400000, 400100)
# I-packet templates and the size each produces (every tag, decisions.md #2/#3)
IPACKETS = ["<b 0xc0ffee><r 8>", "<t><c>", "<rc 5><rd 4>", "<dz 3><d><ds>", "<b 0x01>"]
ISIZES = [3 + 8, 4 + 4, 5 + 4, 3, 1]
INIT_LEN, RESP_LEN, KEEPALIVE_LEN = S1 + 148, S2 + 92, S4 + 32
PORT_A, PORT_B = 51820, 51821
UNDERLAY_A, UNDERLAY_B = "192.168.66.1", "192.168.66.2"


@pytest.fixture
def lab(tmp_path):
    with netns.open_lab(tmp_path) as lab:
        yield lab


def obfuscation_block(jc=JC, jmin=JMIN, jmax=JMAX, s=(S1, S2, S3, S4), h=(H1, H2, H3, H4),
                      ipackets=IPACKETS):
    lines = [f"Jc = {jc}", f"Jmin = {jmin}", f"Jmax = {jmax}"]
    lines += [f"S{i} = {v}" for i, v in enumerate(s, 1)]
    lines += [f"H{i} = {a}-{b}" for i, (a, b) in enumerate(h, 1)]
    lines += [f"I{i} = {t}" for i, t in enumerate(ipackets, 1) if t]
    return "\n".join(lines) + "\n"


def conf(priv, address, peer_pub, peer_allowed, listen_port=None, endpoint=None, keepalive=None,
         obfuscation="", socks_port=None):
    text = f"[Interface]\nPrivateKey = {priv}\nAddress = {address}\n"
    if listen_port:
        text += f"ListenPort = {listen_port}\n"
    text += obfuscation
    text += f"\n[Peer]\nPublicKey = {peer_pub}\nAllowedIPs = {peer_allowed}\n"
    if endpoint:
        text += f"Endpoint = {endpoint}\n"
    if keepalive:
        text += f"PersistentKeepalive = {keepalive}\n"
    if socks_port:
        text += f"\n[Socks]\nListen = 127.0.0.1:{socks_port}\n"
    return text


def in_range(v, r):
    return r[0] <= v <= r[1]


def is_init(p):
    return len(p) == INIT_LEN and in_range(pcap.le32(p, S1), H1)


def is_response(p):
    return len(p) == RESP_LEN and in_range(pcap.le32(p, S2), H2)


def is_transport(p):
    return len(p) >= KEEPALIVE_LEN and in_range(pcap.le32(p, S4), H4)


def describe(dgs, limit=40):
    t0 = dgs[0].time if dgs else 0
    rows = [f"{d.time - t0:7.3f} {d.src}:{d.sport} > {d.dst}:{d.dport} len={len(d.payload):4d} "
            f"{d.payload[:12].hex()}" for d in dgs[:limit]]
    if len(dgs) > limit:
        rows.append(f"... {len(dgs) - limit} more")
    return "\n".join(rows)


def check_ipackets(burst, now):
    """The 5 I-packets of one initiation burst; returns the <c> value of I2."""
    i1, i2, i3, i4, i5 = (d.payload for d in burst)
    assert [len(p) for p in (i1, i2, i3, i4, i5)] == ISIZES, "I1..I5 sizes"
    assert i1[:3] == b"\xc0\xff\xee", f"I1 must start with c0ffee: {i1.hex()}"
    t = pcap.be32(i2, 0)
    assert abs(t - now) <= 60, f"I2 <t> = {t} is not within 60 s of now ({int(now)})"
    assert abs(t - burst[1].time) <= 60, f"I2 <t> = {t} vs capture time {burst[1].time}"
    counter = pcap.be32(i2, 4)
    assert counter < 100000, f"I2 <c> = {counter} is not a plausible datagram count"
    letters, digits = i3[:5].decode("latin-1"), i3[5:].decode("latin-1")
    assert all(c in string.ascii_letters for c in letters), f"I3 <rc 5> gave {i3[:5]!r}"
    assert all(c in string.digits for c in digits), f"I3 <rd 4> gave {i3[5:]!r}"
    assert i4 == b"\0\0\0", f"I4 <dz 3><d><ds> must be three zero bytes, got {i4.hex()}"
    assert i5 == b"\x01", f"I5 must be 01, got {i5.hex()}"
    return counter


def split_bursts(a2b):
    """Checks that every initiation in the A->B stream is preceded by exactly I1..I5 + Jc junk and
    returns the list of bursts (each: 5 I-packets, Jc junk, the init). Everything else must be
    transport."""
    bursts, i = [], 0
    while i < len(a2b):
        p = a2b[i].payload
        if is_transport(p):
            i += 1
            continue
        burst = a2b[i:i + 5 + JC + 1]
        assert len(burst) == 5 + JC + 1, (
            f"incomplete initiation burst at A->B datagram {i}:\n{describe(a2b[i:])}")
        sizes = [len(d.payload) for d in burst]
        assert sizes[:5] == ISIZES, (
            f"A->B datagram {i}: expected I1..I5 of sizes {ISIZES}, got {sizes[:5]}\n"
            f"{describe(a2b)}")
        junk = sizes[5:5 + JC]
        assert all(JMIN <= n <= JMAX for n in junk), (
            f"junk sizes {junk} not all in [{JMIN},{JMAX}]\n{describe(a2b)}")
        init = burst[-1].payload
        assert is_init(init), (
            f"after I1..I5 and exactly Jc={JC} junk datagrams the initiation must follow "
            f"({INIT_LEN} bytes, LE32 at {S1} in H1); got len={len(init)} "
            f"type={pcap.le32(init, S1) if len(init) >= S1 + 4 else None}\n{describe(a2b)}")
        bursts.append(burst)
        i += len(burst)
    return bursts


def _start_pair(lab, a_env=None, b_env=None, start_b=True):
    a, b = lab.netns("a"), lab.netns("b")
    link = lab.veth(a, b, f"{UNDERLAY_A}/24", f"{UNDERLAY_B}/24")
    a_priv, a_pub = keypair()
    b_priv, b_pub = keypair()
    obf = obfuscation_block()
    conf_a = conf(a_priv, "10.66.0.1/24", b_pub, "10.66.0.2/32", listen_port=PORT_A,
                  endpoint=f"{UNDERLAY_B}:{PORT_B}", keepalive=1, obfuscation=obf)
    conf_b = conf(b_priv, "10.66.0.2/24", a_pub, "10.66.0.1/32", listen_port=PORT_B,
                  keepalive=1, obfuscation=obf)
    return dict(a=a, b=b, link=link, a_priv=a_priv, a_pub=a_pub, b_priv=b_priv, b_pub=b_pub,
                conf_a=conf_a, conf_b=conf_b)


def test_obfuscated_handshake_and_transport_on_the_wire(lab):
    env = _start_pair(lab)
    a, b, link = env["a"], env["b"], env["link"]
    # A capture on the sender's side sees a UDP GSO send as one super-datagram (the HELLO of loss
    # repair goes out in the same loop turn as B's first packet): one datagram per send here.
    no_gso = {"AWG_UDP_NO_GSO": "1"}
    pb = lab.awgproxy(b, "server", env["conf_b"], env=no_gso)
    pb.wait_log(r"event=started", timeout=10)
    cap = lab.tcpdump(b, link.ifname_b, filter=f"udp and host {UNDERLAY_A}")
    started = time.time()
    pa = lab.awgproxy(a, "client", env["conf_a"], env=no_gso)

    def enough():
        dgs = cap.datagrams()
        a2b = [d for d in dgs if d.src == UNDERLAY_A and is_transport(d.payload)]
        b2a = [d for d in dgs if d.src == UNDERLAY_B and is_transport(d.payload)]
        return len(a2b) >= 3 and len(b2a) >= 3

    try:
        pa.wait_handshake(env["b_pub"], timeout=15)
        pb.wait_handshake(env["a_pub"], timeout=5)
        deadline = time.monotonic() + 12
        while not enough() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(max(0.0, 6 - (time.time() - started)))  # at least ~6 s of traffic
    finally:
        dgs = cap.stop()
    assert pa.alive() and pb.alive(), lab.logs()

    a2b = [d for d in dgs if (d.src, d.sport, d.dst, d.dport) == (UNDERLAY_A, PORT_A, UNDERLAY_B,
                                                                   PORT_B)]
    b2a = [d for d in dgs if (d.src, d.sport, d.dst, d.dport) == (UNDERLAY_B, PORT_B, UNDERLAY_A,
                                                                   PORT_A)]
    other = [d for d in dgs if d not in a2b and d not in b2a]
    assert not other, f"unexpected datagrams (wrong ports):\n{describe(other)}"
    assert len(a2b) >= 9, f"A sent only {len(a2b)} datagrams:\n{describe(dgs)}\n{lab.logs()}"

    # (i) A -> B: I1..I5, Jc junk, initiation; afterwards only transport (or another full burst).
    assert [len(d.payload) for d in a2b[:5]] == ISIZES, (
        f"the first datagrams from A must be I1..I5 (sizes {ISIZES})\n{describe(a2b)}")
    bursts = split_bursts(a2b)
    assert bursts and bursts[0][0] is a2b[0]
    counters = [check_ipackets(bu[:5], started) for bu in bursts]
    assert counters[0] < 1000, f"I2 <c> of the first initiation = {counters[0]}: not plausible"
    assert counters == sorted(set(counters)), f"<c> must grow between initiations: {counters}"
    first_init = bursts[0][-1]

    # B -> A: the response comes first, with no junk or I-packets before it.
    assert b2a, f"B never answered:\n{describe(dgs)}\n{lab.logs()}"
    assert is_response(b2a[0].payload), (
        f"B's first datagram must be the response ({RESP_LEN} bytes, LE32 at {S2} in H2):\n"
        f"{describe(b2a)}")
    assert b2a[0].time >= first_init.time
    for d in b2a[1:]:
        assert is_response(d.payload) or is_transport(d.payload), (
            f"B sent a datagram that is neither a response nor transport:\n{describe([d])}")

    # Transport both ways after the handshake; keepalives padded (decisions.md #1).
    t_a = [d for d in a2b if d.time >= b2a[0].time and is_transport(d.payload)]
    t_b = [d for d in b2a if is_transport(d.payload)]
    assert t_a, f"no transport datagrams from A after the handshake:\n{describe(a2b)}"
    assert t_b, f"no transport datagrams from B after the handshake:\n{describe(b2a)}"
    for d in a2b + b2a:
        assert len(d.payload) != 32, (
            f"bare 32-byte keepalive sent (decisions.md #1):\n{describe([d])}")
    for d in t_a + t_b:
        assert (len(d.payload) - KEEPALIVE_LEN) % 16 == 0, (
            f"transport length {len(d.payload)} is not S4 + 32 + 16k")
    assert any(len(d.payload) == KEEPALIVE_LEN for d in t_a), (
        f"A sent no padded keepalive ({KEEPALIVE_LEN} bytes):\n{describe(t_a)}")
    assert any(len(d.payload) == KEEPALIVE_LEN for d in t_b), (
        f"B sent no padded keepalive ({KEEPALIVE_LEN} bytes):\n{describe(t_b)}")
    # H values are drawn per message: over several packets more than one value shows up.
    types = {pcap.le32(d.payload, S4) for d in t_a + t_b}
    assert len(types) > 1 or len(t_a + t_b) < 3, f"H4 values never vary: {types}"

    # (ii) both logs report the handshake; no private key anywhere.
    assert pa.handshake_completed_lines(env["b_pub"]), pa.log_tail()
    assert pb.handshake_completed_lines(env["a_pub"]), pb.log_tail()
    assert not pa.leaked_keys(env["a_priv"], env["b_priv"]), "a private key is in A's log"
    assert not pb.leaked_keys(env["a_priv"], env["b_priv"]), "a private key is in B's log"
    assert pa.stop() == 0, pa.log_tail()
    assert pb.stop() == 0, pb.log_tail()


def test_every_retry_resends_signature_and_junk(lab):
    """B is not running: A retries its initiation (fast timers: every ~1 s, else ~5 s) and each
    retry is a complete, fresh burst: I1..I5 with new random bytes and a growing <c>, Jc junk,
    an initiation with a new sender index."""
    env = _start_pair(lab)
    a, link = env["a"], env["link"]
    cap = lab.tcpdump(a, link.ifname_a, filter="udp")
    started = time.time()
    pa = lab.awgproxy(a, "client", netns.fast_timers(env["conf_a"]))

    def three_bursts():
        return sum(1 for d in cap.datagrams() if is_init(d.payload)) >= 3

    try:
        deadline = time.monotonic() + 16
        while not three_bursts() and time.monotonic() < deadline:
            if not pa.alive():
                break
            time.sleep(0.25)
    finally:
        dgs = cap.stop()
    assert pa.alive(), pa.log_tail()
    a2b = [d for d in dgs if d.src == UNDERLAY_A]
    bursts = split_bursts(a2b)
    assert len(bursts) >= 3, (f"expected 3 initiation attempts within 16 s, saw {len(bursts)}:\n"
                              f"{describe(a2b)}\n{pa.log_tail()}")
    counters = [check_ipackets(bu[:5], started) for bu in bursts]
    for c1, c2 in zip(counters, counters[1:]):
        assert c2 - c1 >= 5 + JC + 1, (
            f"<c> must count every datagram sent (a burst is {5 + JC + 1}): {counters}")
    i1_random = [bu[0].payload[3:] for bu in bursts]
    assert len(set(i1_random)) == len(bursts), "I1 <r 8> bytes repeat between attempts"
    sender_idx = [bu[-1].payload[S1 + 4:S1 + 8] for bu in bursts]
    assert len(set(sender_idx)) == len(bursts), "initiation sender index repeats between attempts"
    ephemerals = [bu[-1].payload[S1 + 8:S1 + 40] for bu in bursts]
    assert len(set(ephemerals)) == len(bursts), "ephemeral key repeats between attempts"
    junk = [bytes(d.payload) for bu in bursts for d in bu[5:5 + JC]]
    assert len(set(junk)) == len(junk), "junk datagrams repeat"
    gaps = [b2[0].time - b1[0].time for b1, b2 in zip(bursts, bursts[1:])]
    assert all(g >= 0.9 for g in gaps), f"retries closer than REKEY_TIMEOUT: {gaps}"
