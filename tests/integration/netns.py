"""Network-namespace test lab: namespaces, veth links, wireguard-go peers, awgproxy instances and
tcpdump captures, each cleaned up reliably.

Everything runs through `ip netns exec NAME …`, so it needs root (the tests skip without it, see
require_netns()). Names carry the pid and a counter, so parallel runs never clash. The intended use
is a `lab` fixture built with open_lab() (or `Lab` directly):

    def test_x(lab):
        a, b = lab.netns("a"), lab.netns("b")
        link = lab.veth(a, b, "192.168.77.1/24", "192.168.77.2/24")
        priv, pub = keypair()
        wg = lab.wireguard_go(a, private_key=priv, listen_port=51820, address="10.77.0.1/24",
                              peers=[{"public_key": ..., "allowed_ips": "10.77.0.2/32"}])
        proxy = lab.awgproxy(b, "client", conf_text)
        proxy.wait_log(r"handshake.*completed", timeout=10)
        cap = lab.tcpdump(b, link.ifname_b)
        ...
        datagrams = cap.stop()          # list of pcap.Datagram

The module-level functions `veth`, `wireguard_go`, `awgproxy` and `tcpdump` do the same without a
Lab; processes they start belong to their Netns and die with it.

Environment:
  AWGPROXY_BIN            the binary (default <repo>/build/awgproxy)
  AWG_NETNS_REQUIRED=1    turn "no root / no netns / tool missing" skips into failures (CI)
"""
import atexit
import contextlib
import itertools
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

import pcap
# The log audits (secrets, sanitizer reports); the names are re-exported for the tests. Importing
# it also routes subprocess.run through the scan of awgproxy runs.
from log_audit import (LEAKS, SANITIZER_REPORTS, audit_log, audit_sanitizers,  # noqa: F401
                       record_sanitizer_reports, register_secret, sanitizer_reports)

SOURCE_DIR = pathlib.Path(
    os.environ.get("AWG_SOURCE_DIR") or pathlib.Path(__file__).resolve().parents[2]
)

_counter = itertools.count(1)
_counter_lock = threading.Lock()
_open_namespaces = []


# ---- names ---------------------------------------------------------------------------------------


def _b36(n):
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def unique_name(prefix="awg", maxlen=15):
    """A name unique to this process and call: prefix + base36(pid) + 'x' + base36(counter).
    At most maxlen characters (15 fits an interface name)."""
    with _counter_lock:
        n = next(_counter)
    tail = f"{_b36(os.getpid())}x{_b36(n)}"
    return prefix[: max(1, maxlen - len(tail))] + tail


# ---- skipping ------------------------------------------------------------------------------------


def _skip(reason):
    if os.environ.get("AWG_NETNS_REQUIRED") == "1":
        pytest.fail(f"{reason} (AWG_NETNS_REQUIRED=1 forbids skipping)")
    pytest.skip(reason)


_netns_ok = None


def require_netns(*tools):
    """Skip the test unless we are root, `ip netns` works and every tool in `tools` is on PATH."""
    global _netns_ok
    if os.geteuid() != 0:
        _skip("needs root for network namespaces")
    if shutil.which("ip") is None:
        _skip("iproute2 `ip` is not installed")
    if _netns_ok is None:
        probe = unique_name("awgprobe", maxlen=40)
        r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
        if r.returncode == 0:
            subprocess.run(["ip", "netns", "del", probe], capture_output=True)
            _netns_ok = ""
        else:
            _netns_ok = (r.stderr or r.stdout).strip() or f"exit code {r.returncode}"
    if _netns_ok:
        _skip(f"`ip netns add` fails here: {_netns_ok}")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        _skip(f"missing tool(s): {', '.join(missing)}")


# ---- errors and small helpers --------------------------------------------------------------------


class CommandError(AssertionError):
    def __init__(self, cmd, rc, stdout, stderr):
        self.cmd, self.rc, self.stdout, self.stderr = cmd, rc, stdout, stderr
        super().__init__(f"command {shlex.join(map(str, cmd))} failed with exit code {rc}\n"
                         f"stdout: {stdout.strip()}\nstderr: {stderr.strip()}")


