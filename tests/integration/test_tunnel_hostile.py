"""A listening awgproxy under hostile input stays silent, keeps running and still serves its peer.

    namespace S: awgproxy server, ListenPort 51820, underlay 192.168.55.1, tunnel 10.55.0.1
    namespace P: the prober, underlay 192.168.55.2

Phase 1 (everything from P, capture on S's veth): garbage datagrams of every length 0..1500;
datagrams shaped like each message class (exact size, header in range) with random contents; the
first packets of other protocols a prober tries (DNS, QUIC Initial, STUN, plain WireGuard,
OpenVPN);
replays of every datagram of a recorded session (tests/vectors) whose initiator is NOT a peer of S
(S runs with the recorded responder's private key, so the replayed initiation has a valid mac1
and fails only at the unknown static key); a live initiator with an unknown key; a peer with the
right key but mismatched obfuscation (S1-S4 / H1-H4 differ; in "awg" mode also a vanilla
WireGuard peer). S must send nothing back to P, must stay up, and must log the failed handshake
(a line with "handshake" and one of fail/invalid/unknown/reject, not from the config summary).

Phase 2: the correct peer (wireguard-go in "plain" mode, awgproxy in "awg" mode) completes a
handshake with S (and, plain, pings S's tunnel address).

Both phases run twice: S with plain WireGuard settings, and S with the awg-demo obfuscation.
"""
import os
import random
import re
import struct
import time

import pytest

import netns
import pcap
from conftest import SOURCE_DIR
from netns import keypair, ping, send_udp

VECTORS = SOURCE_DIR / "tests" / "vectors"
S_UNDERLAY, P_UNDERLAY = "192.168.55.1", "192.168.55.2"
S_PORT = 51820
S_TUNNEL, PEER_TUNNEL = "10.55.0.1", "10.55.0.2"

# Per mode: S's private key and the vector whose recorded responder it is; obfuscation settings.
MODES = {
    "plain": dict(
        vector="awg-default",
        priv="yNjnvr9ZzdFx9QtHueMq6I7YrKOCKdvzZXjvPPVG4mM=",  # awg-default B
        pub="Oc0QUC+UmfrEGX7aIy1VRgKI6f7J0IhSrNfAOLZCKwI=",
        s=(0, 0, 0, 0), h=((1, 1), (2, 2), (3, 3), (4, 4)), obf="",
    ),
    "awg": dict(
        vector="awg-demo",
        priv="0Nz344uVnL5E3MuUlx/A0oG5rXmMxgTnh6qukEEEOXk=",  # awg-demo B
        pub="vameuq1G3A/VgRXmv6boolzOzoadpgtEj1JKzG+WkDw=",
        s=(15, 18, 20, 23),
        h=((100000, 100100), (200000, 200100), (300000, 300100), (400000, 400100)),
        obf="Jc = 4\nJmin = 40\nJmax = 70\nS1 = 15\nS2 = 18\nS3 = 20\nS4 = 23\n"
            "H1 = 100000-100100\nH2 = 200000-200100\nH3 = 300000-300100\nH4 = 400000-400100\n"
            "I1 = <b 0xc0ffee><r 16><t>\n",
    ),
}


@pytest.fixture
def lab(tmp_path):
    with netns.open_lab(tmp_path) as lab:
        yield lab


# Obfuscation that matches neither mode (every S and H differs).
MISMATCHED_OBF = ("Jc = 2\nJmin = 40\nJmax = 60\nS1 = 16\nS2 = 19\nS3 = 21\nS4 = 24\n"
                  "H1 = 110000-110100\nH2 = 210000-210100\nH3 = 310000-310100\n"
                  "H4 = 410000-410100\n")

FAILURE_LINE = re.compile(r"^(?=.*handshake)(?=.*(?:fail|invalid|unknown|reject)).*$",
                          re.IGNORECASE | re.MULTILINE)


def proxy_conf(priv, peer_pub, peer_allowed, address, obf="", listen_port=None, endpoint=None,
               keepalive=None, socks_port=None):
    text = f"[Interface]\nPrivateKey = {priv}\nAddress = {address}\n"
    if listen_port:
        text += f"ListenPort = {listen_port}\n"
    text += obf + f"\n[Peer]\nPublicKey = {peer_pub}\nAllowedIPs = {peer_allowed}\n"
    if endpoint:
        text += f"Endpoint = {endpoint}\n"
    if keepalive:
        text += f"PersistentKeepalive = {keepalive}\n"
    if socks_port:
        text += f"\n[Socks]\nListen = 127.0.0.1:{socks_port}\n"
    return text


