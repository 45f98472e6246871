"""Plain WireGuard interoperability: awgproxy against the reference userspace implementation
(wireguard-go), in network namespaces joined by a veth pair.

    namespace W: wireguard-go, tunnel 10.77.0.1/24, underlay 192.168.77.1
    namespace A: awgproxy (no TUN: its lwIP stack owns 10.77.0.2 and answers ICMP echo),
                 underlay 192.168.77.2

Contract with the engine (what these tests rely on):

* `netns.fast_timers(conf)` adds the timing keys (RekeyAfterTime = 4, RejectAfterTime = 8,
  RekeyTimeout = 1, KeepaliveTimeout = 2, MaxHandshakeAttempts = 10) to a config, so a rekey can
  be observed in seconds; they change nothing on the wire. Without them the normal values apply.
* The log (LOG_LEVEL=debug, logfmt) has one line per completed handshake that contains the words
  "handshake" and "complete(d)" and the peer's fingerprint (first 8 characters of its base64 public
  key, as key_fingerprint() prints it), e.g.
  `… component=handshake event=completed peer=f+2up9Y6 …`. Matched case-insensitively.
* SIGTERM stops awgproxy with exit code 0.
* No private key appears in the log, in base64 or hex.

test_harness_wireguard_go_pair needs no awgproxy: it checks the lab itself (namespaces, veth,
wireguard-go, tcpdump, pcap reader) and must always pass where namespaces work.
"""
import subprocess
import time

import pytest

import netns
from netns import PingResult, keypair, ping, ping_argv

W_UNDERLAY, A_UNDERLAY = "192.168.77.1", "192.168.77.2"
W_TUNNEL, A_TUNNEL = "10.77.0.1", "10.77.0.2"
W_PORT, A_PORT = 51820, 51820


@pytest.fixture
def lab(tmp_path):
    with netns.open_lab(tmp_path) as lab:
        yield lab


def plain_conf(priv, peer_pub, endpoint=None, keepalive=None, listen_port=None):
    text = f"[Interface]\nPrivateKey = {priv}\nAddress = {A_TUNNEL}/24\n"
    if listen_port:
        text += f"ListenPort = {listen_port}\n"
    text += f"\n[Peer]\nPublicKey = {peer_pub}\nAllowedIPs = {W_TUNNEL}/32\n"
    if endpoint:
        text += f"Endpoint = {endpoint}\n"
    if keepalive:
        text += f"PersistentKeepalive = {keepalive}\n"
    return text


def describe(dgs, limit=30):
    t0 = dgs[0].time if dgs else 0
    rows = [f"{d.time - t0:7.3f} {d.src}:{d.sport} > {d.dst}:{d.dport} len={len(d.payload):4d} "
            f"{d.payload[:8].hex()}" for d in dgs[:limit]]
    return "\n".join(rows + ([f"... {len(dgs) - limit} more"] if len(dgs) > limit else []))


def check_plain_wire(dgs, initiator_ip):
    """Vanilla WireGuard framing: 148-byte type-1 initiation from the initiator, 92-byte type-2
    response back, then type-4 transport of 32 + 16k bytes."""
    assert dgs, "nothing captured"
    first = dgs[0]
    assert first.src == initiator_ip, f"the first datagram is not from {initiator_ip}:\n" \
                                      f"{describe(dgs)}"
    assert len(first.payload) == 148 and first.payload[:4] == b"\x01\0\0\0", \
        describe(dgs)
    resp = [d for d in dgs if d.src != initiator_ip]
    assert resp and len(resp[0].payload) == 92 and resp[0].payload[:4] == b"\x02\0\0\0", \
        describe(dgs)
    for d in dgs:
        t = d.payload[:4]
        if t == b"\x04\0\0\0":
            assert len(d.payload) >= 32 and len(d.payload) % 16 == 0, describe([d])
        else:
            assert (t, len(d.payload)) in ((b"\x01\0\0\0", 148), (b"\x02\0\0\0", 92),
                                           (b"\x03\0\0\0", 64)), f"not WireGuard: {describe([d])}"
    assert any(d.payload[:4] == b"\x04\0\0\0" and d.src == initiator_ip for d in dgs)
    assert any(d.payload[:4] == b"\x04\0\0\0" and d.src != initiator_ip for d in dgs)


