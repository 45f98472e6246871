"""The suite-wide log audits, run on every awgproxy log (and impair_relay's) when its process stops,
and on the stderr of every awgproxy command the tests run: no registered secret may appear in a
log, and no sanitizer report may go unnoticed. conftest.py fails the test that ran the process
and lists every finding at the end. netns.py re-exports these names (the tests call
netns.register_secret and friends)."""
import pathlib
import re
import subprocess

# ---- the suite-wide secret audit (issue: keys, PSKs and passwords never reach a log) ------------
# Every private key and PSK the tests create or write into an awgproxy config, and every SOCKS
# password they hash, is registered here; every awgproxy log (the lab runs awgproxy at debug level
# unless a test asks otherwise) is searched for all of them when its process stops. A hit is
# recorded and fails the test that ran the process (conftest.py's audit fixture).
_SECRET_TOKENS = set()  # base64 and hex forms of 32-byte keys
_SECRET_TEXTS = set()   # passwords and other free-form secrets
LEAKS = []
_B64_KEY_RX = re.compile(rb"[A-Za-z0-9+/]{43}=")
_HEX_KEY_RX = re.compile(rb"[0-9a-fA-F]{64}")


def register_secret(secret, keys_only=False):
    """Marks secret (a base64 32-byte key, or any text such as a password) as never to be logged.
    keys_only: ignore anything that is not a valid key (configs with deliberately broken keys)."""
    if not secret:
        return
    try:
        import base64
        raw = base64.b64decode(secret, validate=True)
    except ValueError:
        raw = b""
    if len(raw) == 32 and len(secret) == 44:
        _SECRET_TOKENS.update(f.encode() for f in (secret, raw.hex(), raw.hex().upper()))
    elif not keys_only:
        _SECRET_TEXTS.add(secret.encode())


def audit_log(path, what):
    """Searches one log for every registered secret; appends findings to LEAKS."""
    try:
        data = pathlib.Path(path).read_bytes()
    except OSError:
        return
    found = {m for rx in (_B64_KEY_RX, _HEX_KEY_RX) for m in rx.findall(data)} & _SECRET_TOKENS
    found |= {t for t in _SECRET_TEXTS if t in data}
    for token in found:
        kind = "a password" if token in _SECRET_TEXTS else "a private key or PSK"
        LEAKS.append(f"{what} ({path}): {kind} registered by the tests appears in it")


# ---- sanitizer reports in process logs (the ASan+UBSan CI stage) ---------------------------------
# A sanitizer build reports a memory error, a leak or undefined behaviour on stderr, which the lab
# sends to the process's log; a report during shutdown changes nothing a test looks at. So every
# awgproxy log (and impair_relay's) is searched for reports when its process stops (or when its lab
# closes); each one found is recorded here and fails the test that ran the process (conftest.py),
# and the session lists them all at its end.
SANITIZER_REPORTS = []
SANITIZER_REPORT_LINES = 40
_SANITIZER_RX = re.compile(rb"ERROR: (?:Address|Leak|Thread|Memory|UndefinedBehavior)Sanitizer"
                           rb"|runtime error:|[A-Za-z]+Sanitizer:DEADLYSIGNAL")
_SANITIZER_END_RX = re.compile(rb"^SUMMARY: [A-Za-z]+Sanitizer")


def sanitizer_reports(data, lines=SANITIZER_REPORT_LINES, limit=5):
    """The sanitizer reports in a log (bytes or str): a list of texts, each from the line that
    starts a report to its SUMMARY line, at most `lines` lines. Lines that belong to a report
    already taken (a DEADLYSIGNAL line and the ERROR line after it) start no new one. At most
    `limit` reports, then one line saying how many more matched."""
    if isinstance(data, str):
        data = data.encode(errors="replace")
    out, skip_to, more = [], 0, 0
    for m in _SANITIZER_RX.finditer(data):
        if m.start() < skip_to:
            continue
        if len(out) >= limit:
            more += 1
            skip_to = data.find(b"\n", m.end()) + 1 or len(data)
            continue
        start = data.rfind(b"\n", 0, m.start()) + 1
        end, taken = start, []
        while end < len(data) and len(taken) < lines:
            nl = data.find(b"\n", end)
            nl = len(data) if nl < 0 else nl + 1
            line = data[end:nl]
            taken.append(line.rstrip(b"\r\n"))
            end = nl
            if _SANITIZER_END_RX.match(line):
                break
        skip_to = end
        out.append("\n".join(t.decode(errors="replace") for t in taken))
    if more:
        out.append(f"(and {more} more sanitizer report line(s) after these)")
    return out


def audit_sanitizers(path, what, returncode=None):
    """Searches one log for sanitizer reports; appends each one to SANITIZER_REPORTS. Returns
    how many were found."""
    try:
        data = pathlib.Path(path).read_bytes()
    except OSError:
        return 0
    return record_sanitizer_reports(data, f"{what} ({path})", returncode)


def record_sanitizer_reports(data, what, returncode=None):
    """Records the sanitizer reports found in data (the output of a process, bytes or str)."""
    found = sanitizer_reports(data)
    rc = "" if returncode is None else f", exit code {returncode}"
    for text in found:
        SANITIZER_REPORTS.append(f"{what}{rc}:\n" + "\n".join("    " + t
                                                              for t in text.splitlines()))
    return len(found)


def _scan_awgproxy_run(argv, p):
    """Sanitizer reports in the stderr of a finished awgproxy run (ctl, check, passwd, genkey...,
    in a namespace or not) count like those in a daemon's log."""
    try:
        import netns  # loaded by then: netns imports this module first
        binary = str(netns.awgproxy_binary())
        argv = [str(a) for a in argv]
    except Exception:  # an argv that is one string, or no binary configured: nothing to scan
        return
    if binary in argv and p.stderr:
        command = " ".join(argv[argv.index(binary):][:2])
        record_sanitizer_reports(p.stderr, f"{command} (stderr of a run)", p.returncode)


_subprocess_run = subprocess.run


def _run_and_scan(*args, **kwargs):
    p = _subprocess_run(*args, **kwargs)
    argv = args[0] if args else kwargs.get("args")
    if isinstance(argv, (list, tuple)):
        _scan_awgproxy_run(argv, p)
    return p


# Every subprocess.run of the test kit and the tests goes through the scan: a test that runs
# awgproxy directly cannot hide a sanitizer report it did not look for (Popen'd daemons are scanned
# through their logs instead).
subprocess.run = _run_and_scan