def garbage(mode, rng):
    """Random datagrams of every length 0..1500, plus ones shaped like each message class."""
    m = MODES[mode]
    s1, s2, s3, s4 = m["s"]
    out = [rng.randbytes(n) for n in range(0, 1501)]

    def typed(pad, hrange, body_len):
        return rng.randbytes(pad) + struct.pack("<I", rng.randint(*hrange)) + rng.randbytes(
            body_len - 4)

    for _ in range(3):
        out.append(typed(s1, m["h"][0], 148))  # initiation with a bad mac1
        out.append(typed(s2, m["h"][1], 92))   # response for no initiation of ours
        out.append(typed(s3, m["h"][2], 64))   # cookie reply for nothing
        for n in (16, 31, 32, 48, 64, 128, 1452):
            out.append(typed(s4, m["h"][3], n))  # transport: short, keepalive-sized, data
    out.append(rng.randbytes(s4) + struct.pack("<I", m["h"][3][0]) + b"\0" * 28)  # index 0
    return out + protocol_probes(rng)


def protocol_probes(rng):
    """What an active prober sends first to a UDP port it wants to classify: a DNS query, a QUIC
    Initial (version 1, padded to 1200 bytes), a STUN binding request, a plain WireGuard
    initiation (type 1, random body: its mac1 cannot be right), an OpenVPN hard reset."""
    dns = (rng.randbytes(2) + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
           + b"\x07example\x03com\x00\x00\x01\x00\x01")
    quic = (b"\xc3\x00\x00\x00\x01\x08" + rng.randbytes(8) + b"\x00\x00\x44\xce"
            + rng.randbytes(1200 - 18))
    stun = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + rng.randbytes(12)
    wg_initiation = b"\x01\x00\x00\x00" + rng.randbytes(144)
    openvpn = b"\x38" + rng.randbytes(13)
    return [dns, quic, stun, wg_initiation, openvpn] * 3


def replayed(mode):
    """Every datagram the recorded initiator sent (I-packets, junk, initiation, transport)."""
    dgs = pcap.read_udp(VECTORS / f"{MODES[mode]['vector']}.pcap")
    first_src = dgs[0].src
    return [d.payload for d in dgs if d.src == first_src]


def failure_lines(proxy):
    return [m.group(0) for m in FAILURE_LINE.finditer(proxy.log())
            if "component=config" not in m.group(0)]


def from_s(dgs):
    return [d for d in dgs if d.src == S_UNDERLAY]


def describe(dgs, limit=20):
    rows = [f"{d.src}:{d.sport} > {d.dst}:{d.dport} len={len(d.payload)} {d.payload[:8].hex()}"
            for d in dgs[:limit]]
    return "\n".join(rows + ([f"... {len(dgs) - limit} more"] if len(dgs) > limit else []))


