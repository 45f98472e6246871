"""ImpairRelay: drive tests/impair/impair_relay (a userspace UDP impairment relay, since this
machine has no netem) from pytest, from bench/ and by hand.

    import impair
    relay = impair.start(ns, listen="192.0.2.1:51820", upstream="10.99.0.2:51820",
                         settings={"both.loss": 0.02, "up.reorder": 0.05}, seed=7)
    relay.set("down", "delay_ms", 30)      # set(direction, key, value); direction up|down|both
    relay.blackhole(True, "up")            # blackhole(on, direction="both")
    port = relay.rebind()                  # new upstream source port (NAT rebinding)
    st = relay.stats()                     # {"up": {...}, "down": {...}, "rebinds": N, ...}
    final = relay.stop()                   # the relay's last stats line (dict)

`ns` is a netns.Netns (the relay runs inside it and dies with it: it is stopped when the
namespace closes), a netns.Lab-created namespace, or None to run on this host. Processes start
the way the lab starts everything else (netns.LoggedProcess: stdout+stderr to a log file in the
namespace's workdir). The control channel is a Unix socket in a short temporary directory
(sun_path is limited to 107 bytes), so the test process reaches it from any namespace.

From bench/: `sys.path.insert(0, str(REPO / "tests" / "integration")); import impair`, as the
bench scripts already do for netns.

By hand (the relay answers on its control socket; see `impair_relay --help` for every key):
    build/tests/impair_relay -l 127.0.0.1:5000 -u 127.0.0.1:6000 --control /tmp/r.sock \\
        --both.loss 0.02 &
    python3 tests/integration/impair.py /tmp/r.sock stats
    python3 tests/integration/impair.py /tmp/r.sock set up.delay_ms 50
or `impair_relay ... --stdin` and type the commands.

Counter identity, per direction, always: received + duplicated = forwarded + dropped + held.

Environment: AWG_IMPAIR_RELAY_BIN (default: next to AWGPROXY_BIN in tests/, else
<repo>/build/tests/impair_relay).
"""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SOURCE_DIR = pathlib.Path(
    os.environ.get("AWG_SOURCE_DIR") or pathlib.Path(__file__).resolve().parents[2])

DIRECTIONS = ("up", "down", "both")


def relay_binary():
    env = os.environ.get("AWG_IMPAIR_RELAY_BIN")
    if env:
        return pathlib.Path(env)
    awg = os.environ.get("AWGPROXY_BIN")
    if awg:
        cand = pathlib.Path(awg).parent / "tests" / "impair_relay"
        if cand.is_file():
            return cand
    return SOURCE_DIR / "build" / "tests" / "impair_relay"


