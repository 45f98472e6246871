"""The command line: help for every subcommand, exit statuses, version, passwd, and the daemons
refusing a bad config before they start."""
import re

import pytest

from conftest import KEY_A_PRIV, KEY_B_PUB

SUBCOMMANDS = ["client", "server", "check", "genkey", "pubkey", "genpsk", "passwd"]

VALID = f"""[Interface]
PrivateKey = {KEY_A_PRIV}
Address = 10.0.0.2/32

[Peer]
PublicKey = {KEY_B_PUB}
AllowedIPs = 10.0.0.1/32
"""

ARGON2ID = re.compile(r"\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+")


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_subcommand_help(run, cmd, flag):
    r = run(cmd, flag)
    assert r.rc == 0, r
    assert r.stdout.startswith(f"Usage: awgproxy {cmd}"), r.stdout
    assert r.stderr == ""


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["help"]])
def test_top_level_help(run, args):
    r = run(*args)
    assert r.rc == 0
    assert r.stdout.startswith("Usage: awgproxy COMMAND")
    for cmd in SUBCOMMANDS + ["version"]:
        assert re.search(rf"^  {cmd}\b", r.stdout, re.M), f"{cmd} missing from the help"


def test_no_command_is_usage_error(run):
    r = run()
    assert r.rc == 2
    assert "Usage: awgproxy COMMAND" in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("cmd", ["bogus", "Check", "--bogus", "genkeys"])
def test_unknown_command(run, cmd):
    r = run(cmd)
    assert r.rc == 2, r
    assert f"unknown command '{cmd}'" in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("args", [["version"], ["--version"]])
def test_version(run, source_dir, args):
    m = re.search(r"project\(awgproxy VERSION ([0-9.]+)", (source_dir / "CMakeLists.txt").read_text())
    assert m, "no project version in CMakeLists.txt"
    r = run(*args)
    assert r.rc == 0
    assert r.stdout.startswith(f"awgproxy {m.group(1)}"), r.stdout
    assert r.stdout.count("\n") == 1


@pytest.mark.parametrize("cmd", ["client", "server"])
def test_daemon_refuses_bad_config(run, write_config, cmd):
    path = write_config(VALID.replace("Address = 10.0.0.2/32", "Address = 10.0.0.2/40"))
    r = run(cmd, "-c", path, timeout=30)
    assert r.rc == 1, r
    assert f"{path}:3: error: Address: prefix length in '10.0.0.2/40'" in r.stderr
    assert f"awgproxy {cmd}: {path} is not usable (1 error(s))" in r.stderr
    assert f"awgproxy check -c {path}" in r.stderr


@pytest.mark.parametrize("cmd", ["client", "server"])
def test_daemon_missing_config(run, tmp_path, cmd):
    path = tmp_path / "missing.conf"
    r = run(cmd, "-c", path, timeout=30)
    assert r.rc == 1, r
    assert f"{path}: error: cannot open" in r.stderr


@pytest.mark.parametrize("cmd", ["client", "server", "check"])
def test_config_command_without_config(run, cmd):
    r = run(cmd)
    assert r.rc == 2, r
    assert "which config? pass -c FILE" in r.stderr
    assert f"Usage: awgproxy {cmd}" in r.stderr


def test_invalid_log_level_env(run, write_config):
    r = run("check", "-c", write_config(VALID), env={"LOG_LEVEL": "loud"})
    assert r.rc == 2, r
    assert r.stderr != ""


# ---- passwd ---------------------------------------------------------------------------------------


def test_passwd_from_pipe(run, write_config):
    r = run("passwd", input="correct horse battery staple\n")
    assert r.rc == 0, r
    hash_ = r.stdout.strip()
    assert r.stdout == hash_ + "\n"
    assert ARGON2ID.fullmatch(hash_), hash_
    assert "correct horse" not in r.stdout + r.stderr
    # The output is exactly what a [Socks] User line takes.
    conf = write_config(VALID + f"\n[Socks]\nListen = 0.0.0.0:1080\nUser = alice:{hash_}\n")
    c = run("check", "-c", conf)
    assert c.rc == 0, c
    assert "username/password required" in c.stdout
    assert "no User is set" not in c.stderr


def test_passwd_is_salted(run):
    a = run("passwd", input="same\n").stdout
    b = run("passwd", input="same\n").stdout
    assert a.startswith("$argon2id$") and b.startswith("$argon2id$")
    assert a != b


def test_passwd_without_trailing_newline(run):
    r = run("passwd", input="pw")
    assert r.rc == 0, r
    assert r.stdout.startswith("$argon2id$")


@pytest.mark.parametrize("text", ["", "\n"], ids=["eof", "empty-line"])
def test_passwd_empty(run, text):
    r = run("passwd", input=text)
    assert r.rc == 1
    assert "no password given" in r.stderr
    assert r.stdout == ""


def test_passwd_rejects_arguments(run):
    r = run("passwd", "secret")
    assert r.rc == 2
    assert "Usage: awgproxy passwd" in r.stdout + r.stderr