def _pair(lab):
    w, a = lab.netns("w"), lab.netns("a")
    link = lab.veth(w, a, f"{W_UNDERLAY}/24", f"{A_UNDERLAY}/24")
    return w, a, link


def _assert_no_keys(proxy, *privs):
    leaked = proxy.leaked_keys(*privs)
    assert not leaked, f"private key(s) found in the awgproxy log {proxy.log_path}"


# ---- the harness itself --------------------------------------------------------------------------


def test_harness_wireguard_go_pair(lab):
    """wireguard-go <-> wireguard-go through the lab: proves namespaces, veth, wireguard-go
    configuration, ping and the capture/pcap path before any awgproxy test is trusted."""
    w, a = lab.netns("w"), lab.netns("a")
    link = lab.veth(w, a, f"{W_UNDERLAY}/24", f"{A_UNDERLAY}/24", addr6_a="fd77::1",
                    addr6_b="fd77::2")
    # Neighbour discovery on a fresh veth can take a moment on a loaded machine: a few tries.
    r = ping(w, link.ip6_b, count=5, wait=2, interval=0.5)
    assert r.received >= 1, f"IPv6 over the veth: {r}"
    k_w, k_a = keypair(), keypair()
    wg_w = lab.wireguard_go(w, private_key=k_w[0], listen_port=W_PORT,
                            address=f"{W_TUNNEL}/24",
                            peers=[{"public_key": k_a[1], "allowed_ips": f"{A_TUNNEL}/32"}])
    cap = lab.tcpdump(w, link.ifname_a, filter="udp")
    wg_a = lab.wireguard_go(a, private_key=k_a[0], listen_port=51821,
                            address=f"{A_TUNNEL}/24",
                            peers=[{"public_key": k_w[1], "allowed_ips": f"{W_TUNNEL}/32",
                                    "endpoint": f"{W_UNDERLAY}:{W_PORT}"}])
    assert wg_w.public_key == k_w[1] and wg_a.public_key == k_a[1]
    r = ping(a, W_TUNNEL, count=3, wait=2)
    assert r.rc == 0 and r.received >= 2, f"{r}\n{lab.logs()}"
    assert wg_w.wait_handshake(k_a[1], timeout=5) > 0
    assert wg_a.latest_handshake(k_w[1]) > 0
    r = ping(w, A_TUNNEL, count=2, wait=2)  # and back, over the learned endpoint
    assert r.rc == 0, r
    dgs = cap.stop()
    check_plain_wire(dgs, A_UNDERLAY)
    assert wg_a.stop() == 0 or wg_a.returncode is not None
    assert not wg_a.alive()


# ---- awgproxy against wireguard-go ---------------------------------------------------------------


def test_awgproxy_initiates(lab):
    """awgproxy has the Endpoint and PersistentKeepalive = 1: it handshakes at start; then
    wireguard-go pings awgproxy's tunnel address."""
    w, a, link = _pair(lab)
    a_priv, a_pub = keypair()
    wg = lab.wireguard_go(w, listen_port=W_PORT, address=f"{W_TUNNEL}/24",
                          peers=[{"public_key": a_pub, "allowed_ips": f"{A_TUNNEL}/32"}])
    cap = lab.tcpdump(w, link.ifname_a, filter="udp")
    proxy = lab.awgproxy(a, "client", plain_conf(a_priv, wg.public_key,
                                                 endpoint=f"{W_UNDERLAY}:{W_PORT}", keepalive=1))
    try:
        wg.wait_handshake(a_pub, timeout=10)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{proxy.log_tail()}") from None
    r = ping(w, A_TUNNEL, count=3, wait=2)
    assert r.rc == 0 and r.received >= 2, f"{r}\n{proxy.log_tail()}"
    proxy.wait_handshake(wg.public_key, timeout=5)
    dgs = cap.stop()
    check_plain_wire(dgs, A_UNDERLAY)
    assert proxy.alive(), proxy.log_tail()
    _assert_no_keys(proxy, a_priv, wg.private_key)
    assert proxy.stop() == 0, proxy.log_tail()


