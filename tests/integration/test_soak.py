"""CI's short soak (issue 10 item 4): tests/integration/soak.py for AWG_SOAK_SECONDS (90 s by
default, 60 s under the sanitizers) per transport, with loss switched on and off, a reload and
a server restart. Nothing may come back altered or fail outside the restart's window, every
kind of traffic must have moved, and the client's memory and descriptors must not grow without
bound."""
import os

import pytest

import soak
from test_quic_transport import build, lab  # noqa: F401  (the fixture)


@pytest.mark.parametrize("transport", ["ip", "quic"])
def test_soak(lab, transport):
    default = 60 if "ASAN_OPTIONS" in os.environ else 90
    seconds = max(60.0, float(os.environ.get("AWG_SOAK_SECONDS", default)))
    topo = build(lab, transport=transport, log_level="info", server_log_level="info",
                 impair={"both.delay_ms": 2})
    if transport == "quic":
        topo.wait_quic(timeout=30)
    s = soak.Soak(topo, seconds).run()
    report = soak.format_summary(s)
    print(report)
    assert s["errors"] == 0, f"{report}\n{topo.logs()}"
    assert s["bulk_bytes"] > 0 and s["requests"] > 0 and s["datagrams"] > 0, report
    assert s["idle_checked"] == 2 * soak.IDLE_STREAMS, report
    rss0, peak, rss1 = s["client_rss_mib"]
    if "ASAN_OPTIONS" in os.environ:
        # AddressSanitizer keeps freed memory in quarantine (256 MiB by default): RSS says
        # nothing about leaks there, LeakSanitizer at exit does
        assert peak < 1024, report
    else:
        assert rss1 < rss0 + 64 and peak < 512, report
    assert s["client_fds"][1] <= s["client_fds"][0] + 8, report
    assert topo.proxy.alive() and topo.server.alive(), topo.logs()