def _argv(cmd):
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def host_run(cmd, check=True, timeout=30, input=None, env=None):
    argv = _argv(cmd)
    try:
        p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                           env=env)
    except subprocess.TimeoutExpired as e:
        raise CommandError(argv, "timeout", _txt(e.stdout), _txt(e.stderr)) from None
    if check and p.returncode != 0:
        raise CommandError(argv, p.returncode, p.stdout, p.stderr)
    return p


def _txt(b):
    if b is None:
        return ""
    return b.decode(errors="replace") if isinstance(b, bytes) else b


def tail(text, lines=40):
    parts = text.splitlines()
    return "\n".join(parts[-lines:])


def wait_until(pred, timeout, interval=0.1, what="condition"):
    """Polls pred() until it returns something truthy (returned) or timeout seconds pass (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


# ---- keys ----------------------------------------------------------------------------------------


def genkey():
    """A fresh private key (also used as a PSK); registered as a secret for the log audit."""
    key = host_run(["wg", "genkey"]).stdout.strip()
    register_secret(key)
    return key


def password_hash(password):
    """`awgproxy passwd`'s hash of password (a [Socks] User entry's HASH); the password is
    registered as a secret that no log may show."""
    register_secret(password)
    r = subprocess.run([str(awgproxy_binary()), "passwd"], input=password + "\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]





def pubkey(private_key):
    return host_run(["wg", "pubkey"], input=private_key + "\n").stdout.strip()


def keypair():
    """(private, public), base64, fresh from `wg genkey`."""
    priv = genkey()
    return priv, pubkey(priv)


def fingerprint(public_key):
    """What awgproxy logs for a peer: the first 8 characters of the base64 public key."""
    return public_key[:8]


def key_forms(b64key):
    """The forms a key could leak in: base64 and hex (both cases)."""
    import base64
    raw = base64.b64decode(b64key)
    return [b64key, raw.hex(), raw.hex().upper()]


# ---- namespaces ----------------------------------------------------------------------------------


def _stop_popen(p, sig=signal.SIGTERM, timeout=5.0):
    """Signals p (not its group: ip netns exec execs the command, so p.pid is the program) and
    waits; SIGKILL after timeout. Returns the exit code (negative = signal)."""
    if p.poll() is not None:
        return p.returncode
    try:
        p.send_signal(sig)
    except ProcessLookupError:
        pass
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            p.kill()
        except ProcessLookupError:
            pass
        return p.wait(timeout=5)


class Netns:
    """A network namespace with lo up. Context manager: `with Netns("a") as ns:`.

    name      the namespace name is unique_name("awg" + name) unless exact=True
    workdir   where config/log/pcap files go (default: a fresh temp dir removed on close)
    """

    def __init__(self, name="ns", workdir=None, exact=False):
        self.name = name if exact else unique_name(f"awg{name}", maxlen=40)
        self.tag = name
        self._own_workdir = workdir is None
        self.workdir = pathlib.Path(workdir or tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._procs = []
        self._cleanups = []  # callables run (LIFO) before the processes are stopped
        self.created = False

    # -- lifecycle
    def create(self):
        host_run(["ip", "netns", "add", self.name])
        self.created = True
        _open_namespaces.append(self)
        self.run(["ip", "link", "set", "lo", "up"])
        return self

    def __enter__(self):
        return self.create()

    def __exit__(self, *exc):
        self.close()

    def on_close(self, fn):
        self._cleanups.append(fn)

    def close(self):
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                fn()
            except Exception:
                pass
        for p in reversed(self._procs):
            try:
                _stop_popen(p, timeout=3)
            except Exception:
                pass
        self._procs.clear()
        if self.created:
            # Anything still inside was started by us (through this namespace): end it by pid.
            r = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True)
            for pid in r.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
            self.created = False
            if self in _open_namespaces:
                _open_namespaces.remove(self)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- commands
    def argv(self, cmd):
        return ["ip", "netns", "exec", self.name, *_argv(cmd)]

    def run(self, cmd, check=True, timeout=30, input=None, env=None):
        """Runs cmd (list, or a string split like a shell would) in the namespace and returns the
        CompletedProcess (text). check=True raises CommandError (an AssertionError) on failure."""
        return host_run(self.argv(cmd), check=check, timeout=timeout, input=input, env=env)

    def popen(self, cmd, **kw):
        """subprocess.Popen of cmd inside the namespace; stopped (SIGTERM, then SIGKILL) when the
        namespace is closed. Keyword arguments go to Popen (stdout, stderr, env, …)."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(self.argv(cmd), **kw)
        self._procs.append(p)
        return p

    def forget(self, p):
        if p in self._procs:
            self._procs.remove(p)

    def file(self, name):
        """A path in the workdir, unique for this namespace."""
        return self.workdir / f"{self.tag}-{name}"

    def __repr__(self):
        return f"Netns({self.name!r})"


