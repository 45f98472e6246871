"""The ip transport (lwIP TCP inside the tunnel) through a lossy, reordering path (issue 10,
item 2): both lwIP senders, the client's (uploads) and the server's (downloads), repair several
holes per window from SACK and keep a window floor from their measured delivery rate
(src/device/tcp_recovery.c, src/device/tcp_bw_floor.c). Both move segments between lwIP's
queues and raise its window, so this checks every byte, in both directions at once, on many
streams, through the impairment relay dropping 2 % and reordering 5 % of the datagrams each way.
How fast it goes is measured by bench/ (docs/benchmarks.md), not asserted here; that it finishes
at all within the deadline is (before, each loss cost a round of Reno halving or a timeout:
0.6 MB/s for one stream).
"""
import os

import pytest

from integrity import run_integrity
from test_quic_transport import LOSSY, build, lab  # noqa: F401  (the fixture)


@pytest.mark.parametrize("path", ["lossy", "lossonly"])
def test_parallel_streams_over_ip_through_loss(lab, path):
    streams = int(os.environ.get("AWG_IP_LOSS_STREAMS", "20"))
    mb = float(os.environ.get("AWG_INTEGRITY_MB", "5"))
    impair = LOSSY if path == "lossy" else {"both.loss": 0.02}
    topo = build(lab, transport="ip", log_level="info", impair=impair)
    elapsed, stalled, prog, errors, samples = run_integrity(topo, streams, int(mb * (1 << 20)), 600)
    done = sum(1 for p in prog if p[2])
    print(f"{streams} streams x {mb} MB each way over lwIP ({path}): {done} verified in "
          f"{elapsed:.1f} s ({streams * mb / elapsed:.1f} MB/s each way)")
    assert not errors and not stalled and done == streams, (errors[:5], stalled, topo.logs())
    st = topo.relay.stats()
    assert all(st[d]["dropped_loss"] > 0 for d in ("up", "down")), st
    assert "component=quic event=connected" not in topo.proxy.log()