def control(path, line, timeout=10.0):
    """Sends one command line to a relay's control socket and returns its answer line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(line.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            d = s.recv(65536)
            if not d:
                break
            buf += d
    return buf.decode(errors="replace").strip()


class RelayError(AssertionError):
    pass


class ImpairRelay:
    """One running impair_relay. Use start() to make one."""

    def __init__(self, ns, listen, upstream, settings=None, seed=None, binary=None,
                 max_held=None, extra_args=(), ready_timeout=10.0):
        self.ns = ns
        self._ctl_dir = tempfile.mkdtemp(prefix="imp", dir="/tmp")
        self.control_path = pathlib.Path(self._ctl_dir) / "ctl"
        binary = pathlib.Path(binary or relay_binary())
        if not binary.is_file():
            raise RelayError(f"impair_relay not found at {binary}; build it (cmake --build build) "
                             f"or set AWG_IMPAIR_RELAY_BIN")
        argv = [str(binary), "--listen", listen, "--upstream", upstream,
                "--control", str(self.control_path)]
        if seed is not None:
            argv += ["--seed", str(seed)]
        if max_held is not None:
            argv += ["--max-held", str(max_held)]
        for name, value in (settings or {}).items():
            argv += ["--set", f"{name}={_word(value)}"]
        argv += list(extra_args)
        self.argv = argv
        self.final = None
        self.returncode = None
        self._proc = self._popen = None
        if ns is not None:
            import netns
            self.log_path = ns.file(f"{netns.unique_name('impair', 30)}.log")
            self._proc = netns.LoggedProcess(ns, argv, self.log_path)
            self._proc.kind = "impair_relay"
            self._proc.sanitized = True  # its log is searched for sanitizer reports on stop
            ns.on_close(self.stop)
        else:
            fd, name = tempfile.mkstemp(prefix="impair-", suffix=".log")
            os.close(fd)
            self.log_path = pathlib.Path(name)
            self._logf = open(self.log_path, "wb")
            self._popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._logf,
                                           stderr=subprocess.STDOUT)
        self.ready = self._wait_ready(ready_timeout)
        self.listen_port = self.ready["listen_port"]
        self.seed = self.ready["seed"]

    # -- process
    @property
    def pid(self):
        return self._proc.pid if self._proc else self._popen.pid

    def alive(self):
        return (self._proc.alive() if self._proc else self._popen.poll() is None)

    def log(self):
        try:
            return self.log_path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=20):
        text = "\n".join(self.log().splitlines()[-lines:])
        return f"--- last lines of {self.log_path} ---\n{text}"

    def events(self, kind=None):
        """The JSON lines the relay printed (ready, stats on SIGUSR1, final)."""
        out = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if kind is None or ev.get("event") == kind:
                    out.append(ev)
        return out

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = self.events("ready")
            if ready and self.control_path.exists():
                return ready[0]
            if not self.alive():
                break
            time.sleep(0.02)
        self.stop()
        raise RelayError(f"impair_relay did not become ready: {self.argv}\n{self.log_tail()}")

    def stop(self, timeout=5.0):
        """SIGTERM; returns the final stats (dict, or None if the relay died without them).
        .returncode is the exit code afterwards (0 after a clean stop)."""
        if self._proc is not None:
            self.returncode = self._proc.stop(timeout=timeout)
        elif self._popen is not None:
            if self._popen.poll() is None:
                self._popen.send_signal(signal.SIGTERM)
                try:
                    self._popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self._popen.kill()
                    self._popen.wait()
            self.returncode = self._popen.returncode
        if self._proc is None and getattr(self, "_logf", None) and not self._logf.closed:
            self._logf.close()
            try:
                import netns  # needs pytest; bench scripts may run without it
            except ImportError:
                netns = None
            if netns is not None:
                netns.audit_sanitizers(self.log_path, "impair_relay log", self.returncode)
        shutil.rmtree(self._ctl_dir, ignore_errors=True)
        if self.final is None:
            finals = self.events("final")
            self.final = finals[-1] if finals else None
        return self.final

    # -- control
    def command(self, line):
        """One control line; returns the answer. Raises RelayError on an "error ..." answer."""
        answer = control(self.control_path, line)
        if not answer or answer.startswith("error"):
            raise RelayError(f"impair_relay: {line!r} -> {answer!r}\n{self.log_tail()}")
        return answer

    def set(self, direction, key, value):
        assert direction in DIRECTIONS, direction
        self.command(f"set {direction}.{key} {_word(value)}")

    def configure(self, settings):
        """{"up.loss": 0.1, "both.delay_ms": 20, ...}"""
        for name, value in settings.items():
            self.command(f"set {name} {_word(value)}")

    def blackhole(self, on=True, direction="both"):
        assert direction in DIRECTIONS, direction
        self.command(f"blackhole {direction} {'on' if on else 'off'}")

    def rebind(self):
        """New upstream socket; returns its source port."""
        return int(self.command("rebind").split()[-1])

    def stats(self):
        return json.loads(self.command("stats"))

    def settings(self):
        return json.loads(self.command("get"))

    def reset(self):
        self.command("reset")

    def wait_idle(self, timeout=10.0, quiet=0.3):
        """Waits until the relay holds nothing and its counters stopped moving for `quiet` s;
        returns the stats."""
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while True:
            st = self.stats()
            key = (st["up"]["received"], st["down"]["received"], st["up"]["held"],
                   st["down"]["held"])
            if key != last:
                last, since = key, time.monotonic()
            elif st["up"]["held"] == 0 and st["down"]["held"] == 0 and \
                    time.monotonic() - since >= quiet:
                return st
            if time.monotonic() >= deadline:
                return st
            time.sleep(0.05)

    def cpu_seconds(self):
        """User + system CPU time the relay used so far (Linux /proc)."""
        fields = pathlib.Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __repr__(self):
        return f"<impair_relay pid={self.pid} :{self.listen_port} -> {self.argv[4]}>"


def _word(value):
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def start(where, listen, upstream, **kw):
    """Starts a relay in `where`: a netns.Netns, or None for this host. Keyword arguments:
    settings (dict "DIR.KEY" -> value), seed, binary, max_held, extra_args, ready_timeout."""
    return ImpairRelay(where, listen, upstream, **kw)


def _main(argv):
    if len(argv) < 2 or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    answer = control(argv[0], " ".join(argv[1:]))
    print(answer)
    return 1 if answer.startswith("error") else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