@atexit.register
def _close_leftovers():
    for ns in list(_open_namespaces):
        try:
            ns.close()
        except Exception:
            pass


# ---- veth ----------------------------------------------------------------------------------------


class Veth:
    def __init__(self, ns_a, ns_b, ifname_a, ifname_b, addr_a, addr_b, addr6_a, addr6_b):
        self.ns_a, self.ns_b = ns_a, ns_b
        self.ifname_a, self.ifname_b = ifname_a, ifname_b
        self.cidr_a, self.cidr_b = addr_a, addr_b
        self.ip_a, self.ip_b = addr_a.split("/")[0], addr_b.split("/")[0]
        self.cidr6_a, self.cidr6_b = addr6_a, addr6_b
        self.ip6_a = addr6_a.split("/")[0] if addr6_a else None
        self.ip6_b = addr6_b.split("/")[0] if addr6_b else None

    def __repr__(self):
        return (f"Veth({self.ns_a.name}:{self.ifname_a} {self.cidr_a} <-> "
                f"{self.ns_b.name}:{self.ifname_b} {self.cidr_b})")


_subnet_counter = itertools.count(1)


def veth(ns_a, ns_b, addr_a=None, addr_b=None, addr6_a=None, addr6_b=None, prefix=24, mtu=None):
    """Links two namespaces with a veth pair (fresh unique interface names), assigns the IPv4
    addresses ("192.168.77.1" or "192.168.77.1/24"; default a fresh 10.2NN.X.1/.2 /24 subnet) and
    optional IPv6 ones (no DAD, usable at once), brings both ends up. Returns a Veth with
    ifname_a/ifname_b, ip_a/ip_b (no prefix), ip6_a/ip6_b."""
    if addr_a is None or addr_b is None:
        n = next(_subnet_counter)
        base = f"10.{200 + (n // 250) % 50}.{n % 250}"
        addr_a, addr_b = f"{base}.1", f"{base}.2"
    if "/" not in addr_a:
        addr_a += f"/{prefix}"
    if "/" not in addr_b:
        addr_b += f"/{prefix}"
    if addr6_a and "/" not in addr6_a:
        addr6_a += "/64"
    if addr6_b and "/" not in addr6_b:
        addr6_b += "/64"
    ia, ib = unique_name("va"), unique_name("vb")
    host_run(["ip", "link", "add", ia, "netns", ns_a.name, "type", "veth",
              "peer", "name", ib, "netns", ns_b.name])
    for ns, ifn, a4, a6 in ((ns_a, ia, addr_a, addr6_a), (ns_b, ib, addr_b, addr6_b)):
        if mtu:
            ns.run(["ip", "link", "set", ifn, "mtu", str(mtu)])
        ns.run(["ip", "addr", "add", a4, "dev", ifn])
        if a6:
            ns.run(["ip", "addr", "add", a6, "dev", ifn, "nodad"])
        ns.run(["ip", "link", "set", ifn, "up"])
    link = Veth(ns_a, ns_b, ia, ib, addr_a, addr_b, addr6_a, addr6_b)
    # Resolve ARP both ways now so that the first datagrams of a test are not held back.
    ns_a.run(["ping", "-c", "1", "-W", "2", link.ip_b], check=False)
    return link


# ---- processes with a log ------------------------------------------------------------------------


