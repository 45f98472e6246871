"""Packaging (issue 16): the man pages, `cmake --install`, the systemd units.

* awgproxy.1 is generated from the binary (scripts/gen-man.sh): every command that
  `awgproxy --help` lists has its section with every line of its own `--help`; awgproxy.conf.5
  has every section heading of docs/config-reference.md; `man` renders both without a warning at
  80 and 100 columns.
* `cmake --install` of the build directory the binary comes from puts the binary, the units
  (ExecStart= naming the installed binary), the man pages and the docs where cmake/install.cmake
  says.
* The installed units pass `systemd-analyze verify`, and `systemd-analyze security --offline`
  rates them no worse than the exposure recorded in docs/deploy.md.
* Live: a real systemd runs as PID 1 in fresh PID, mount, network, UTS, IPC and cgroup
  namespaces (this machine's own systemd is not PID 1, and a test must not touch the host's
  services anyway) and starts the installed awgproxy-server@test.service on a config written by
  `awgproxy init-server`; `add-peer` and `remove-peer` rewrite it as root while the service runs
  as its dynamic user and reload it; awgproxy-client@test.service connects to it with the config
  add-peer printed; a port below 1024 needs the low-port.conf drop-in and works with it. See
  docs/deploy.md.

A missing tool is a failure, not a skip (scripts/setup-deps.sh installs them all); the live part
needs root, as the network-namespace tests do (AWG_NETNS_REQUIRED=1 turns that skip into a
failure too).
"""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import SOURCE_DIR

TOOLS = ["help2man", "pandoc", "man", "groff", "systemd-analyze", "cmake", "unshare", "nsenter",
         "ss"]
SYSTEMD = "/lib/systemd/systemd"
UNITS = ["awgproxy-server@.service", "awgproxy-client@.service"]
DROPIN = "low-port.conf"

# The exposure scores recorded in docs/deploy.md ("Hardening"), systemd 252's
# `systemd-analyze security --offline=true`: a unit that scores higher fails.
EXPOSURE = {
    "awgproxy-server@.service": 1.1,
    "awgproxy-client@.service": 1.1,
    "awgproxy-server@.service + low-port.conf": 1.5,
}


def sh(*args, check=True, timeout=120, env=None, input=None):
    full_env = dict(os.environ)
    full_env.pop("LOG_LEVEL", None)
    full_env.pop("LOG_FORMAT", None)
    if env:
        full_env.update(env)
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                       env=full_env, input=input, stdin=None if input is not None else subprocess.DEVNULL)
    if check and p.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited {p.returncode}\nstdout:\n{p.stdout}\n"
                    f"stderr:\n{p.stderr}", pytrace=False)
    return p


@pytest.fixture(scope="module")
def tools():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if not os.access(SYSTEMD, os.X_OK):
        missing.append(SYSTEMD)
    if missing:
        pytest.fail(f"missing tools: {', '.join(missing)} (scripts/setup-deps.sh installs them)",
                    pytrace=False)


def help_commands(awgproxy_bin):
    """[(name, description)] from the "Commands:" block of `awgproxy --help`."""
    text = sh(awgproxy_bin, "--help").stdout
    block = text.split("\nCommands:\n", 1)[1].split("\n\n", 1)[0]
    cmds = re.findall(r"^  ([a-z][a-z0-9-]*)  +(\S.*)$", block, re.M)
    assert len(cmds) >= 9, text
    return cmds


def render(page, width):
    """`man -l` of a page file at a width: (text, stderr)."""
    p = sh("man", "-l", "-P", "cat", page,
           env={"MANWIDTH": str(width), "LC_ALL": "C.UTF-8", "MANPAGER": "cat"})
    return p.stdout, p.stderr


def squash(s):
    return " ".join(s.split())


@pytest.fixture(scope="module")
def man_pages(tools, awgproxy_bin, tmp_path_factory):
    out = tmp_path_factory.mktemp("man")
    sh(SOURCE_DIR / "scripts" / "gen-man.sh", awgproxy_bin, out, SOURCE_DIR)
    return out


