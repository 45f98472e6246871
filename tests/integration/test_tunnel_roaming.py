"""Endpoint roaming: a peer whose source changes keeps its session. wireguard-go in W talks to
awgproxy in A; W then moves to a new UDP port, as a NAT rebinding does; awgproxy must follow the
authenticated packets and answer at the new place without a new handshake. (An address change
is the same code path; wireguard-go's source-address caching makes it awkward to provoke here.)"""
import time

import pytest

import netns
from netns import keypair, ping
from test_tunnel_interop import A_PORT, A_TUNNEL, A_UNDERLAY, W_PORT, W_TUNNEL, W_UNDERLAY, _pair, plain_conf


@pytest.fixture
def lab(tmp_path):
    with netns.open_lab(tmp_path) as lab:
        yield lab


def test_peer_roams_to_new_port(lab):
    w, a, link = _pair(lab)
    a_priv, a_pub = keypair()
    w_priv, w_pub = keypair()
    proxy = lab.awgproxy(a, "server", plain_conf(a_priv, w_pub, listen_port=A_PORT))
    proxy.wait_log(r"event=started", timeout=10)
    wg = lab.wireguard_go(w, private_key=w_priv, listen_port=W_PORT, address=f"{W_TUNNEL}/24",
                          peers=[{"public_key": a_pub, "allowed_ips": f"{A_TUNNEL}/32",
                                  "endpoint": f"{A_UNDERLAY}:{A_PORT}"}])
    time.sleep(0.5)
    r = ping(w, A_TUNNEL, count=3, wait=2)
    assert r.received >= 2, f"{r}\n{proxy.log_tail()}"
    proxy.wait_log(rf"endpoint_learned .*{W_UNDERLAY}:{W_PORT}", timeout=5)

    handshakes = proxy.log().count("component=handshake event=completed")
    assert handshakes >= 1, proxy.log_tail()

    # New source port: awgproxy must answer the new one, within the same session.
    wg.wg("set", wg.ifname, "listen-port", "51999")
    r = ping(w, A_TUNNEL, count=3, wait=2)
    assert r.received >= 2, f"after the port change: {r}\n{proxy.log_tail()}"
    proxy.wait_log(rf"endpoint_changed .*{W_UNDERLAY}:51999", timeout=5)
    assert proxy.log().count("component=handshake event=completed") == handshakes, (
        f"the move took a new handshake; roaming must keep the session\n{proxy.log_tail()}")
    assert "event=session_start" not in proxy.log().split("endpoint_changed", 1)[1], \
        proxy.log_tail()

    assert proxy.stop() == 0, proxy.log_tail()