class LoggedProcess:
    """A process in a namespace whose stdout+stderr go to a log file."""

    kind = "process"
    # Search the log for sanitizer reports when the process stops (audit_sanitizers): set for
    # awgproxy and impair_relay, the programs built with the sanitizers in the ASan CI stage.
    sanitized = False

    def __init__(self, ns, argv, log_path, env=None):
        self.ns = ns
        self.argv = argv
        self.log_path = pathlib.Path(log_path)
        self._logf = open(self.log_path, "wb")
        self.proc = ns.popen(argv, stdout=self._logf, stderr=subprocess.STDOUT, env=env)
        self.returncode = None

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        try:
            return self.log_path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=40):
        return f"--- last lines of {self.log_path} ---\n{tail(self.log(), lines)}"

    def wait_log(self, regex, timeout=10.0, flags=re.IGNORECASE | re.MULTILINE):
        """Waits until regex matches the log; returns the match. Fails (AssertionError with the log
        tail) on timeout or if the process exits first."""
        rx = re.compile(regex, flags)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log())
            if m:
                return m
            if not self.alive():
                m = rx.search(self.log())
                if m:
                    return m
                raise AssertionError(
                    f"{self.kind} exited with code {self.proc.returncode} before the log matched "
                    f"{regex!r}\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.kind}: no log line matched {regex!r} within "
                                     f"{timeout} s\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout=10.0, sig=signal.SIGTERM):
        """Sends sig (SIGTERM), waits up to timeout (then SIGKILL); returns the exit code."""
        if self.returncode is None:
            self.returncode = _stop_popen(self.proc, sig=sig, timeout=timeout)
            self.ns.forget(self.proc)
            self._logf.close()
            if self.sanitized:
                what = " ".join(filter(None, (self.kind, getattr(self, "role", None), "log")))
                audit_sanitizers(self.log_path, what, self.returncode)
        return self.returncode

    def __repr__(self):
        return f"<{self.kind} pid={self.pid} in {self.ns.name}>"


# ---- wireguard-go --------------------------------------------------------------------------------


class WireguardGo(LoggedProcess):
    kind = "wireguard-go"

    def __init__(self, ns, ifname, log_path, env):
        super().__init__(ns, ["wireguard-go", "-f", ifname], log_path, env=env)
        self.ifname = ifname
        self.private_key = self.public_key = None
        self.listen_port = None

    def wg(self, *args, check=True, timeout=15):
        return self.ns.run(["wg", *args], check=check, timeout=timeout)

    def show(self, field):
        """`wg show IF field` lines split on whitespace."""
        out = self.wg("show", self.ifname, field).stdout
        return [line.split() for line in out.splitlines() if line.strip()]

    def latest_handshakes(self):
        """{peer public key: unix time of its last handshake (0 = never)}."""
        return {row[0]: int(row[1]) for row in self.show("latest-handshakes") if len(row) >= 2}

    def latest_handshake(self, public_key=None):
        hs = self.latest_handshakes()
        if public_key is None:
            return max(hs.values(), default=0)
        return hs.get(public_key, 0)

    def wait_handshake(self, public_key=None, timeout=10.0, newer_than=0):
        """Waits until the peer's latest handshake is non-zero (and > newer_than); returns it or
        raises AssertionError."""
        v = wait_until(lambda: (lambda t: t if t > newer_than else 0)(
            self.latest_handshake(public_key)), timeout, interval=0.2)
        if not v:
            raise AssertionError(
                f"wireguard-go {self.ifname} in {self.ns.name}: no handshake with "
                f"{public_key or 'any peer'} within {timeout} s\n"
                f"{self.wg('show', self.ifname, check=False).stdout}\n{self.log_tail(20)}")
        return v

    def set_peer(self, public_key, endpoint=None, allowed_ips=None, persistent_keepalive=None,
                 preshared_key=None, remove=False):
        args = ["set", self.ifname, "peer", public_key]
        if remove:
            args.append("remove")
        if endpoint:
            args += ["endpoint", endpoint]
        if allowed_ips:
            if not isinstance(allowed_ips, str):
                allowed_ips = ",".join(allowed_ips)
            args += ["allowed-ips", allowed_ips]
        if persistent_keepalive is not None:
            args += ["persistent-keepalive", str(persistent_keepalive)]
        with _keyfile(self.ns, preshared_key) as psk:
            if psk:
                args += ["preshared-key", str(psk)]
            self.wg(*args)

    def stop(self, timeout=10.0, sig=signal.SIGTERM):
        rc = super().stop(timeout=timeout, sig=sig)
        try:
            os.unlink(f"/var/run/wireguard/{self.ifname}.sock")
        except OSError:
            pass
        return rc


class _keyfile:
    """A 0600 temp file holding a key (None passes through); deleted on exit."""

    def __init__(self, ns, key):
        self.key, self.ns, self.path = key, ns, None

    def __enter__(self):
        if self.key is None:
            return None
        fd, name = tempfile.mkstemp(prefix="key-", dir=self.ns.workdir)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.key + "\n")
        self.path = pathlib.Path(name)
        return self.path

    def __exit__(self, *exc):
        if self.path:
            self.path.unlink(missing_ok=True)


