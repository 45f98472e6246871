"""The SOCKS client's lab as pytest fixtures, shared by test_client_socks.py and
test_client_socks_input.py: `lab` (the namespaces) and `topo` (the client connected to a server,
wireguard-go unless the test asks for another kind), with the SOCKS timeouts they use."""
import pytest

import clientlab as cl
import netns
from clientlab import HTTP_PORT, SERVER_KINDS, SOCKS_PORT, socks5

PROXY = f"127.0.0.1:{SOCKS_PORT}"
CONNECT_TIMEOUT, TUNNEL_WAIT, HANDSHAKE_TIMEOUT = 5, 3, 3


@pytest.fixture
def lab(tmp_path):
    with netns.open_lab(tmp_path, tools=("ping", "wg", "wireguard-go", "curl")) as lab:
        yield lab


@pytest.fixture
def topo(lab, request):
    """The lab with the client connected; the server kind is the indirect parameter (default
    wireguard-go)."""
    return cl.build_topology(lab, socks=cl.socks_section(connect_timeout=CONNECT_TIMEOUT,
                                                         tunnel_wait=TUNNEL_WAIT,
                                                         handshake_timeout=HANDSHAKE_TIMEOUT),
                             server=getattr(request, "param", "wireguard-go"))


# The client matrix runs against both servers.
BOTH_SERVERS = pytest.mark.parametrize("topo", SERVER_KINDS, indirect=True)


def fetch_over_socks5(topo, host, timeout=15):
    """CONNECT host:80 by hand and GET /; returns (Reply, body or None)."""
    r = socks5(topo.c, host, HTTP_PORT, keep=True, timeout=timeout)
    if r.rep != 0 or r.sock is None:
        return r, None
    try:
        resp = cl.http_get_over(r.sock, timeout=timeout)
    except OSError as e:
        r.error = f"GET failed: {e}"
        return r, None
    finally:
        r.close()
    return r, cl.http_body(resp)[1]
