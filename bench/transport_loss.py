"""One download through awgproxy client -> awgproxy server over a path made bad by the
impairment relay (tests/impair): the by-hand probe behind docs/benchmarks.md's "What limits A3"
table. Each case is TRANSPORT-CONGESTION-KIND, e.g. quic-cubic-lossy:
  TRANSPORT  quic | ip            ([Peer] Transport)
  CONGESTION bbr | cubic | reno   ([Peer] Congestion on both ends; ignored by ip)
  KIND       clean | lossy | lossonly | reorderonly   (all with 5 ms delay each way;
             lossy = 2 % loss + 5 % reordering held 5 ms, each way)
             | long | longlossy   (75 ms each way, a server abroad; longlossy adds 2 % loss)

  sudo CASES=quic-bbr-clean,quic-bbr-lossy MB=30 \
       /usr/bin/python3 -m pytest -q -s -p no:cacheprovider bench/transport_loss.py | grep RESULT

AWGPROXY_BIN selects the binary (default build/awgproxy). The target serves MB MiB of random
bytes with Python's http.server; curl downloads it through SOCKS5 in the client's namespace.
"""
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "integration"))

import pytest  # noqa: E402

import clientlab as cl  # noqa: E402
import netns  # noqa: E402
from test_quic_transport import METRICS_PORT, build  # noqa: E402

DELAY = {"both.delay_ms": 5}
KINDS = {
    "clean": DELAY,
    "lossy": {**DELAY, "both.loss": 0.02, "both.reorder": 0.05, "both.reorder_ms": 5},
    "lossonly": {**DELAY, "both.loss": 0.02},
    "reorderonly": {**DELAY, "both.reorder": 0.05, "both.reorder_ms": 5},
    "long": {"both.delay_ms": 75},
    "longlossy": {"both.delay_ms": 75, "both.loss": 0.02},
}
CASES = os.environ.get("CASES", "quic-bbr-clean,quic-bbr-lossy").split(",")


SERVER_METRICS = 9500  # on S's loopback


def sender_figures(topo):
    """What the server, the download's sender, counted: QUIC's losses and the tunnel's repair."""
    r = topo.s.run(["curl", "-sS", "--max-time", "5", f"http://127.0.0.1:{SERVER_METRICS}/metrics"],
                   check=False)
    keep = ("awgproxy_quic_packets_sent_total", "awgproxy_quic_packets_lost_total",
            "awgproxy_repair_total")
    return ", ".join(line.replace("awgproxy_", "") for line in r.stdout.splitlines()
                     if line.startswith(keep))


def receiver_figures(topo):
    """What the client, the download's receiver, counted of the tunnel's repair."""
    r = topo.c.run(["curl", "-sS", "--max-time", "5", f"http://127.0.0.1:{METRICS_PORT}/metrics"],
                   check=False)
    return ", ".join(line.replace("awgproxy_", "") for line in r.stdout.splitlines()
                     if line.startswith("awgproxy_repair_total"))


def download(lab, topo, mb):
    """Seconds for curl in C to download mb MiB of random bytes from T (Python's http.server)
    through the client's SOCKS5 port."""
    www = topo.t.workdir / "www"
    www.mkdir(exist_ok=True)
    (www / "blob").write_bytes(os.urandom(mb << 20))
    web = netns.LoggedProcess(topo.t, [sys.executable, "-u", "-m", "http.server", "--bind",
                                       cl.T_HTTP, "--directory", str(www), "8000"],
                              topo.t.file("http.log"))
    lab.processes.append(web)
    web.wait_log(r"Serving HTTP", timeout=10)
    t0 = time.monotonic()
    r = topo.c.run(["curl", "-sS", "--max-time", "280", "--socks5", "127.0.0.1:1080",
                    "-o", "/dev/null", f"http://{cl.T_HTTP}:8000/blob"], check=False, timeout=300)
    took = time.monotonic() - t0
    assert r.returncode == 0, f"{r.stderr}\n{topo.logs()}"
    return took


@pytest.mark.parametrize("case", CASES)
def test_download(tmp_path, case):
    transport, cc, kind = case.split("-")
    mb = int(os.environ.get("MB", "30"))
    with netns.open_lab(tmp_path, tools=("curl",)) as lab:
        topo = build(lab, transport=transport, log_level="info", impair=KINDS[kind],
                     congestion=cc, server_log_level="info",
                     # the server's [Peer] (the client's): the downloads' controller
                     server_extra=f"Congestion = {cc}\n"
                                  f"\n[Metrics]\nListen = 127.0.0.1:{SERVER_METRICS}\n")
        if transport == "quic":
            topo.wait_quic(timeout=30)
        took = download(lab, topo, mb)
        print(f"\nRESULT {case}: {mb} MiB in {took:.1f} s = {mb / took:.2f} MiB/s; "
              f"relay {topo.relay.stats()}; server (the sender) {sender_figures(topo)}; "
              f"client (the receiver) {receiver_figures(topo)}")
