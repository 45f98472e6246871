#!/usr/bin/env python3
"""What a classifier sees in a capture: nDPI's label, tshark's WireGuard dissector, a Zeek-style
first-bytes signature, and statistical features (sizes, their entropy, the 16-byte grid, H values at
their offsets, handshakes per minute).

Library for bench/dpi/run.sh and tests/integration/test_dpi.py, and a command:

    python3 bench/dpi/dpi_analyze.py OUTDIR [--vectors DIR] [--json FILE]

reads OUTDIR/*.pcap with their OUTDIR/*.meta.json (written by dpi_capture.py) and, with
--vectors, the amneziawg-go captures (NAME.pcap, NAME-A.conf, NAME.summary.txt), and prints the
markdown tables of docs/dpi.md.

Ground truth: every datagram is classified the way a receiver holding the configuration does it
(S prefix, H ranges, header protection unmasked with the key), so the features are computed on
known message kinds; the classifiers themselves see only the pcap.
"""
import argparse
import collections
import json
import math
import os
import pathlib
import re
import shutil
import struct
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests" / "integration"))
import pcap  # noqa: E402  (tests/integration/pcap.py)

# The port every capture is rewritten to before nDPI sees it (see neutral_port_copy): nDPI guesses
# by port, and the amneziawg-go vectors use 51820, which alone makes nDPI say "WireGuard".
NEUTRAL_PORT = 39117
VECTOR_PORT = 51820  # the initiator A's port in the amneziawg-go captures (B has 51821)

# WireGuard message lengths (without S prefix and trailer) per type 1..4 (4: the minimum).
MSG_LEN = {1: 148, 2: 92, 3: 64, 4: 32}
KIND = {1: "init", 2: "response", 3: "cookie", 4: "transport"}

OBFS_KEYS = ("Jc", "Jmin", "Jmax", "S1", "S2", "S3", "S4", "H1", "H2", "H3", "H4", "I1", "I2",
             "I3", "I4", "I5", "HeaderProtectionKey", "ContentPaddingAddition", "RandomTrailers")


# ---- ChaCha20 keystream (RFC 8439 block function), for header protection -------------------------

def _rotl(v, n):
    return ((v << n) & 0xFFFFFFFF) | (v >> (32 - n))


