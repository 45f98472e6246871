"""The lab set-up bench/socks_bench.py and bench/server_bench.py share (issue 15 item 7): the
three namespaces C (clients) - S (server) - T (target) joined by two veth links, the same sysctl
tuning in each, /proc readers, the machine line printed above every table, and the main-program
frame (root check, work directory, signals that unwind through the clean-up).

    C  192.0.2.2     --veth 192.0.2.0/24--     S  192.0.2.1 / 198.51.100.1
                                               --veth 198.51.100.0/24--   T  198.51.100.2

What each benchmark runs on top (routes, forwarding, the proxies) stays in its own script: this
module only holds what both did identically before.
"""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
import netns  # noqa: E402,F401  (re-exported: namespaces, veth, wireguard-go, awgproxy processes)

C_IP, S_IP = "192.0.2.2", "192.0.2.1"
S_T_IP, T_IP = "198.51.100.1", "198.51.100.2"
HZ = os.sysconf("SC_CLK_TCK")

# Tens of thousands of short connections in a few seconds: a wide port range, TIME_WAIT reuse,
# deep accept queues, and few TIME_WAIT sockets kept. Every path's exit (awgproxy server,
# ss-server, the kernel behind wireguard-go) connects from S to the same target, so a run left
# S with up to 60,000 sockets in TIME_WAIT for 60 s, and the paths measured after it ran slower:
# sequential A2 fell from ~1650 to ~1360 connections/s and came back once they had expired
# (2026-12-07). With at most 4096 kept, the kernel closes the rest at once, and no path pays for
# the one before it.
CONNECTION_SYSCTLS = ("net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=1",
                      "net.core.somaxconn=4096", "net.ipv4.tcp_max_syn_backlog=4096",
                      "net.ipv4.tcp_max_tw_buckets=4096")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sysctl(ns, *pairs):
    for p in pairs:
        ns.run(["sysctl", "-qw", p], check=False)


def three_namespaces(lab):
    """Creates C, S and T with the two links and the connection tuning; returns (c, s, t, st),
    st being the S-T veth (its ifname_a is S's side, ifname_b T's side)."""
    c, s, t = lab.netns("c"), lab.netns("s"), lab.netns("t")
    lab.veth(s, c, f"{S_IP}/24", f"{C_IP}/24")
    st = lab.veth(s, t, f"{S_T_IP}/24", f"{T_IP}/24")
    for ns in (c, s, t):
        sysctl(ns, *CONNECTION_SYSCTLS)
    return c, s, t, st


def rss_kb(pid):
    text = pathlib.Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.M).group(1))


def proc_cpu(pid):
    """utime + stime of a process in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def machine_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / HZ  # all but idle and iowait, in CPU-seconds


def loadavg():
    return open("/proc/loadavg").read().split()[0]


def _first_line(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except Exception:
        return "?"


def machine_notes(packages, binary=None):
    """One line: the tree (and whether it has uncommitted changes), the awgproxy binary when
    given, CPUs, kernel, the versions of the Debian packages named, Python."""
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    head = _first_line(["git", "-C", str(REPO), "log", "-1", "--format=%h %cs"])
    dirty = _first_line(["git", "-C", str(REPO), "status", "--porcelain",
                         "--untracked-files=no"])
    versions = ", ".join(_first_line(["dpkg-query", "-W", "-f", "${Package} ${Version}", p])
                         for p in packages)
    return (f"tree {head}{' + uncommitted changes' if dirty not in ('', '?') else ''}; "
            + (f"awgproxy {binary}; " if binary else "")
            + f"{os.cpu_count()} CPUs ({cpu}), kernel {os.uname().release}; {versions}, "
            f"Python {sys.version.split()[0]}")


def run_main(name, a, make_bench, body):
    """The frame both benchmarks run in: needs root; a.workdir (made when None, and then removed
    at the end); SIGTERM / SIGINT / SIGHUP unwind through the finally, so the namespaces and every
    process in them go away whichever way the run ends. make_bench(a) -> an object with close();
    body(bench) measures and prints."""
    if os.geteuid() != 0:
        sys.exit(f"{name}: needs root (network namespaces)")
    own_workdir = a.workdir is None
    a.workdir = a.workdir or tempfile.mkdtemp(prefix=f"{name.replace('_', '-')}-")
    pathlib.Path(a.workdir).mkdir(parents=True, exist_ok=True)

    def stop(signum, frame):
        raise SystemExit(f"{name}: stopped by signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    b = make_bench(a)
    try:
        body(b)
    finally:
        b.close()
        if own_workdir:
            shutil.rmtree(a.workdir, ignore_errors=True)
