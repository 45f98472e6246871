"""Minimal classic-pcap reader for the integration tests: UDP datagrams over IPv4/IPv6.

Link types: Ethernet (1, with 802.1Q/802.1ad tags), raw IP (101, and 12/14 as some systems write
it), Linux cooked SLL (113) and SLL2 (276), BSD loopback (0). Byte order and micro/nanosecond
resolution are taken from the magic. IPv4 fragments are reassembled; the payload is cut to the
UDP length, so Ethernet padding never shows up as payload bytes.

    for d in read_udp("cap.pcap"):
        d.time, d.src, d.sport, d.dst, d.dport, d.payload
"""
import collections
import ipaddress
import struct

Datagram = collections.namedtuple("Datagram", "time src sport dst dport payload")

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276
_RAW_ALIASES = (12, 14)

_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}

ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
_VLAN_TYPES = (0x8100, 0x88A8, 0x9100)


class PcapError(ValueError):
    pass


def read_frames(path):
    """Yields (time, linktype, frame bytes) for every record of a classic pcap file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise PcapError(f"{path}: too short for a pcap header ({len(data)} bytes)")
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        raise PcapError(f"{path}: pcapng is not supported (write with tcpdump -w, classic format)")
    if magic not in _MAGICS:
        raise PcapError(f"{path}: not a pcap file (magic {magic.hex()})")
    endian, unit = _MAGICS[magic]
    _, _, _, _, _, linktype = struct.unpack(endian + "HHiIII", data[4:24])
    linktype &= 0x0FFFFFFF  # upper bits may carry FCS flags
    off = 24
    rec = struct.Struct(endian + "IIII")
    while off + 16 <= len(data):
        sec, frac, incl, _orig = rec.unpack_from(data, off)
        off += 16
        if off + incl > len(data):
            break  # truncated last record (capture killed mid-write)
        yield sec + frac * unit, linktype, data[off:off + incl]
        off += incl


def _l3(linktype, frame):
    """(ethertype, network-layer bytes) or None."""
    if linktype == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            return None
        et = struct.unpack_from("!H", frame, 12)[0]
        off = 14
        while et in _VLAN_TYPES and len(frame) >= off + 4:
            et = struct.unpack_from("!H", frame, off + 2)[0]
            off += 4
        return et, frame[off:]
    if linktype == LINKTYPE_LINUX_SLL:
        if len(frame) < 16:
            return None
        return struct.unpack_from("!H", frame, 14)[0], frame[16:]
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(frame) < 20:
            return None
        return struct.unpack_from("!H", frame, 0)[0], frame[20:]
    if linktype == LINKTYPE_RAW or linktype in _RAW_ALIASES:
        if not frame:
            return None
        v = frame[0] >> 4
        return (ETH_P_IP if v == 4 else ETH_P_IPV6 if v == 6 else 0), frame
    if linktype == LINKTYPE_NULL:
        if len(frame) < 4:
            return None
        fam = struct.unpack_from("<I", frame, 0)[0]
        if fam > 0xFFFF:
            fam = struct.unpack_from(">I", frame, 0)[0]
        et = ETH_P_IP if fam == 2 else ETH_P_IPV6 if fam in (10, 24, 28, 30) else 0
        return et, frame[4:]
    raise PcapError(f"unsupported link type {linktype}")


def _udp(segment):
    if len(segment) < 8:
        return None
    sport, dport, ulen = struct.unpack_from("!HHH", segment, 0)
    if ulen < 8:
        ulen = len(segment)  # jumbogram / bogus: take what is there
    return sport, dport, segment[8:ulen]


class _Reassembler:
    def __init__(self):
        self.parts = {}

    def add(self, key, offset, more, data):
        """Returns the whole payload when complete, else None."""
        frags = self.parts.setdefault(key, {"chunks": {}, "total": None})
        frags["chunks"][offset] = data
        if not more:
            frags["total"] = offset + len(data)
        if frags["total"] is None:
            return None
        buf = bytearray()
        pos = 0
        for off in sorted(frags["chunks"]):
            if off > pos:
                return None  # hole
            chunk = frags["chunks"][off]
            buf[off:off + len(chunk)] = chunk
            pos = max(pos, off + len(chunk))
        if pos < frags["total"]:
            return None
        del self.parts[key]
        return bytes(buf[:frags["total"]])


def _ipv4(pkt, reasm):
    if len(pkt) < 20:
        return None
    ihl = (pkt[0] & 0x0F) * 4
    total = struct.unpack_from("!H", pkt, 2)[0]
    ident, flags_frag = struct.unpack_from("!HH", pkt, 4)
    proto = pkt[9]
    src, dst = str(ipaddress.IPv4Address(pkt[12:16])), str(ipaddress.IPv4Address(pkt[16:20]))
    if total < ihl or ihl < 20:
        return None
    body = pkt[ihl:total]  # cut link-layer padding
    more, offset = bool(flags_frag & 0x2000), (flags_frag & 0x1FFF) * 8
    if more or offset:
        body = reasm.add((src, dst, ident, proto), offset, more, body)
        if body is None:
            return None
    return proto, src, dst, body


def _ipv6(pkt):
    if len(pkt) < 40:
        return None
    plen = struct.unpack_from("!H", pkt, 4)[0]
    nxt = pkt[6]
    src, dst = str(ipaddress.IPv6Address(pkt[8:24])), str(ipaddress.IPv6Address(pkt[24:40]))
    body = pkt[40:40 + plen] if plen else pkt[40:]
    while nxt in (0, 43, 60, 44):
        if len(body) < 8:
            return None
        if nxt == 44:  # fragment: only unfragmented (offset 0, no M flag) is handled
            off_flags = struct.unpack_from("!H", body, 2)[0]
            if off_flags & 0xFFF9:
                return None
            nxt, body = body[0], body[8:]
            continue
        nxt, body = body[0], body[(body[1] + 1) * 8:]
    return nxt, src, dst, body


def read_udp(path):
    """All UDP datagrams of a pcap file, in capture order, as Datagram tuples
    (time, src, sport, dst, dport, payload)."""
    out = []
    reasm = _Reassembler()
    for ts, linktype, frame in read_frames(path):
        l3 = _l3(linktype, frame)
        if not l3:
            continue
        et, pkt = l3
        if et == ETH_P_IP:
            ip = _ipv4(pkt, reasm)
        elif et == ETH_P_IPV6:
            ip = _ipv6(pkt)
        else:
            continue
        if not ip or ip[0] != 17:
            continue
        _, src, dst, body = ip
        u = _udp(body)
        if not u:
            continue
        sport, dport, payload = u
        out.append(Datagram(ts, src, sport, dst, dport, payload))
    return out


def le32(b, off):
    return struct.unpack_from("<I", b, off)[0]


def be32(b, off):
    return struct.unpack_from(">I", b, off)[0]


def write_udp(path, datagrams, linktype=LINKTYPE_RAW):
    """Writes Datagram-like tuples as a raw-IPv4 pcap (for tests of this module)."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for d in datagrams:
            udp = struct.pack("!HHHH", d.sport, d.dport, 8 + len(d.payload), 0) + d.payload
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                             ipaddress.IPv4Address(d.src).packed,
                             ipaddress.IPv4Address(d.dst).packed) + udp
            sec = int(d.time)
            f.write(struct.pack("<IIII", sec, int(round((d.time - sec) * 1e6)), len(ip), len(ip)))
            f.write(ip)