@pytest.mark.parametrize("mode", ["plain", "awg"])
def test_hostile_input_gets_no_reply(lab, mode):
    m = MODES[mode]
    s, p = lab.netns("s"), lab.netns("p")
    link = lab.veth(s, p, f"{S_UNDERLAY}/24", f"{P_UNDERLAY}/24")
    good_priv, good_pub = keypair()
    server = lab.awgproxy(s, "server", proxy_conf(
        m["priv"], good_pub, f"{PEER_TUNNEL}/32", f"{S_TUNNEL}/24", obf=m["obf"],
        listen_port=S_PORT))
    server.wait_log(r"event=started", timeout=10)
    time.sleep(0.5)
    assert server.alive(), server.log_tail()
    endpoint = f"{S_UNDERLAY}:{S_PORT}"

    # ---- phase 1: hostile traffic, S must stay silent
    cap = lab.tcpdump(s, link.ifname_a, filter="udp")
    rng = random.Random(os.getpid() ^ int(time.time()))
    bad = []
    try:
        n, garbage_port = send_udp(p, S_UNDERLAY, S_PORT, garbage(mode, rng))
        assert n > 1500, f"only {n} garbage datagrams sent"
        replay = replayed(mode)
        n, replay_port = send_udp(p, S_UNDERLAY, S_PORT, replay, gap=0.001)
        assert n == len(replay)

        ports = {}
        # an initiator whose key S does not know
        stranger_priv, stranger_pub = keypair()
        if mode == "plain":
            bad.append(lab.wireguard_go(p, private_key=stranger_priv, listen_port=51901, peers=[
                {"public_key": m["pub"], "endpoint": endpoint, "allowed_ips": f"{S_TUNNEL}/32",
                 "persistent_keepalive": 1}]))
        else:
            bad.append(lab.awgproxy(p, "client", proxy_conf(
                stranger_priv, m["pub"], f"{S_TUNNEL}/32", f"{PEER_TUNNEL}/24", obf=m["obf"],
                listen_port=51901, endpoint=endpoint, keepalive=1, socks_port=11081)))
        ports[51901] = "initiator with an unknown key"
        # the right key, the wrong obfuscation
        bad.append(lab.awgproxy(p, "client", proxy_conf(
            good_priv, m["pub"], f"{S_TUNNEL}/32", f"{PEER_TUNNEL}/24",
            obf=MISMATCHED_OBF, listen_port=51902, endpoint=endpoint, keepalive=1,
            socks_port=11082)))
        ports[51902] = "right key, mismatched S1-S4/H1-H4"
        if mode == "awg":
            bad.append(lab.wireguard_go(p, private_key=good_priv, listen_port=51903, peers=[
                {"public_key": m["pub"], "endpoint": endpoint, "allowed_ips": f"{S_TUNNEL}/32",
                 "persistent_keepalive": 1}]))
            ports[51903] = "right key, vanilla WireGuard"

        def all_tried():
            seen = {d.sport for d in cap.datagrams() if d.src == P_UNDERLAY}
            return all(pt in seen for pt in ports)

        deadline = time.monotonic() + 15
        while not all_tried() and time.monotonic() < deadline:
            time.sleep(0.25)
        time.sleep(6)  # a retry from every bad initiator (REKEY_TIMEOUT 5 s)
    finally:
        dgs = cap.stop()
        for h in bad:
            h.stop()

    seen = {d.sport for d in dgs if d.src == P_UNDERLAY}
    for pt, what in ports.items():
        assert pt in seen, f"the {what} (port {pt}) never sent anything: harness problem\n" \
                           f"{lab.logs()}"
    assert garbage_port in seen and replay_port in seen
    replies = from_s(dgs)
    assert not replies, (f"S answered hostile input ({len(replies)} datagrams):\n"
                         f"{describe(replies)}\n{server.log_tail()}")
    assert server.alive(), f"S died under hostile input\n{server.log_tail()}"
    fails = failure_lines(server)
    assert fails, ("S did not log the failed handshakes (replayed initiation from an unknown peer, "
                   "initiator with an unknown key): expected a line with 'handshake' and "
                   f"fail/invalid/unknown/reject\n{server.log_tail(60)}")
    # ... and the line says where the attempt came from (its source port at least).
    for port, what in ((51901, "initiator with an unknown key"),
                       (replay_port, "replayed initiation from a non-peer")):
        assert any(f":{port}" in line for line in fails), (
            f"no handshake-failure line for the {what} (from {P_UNDERLAY}:{port}):\n"
            + "\n".join(fails[:20]))
    assert not server.leaked_keys(m["priv"], good_priv, stranger_priv), "private key in S's log"

    # ---- phase 2: the correct peer still gets through
    cap = lab.tcpdump(s, link.ifname_a, filter="udp")
    try:
        if mode == "plain":
            good = lab.wireguard_go(p, private_key=good_priv, listen_port=51905,
                                    address=f"{PEER_TUNNEL}/24", peers=[
                                        {"public_key": m["pub"], "endpoint": endpoint,
                                         "allowed_ips": f"{S_TUNNEL}/32"}])
            r = ping(p, S_TUNNEL, count=3, wait=2)
            assert r.rc == 0 and r.received >= 2, f"{r}\n{server.log_tail()}"
            assert good.latest_handshake(m["pub"]) > 0
        else:
            good = lab.awgproxy(p, "client", proxy_conf(
                good_priv, m["pub"], f"{S_TUNNEL}/32", f"{PEER_TUNNEL}/24", obf=m["obf"],
                listen_port=51905, endpoint=endpoint, keepalive=1, socks_port=11085))
            good.wait_handshake(m["pub"], timeout=10)
        server.wait_handshake(good_pub, timeout=10)
    finally:
        dgs = cap.stop()
    assert any(d.dport == 51905 for d in from_s(dgs)), (
        f"S sent nothing to the correct peer:\n{describe(dgs)}")
    assert all(d.dport == 51905 for d in from_s(dgs)), (
        f"S sent to someone other than the correct peer:\n{describe(from_s(dgs))}")
    assert server.alive(), server.log_tail()
    assert server.stop() == 0, server.log_tail()