def chacha20_block(key, counter, nonce):
    """One 64-byte ChaCha20 block: 32-byte key, 32-bit counter, 12-byte nonce."""
    state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    state += list(struct.unpack("<8I", key)) + [counter] + list(struct.unpack("<3I", nonce))
    x = list(state)

    def qr(a, b, c, d):
        x[a] = (x[a] + x[b]) & 0xFFFFFFFF
        x[d] = _rotl(x[d] ^ x[a], 16)
        x[c] = (x[c] + x[d]) & 0xFFFFFFFF
        x[b] = _rotl(x[b] ^ x[c], 12)
        x[a] = (x[a] + x[b]) & 0xFFFFFFFF
        x[d] = _rotl(x[d] ^ x[a], 8)
        x[c] = (x[c] + x[d]) & 0xFFFFFFFF
        x[b] = _rotl(x[b] ^ x[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12), qr(1, 5, 9, 13), qr(2, 6, 10, 14), qr(3, 7, 11, 15)
        qr(0, 5, 10, 15), qr(1, 6, 11, 12), qr(2, 7, 8, 13), qr(3, 4, 9, 14)
    return struct.pack("<16I", *((x[i] + state[i]) & 0xFFFFFFFF for i in range(16)))


# ---- parameters ----------------------------------------------------------------------------------

class Params:
    """What a receiver knows: S1..S4, H1..H4 ranges, the header protection key."""

    def __init__(self, s=(0, 0, 0, 0), h=((1, 1), (2, 2), (3, 3), (4, 4)), hp=None, cpa=False,
                 trailers=False, obfs=None):
        self.s, self.h, self.hp, self.cpa, self.trailers = list(s), list(h), hp, cpa, trailers
        self.obfs = dict(obfs or {})

    @classmethod
    def from_conf(cls, text):
        """From a WireGuard/AmneziaWG config's [Interface] (unknown keys ignored)."""
        vals, section = {}, None
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            m = re.match(r"^\[(\w+)\]$", line)
            if m:
                section = m.group(1).lower()
                continue
            if section == "interface" and "=" in line:
                k, v = (p.strip() for p in line.split("=", 1))
                if k in OBFS_KEYS:
                    vals[k] = v
        s = [int(vals.get(f"S{k}", 0)) for k in range(1, 5)]
        h = []
        for k in range(1, 5):
            v = vals.get(f"H{k}", str(k))
            lo, _, hi = v.partition("-")
            h.append((int(lo), int(hi or lo)))
        hp = None
        if vals.get("HeaderProtectionKey"):
            import base64
            hp = base64.b64decode(vals["HeaderProtectionKey"])
            if hp == bytes(32):
                hp = None
        trailers = vals.get("RandomTrailers", "off").lower() in ("on", "true", "yes", "1")
        return cls(s, h, hp, cpa=bool(vals.get("ContentPaddingAddition")), trailers=trailers,
                   obfs=vals)

    def to_json(self):
        return {"s": self.s, "h": self.h, "hp": self.hp.hex() if self.hp else None,
                "cpa": self.cpa, "trailers": self.trailers, "obfs": self.obfs}

    @classmethod
    def from_json(cls, d):
        return cls(d["s"], [tuple(x) for x in d["h"]], bytes.fromhex(d["hp"]) if d["hp"] else None,
                   d.get("cpa", False), d.get("trailers", False), d.get("obfs"))

    @property
    def plain(self):
        return self.s == [0, 0, 0, 0] and self.h == [(1, 1), (2, 2), (3, 3), (4, 4)] and not self.hp


def le32(b, off):
    return struct.unpack_from("<I", b, off)[0]


def classify(payload, p):
    """The message kind a receiver with parameters p makes of one datagram: init, response,
    cookie, transport, or other (junk, I-packets, anything else)."""
    n = len(payload)
    mask = b"\0\0\0\0"
    if p.hp is not None and n >= 32:
        mask = chacha20_block(p.hp, 0, payload[:12])[:4]
    for k in (1, 2, 3, 4):
        s = p.s[k - 1]
        need = s + MSG_LEN[k]
        exact = k in (1, 2, 3) and not p.trailers
        if n < need or (exact and n != need):
            continue
        v = le32(bytes(a ^ b for a, b in zip(payload[s:s + 4], mask)), 0)
        lo, hi = p.h[k - 1]
        if lo <= v <= hi:
            return KIND[k]
    return "other"


# ---- statistical features ------------------------------------------------------------------------

def entropy(counter):
    total = sum(counter.values())
    if not total:
        return 0.0
    return -sum(c / total * math.log2(c / total) for c in counter.values() if c)


def features(dgs, p, client=None, phases=None):
    """Features of one capture (list of pcap.Datagram). client: (ip) of the initiating side, for
    directions; by default the source of the first datagram. phases: the scenario's phase start
    times (dpi_lab.scenario), for the idle phase's timing."""
    if not dgs:
        return {"datagrams": 0}
    client = client or dgs[0].src
    kinds = [classify(d.payload, p) for d in dgs]
    sizes = collections.Counter(len(d.payload) for d in dgs)
    transport = [d for d, k in zip(dgs, kinds) if k == "transport"]
    grid = sum(1 for d in transport if (len(d.payload) - p.s[3]) % 16 == 0)
    # What an observer who knows the H ranges but not the HP key reads at each offset S_k.
    h_hits = 0
    for d in dgs:
        for k in range(4):
            off = p.s[k]
            if len(d.payload) >= off + 4:
                lo, hi = p.h[k]
                if lo <= le32(d.payload, off) <= hi:
                    h_hits += 1
                    break
    # Without keys: how much of the traffic shares one residue mod 16 (WireGuard pads to 16,
    # the S4 prefix only shifts the residue).
    residues = collections.Counter(len(d.payload) % 16 for d in dgs)
    top_res, top_n = residues.most_common(1)[0]
    duration = dgs[-1].time - dgs[0].time
    inits = [d for d, k in zip(dgs, kinds) if k == "init"]
    first = [len(d.payload) for d in dgs[:8]]
    first_bytes = collections.Counter(d.payload[0] for d in dgs if d.payload)
    return {
        "datagrams": len(dgs),
        "bytes": sum(len(d.payload) for d in dgs),
        "duration_s": round(duration, 2),
        "kinds": dict(collections.Counter(kinds)),
        "distinct_sizes": len(sizes),
        "size_entropy_bits": round(entropy(sizes), 2),
        "size_hist_top": sizes.most_common(6),
        "transport": len(transport),
        "grid16_share": round(grid / len(transport), 3) if transport else None,
        "h_at_offset_share": round(h_hits / len(dgs), 3),
        "top_residue16": [top_res, round(top_n / len(dgs), 3)],
        "initiations": len(inits),
        "inits_per_min": round(len(inits) / (duration / 60), 2) if duration > 0 else None,
        "first_sizes": first,
        "first_byte_entropy_bits": round(entropy(first_bytes), 2),
        "to_client_share": round(sum(1 for d in dgs if d.dst == client) / len(dgs), 3),
        "idle_gaps_s": idle_gaps(dgs, client, phases) if phases else None,
    }


def idle_gaps(dgs, client, phases):
    """Seconds between the client's datagrams in the idle phase (its keepalives), from the last
    datagram before the phase on."""
    times = [d.time for d in dgs if d.src == client and d.time <= phases["end"]]
    before = [t for t in times if t < phases["idle"]]
    idle = [t for t in times if t >= phases["idle"]]
    seq = before[-1:] + idle
    return [round(b - a, 1) for a, b in zip(seq, seq[1:])]


# ---- classifiers ---------------------------------------------------------------------------------

_NDPI_FLOW = re.compile(r"^\s*\d+\s+UDP\s+(\S+)\s+<->\s+(\S+)\s+\[proto:\s*([\d.]+)/([^\]]+)\]"
                        r"(?:.*?\[Confidence:\s*([^\]]+)\])?")


def ndpi_flows(path):
    """nDPI's verdict per UDP flow: list of dicts a, b, proto, confidence."""
    r = subprocess.run(["ndpiReader", "-q", "-i", str(path), "-v", "2"], capture_output=True,
                       text=True, timeout=300)
    flows = []
    for line in r.stdout.splitlines():
        m = _NDPI_FLOW.match(line)
        if m:
            flows.append({"a": m.group(1), "b": m.group(2), "proto": m.group(4).strip(),
                          "confidence": (m.group(5) or "").strip()})
    if r.returncode != 0 and not flows:
        raise RuntimeError(f"ndpiReader failed ({r.returncode}): {r.stderr[-500:]}")
    return flows


def tshark_wg(path):
    """Frames tshark's WireGuard dissector (a heuristic on any UDP port) recognises, by type."""
    r = subprocess.run(["tshark", "-n", "-r", str(path), "-Y", "wg", "-T", "fields", "-e",
                        "wg.type"], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"tshark failed ({r.returncode}): {r.stderr[-500:]}")
    return collections.Counter(t.strip() for t in r.stdout.splitlines() if t.strip())


def signature_match(payload):
    """Our Zeek-style first-bytes WireGuard signature for one datagram: the message type 1..4,
    three zero bytes, and the type's fixed size (148, 92, 64, 32 + 16n). Returns the type or 0."""
    n = len(payload)
    if n < 32 or payload[0] not in (1, 2, 3, 4) or payload[1:4] != b"\0\0\0":
        return 0
    t = payload[0]
    if (t == 1 and n == 148) or (t == 2 and n == 92) or (t == 3 and n == 64) or \
            (t == 4 and (n - 32) % 16 == 0):
        return t
    return 0


def signature_flow(dgs):
    """A flow is WireGuard when an initiation of one side is answered by a response of the other,
    or (a flow seen mid-way) when at least 8 datagrams pass as transport messages."""
    types = [(d.src, signature_match(d.payload)) for d in dgs]
    init_from = {s for s, t in types if t == 1}
    if any(t == 2 and s not in init_from for s, t in types) and init_from:
        return True
    return sum(1 for _, t in types if t == 4) >= 8


def signature_counts(dgs):
    return collections.Counter(signature_match(d.payload) for d in dgs)


def neutral_port_copy(src, dst, port=NEUTRAL_PORT, from_port=None):
    """Copies a classic Ethernet/IPv4 pcap, changing the UDP port `from_port` (default: the lower
    port of the first datagram) to `port` on both directions, UDP checksum zeroed (valid for
    IPv4). So that nDPI's port guesses play no part."""
    data = bytearray(pathlib.Path(src).read_bytes())
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    assert linktype == pcap.LINKTYPE_ETHERNET, f"{src}: link type {linktype}"
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack_from(endian + "I", data, off + 8)[0]
        fr = off + 16
        off = fr + incl
        if struct.unpack_from("!H", data, fr + 12)[0] != 0x0800 or data[fr + 23] != 17:
            continue
        ihl = (data[fr + 14] & 0x0F) * 4
        u = fr + 14 + ihl
        sp, dp = struct.unpack_from("!HH", data, u)
        if from_port is None:
            from_port = min(sp, dp)
        if sp == from_port:
            struct.pack_into("!H", data, u, port)
        if dp == from_port:
            struct.pack_into("!H", data, u + 2, port)
        struct.pack_into("!H", data, u + 6, 0)
    pathlib.Path(dst).write_bytes(bytes(data))
    return dst


def classify_capture(path, p, server_port, ndpi=True, tshark=True, phases=None):
    """Everything about one capture: features, tshark, signature, nDPI (on the capture as it is
    and on a copy with server_port changed to NEUTRAL_PORT)."""
    dgs = pcap.read_udp(path)
    out = {"pcap": str(path), "features": features(dgs, p, phases=phases)}
    sig = signature_counts(dgs)
    out["signature"] = {"datagrams": sum(v for k, v in sig.items() if k),
                        "flow_wireguard": signature_flow(dgs)}
    if tshark:
        t = tshark_wg(path)
        out["tshark"] = {"wg_frames": sum(t.values()), "by_type": dict(t)}
    if ndpi:
        out["ndpi"] = ndpi_flows(path)
        if server_port == NEUTRAL_PORT:
            out["ndpi_neutral_port"] = out["ndpi"]
        else:
            neutral = pathlib.Path(str(path) + ".neutral.pcap")
            neutral_port_copy(path, neutral, from_port=server_port)
            out["ndpi_neutral_port"] = ndpi_flows(neutral)
            neutral.unlink()
    return out


# ---- amneziawg-go vectors ------------------------------------------------------------------------

def vector_captures(vdir):
    """(name, pcap, Params, summary inits) for each amneziawg-go capture in vdir."""
    vdir = pathlib.Path(vdir)
    for pc in sorted(vdir.glob("*.pcap")):
        name = pc.stem
        conf = vdir / f"{name}-A.conf"
        if not conf.exists():
            continue
        p = Params.from_conf(conf.read_text())
        summ = vdir / f"{name}.summary.txt"
        inits = None
        if summ.exists():
            inits = len(re.findall(r"^\s*\d+\s.*\binit\b", summ.read_text(), re.M))
        yield name, pc, p, inits


# ---- report --------------------------------------------------------------------------------------

def ndpi_label(flows):
    if not flows:
        return "-"
    c = collections.Counter(f"{f['proto']} ({f['confidence'] or '?'})" for f in flows)
    return ", ".join(f"{k} x{v}" if v > 1 else k for k, v in c.most_common())


def class_row(name, r):
    return (f"| {name} | {r['tshark']['wg_frames']} of {r['features']['datagrams']} | "
            f"{ndpi_label(r['ndpi'])} | {ndpi_label(r['ndpi_neutral_port'])} | "
            f"{'WireGuard' if r['signature']['flow_wireguard'] else 'no'} "
            f"({r['signature']['datagrams']}) |")


def feature_row(name, r, summary_inits=None):
    f = r["features"]
    inits = f"{f['initiations']}"
    if summary_inits is not None:
        inits += f" (summary: {summary_inits})"
    if f["duration_s"] >= 60:
        inits += f", {f['inits_per_min']:.1f}/min"
    grid = "-" if f["grid16_share"] is None else f"{100 * f['grid16_share']:.0f} %"
    gaps = f.get("idle_gaps_s")
    gaps = " ".join(f"{g:g}" for g in gaps) if gaps else "-"
    return (f"| {name} | {f['datagrams']} in {f['duration_s']:.0f} s | "
            f"{f['size_entropy_bits']:.2f} ({f['distinct_sizes']}) | {grid} | "
            f"{f['top_residue16'][0]}: {100 * f['top_residue16'][1]:.0f} % | "
            f"{100 * f['h_at_offset_share']:.0f} % | {inits} | "
            f"{' '.join(map(str, f['first_sizes'][:6]))} | {gaps} |")


CLASS_HEADER = ("| capture | tshark: WireGuard frames | nDPI | nDPI, server port moved to "
                f"{NEUTRAL_PORT} | signature: flow (datagrams matching) |\n|---|---|---|---|---|")
FEATURE_HEADER = ("| capture | datagrams | size entropy, bits (distinct sizes) | transport "
                  "datagrams on the 16-byte grid after S4 | commonest size mod 16: share of all "
                  "datagrams | datagrams with an H value at its offset | initiations | first "
                  "datagram sizes | idle: client gaps, s |\n|---|---|---|---|---|---|---|---|---|")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--vectors", help="directory of amneziawg-go captures")
    ap.add_argument("--json", help="write every result here")
    args = ap.parse_args()
    for tool in ("ndpiReader", "tshark"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: bash scripts/setup-deps.sh")
    results = {}
    crows, frows = [CLASS_HEADER], [FEATURE_HEADER]
    outdir = pathlib.Path(args.outdir)
    for meta_path in sorted(outdir.glob("*.meta.json")):
        meta = json.loads(meta_path.read_text())
        if meta.get("kind") != "scenario":
            continue
        p = Params.from_json(meta["params"])
        r = classify_capture(outdir / meta["pcap"], p, meta["server_port"],
                             phases=meta["phases"])
        r["meta"] = meta
        results[meta["mode"]] = r
        crows.append(class_row(f"awgproxy {meta['mode']}", r))
        frows.append(feature_row(f"awgproxy {meta['mode']}", r))
    if args.vectors:
        for name, pc, p, inits in vector_captures(args.vectors):
            r = classify_capture(pc, p, VECTOR_PORT)
            results[f"amneziawg-go {name}"] = r
            crows.append(class_row(f"amneziawg-go {name}", r))
            frows.append(feature_row(f"amneziawg-go {name}", r, inits))
    print("\n".join(crows) + "\n\n" + "\n".join(frows))
    labels = label_study(outdir)
    if labels:
        results["label_study"] = labels
        print()
        print(label_table(labels))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1, default=str))


