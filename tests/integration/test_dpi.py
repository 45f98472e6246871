"""The DPI evaluation at CI size (docs/dpi.md, "DPI evaluation"; the full suite is
bench/dpi/run.sh). One short capture per mode on the client-server link of clientlab's lab
(bench/dpi/dpi_lab.py: server port 39117, obfuscation as `awgproxy init-server --profile`
draws it), the client started inside the capture, then 10 SOCKS connections through the tunnel:

- plain WireGuard (our client without obfuscation, Debian's wireguard-go as the server): tshark's
  WireGuard dissector decodes every datagram, nDPI labels the flow WireGuard, our first-bytes
  signature matches; so the classifiers do work here and the checks below can fail;
- AmneziaWG 2.0, 3.x and 3.x with the QUIC transport (our server): tshark finds no WireGuard
  frame, nDPI never says WireGuard, the signature matches no datagram; with 3.x's header
  protection no datagram carries an H value at its offset;
- in every mode the 10 connections cost no handshake: the capture holds exactly one initiation
  (the client's first).

tshark and ndpiReader come from scripts/setup-deps.sh; without them the test skips by hand and
fails in CI (CI=true or AWG_NETNS_REQUIRED=1).
"""
import os
import shutil
import sys
import time

import pytest

import netns

sys.path.insert(0, str(netns.SOURCE_DIR / "bench" / "dpi"))
import dpi_analyze as da  # noqa: E402
import dpi_lab  # noqa: E402

CONNECTIONS = 10
CLASSIFIERS = ("tshark", "ndpiReader")


@pytest.fixture
def lab(tmp_path):
    missing = [t for t in CLASSIFIERS if shutil.which(t) is None]
    if missing and os.environ.get("CI") == "true":
        pytest.fail(f"missing classifier(s) {', '.join(missing)} in CI: scripts/setup-deps.sh "
                    f"installs them")
    with netns.open_lab(tmp_path, tools=("wg", "wireguard-go", "curl", "tcpdump")
                        + CLASSIFIERS) as lab:
        yield lab


@pytest.mark.parametrize("mode", ["wireguard", "awg2", "awg3", "awg3-quic"])
def test_classifiers_and_cadence(lab, tmp_path, mode):
    topo = dpi_lab.build(lab, mode)
    cap = dpi_lab.capture(topo, tmp_path / f"{mode}.pcap")
    dpi_lab.start_client(topo)
    for i in range(CONNECTIONS):
        dpi_lab.fetch(topo, i)
        time.sleep(0.2)
    cap.stop()
    r = da.classify_capture(cap.path, topo.params, topo.port)
    f, ts, sig = r["features"], r["tshark"], r["signature"]
    labels = [fl["proto"] for fl in r["ndpi"]]
    what = f"{mode} ({topo.params.obfs}): {r}"

    assert f["kinds"].get("transport", 0) >= CONNECTIONS * 4, f"the capture missed traffic: {what}"
    assert labels, f"nDPI saw no flow: {what}"
    # Cadence: the client's first handshake and nothing more, on the wire and in its log.
    assert f["initiations"] == 1, what
    assert dpi_lab.initiations_logged(topo.proxy) == 1, topo.proxy.log_tail(30)

    if mode == "wireguard":
        assert ts["wg_frames"] == f["datagrams"], what
        assert ts["by_type"].get("1") == 1 and ts["by_type"].get("2") == 1, what
        assert labels == ["WireGuard"], what
        assert sig["flow_wireguard"] and sig["datagrams"] == f["datagrams"], what
        assert f["h_at_offset_share"] == 1.0 and f["grid16_share"] == 1.0, what
    else:
        assert ts["wg_frames"] == 0, what
        assert not any("wireguard" in x.lower() for x in labels), what
        assert not sig["flow_wireguard"] and sig["datagrams"] == 0, what
        assert f["first_sizes"][0] != 148, what  # junk or an I-packet comes first
        if mode.startswith("awg3"):
            assert f["h_at_offset_share"] == 0.0, what
            assert topo.params.hp is not None, what