@pytest.mark.parametrize("width", [80, 100])
def test_awgproxy_1_has_every_command(man_pages, awgproxy_bin, width):
    text, err = render(man_pages / "awgproxy.1", width)
    assert err == "", f"man warnings at {width} columns:\n{err}"
    flat = squash(text)
    assert "NAME awgproxy - " in flat
    for name, desc in help_commands(awgproxy_bin):
        assert re.search(rf"^   awgproxy {re.escape(name)}$", text, re.M), f"no section for {name}"
        assert squash(desc) in flat, f"{name}: description missing"
        own = sh(awgproxy_bin, name, "--help").stdout
        if not own.startswith("Usage:"):
            continue  # `version` prints the version
        for line in own.splitlines():
            if line.strip():
                assert squash(line) in flat, f"{name} --help line missing from awgproxy.1: {line!r}"


def reference_headings():
    text = (SOURCE_DIR / "docs" / "config-reference.md").read_text()
    heads = re.findall(r"^(##|###) (.+)$", text, re.M)
    assert len(heads) > 20
    return [(level, re.sub(r"[`*]", "", title).strip()) for level, title in heads]


@pytest.mark.parametrize("width", [80, 100])
def test_awgproxy_conf_5_has_every_section(man_pages, width):
    text, err = render(man_pages / "awgproxy.conf.5", width)
    assert err == "", f"man warnings at {width} columns:\n{err}"
    assert re.search(r"^NAME\n\s+awgproxy\.conf - ", text, re.M), text[:400]
    assert re.search(r"^SYNOPSIS$", text, re.M)
    for level, title in reference_headings():
        # "##" renders as a section heading at the margin, "###" as a subsection indented by 3;
        # a long one wraps onto the next line.
        words = r"\s+".join(map(re.escape, title.split()))
        indent = "" if level == "##" else "   "
        assert re.search(rf"^{indent}{words}\s*$", text, re.M | re.I), \
            f"heading {title!r} ({level}) not found in awgproxy.conf.5"


# ---- cmake --install ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def build_dir(awgproxy_bin):
    d = awgproxy_bin.resolve().parent
    if not (d / "cmake_install.cmake").is_file():
        pytest.fail(f"{awgproxy_bin} is not in a cmake build directory (no cmake_install.cmake)",
                    pytrace=False)
    return d


@pytest.fixture(scope="module")
def prefix_install(tools, build_dir, tmp_path_factory):
    """`cmake --install BUILD --prefix TMP`: the units' ExecStart= names TMP/bin/awgproxy, which
    exists, so systemd-analyze can check them as installed."""
    prefix = tmp_path_factory.mktemp("prefix")
    sh("cmake", "--install", build_dir, "--prefix", prefix)
    return prefix


@pytest.fixture(scope="module")
def destdir_install(tools, build_dir, tmp_path_factory):
    """`DESTDIR=TMP cmake --install BUILD --prefix /usr/local`: the layout of docs/deploy.md."""
    root = tmp_path_factory.mktemp("destdir")
    sh("cmake", "--install", build_dir, "--prefix", "/usr/local", env={"DESTDIR": str(root)})
    return root


INSTALLED = [
    "bin/awgproxy",
    "lib/systemd/system/awgproxy-server@.service",
    "lib/systemd/system/awgproxy-client@.service",
    "share/man/man1/awgproxy.1",
    "share/man/man5/awgproxy.conf.5",
    "share/doc/awgproxy/README.md",
    "share/doc/awgproxy/deploy.md",
    "share/doc/awgproxy/config-reference.md",
    "share/doc/awgproxy/systemd/low-port.conf",
]


def test_install_layout(prefix_install, destdir_install, awgproxy_bin):
    for base, bindir in [(prefix_install, prefix_install / "bin"),
                         (destdir_install / "usr/local", pathlib.Path("/usr/local/bin"))]:
        for rel in INSTALLED:
            assert (base / rel).is_file(), f"{base / rel} not installed"
        assert os.access(base / "bin/awgproxy", os.X_OK)
        assert (base / "bin/awgproxy").read_bytes() == awgproxy_bin.read_bytes()
        for unit in UNITS:
            text = (base / "lib/systemd/system" / unit).read_text()
            execs = re.findall(r"^Exec\w+=(\S+)", text, re.M)
            assert execs and all(e == f"{bindir}/awgproxy" for e in execs), (unit, execs)
        assert (base / "share/doc/awgproxy/systemd/low-port.conf").read_bytes() == \
            (SOURCE_DIR / "contrib/awgproxy-server@.service.d/low-port.conf").read_bytes()
    # The installed man pages are the build's, from the same binary: every command is in them.
    text, err = render(prefix_install / "share/man/man1/awgproxy.1", 100)
    assert err == ""
    for name, _ in help_commands(awgproxy_bin):
        assert re.search(rf"^   awgproxy {re.escape(name)}$", text, re.M), name