def test_wireguard_go_initiates(lab):
    """awgproxy has no Endpoint (it listens); the first ping from W triggers wireguard-go's
    handshake, awgproxy answers it and the echo replies come back."""
    w, a, link = _pair(lab)
    a_priv, a_pub = keypair()
    w_priv, w_pub = keypair()
    proxy = lab.awgproxy(a, "server", plain_conf(a_priv, w_pub, listen_port=A_PORT))
    proxy.wait_log(r"event=started", timeout=10)
    wg = lab.wireguard_go(w, private_key=w_priv, listen_port=W_PORT, address=f"{W_TUNNEL}/24",
                          peers=[{"public_key": a_pub, "allowed_ips": f"{A_TUNNEL}/32",
                                  "endpoint": f"{A_UNDERLAY}:{A_PORT}"}])
    time.sleep(0.5)  # let the UDP socket come up after the "started" line
    r = ping(w, A_TUNNEL, count=3, wait=2)
    assert r.rc == 0 and r.received >= 2, f"{r}\n{proxy.log_tail()}"
    assert wg.latest_handshake(a_pub) > 0
    proxy.wait_handshake(wg.public_key, timeout=5)
    # A bigger echo (1200 + 28 bytes inner) exercises the data path beyond one small packet.
    r = ping(w, A_TUNNEL, count=2, wait=2, size=1200)
    assert r.rc == 0, f"1228-byte ping failed: {r}\n{proxy.log_tail()}"
    _assert_no_keys(proxy, a_priv, wg.private_key)
    assert proxy.stop() == 0, proxy.log_tail()


def test_rekey_with_fast_timers(lab):
    """With netns.FAST_TIMERS in its config (rekey after 4 s) a 15 s ping stream from W survives
    several key rotations: at most 5 % loss, and W records a newer handshake during the run."""
    w, a, link = _pair(lab)
    a_priv, a_pub = keypair()
    wg = lab.wireguard_go(w, listen_port=W_PORT, address=f"{W_TUNNEL}/24",
                          peers=[{"public_key": a_pub, "allowed_ips": f"{A_TUNNEL}/32"}])
    proxy = lab.awgproxy(a, "client", netns.fast_timers(
        plain_conf(a_priv, wg.public_key, endpoint=f"{W_UNDERLAY}:{W_PORT}", keepalive=1)))
    try:
        first = wg.wait_handshake(a_pub, timeout=10)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{proxy.log_tail()}") from None

    count = 75
    p = w.popen(ping_argv(A_TUNNEL, count=count, wait=1, interval=0.2),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = {first}
    deadline = time.monotonic() + count * 0.2 + 20
    while p.poll() is None and time.monotonic() < deadline:
        seen.add(wg.latest_handshake(a_pub))
        time.sleep(0.5)
    if p.poll() is None:
        p.kill()
    out, err = p.communicate(timeout=10)
    w.forget(p)
    seen.add(wg.latest_handshake(a_pub))
    r = PingResult(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    assert r.transmitted == count, f"ping did not run to completion: {r}"
    assert r.lost <= count * 5 // 100, (
        f"lost {r.lost}/{count} echo replies across rekeys (max 5 %)\n{r}\n{proxy.log_tail()}")
    later = sorted(t for t in seen if t > first)
    assert later, (f"W's latest-handshake never changed from {first} during {count * 0.2:.0f} s "
                   f"with REKEY_AFTER_TIME = 4 s: no rekey happened (RekeyAfterTime "
                   f"honoured?)\n{proxy.log_tail()}")
    assert proxy.handshake_completed_lines(wg.public_key), (
        f"no 'handshake … completed' log line naming peer {wg.public_key[:8]}\n{proxy.log_tail()}")
    assert proxy.alive(), proxy.log_tail()
    _assert_no_keys(proxy, a_priv, wg.private_key)
    assert proxy.stop() == 0, proxy.log_tail()
