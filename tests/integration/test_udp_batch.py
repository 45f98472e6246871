"""Batched UDP I/O of the tunnel (issue 15): sealed datagrams leave in one sendmmsg per loop turn,
runs of equal-size datagrams as one UDP GSO send, and the receiver takes UDP GRO aggregates
apart. Bulk transfers in both directions (echo) through awgproxy client -> awgproxy server must
arrive byte-exact with the offloads on (the default on Linux) and with the portable paths forced
(AWG_UDP_NO_GSO=1, AWG_UDP_NO_GRO=1). Topology: clientlab.py. The batch layer itself (run
splitting, short last segment, per-destination order, the fallback when the kernel refuses GSO)
is unit-tested in tests/unit/test_udp_batch.c on loopback.
"""
import os
import re

import pytest

import clientlab as cl
import netns
from integrity import run_integrity

MB = int(os.environ.get("AWG_UDP_BATCH_MB", "16"))  # per stream and direction; 2 streams


@pytest.fixture
def lab(tmp_path):
    with netns.open_lab(tmp_path, tools=("curl",)) as lab:
        yield lab


def offload_state(log):
    m = re.search(r"event=listening.*udp_gso=(\w+).*udp_gro=(\w+)", log)
    assert m, "no listening line with the UDP offload state"
    return m.group(1), m.group(2)


@pytest.mark.parametrize("mode", ["offload", "portable"])
def test_bulk_both_directions(lab, mode, monkeypatch):
    """2 SOCKS streams send MB MB each of random bytes to T's echo and read them back at the same
    time (so both tunnel directions carry bulk data at once); every byte is compared."""
    if mode == "portable":
        monkeypatch.setenv("AWG_UDP_NO_GSO", "1")
        monkeypatch.setenv("AWG_UDP_NO_GRO", "1")
    else:
        monkeypatch.delenv("AWG_UDP_NO_GSO", raising=False)
        monkeypatch.delenv("AWG_UDP_NO_GRO", raising=False)
    topo = cl.build_topology(lab, socks=cl.socks_section(connect_timeout=15, tunnel_wait=10),
                             log_level="info", server="awgproxy")
    want = ("on", "on") if mode == "offload" else ("off", "off")
    assert offload_state(topo.proxy.log()) == want, topo.logs()
    assert offload_state(topo.server.log()) == want, topo.logs()

    nbytes = MB << 20
    elapsed, stalled, prog, errors, samples = run_integrity(topo, 2, nbytes, 240)
    ok = sum(1 for p in prog if p[2])
    assert not errors and not stalled and ok == 2, (
        f"{mode}: {ok} of 2 streams verified in {elapsed:.1f} s; errors {errors[:5]}; "
        f"progress {samples}\n{topo.logs()}")
    for who in (topo.proxy, topo.server):
        log = who.log()
        # The kernel took every GSO send (no fallback was needed on veth).
        assert "event=gso_disabled" not in log, topo.logs()
        assert who.alive(), topo.logs()
