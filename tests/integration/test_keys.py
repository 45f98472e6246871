"""genkey / genpsk / pubkey: same formats as wireguard-tools' `wg`, cross-checked against it."""
import base64
import os
import re
import shutil
import subprocess

import pytest

ITERATIONS = 20
B64_KEY = re.compile(r"[A-Za-z0-9+/]{43}=")

needs_wg = pytest.mark.skipif(shutil.which("wg") is None and os.environ.get("AWG_NETNS_REQUIRED") != "1",
                              reason="wireguard-tools (wg) not installed")


def wg(*args, input=None):
    p = subprocess.run(["wg", *args], input=input.encode() if input is not None else None,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, check=True)
    return p.stdout.decode()


def one_key(out):
    """The output must be exactly one base64 key and a newline."""
    assert out.endswith("\n") and out.count("\n") == 1, repr(out)
    key = out[:-1]
    assert len(key) == 44 and B64_KEY.fullmatch(key), repr(key)
    raw = base64.b64decode(key, validate=True)
    assert len(raw) == 32
    return key, raw


@needs_wg
def test_genkey_pubkey_matches_wg(run):
    for _ in range(ITERATIONS):
        r = run("genkey")
        assert r.rc == 0 and r.stderr == "", r
        priv, _ = one_key(r.stdout)
        ours = run("pubkey", input=r.stdout)
        assert ours.rc == 0, ours
        assert ours.stdout == wg("pubkey", input=r.stdout)


@needs_wg
def test_wg_genkey_pubkey_matches_wg(run):
    for _ in range(ITERATIONS):
        priv = wg("genkey")
        ours = run("pubkey", input=priv)
        assert ours.rc == 0, ours
        one_key(ours.stdout)
        assert ours.stdout == wg("pubkey", input=priv)


def test_genkey_is_clamped_and_fresh(run):
    seen = set()
    for _ in range(ITERATIONS):
        r = run("genkey")
        assert r.rc == 0, r
        key, raw = one_key(r.stdout)
        assert raw[0] & 0b111 == 0, "low 3 bits of byte 0 must be clear"
        assert raw[31] & 0x80 == 0, "top bit of byte 31 must be clear"
        assert raw[31] & 0x40 == 0x40, "bit 254 must be set"
        seen.add(key)
    assert len(seen) == ITERATIONS, "genkey repeated a key"


def test_genpsk(run):
    seen = set()
    for _ in range(ITERATIONS):
        r = run("genpsk")
        assert r.rc == 0 and r.stderr == "", r
        key, _ = one_key(r.stdout)
        seen.add(key)
    assert len(seen) == ITERATIONS, "genpsk repeated a key"


@needs_wg
def test_genpsk_is_accepted_by_wg(run):
    """A PSK is 32 random bytes in the same encoding; wg's key parser must accept ours."""
    for _ in range(5):
        psk = run("genpsk").stdout
        assert len(wg("pubkey", input=psk).strip()) == 44


def test_genkey_rejects_arguments(run):
    for cmd in ("genkey", "genpsk"):
        r = run(cmd, "extra")
        assert r.rc == 2
        assert "takes no arguments" in r.stderr
        assert r.stdout == ""


def test_genkey_warns_when_writing_world_readable_file(awgproxy_bin, tmp_path):
    out = tmp_path / "key"
    out.touch(mode=0o644)
    out.chmod(0o644)
    with open(out, "w") as f:
        p = subprocess.run([str(awgproxy_bin), "genkey"], stdout=f, stderr=subprocess.PIPE,
                           timeout=30)
    assert p.returncode == 0
    assert b"umask 077" in p.stderr
    one_key(out.read_text())


KNOWN_PRIV = "8JvmiZZht1aqnTIYo1qLT32mEW9no5/71WVx5oCTIm4="
KNOWN_PUB = "f+2up9Y6JpDbknlpCXSOhoOawuhaX718ejV2QsrxxV8="


@pytest.mark.parametrize("text", [
    KNOWN_PRIV,
    KNOWN_PRIV + "\n",
    KNOWN_PRIV + "\r\n",
    KNOWN_PRIV + "\n\n\n",
    KNOWN_PRIV + "  \t \n",
    " " + KNOWN_PRIV + "\n",
    KNOWN_PRIV + " " * 200 + "\n",
], ids=["bare", "newline", "crlf", "newlines", "spaces-tabs", "leading-space", "long-whitespace"])
def test_pubkey_accepts_surrounding_whitespace(run, text):
    r = run("pubkey", input=text)
    assert r.rc == 0, r
    assert r.stdout == KNOWN_PUB + "\n"


@pytest.mark.parametrize("text,message", [
    ("", "is 0 characters long"),
    ("\n", "is 0 characters long"),
    ("garbage\n", "is 7 characters long"),
    (KNOWN_PRIV[:43] + "\n", "is 43 characters long"),
    (KNOWN_PRIV[:-2] + "\n", "is 42 characters long"),
    ("!" + KNOWN_PRIV[1:] + "\n", "is not valid base64"),
    (KNOWN_PRIV[:42] + "==\n", "is not valid base64"),
    (KNOWN_PRIV[:-1] + "A\n", "is not valid base64"),
    (KNOWN_PRIV + "A\n", "is 45 characters long"),
    (KNOWN_PRIV + " junk\n", "characters long"),
    (KNOWN_PRIV + "\n" + KNOWN_PRIV + "\n", "characters long"),
    (KNOWN_PRIV + " " * 100 + "junk\n", "followed by other text"),
    ("\x00" * 44, "characters long"),
], ids=["empty", "only-newline", "garbage", "short-43", "short-42", "bad-char", "bad-padding",
        "no-padding", "long-45", "trailing-word", "two-keys", "junk-after-long-space", "nuls"])
def test_pubkey_rejects_bad_input(run, text, message):
    r = run("pubkey", input=text)
    assert r.rc == 1, r
    assert r.stdout == ""
    assert r.stderr.startswith("awgproxy pubkey: the private key on stdin "), r.stderr
    assert message in r.stderr, r.stderr
    assert KNOWN_PRIV not in r.stderr, "the key must never be echoed"


def test_pubkey_rejects_arguments(run):
    r = run("pubkey", KNOWN_PRIV, input=KNOWN_PRIV)
    assert r.rc == 2
    assert "the private key comes on stdin" in r.stderr