# The settings docs/deploy.md promises (the list); each unit must have these lines.
REQUIRED = [
    "DynamicUser=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
    "NoNewPrivileges=yes", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
    "CapabilityBoundingSet=", "Restart=on-failure", "SystemCallFilter=@system-service",
    "SystemCallArchitectures=native", "LockPersonality=yes", "MemoryDenyWriteExecute=yes",
    "ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes", "ProtectClock=yes", "ProtectHostname=yes",
    "RestrictNamespaces=yes", "RestrictRealtime=yes", "RestrictSUIDSGID=yes",
    "PrivateDevices=yes", "UMask=0077", "ProtectProc=invisible",
]


@pytest.mark.parametrize("unit", UNITS)
def test_unit_settings(unit):
    text = (SOURCE_DIR / "contrib" / unit).read_text()
    lines = set(text.splitlines())
    missing = [r for r in REQUIRED if r not in lines]
    assert not missing, f"{unit} lacks {missing}"
    state = "awgproxy" if unit.startswith("awgproxy-server") else "awgproxy-client"
    assert f"StateDirectory={state}/%i" in lines
    assert re.search(rf"^ExecStart=/usr/local/bin/awgproxy \w+ -c %S/{state}/%i/%i\.conf$", text, re.M)
    assert f"ExecReload=/usr/local/bin/awgproxy ctl -c %S/{state}/%i/%i.conf reload" in lines
    assert int(re.search(r"^LimitNOFILE=(\d+)$", text, re.M).group(1)) >= 65536
    dropin = (SOURCE_DIR / "contrib/awgproxy-server@.service.d" / DROPIN).read_text()
    assert {"CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
            "AmbientCapabilities=CAP_NET_BIND_SERVICE"} <= set(dropin.splitlines())


# ---- systemd-analyze ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unit_dir(prefix_install, tmp_path_factory):
    """The installed units, plus an instance `awgproxy-server@low` with the low-port drop-in
    installed as docs/deploy.md says."""
    d = tmp_path_factory.mktemp("units")
    for unit in UNITS:
        shutil.copy(prefix_install / "lib/systemd/system" / unit, d / unit)
    (d / "awgproxy-server@low.service.d").mkdir()
    shutil.copy(prefix_install / "share/doc/awgproxy/systemd" / DROPIN,
                d / "awgproxy-server@low.service.d" / DROPIN)
    return d


ANALYZED = [("awgproxy-server@.service", "awgproxy-server@test.service"),
            ("awgproxy-client@.service", "awgproxy-client@test.service"),
            ("awgproxy-server@.service + low-port.conf", "awgproxy-server@low.service")]


@pytest.mark.parametrize("key,instance", ANALYZED, ids=[a[1] for a in ANALYZED])
def test_unit_verify(unit_dir, key, instance):
    p = sh("systemd-analyze", "verify", "--man=no", unit_dir / instance, check=False)
    # Unknown keys and bad values are only warnings (exit 0): any output fails too.
    assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p


@pytest.mark.parametrize("key,instance", ANALYZED, ids=[a[1] for a in ANALYZED])
def test_unit_security(unit_dir, source_dir, key, instance):
    p = sh("systemd-analyze", "security", "--offline=true", "--no-pager", unit_dir / instance,
           check=False)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d) (\w+)", p.stdout)
    assert p.returncode == 0 and m, p
    score, rating = float(m.group(1)), m.group(2)
    assert score <= EXPOSURE[key], (
        f"{key}: exposure {score} {rating}, above the recorded {EXPOSURE[key]}:\n{p.stdout}")
    assert rating in ("OK", "SAFE", "PERFECT"), p.stdout
    # The recorded figure is the one docs/deploy.md gives.
    deploy = (source_dir / "docs" / "deploy.md").read_text()
    row = [line for line in deploy.splitlines() if line.startswith(f"| `{key.split(' ')[0]}`")
           and (" + " in key) == ("low-port.conf" in line)]
    assert row and f"{EXPOSURE[key]} " in row[0], f"docs/deploy.md has no row for {key}: {row}"


# ---- live: systemd as PID 1 in its own namespaces -------------------------------------------

