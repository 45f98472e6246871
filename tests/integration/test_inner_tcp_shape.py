"""The ip transport's inner TCP looks like a Linux client's on the wire (issue 14, item 4): its
pure ACKs carry timestamps (12 bytes of options, as Linux sends by default), so a download's ACK
datagrams have the size a phone or desktop running the kernel's TCP through a stock client
makes: IPv4 20 + TCP 20 + 12 = 52 bytes inside, padded to 64 by WireGuard, 16 + 64 + 16 = 96
bytes of plain WireGuard transport (+ S4 with obfuscation). Without timestamps they were 80: a
size no Linux client sends, 25-47 % of the client's datagrams during a download.

Plain WireGuard here (the stock wireguard-go server), so the sizes are exactly those.
"""
import collections
import os
import sys

import clientlab as cl
import netns
from clientlab import T_HTTP

LINUX_ACK_DATAGRAM = 16 + 64 + 16  # WireGuard transport of a 52-byte IPv4 ACK with timestamps


def test_download_acks_have_linux_size(tmp_path):
    with netns.open_lab(tmp_path, tools=("curl", "wireguard-go", "wg")) as lab:
        topo = cl.build_topology(lab, socks=cl.socks_section(), log_level="info")
        www = topo.t.workdir / "www"
        www.mkdir(exist_ok=True)
        (www / "blob").write_bytes(os.urandom(8 << 20))
        web = netns.LoggedProcess(topo.t, [sys.executable, "-u", "-m", "http.server", "--bind",
                                           T_HTTP, "--directory", str(www), "8000"],
                                  topo.t.file("http.log"))
        lab.processes.append(web)
        web.wait_log(r"Serving HTTP", timeout=10)
        cap = netns.tcpdump(topo.c, topo.cs.ifname_a, filter=f"udp and dst port {cl.WG_PORT}")
        r = topo.curl(f"http://{T_HTTP}:8000/blob", "--socks5", f"127.0.0.1:{cl.SOCKS_PORT}",
                      "-o", "/dev/null", max_time=60)
        assert r.returncode == 0, (r.stderr, topo.logs())
        sizes = collections.Counter(len(d.payload) for d in cap.stop())
        small = {n: c for n, c in sizes.items() if n < 200}
        assert small, f"no ACK datagrams captured: {sizes.most_common(10)}"
        ack_size, count = max(small.items(), key=lambda kv: kv[1])
        assert ack_size == LINUX_ACK_DATAGRAM, f"ACK datagrams: {sorted(small.items())}"
        # lwIP ACKs every few segments and stretches under load: tens, not thousands, per 8 MiB.
        assert count >= 10, sizes.most_common(5)  # fewer under the sanitizers
        assert small.get(80, 0) == 0, f"ACKs without timestamps: {sorted(small.items())}"