def wireguard_go(ns, ifname=None, private_key=None, listen_port=None, address=None, peers=(),
                 mtu=None, log_level="verbose", up_timeout=10.0):
    """Starts `wireguard-go -f IFNAME` in ns, configures it with `wg set` and `ip`, returns a
    WireguardGo handle (stop(), latest_handshakes(), wait_handshake(), show(), wg(), log()).

    private_key  base64 (default: a fresh one); .private_key/.public_key are set on the handle
    address      e.g. "10.77.0.1/24" (or a list)
    peers        dicts: public_key, endpoint ("ip:port"), allowed_ips (str or list),
                 persistent_keepalive (int), preshared_key (base64)
    """
    ifname = ifname or unique_name("wg")
    env = dict(os.environ, WG_PROCESS_FOREGROUND="1", LOG_LEVEL=log_level)
    h = WireguardGo(ns, ifname, ns.file(f"wireguard-go-{ifname}.log"), env)
    ns.on_close(h.stop)
    sock = pathlib.Path(f"/var/run/wireguard/{ifname}.sock")

    def ready():
        if not h.alive():
            raise AssertionError(f"wireguard-go exited with code {h.proc.returncode}\n"
                                 f"{h.log_tail()}")
        if not sock.exists():
            return False
        return ns.run(["ip", "link", "show", ifname], check=False).returncode == 0

    if not wait_until(ready, up_timeout):
        h.stop()
        raise AssertionError(f"wireguard-go {ifname} did not come up within {up_timeout} s\n"
                             f"{h.log_tail()}")
    private_key = private_key or genkey()
    h.private_key, h.public_key = private_key, pubkey(private_key)
    h.listen_port = listen_port
    with _keyfile(ns, private_key) as kf:
        args = ["set", ifname, "private-key", str(kf)]
        if listen_port is not None:
            args += ["listen-port", str(listen_port)]
        h.wg(*args)
    for p in peers:
        h.set_peer(p["public_key"], endpoint=p.get("endpoint"), allowed_ips=p.get("allowed_ips"),
                   persistent_keepalive=p.get("persistent_keepalive"),
                   preshared_key=p.get("preshared_key"))
    for a in ([address] if isinstance(address, str) else (address or [])):
        ns.run(["ip", "addr", "add", a, "dev", ifname] + (["nodad"] if ":" in a else []))
    if mtu:
        ns.run(["ip", "link", "set", ifname, "mtu", str(mtu)])
    ns.run(["ip", "link", "set", ifname, "up"])
    return h


# ---- awgproxy ------------------------------------------------------------------------------------


# WireGuard's timers shortened through the config's timing keys (AWG 3.x ranges, which change
# nothing on the wire): rekey after 4 s, sessions die after 8 s, initiations retried every second
# and given up after 10, a keepalive after 2 s of silence. Tests of rekeys, expiry and retries
# run in seconds instead of minutes, with the same binary as everything else.
FAST_TIMERS = ("RekeyAfterTime = 4\nRejectAfterTime = 8\nRekeyTimeout = 1\nKeepaliveTimeout = 2\n"
               "MaxHandshakeAttempts = 10\n")


