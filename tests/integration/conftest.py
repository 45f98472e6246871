"""Shared fixtures for the integration tests: they drive the real awgproxy binary.

Environment (set by ctest, see tests/CMakeLists.txt):
  AWGPROXY_BIN    path to the binary (default: <repo>/build/awgproxy)
  AWG_SOURCE_DIR  repository root (default: two levels above this file)
"""
import os
import pathlib
import subprocess

import pytest

SOURCE_DIR = pathlib.Path(
    os.environ.get("AWG_SOURCE_DIR") or pathlib.Path(__file__).resolve().parents[2]
)

# Fixed key pairs (from tests/vectors/awg-demo.keys.txt): A's private key, A's and B's public keys.
KEY_A_PRIV = "8JvmiZZht1aqnTIYo1qLT32mEW9no5/71WVx5oCTIm4="
KEY_A_PUB = "f+2up9Y6JpDbknlpCXSOhoOawuhaX718ejV2QsrxxV8="
KEY_B_PUB = "vameuq1G3A/VgRXmv6boolzOzoadpgtEj1JKzG+WkDw="
# Two more public keys for configs with several peers.
KEY_C_PUB = "Oc0QUC+UmfrEGX7aIy1VRgKI6f7J0IhSrNfAOLZCKwI="
KEY_D_PUB = "VqRGsC5fM0kyEjPLqzltyJtH5mwGZv6vDB44Bpf9xms="


def _binary_path():
    env = os.environ.get("AWGPROXY_BIN")
    if env:
        return pathlib.Path(env)
    return SOURCE_DIR / "build" / "awgproxy"


class Result:
    """What one run of the binary produced."""

    def __init__(self, args, rc, stdout, stderr):
        self.args, self.rc, self.stdout, self.stderr = args, rc, stdout, stderr

    def __repr__(self):
        return (f"Result(args={self.args!r}, rc={self.rc}, stdout={self.stdout!r}, "
                f"stderr={self.stderr!r})")


@pytest.fixture(scope="session")
def source_dir():
    return SOURCE_DIR


@pytest.fixture(scope="session")
def awgproxy_bin():
    path = _binary_path()
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"awgproxy binary not found at {path}; build it or set AWGPROXY_BIN")
    return path


@pytest.fixture(scope="session")
def run(awgproxy_bin):
    """run(*args, input=None, timeout=60, env=None) -> Result with rc, stdout, stderr (text)."""

    def _run(*args, input=None, timeout=60, env=None):
        full_env = dict(os.environ)
        # A LOG_LEVEL/LOG_FORMAT in the caller's environment must not change what we check.
        full_env.pop("LOG_LEVEL", None)
        full_env.pop("LOG_FORMAT", None)
        if env:
            full_env.update(env)
        if isinstance(input, str):
            input = input.encode()
        p = subprocess.run([str(awgproxy_bin), *map(str, args)], input=input,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, env=full_env,
                           stdin=None if input is not None else subprocess.DEVNULL)
        # A sanitizer report (ASan CI stage) fails the test even when it expected a failure:
        # netns scans the stderr of every awgproxy run (netns._run_and_scan).
        return Result(args, p.returncode, p.stdout.decode(errors="replace"),
                      p.stderr.decode(errors="replace"))

    return _run


@pytest.fixture
def write_config(tmp_path):
    """write_config(text_or_bytes, name="test.conf", mode=0o600) -> pathlib.Path.

    Writes the bytes exactly as given (no newline translation) and sets the mode, 600 by
    default so that the "readable by others" warning does not appear."""
    counter = [0]

    def _write(content, name=None, mode=0o600):
        counter[0] += 1
        path = tmp_path / (name or f"test{counter[0]}.conf")
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes(data)
        os.chmod(path, mode)
        return path

    return _write


# ---- log audits: secrets (netns.LEAKS) and sanitizer reports (netns.SANITIZER_REPORTS) -----------
# netns.py searches each awgproxy log when its process stops (impair_relay's for sanitizer reports
# too): for every registered private key, PSK and password (the lab runs awgproxy at debug level by
# default, so the whole suite's debug logs go through this check), and for ASan / LSan / UBSan
# reports (the sanitizer CI stage). What is found while a test runs, from its setup to the end of
# its teardown, fails that test at teardown; that includes module-scoped labs, which close in the
# teardown of their module's last test. The session fails too and lists everything at its end.
_AUDIT_START = pytest.StashKey[tuple]()


def _audits():
    import netns
    return (("secrets in logs", netns.LEAKS),
            ("sanitizer reports in logs", netns.SANITIZER_REPORTS))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.stash[_AUDIT_START] = tuple(len(found) for _, found in _audits())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if call.when != "teardown":
        return
    start = item.stash.get(_AUDIT_START, None)
    if start is None:
        return
    texts = []
    for (title, found), n in zip(_audits(), start):
        if len(found) > n:
            texts.append(f"{title} (of processes this test ran, or that a module- or "
                         f"session-scoped fixture stopped after it):\n" + "\n".join(found[n:]))
    if not texts:
        return
    report = outcome.get_result()
    text = "\n\n".join(texts)
    if report.passed:
        report.outcome = "failed"
        report.longrepr = text
    else:
        report.sections.append(("log audit", text))


def pytest_terminal_summary(terminalreporter):
    for title, found in _audits():
        if found:
            terminalreporter.section(title, sep="=", red=True, bold=True)
            for entry in found:
                terminalreporter.line(entry)


def pytest_sessionfinish(session, exitstatus):
    """Anything the audits found fails the run, also what no test was charged with."""
    if any(found for _, found in _audits()) and session.exitstatus == 0:
        session.exitstatus = 1