# Started with `unshare --pid --fork --mount --mount-proc --net --uts --ipc --cgroup` from inside
# a fresh cgroup (below the test's own cgroup v2 directory), so that systemd sees itself as PID 1
# of a container whose cgroup root is that directory. It gets private copies of the file system
# mounts: /run and /tmp are new tmpfs, /usr/local and /var/lib are test directories, /proc/sys is
# read-only, /dev/console (where PID 1 logs) is a test file, and the units come only from
# SYSTEMD_UNIT_PATH (the test's stub targets and drop-ins, then the installed units): no unit of
# the host is loaded or started.
LAUNCH = r"""
set -e
mount --make-rprivate /
# As systemd's own sysctl.d/50-default.conf sets it on a host: ICMP echo sockets for all groups.
echo "0 2147483647" > /proc/sys/net/ipv4/ping_group_range
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
umount -l /sys/fs/cgroup 2>/dev/null || true
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir /run/awgproxy-test-units
mount --bind "$AWG_STUBS" /run/awgproxy-test-units
mount --bind "$AWG_VARLIB" /var/lib
mount --bind "$AWG_USRLOCAL" /usr/local
mount --bind "$AWG_CONSOLE" /dev/console
# Last, as the paths above are under the host's /tmp: the services' PrivateTmp= directories are
# made in this /tmp and vanish with the namespace.
mount -t tmpfs -o mode=1777 tmpfs /tmp
exec env -i container=awgproxy-test \
  SYSTEMD_UNIT_PATH=/run/awgproxy-test-units:/usr/local/lib/systemd/system \
  PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  "$AWG_SYSTEMD" --system --unit=awgtest.target --log-target=console --show-status=no
"""
STUB_TARGETS = ["sysinit", "basic", "network", "network-online", "network-pre", "shutdown",
                "sockets", "timers", "paths", "slices", "local-fs", "remote-fs", "multi-user"]


def _skip_or_fail(reason):
    if os.environ.get("AWG_NETNS_REQUIRED") == "1":
        pytest.fail(f"{reason} (AWG_NETNS_REQUIRED=1 forbids skipping)", pytrace=False)
    pytest.skip(reason)


def _cgroup2():
    """(mount point of the cgroup v2 hierarchy, this process's cgroup in it)."""
    mount = None
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" - ")
        if len(fields) == 2 and fields[1].split()[0] == "cgroup2":
            mount = line.split()[4]
            break
    own = None
    for line in pathlib.Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            own = line[3:]
    return mount, own