def fast_timers(conf_text):
    """conf_text with FAST_TIMERS added to its [Interface] section."""
    assert "[Interface]\n" in conf_text, conf_text
    return conf_text.replace("[Interface]\n", "[Interface]\n" + FAST_TIMERS, 1)


def awgproxy_binary():
    env = os.environ.get("AWGPROXY_BIN")
    return pathlib.Path(env) if env else SOURCE_DIR / "build" / "awgproxy"


class Awgproxy(LoggedProcess):
    kind = "awgproxy"
    sanitized = True

    def __init__(self, ns, argv, log_path, env, conf_path, role):
        super().__init__(ns, argv, log_path, env=env)
        self.conf_path = conf_path
        self.role = role

    def stop(self, timeout=10.0, sig=signal.SIGTERM):
        audited = self.returncode is not None
        rc = super().stop(timeout=timeout, sig=sig)
        if not audited:
            audit_log(self.log_path, f"awgproxy {self.role} log")
        return rc

    def leaked_keys(self, *b64keys):
        """The keys (base64) that appear in the log in any form (base64 or hex)."""
        text = self.log()
        return [k for k in b64keys if k and any(f in text for f in key_forms(k))]

    def handshake_completed_lines(self, peer_public_key=None):
        """Log lines that report a completed handshake (with the peer's fingerprint, if given)."""
        out = []
        for line in self.log().splitlines():
            low = line.lower()
            if "handshake" in low and "complet" in low:
                if peer_public_key is None or fingerprint(peer_public_key) in line:
                    out.append(line)
        return out

    def wait_handshake(self, peer_public_key=None, timeout=10.0):
        """Waits for a handshake-completed log line (for the peer, by fingerprint)."""
        fp = re.escape(fingerprint(peer_public_key)) if peer_public_key else ""
        if fp:
            rx = rf"^(?=.*handshake)(?=.*complet)(?=.*{fp}).*$"
        else:
            rx = r"^(?=.*handshake)(?=.*complet).*$"
        return self.wait_log(rx, timeout=timeout)


def awgproxy(ns, role, conf_text, env=None, binary=None, log_level="debug", name=None):
    """Writes conf_text to a 0600 file and starts `awgproxy ROLE -c FILE` in ns, stdout+stderr to a
    log file. LOG_LEVEL=log_level (None: leave unset), LOG_FORMAT is removed from the
    environment, `env` is added. Returns an Awgproxy handle: log(), log_tail(), wait_log(regex,
    timeout), wait_handshake(peer_pub), stop() -> exit code, alive(), leaked_keys(...)."""
    binary = pathlib.Path(binary or awgproxy_binary())
    if not binary.is_file():
        raise AssertionError(f"awgproxy binary not found at {binary}; build it or set AWGPROXY_BIN")
    name = name or unique_name(f"awg{role[:1]}", maxlen=20)
    conf = ns.file(f"{name}.conf")
    for m in re.finditer(r"(?im)^\s*(?:PrivateKey|PresharedKey)\s*=\s*(\S+)", conf_text):
        register_secret(m.group(1), keys_only=True)
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(conf_text)
    os.chmod(conf, 0o600)
    full_env = dict(os.environ)
    full_env.pop("LOG_LEVEL", None)
    full_env.pop("LOG_FORMAT", None)
    if log_level:
        full_env["LOG_LEVEL"] = log_level
    full_env.update(env or {})
    h = Awgproxy(ns, [str(binary), role, "-c", str(conf)], ns.file(f"{name}.log"), full_env, conf,
                 role)
    ns.on_close(h.stop)
    return h


# ---- tcpdump -------------------------------------------------------------------------------------