# ---- accidental labels: many short sessions ------------------------------------------------------

def label_study(outdir):
    """For the *.sessions.meta.json captures: nDPI's label of every flow (one client run = one
    flow), summed over the parameter draws of each mode."""
    out = {}
    for meta_path in sorted(pathlib.Path(outdir).glob("*.meta.json")):
        meta = json.loads(meta_path.read_text())
        if meta.get("kind") != "sessions":
            continue
        path = pathlib.Path(outdir) / meta["pcap"]
        neutral = pathlib.Path(str(path) + ".neutral.pcap")
        neutral_port_copy(path, neutral, from_port=meta["server_port"])
        flows = ndpi_flows(neutral)
        neutral.unlink()
        r = out.setdefault(meta["mode"], {"sessions": 0, "flows": 0, "labels": {},
                                          "imitates": [], "build": meta.get("build", "HEAD")})
        r["sessions"] += meta["sessions"]
        r["flows"] += len(flows)
        for f in flows:
            r["labels"][f["proto"]] = r["labels"].get(f["proto"], 0) + 1
        r["imitates"].append(meta.get("imitates") or "-")
    return out


def label_table(labels):
    lines = ["| mode | build | sessions (nDPI flows) | nDPI labels | I1 imitates (per draw) |",
             "|---|---|---|---|---|"]
    for mode, r in labels.items():
        lab = ", ".join(f"{k} {v} ({100 * v / max(1, r['flows']):.0f} %)"
                        for k, v in sorted(r["labels"].items(), key=lambda kv: -kv[1]))
        imit = ", ".join(f"{k} x{v}" for k, v in collections.Counter(r["imitates"]).items())
        lines.append(f"| {mode} | {r['build']} | {r['sessions']} ({r['flows']}) | {lab} | "
                     f"{imit} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