class NsSystemd:
    """A systemd running as PID 1 in its own namespaces, and commands run beside it."""

    def __init__(self, base, usrlocal, stubs):
        self.base = base
        self.varlib = base / "varlib"
        self.varlib.mkdir()
        mount, own = _cgroup2()
        if mount is None or own is None:
            _skip_or_fail("no cgroup v2 hierarchy mounted")
        self.cgroup = pathlib.Path(mount + own.rstrip("/")) / f"awgproxy-test-{os.getpid()}"
        try:
            self.cgroup.mkdir()
        except OSError as e:
            _skip_or_fail(f"cannot make a cgroup for the test's systemd: {e}")
        self.log = open(base / "systemd.log", "w")
        script = base / "launch.sh"
        script.write_text(LAUNCH)
        self.console = base / "console.log"
        self.console.write_text("")
        env = dict(os.environ, AWG_VARLIB=str(self.varlib), AWG_USRLOCAL=str(usrlocal),
                   AWG_CONSOLE=str(self.console), AWG_SYSTEMD=SYSTEMD,
                   AWG_STUBS=str(stubs))
        self.proc = subprocess.Popen(
            ["sh", "-c", f'echo $$ > "{self.cgroup}/cgroup.procs" && exec unshare --pid --fork '
             f'--mount --mount-proc --net --uts --ipc --cgroup bash "{script}"'],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.pid = None

    def start(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"systemd exited: {(self.base / 'systemd.log').read_text()}")
            kids = pathlib.Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
            pids = kids.read_text().split() if kids.exists() else []
            if pids:
                self.pid = int(pids[0])
                p = self.run("systemctl", "is-system-running", check=False)
                if p.stdout.strip() in ("running", "degraded"):
                    return
            time.sleep(0.1)
        pytest.fail(f"systemd did not come up: {(self.base / 'systemd.log').read_text()}")

    def run(self, *args, check=True, timeout=60):
        """Runs a command in systemd's mount, network and PID namespaces (so that paths under
        /var/lib and /usr/local, and 127.0.0.1, are those the services see)."""
        return sh("nsenter", "-t", self.pid, "-m", "-n", "-p", "--", *args, check=check,
                  timeout=timeout)

    def systemctl(self, *args, check=True):
        return self.run("systemctl", "--no-pager", *args, check=check)

    def stop(self):
        if self.proc.poll() is None:
            # systemd as PID 1 ignores SIGTERM's usual meaning; SIGKILL of the namespace's init
            # ends every process in the namespace.
            if self.pid:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
        for _ in range(50):
            dirs = sorted((p for p in self.cgroup.rglob("*") if p.is_dir()),
                          key=lambda p: len(p.parts), reverse=True) + [self.cgroup]
            try:
                for d in dirs:
                    if d.exists():
                        d.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def wait_for(what, fn, timeout=10.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}; last: {last!r}", pytrace=False)


@pytest.fixture(scope="module")
def live(tools, destdir_install, tmp_path_factory):
    if os.geteuid() != 0:
        _skip_or_fail("the live systemd test needs root (namespaces, mounts)")
    base = tmp_path_factory.mktemp("systemd")
    stubs = base / "stubs"
    stubs.mkdir()
    for name in STUB_TARGETS:
        (stubs / f"{name}.target").write_text(f"[Unit]\nDescription={name} (awgproxy test stub)\n")
    (stubs / "awgtest.target").write_text(
        "[Unit]\nDescription=awgproxy test boot target\nDefaultDependencies=no\n")
    # There is no journald in the namespace: the services' output goes to a file per instance
    # (systemd opens it before dropping privileges). A sanitizer build's LeakSanitizer needs
    # ptrace(), which the units' system call filter refuses: leak checks are off in the services.
    for unit in ["awgproxy-server@.service", "awgproxy-client@.service"]:
        d = stubs / f"{unit}.d"
        d.mkdir()
        (d / "zz-test.conf").write_text(
            "[Service]\nStandardOutput=append:/var/lib/test-%n.log\nStandardError=inherit\n"
            "Environment=ASAN_OPTIONS=detect_leaks=0\n")
    usrlocal = destdir_install / "usr/local"
    ns = NsSystemd(base, usrlocal, stubs)
    try:
        ns.start()
        ns.stubs = stubs
        ns.usrlocal = usrlocal
        yield ns
    finally:
        ns.stop()


def unit_log(ns, instance):
    f = ns.varlib / f"test-{instance}.log"
    return f.read_text(errors="replace") if f.exists() else ""


def status_json(ns, conf):
    import json
    p = ns.run(AWG, "ctl", "-c", conf, "--json", "status", check=False)
    return json.loads(p.stdout) if p.returncode == 0 else None


AWG = "/usr/local/bin/awgproxy"
SERVER_CONF = "/var/lib/awgproxy/test/test.conf"
CLIENT_CONF = "/var/lib/awgproxy-client/test/test.conf"


def test_live_server_and_client_units(live):
    ns = live
    server = "awgproxy-server@test.service"
    # docs/deploy.md: the directory first (root-owned; systemd hands it to the service's user at
    # the first start), then the config, written by root.
    ns.run("install", "-d", "-m", "0700", "/var/lib/awgproxy/test")
    ns.run(AWG, "init-server", "-o", SERVER_CONF, "--endpoint", "127.0.0.1",
           "--port", "40123", timeout=30)
    ns.systemctl("start", server)
    state = ns.systemctl("is-active", server, check=False).stdout.strip()
    assert state == "active", unit_log(ns, server)
    real = ns.varlib / "private/awgproxy/test"
    assert (ns.varlib / "awgproxy/test").is_symlink() and real.is_dir()
    st = (real / "test.conf").stat()
    assert st.st_uid != 0 and st.st_mode & 0o777 == 0o600, "systemd did not hand the config over"
    status = wait_for("the server's control API", lambda: status_json(ns, SERVER_CONF))
    assert (real / "test.sock").is_socket()
    assert status["role"] == "server" and status["peers"] == []
    # The service runs as its dynamic user, not root, with no capabilities.
    main_pid = ns.systemctl("show", "-P", "MainPID", server).stdout.strip()
    proc = ns.run("cat", f"/proc/{main_pid}/status").stdout
    uid = re.search(r"^Uid:\s+(\d+)", proc, re.M).group(1)
    assert uid == str(st.st_uid), proc
    assert re.search(r"^CapEff:\s+0+$", proc, re.M), proc

    # add-peer as root: rewrites the file keeping its owner and mode, reloads the service.
    p = ns.run(AWG, "add-peer", "-c", SERVER_CONF, "phone", timeout=30)
    client_conf = p.stdout
    assert "[Interface]" in client_conf and "Endpoint = 127.0.0.1:40123" in client_conf, p
    st2 = (real / "test.conf").stat()
    assert (st2.st_uid, st2.st_gid, st2.st_mode) == (st.st_uid, st.st_gid, st.st_mode)
    wait_for("the reload adding the peer", lambda: len((status_json(ns, SERVER_CONF) or
                                                         {"peers": []})["peers"]) == 1)
    log = unit_log(ns, server)
    assert "peers_added=1" in log
    # The sandbox lets the exit open its ICMP echo sockets (ping through the tunnel).
    assert "icmp_echo=proxied" in log, log
    # ExecReload= (awgproxy ctl reload, as the service's user) works too.
    ns.systemctl("reload", server)

    # The client unit, with the config add-peer printed plus a control socket.
    client = "awgproxy-client@test.service"
    ns.run("install", "-d", "-m", "0700", "/var/lib/awgproxy-client/test")
    conf = client_conf + "\n[Control]\nListen = /var/lib/awgproxy-client/test/test.sock\n"
    (ns.varlib / "awgproxy-client/test/test.conf").write_text(conf)
    os.chmod(ns.varlib / "awgproxy-client/test/test.conf", 0o600)
    ns.systemctl("start", client)
    assert ns.systemctl("is-active", client, check=False).stdout.strip() == "active", \
        unit_log(ns, client)
    up = wait_for("the client's handshake with the server", lambda: (
        status_json(ns, SERVER_CONF) or {}).get("state") == "up", timeout=15)
    assert up, unit_log(ns, client)
    assert status_json(ns, CLIENT_CONF)["state"] == "up"
    ns.systemctl("reload", client)

    # remove-peer: owner kept, the peer is gone from the running server.
    ns.run(AWG, "remove-peer", "-c", SERVER_CONF, "phone", timeout=30)
    st3 = (real / "test.conf").stat()
    assert (st3.st_uid, st3.st_gid, st3.st_mode) == (st.st_uid, st.st_gid, st.st_mode)
    wait_for("the reload removing the peer",
             lambda: (status_json(ns, SERVER_CONF) or {"peers": [1]})["peers"] == [])

    # Both stop cleanly (the server's workers included: KillMode=mixed).
    for unit in (client, server):
        ns.systemctl("stop", unit)
        assert ns.systemctl("show", "-P", "Result", unit).stdout.strip() == "success", \
            unit_log(ns, unit)
    assert not (real / "test.sock").exists()


def test_live_low_port_needs_the_dropin(live):
    ns = live
    unit = "awgproxy-server@low.service"
    conf = "/var/lib/awgproxy/low/low.conf"
    ns.run("install", "-d", "-m", "0700", "/var/lib/awgproxy/low")
    ns.run(AWG, "init-server", "-o", conf, "--endpoint", "127.0.0.1", "--port", "443",
           timeout=30)
    # Without the drop-in: no capability, so binding UDP 443 fails (Type=exec: `start` returns
    # once the binary runs; the failure follows).
    ns.systemctl("start", unit, check=False)
    wait_for("the failure to bind port 443",
             lambda: re.search(r"(?i)permission denied", unit_log(ns, unit)))
    assert status_json(ns, conf) is None
    ns.systemctl("stop", unit, check=False)
    ns.systemctl("reset-failed", unit, check=False)
    # With it, installed as docs/deploy.md says (the unit directory here is the test's stubs).
    dropin = ns.stubs / "awgproxy-server@low.service.d"
    dropin.mkdir()
    shutil.copy(ns.usrlocal / "share/doc/awgproxy/systemd" / DROPIN, dropin / DROPIN)
    ns.systemctl("daemon-reload")
    ns.systemctl("start", unit)
    status = wait_for("the low-port server", lambda: status_json(ns, conf))
    assert status["role"] == "server"
    assert ":443 " in ns.run("ss", "-Hlun").stdout + " "
    main_pid = ns.systemctl("show", "-P", "MainPID", unit).stdout.strip()
    proc = ns.run("cat", f"/proc/{main_pid}/status").stdout
    assert re.search(r"^CapEff:\s+0*400$", proc, re.M), proc  # CAP_NET_BIND_SERVICE only
    ns.systemctl("stop", unit)