class Tcpdump:
    def __init__(self, ns, iface, path, filter, snaplen=0):
        self.ns, self.iface, self.path = ns, iface, pathlib.Path(path)
        self.err_path = self.path.with_suffix(".tcpdump.log")
        self._err = open(self.err_path, "wb")
        argv = ["tcpdump", "-n", "-U", "--immediate-mode", "-Z", "root", "-s", str(snaplen), "-i", iface,
                "-w", str(self.path)]
        if filter:
            argv += _argv(filter)
        self.proc = ns.popen(argv, stdout=subprocess.DEVNULL, stderr=self._err)
        self.returncode = None

    def _stderr(self):
        return self.err_path.read_bytes().decode(errors="replace")

    def wait_listening(self, timeout=10.0):
        def ok():
            if "listening on" in self._stderr():
                return True
            if self.proc.poll() is not None:
                raise AssertionError(f"tcpdump exited with {self.proc.returncode}: "
                                     f"{self._stderr()}")
            return False

        if not wait_until(ok, timeout, interval=0.05):
            raise AssertionError(f"tcpdump on {self.iface} not listening after {timeout} s: "
                                 f"{self._stderr()}")
        time.sleep(0.2)  # the socket is open before the message; a little margin for the ring

    def stop(self, grace=0.5):
        """Stops the capture (SIGINT after `grace` seconds) and returns the UDP datagrams read from
        the pcap (see pcap.read_udp)."""
        if self.returncode is None:
            time.sleep(grace)
            self.returncode = _stop_popen(self.proc, sig=signal.SIGINT, timeout=5)
            self.ns.forget(self.proc)
            self._err.close()
        return self.datagrams()

    def datagrams(self):
        return pcap.read_udp(self.path)

    def __repr__(self):
        return f"<tcpdump {self.iface} in {self.ns.name} -> {self.path}>"


def tcpdump(ns, iface, filter="udp", path=None, snaplen=0):
    """Starts `tcpdump -U -w PATH -i IFACE FILTER` in ns and returns once it is listening.
    .stop() ends it and returns the datagrams (pcap.Datagram list); .path is the pcap file.
    snaplen > 0 keeps only that many bytes of each frame (payloads come back cut short)."""
    path = path or ns.file(f"{unique_name('cap', 30)}.pcap")
    t = Tcpdump(ns, iface, path, filter, snaplen)
    ns.on_close(lambda: t.stop(grace=0))
    t.wait_listening()
    return t


# ---- the lab -------------------------------------------------------------------------------------


class Lab:
    """Owns namespaces (and through them every process); close() tears everything down. Files go
    to `workdir` (pytest's tmp_path in the fixture, kept for post-mortems)."""

    def __init__(self, workdir=None):
        self.workdir = pathlib.Path(workdir or tempfile.mkdtemp(prefix="awglab-"))
        self.namespaces = []
        self.processes = []

    def netns(self, tag="ns"):
        ns = Netns(tag, workdir=self.workdir)
        ns.create()
        self.namespaces.append(ns)
        return ns

    def veth(self, ns_a, ns_b, addr_a=None, addr_b=None, **kw):
        return veth(ns_a, ns_b, addr_a, addr_b, **kw)

    def wireguard_go(self, ns, **kw):
        h = wireguard_go(ns, **kw)
        self.processes.append(h)
        return h

    def awgproxy(self, ns, role, conf_text, **kw):
        h = awgproxy(ns, role, conf_text, **kw)
        self.processes.append(h)
        return h

    def tcpdump(self, ns, iface, filter="udp", path=None, snaplen=0):
        return tcpdump(ns, iface, filter=filter, path=path, snaplen=snaplen)

    def logs(self, lines=30):
        """Tails of every process log, for assertion messages."""
        return "\n".join(p.log_tail(lines) for p in self.processes)

    def close(self):
        for ns in reversed(self.namespaces):
            ns.close()
        self.namespaces.clear()


@contextlib.contextmanager
def open_lab(workdir, tools=("ping", "wg", "wireguard-go", "tcpdump")):
    """A Lab in workdir, closed on exit; skips (see require_netns) unless root with a working
    `ip netns` and the tools. Test modules define their fixture with it:

        @pytest.fixture
        def lab(tmp_path):
            with netns.open_lab(tmp_path) as lab:
                yield lab
    """
    require_netns(*tools)
    lab = Lab(workdir)
    try:
        yield lab
    finally:
        lab.close()


# Traffic from inside a namespace (UDP datagrams, ping), re-exported: the tests call netns.ping.
# Imported last: ns_probes uses helpers defined above.
from ns_probes import PingResult, ping, ping_argv, send_udp  # noqa: E402,F401
