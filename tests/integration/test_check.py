"""`awgproxy check`: valid configs pass, and every malformed config fails with a diagnostic that
names the file, the line and the problem (`FILE:LINE: error: …`)."""
import re

import pytest

from conftest import KEY_A_PRIV, KEY_A_PUB, KEY_B_PUB, KEY_C_PUB, KEY_D_PUB, SOURCE_DIR

# ---- configs that must be accepted --------------------------------------------------------------


def _confs(root):
    return sorted(p for p in root.rglob("*.conf") if p.is_file())


VECTOR_CONFS = _confs(SOURCE_DIR / "tests" / "vectors")


def _rel(p):
    return str(p.relative_to(SOURCE_DIR))


def test_vectors_exist():
    assert VECTOR_CONFS, "tests/vectors/ should hold .conf files"


@pytest.mark.parametrize("conf", VECTOR_CONFS, ids=_rel)
def test_vector_configs_are_accepted(run, conf):
    r = run("check", "-c", conf)
    assert r.rc == 0, r
    assert f"{conf}: OK" in r.stdout
    assert ": error:" not in r.stderr


def test_docs_configs_are_accepted(run, tmp_path):
    """Every example config in docs/ must pass (globbed at test time)."""
    confs = _confs(SOURCE_DIR / "docs")
    assert confs, "docs/ has no .conf files"
    failures = []
    for conf in confs:
        r = run("check", "-c", conf)
        if r.rc != 0 or ": error:" in r.stderr:
            failures.append(f"{_rel(conf)}: rc={r.rc}\n{r.stderr}")
    assert not failures, "\n".join(failures)


# ---- malformed configs ---------------------------------------------------------------------------
#
# Each config breaks ONE rule. The line the error must point at is marked with a leading ">>"
# (removed before writing); a config without a marker expects a whole-file diagnostic
# (`FILE: error: …`, no line number).

IFACE = f"""[Interface]
PrivateKey = {KEY_A_PRIV}
Address = 10.0.0.2/32
"""

PEER_B = f"""
[Peer]
PublicKey = {KEY_B_PUB}
AllowedIPs = 10.0.0.1/32
Endpoint = 192.0.2.1:51820
"""


def iface(*lines):
    """A valid [Interface] with extra lines appended (the first extra line is line 4), then a
    valid [Peer]."""
    return IFACE + "".join(line + "\n" for line in lines) + PEER_B


def peer(*lines):
    """A valid [Interface] and a [Peer] (header at line 5) made of the given lines."""
    return IFACE + "\n[Peer]\n" + "".join(line + "\n" for line in lines)


def full(*lines):
    return "".join(line + "\n" for line in lines)


I_PACKETS_5 = [f"I{k} = <b 0x{k:02x}>" for k in range(1, 6)]

BAD = [
    # -- [Interface] keys
    ("missing-private-key",
     full("[Interface]", "Address = 10.0.0.2/32", "", "[Peer]", f"PublicKey = {KEY_B_PUB}"),
     "[Interface] has no PrivateKey"),
    ("private-key-short",
     full("[Interface]", f">>PrivateKey = {KEY_A_PRIV[:-2]}=", "Address = 10.0.0.2/32"),
     "PrivateKey: is 43 characters long; a key is 44"),
    ("private-key-long",
     full("[Interface]", f">>PrivateKey = A{KEY_A_PRIV}", "Address = 10.0.0.2/32"),
     "PrivateKey: is 45 characters long"),
    ("private-key-bad-base64",
     full("[Interface]", f">>PrivateKey = !{KEY_A_PRIV[1:]}", "Address = 10.0.0.2/32"),
     "PrivateKey: is not valid base64 of 32 bytes"),
    ("missing-address",
     full("[Interface]", f"PrivateKey = {KEY_A_PRIV}"),
     "[Interface] has no Address"),
    ("bad-address",
     iface(">>Address = 10.0.0.300/32"),
     "Address: '10.0.0.300' is not an IPv4 or IPv6 address"),
    ("address-prefix-33",
     iface(">>Address = 10.0.0.3/33"),
     "prefix length in '10.0.0.3/33': 33 is out of range; allowed: 0 to 32"),
    ("address-prefix-129",
     iface(">>Address = fd00::2/129"),
     "prefix length in 'fd00::2/129': 129 is out of range; allowed: 0 to 128"),
    ("address-empty-list",
     iface(">>Address = ,"),
     "Address: is empty"),
    ("listen-port-70000",
     iface(">>ListenPort = 70000"),
     "ListenPort: 70000 is out of range; allowed: 0 to 65535"),
    ("listen-port-negative",
     iface(">>ListenPort = -1"),
     "ListenPort: '-1' is not a whole number"),
    ("mtu-100",
     iface(">>MTU = 100"),
     "MTU: 100 is out of range; allowed: 576 to 65535"),
    ("mtu-abc",
     iface(">>MTU = abc"),
     "MTU: 'abc' is not a whole number"),
    ("mtu-below-ipv6-minimum",
     iface("Address = fd00::2/128", ">>MTU = 1200"),
     "MTU 1200 is below 1280, the minimum for IPv6"),
    ("default-mtu-below-ipv6-minimum-via-s4",
     iface("Address = fd00::2/128", ">>S4 = 500"),
     "MTU 920 is below 1280"),
    # -- AmneziaWG parameters
    ("jc-200",
     iface(">>Jc = 200"),
     "Jc: 200 is out of range; allowed: 0 to 127"),
    ("jmin-above-jmax",
     iface("Jc = 3", ">>Jmin = 100", "Jmax = 50"),
     "Jmin = 100 is greater than Jmax = 50"),
    ("s1-70000",
     iface(">>S1 = 70000"),
     "S1: 70000 is out of range; allowed: 0 to 65535"),
    ("s1-negative",
     iface(">>S1 = -1"),
     "S1: '-1' is not a whole number"),
    ("s1-datagram-too-large",
     iface(">>S1 = 65535"),
     "S1 = 65535 is too large"),
    ("h1-three-parts",
     iface(">>H1 = 1-2-3"),
     "H1: \"1-2-3\": expected A or A-B with a single '-'"),
    ("h-range-reversed",
     iface(">>H3 = 456-123"),
     "H3: \"456-123\": range end is below its start"),
    ("h1-overlaps-default-h2",
     iface(">>H1 = 2"),
     "H1 (2) and H2 (2) overlap"),
    ("h-ranges-overlap",
     iface(">>H1 = 100-200", "H2 = 150-300", "H3 = 1000", "H4 = 2000"),
     "H1 (100-200) and H2 (150-300) overlap"),
    ("h1-2-pow-32",
     iface(">>H1 = 4294967296"),
     "above the maximum 4294967295"),
    ("i1-unknown-tag",
     iface(">>I1 = <b 0x01><x>"),
     "I1: unknown tag <x>"),
    ("i1-negative-size",
     iface(">>I1 = <r -5>"),
     "<r -5>: the size cannot be negative"),
    ("i1-missing-close",
     iface(">>I1 = <b 0xc0ffee><r 16"),
     "missing '>' to close the tag"),
    ("i1-odd-hex",
     iface(">>I1 = <b 0xABC>"),
     "<b 0xABC>: odd number of hex digits"),
    ("i1-tag-above-65535",
     iface(">>I1 = <r 70000>"),
     "<r 70000>: the size is above the 65535-byte datagram limit"),
    ("i1-packet-above-65535",
     iface(">>I2 = <r 40000><r 40000>"),
     "makes the packet 80000 bytes, above the 65535-byte datagram limit"),
    ("too-many-prehandshake-datagrams",
     iface(*I_PACKETS_5, ">>Jc = 123", "Jmin = 10",
           "Jmax = 20"),
     "Jc = 123 plus 5 I-packet(s) makes 128 datagrams"),
    # -- names and syntax
    ("unknown-interface-key",
     iface(">>Foo = bar"),
     "unknown key 'Foo' in [Interface]; did you mean"),
    ("misspelled-private-key",
     full("[Interface]", f">>PrivteKey = {KEY_A_PRIV}", "Address = 10.0.0.2/32"),
     "unknown key 'PrivteKey' in [Interface]; did you mean 'PrivateKey'?"),
    ("misspelled-allowed-ips",
     peer(f"PublicKey = {KEY_B_PUB}", ">>AllowedIP = 10.0.0.1/32"),
     "did you mean 'AllowedIPs'?"),
    ("unknown-section",
     IFACE + f"\n>>[Peers]\nPublicKey = {KEY_B_PUB}\n",
     "unknown section [Peers]; did you mean [Peer]?"),
    ("key-before-section",
     f">>PrivateKey = {KEY_A_PRIV}\n" + IFACE.replace(f"PrivateKey = {KEY_A_PRIV}\n", ""),
     "'PrivateKey' appears before any section"),
    ("line-without-equals",
     iface(">>ListenPort 51820"),
     "expected 'Key = Value' or '[Section]', found 'ListenPort 51820'"),
    ("value-without-key",
     iface(">>= 51820"),
     "a value without a key"),
    ("section-missing-bracket",
     IFACE + f"\n>>[Peer\nPublicKey = {KEY_B_PUB}\n",
     "section header is missing its closing ']'"),
    ("section-text-after-bracket",
     IFACE + f"\n>>[Peer] x\nPublicKey = {KEY_B_PUB}\n",
     "unexpected text after ']'"),
    ("section-empty-name",
     IFACE + f"\n>>[ ]\nPublicKey = {KEY_B_PUB}\n",
     "empty section name"),
    ("duplicate-scalar-key",
     iface("ListenPort = 51820", ">>listenport = 51821"),
     "ListenPort is set twice in this section (first at line 4)"),
    ("duplicate-interface-section",
     iface() + ">>[Interface]\nListenPort = 1\n",
     "section [Interface] appears twice (first at line 1); merge them"),
    ("nul-byte",
     iface("ListenPort = 51820", ">>MTU = 14\x0020"),
     "the file contains a NUL byte"),
    # -- [Peer]
    ("peer-without-public-key",
     IFACE + "\n>>[Peer]\nAllowedIPs = 10.0.0.1/32\n",
     "[Peer] has no PublicKey"),
    ("peer-public-key-bad",
     peer(f">>PublicKey = {KEY_B_PUB[:20]}"),
     "PublicKey: is 20 characters long"),
    ("peer-psk-bad",
     peer(f"PublicKey = {KEY_B_PUB}", ">>PresharedKey = not-a-key"),
     "PresharedKey: is 9 characters long"),
    ("peer-is-own-public-key",
     IFACE + f"\n>>[Peer]\nPublicKey = {KEY_A_PUB}\nAllowedIPs = 10.0.0.1/32\n",
     "this peer's PublicKey is this interface's own public key"),
    ("two-peers-same-key",
     iface() + f"\n>>[Peer]\nPublicKey = {KEY_B_PUB}\nAllowedIPs = 10.0.0.9/32\n",
     "the same PublicKey is used by the peer at line 5"),
    ("same-allowed-ips-two-peers",
     iface() + f"\n>>[Peer]\nPublicKey = {KEY_C_PUB}\nAllowedIPs = 10.0.0.5/32, 10.0.0.1/32\n",
     "AllowedIPs 10.0.0.1/32 is also given to the peer at line 5"),
    ("same-allowed-ips-after-masking",
     iface() + f"\n[Peer]\nPublicKey = {KEY_C_PUB}\nAllowedIPs = 10.0.0.0/8, 0.0.0.0/0\n"
     f"\n>>[Peer]\nPublicKey = {KEY_D_PUB}\nAllowedIPs = 1.2.3.4/0\n",
     "AllowedIPs 0.0.0.0/0 is also given to the peer at line 10"),
    ("allowed-ips-bad-prefix",
     peer(f"PublicKey = {KEY_B_PUB}", ">>AllowedIPs = 10.0.0.0/24, fd00::/200"),
     "prefix length in 'fd00::/200'"),
    ("endpoint-without-port",
     peer(f"PublicKey = {KEY_B_PUB}", ">>Endpoint = vpn.example.com"),
     "Endpoint: 'vpn.example.com' has no port"),
    ("endpoint-port-0",
     peer(f"PublicKey = {KEY_B_PUB}", ">>Endpoint = 192.0.2.1:0"),
     "port in '192.0.2.1:0': 0 is out of range; allowed: 1 to 65535"),
    ("endpoint-port-70000",
     peer(f"PublicKey = {KEY_B_PUB}", ">>Endpoint = 192.0.2.1:70000"),
     "70000 is out of range"),
    ("endpoint-ipv6-without-brackets",
     peer(f"PublicKey = {KEY_B_PUB}", ">>Endpoint = 2001:db8::1:51820"),
     "put an IPv6 address in brackets"),
    ("endpoint-brackets-not-ipv6",
     peer(f"PublicKey = {KEY_B_PUB}", ">>Endpoint = [192.0.2.1]:51820"),
     "in brackets is not an IPv6 address"),
    ("endpoint-bad-hostname",
     peer(f"PublicKey = {KEY_B_PUB}", ">>Endpoint = vpn..example.com:51820"),
     "is neither an IP address nor a valid host name"),
    ("endpoint-bad-ipv4-literal",
     peer(f"PublicKey = {KEY_B_PUB}", ">>Endpoint = 192.0.2.300:51820"),
     "'192.0.2.300' is neither an IP address nor a valid host name"),
    ("keepalive-70000",
     peer(f"PublicKey = {KEY_B_PUB}", ">>PersistentKeepalive = 70000"),
     "PersistentKeepalive: 70000 is out of range"),
    ("keepalive-range-reversed",
     peer(f"PublicKey = {KEY_B_PUB}", ">>PersistentKeepalive = 20-10"),
     "PersistentKeepalive: \"20-10\": the end is below the start"),
    # -- AmneziaWG 3.x keys
    ("hp-s3-below-12",
     iface("S1 = 12", "S2 = 12", ">>S3 = 5", "S4 = 12", f"HeaderProtectionKey = {KEY_B_PUB}"),
     "S3 = 5 is below 12: with HeaderProtectionKey every S1..S4 must be at least 12"),
    ("hp-s-unset",
     iface(f">>HeaderProtectionKey = {KEY_B_PUB}"),
     "S1 = 0 is below 12"),
    ("hp-key-not-base64",
     iface(">>HeaderProtectionKey = not-a-key"),
     "HeaderProtectionKey: "),
    ("content-padding-reversed",
     iface(">>ContentPaddingAddition = 100-10"),
     "ContentPaddingAddition: \"100-10\": the end is below the start"),
    ("content-padding-two-dashes",
     iface(">>ContentPaddingAddition = 1-2-3"),
     "expected A or A-B"),
    ("random-trailers-not-bool",
     iface(">>RandomTrailers = maybe"),
     "RandomTrailers: \"maybe\" is not on/off"),
    ("disable-cookies-not-bool",
     iface(">>DisableCookies = yes"),
     "DisableCookies: \"yes\" is not on/off"),
    ("rekey-timeout-from-zero",
     iface(">>RekeyTimeout = 0-5"),
     "RekeyTimeout: \"0-5\" starts at 0"),
    ("reject-after-time-too-big",
     iface(">>RejectAfterTime = 90000"),
     "RejectAfterTime: \"90000\": 90000 is above the maximum 86400"),
    ("max-handshake-attempts-not-number",
     iface(">>MaxHandshakeAttempts = many"),
     "is not an unsigned decimal number"),
    # -- [Peer] exit rules and limits (server)
    ("exit-allow-bad-prefix",
     peer(f"PublicKey = {KEY_B_PUB}", ">>ExitAllow = 203.0.113.0/33"),
     "ExitAllow: prefix length in '203.0.113.0/33'"),
    ("exit-allow-port-range-backwards",
     peer(f"PublicKey = {KEY_B_PUB}", ">>ExitAllow = 203.0.113.0/24:90-80"),
     "ExitAllow: port range in '203.0.113.0/24:90-80' runs backwards"),
    ("exit-allow-empty",
     peer(f"PublicKey = {KEY_B_PUB}", ">>ExitAllow = ,"),
     "ExitAllow: is empty"),
    ("exit-deny-port-0",
     peer(f"PublicKey = {KEY_B_PUB}", ">>ExitDeny = *:0"),
     "ExitDeny: port in '*:0': 0 is out of range"),
    ("exit-deny-v6-ports-without-brackets",
     peer(f"PublicKey = {KEY_B_PUB}", ">>ExitDeny = [2001:db8::/32]"),
     "write an IPv6 prefix with ports as [2001:db8::/32]:443"),
    ("exit-deny-domain-in-cidr-key",
     peer(f"PublicKey = {KEY_B_PUB}", ">>ExitDeny = example.com"),
     "'example.com' is a domain name; put domain patterns in ExitAllowDomain or ExitDenyDomain"),
    ("exit-allow-domain-bad-wildcard",
     peer(f"PublicKey = {KEY_B_PUB}", ">>ExitAllowDomain = *example.com"),
     "ExitAllowDomain: '*example.com': a wildcard is written *.example.com"),
    ("exit-deny-domain-bad-label",
     peer(f"PublicKey = {KEY_B_PUB}", ">>ExitDenyDomain = bad..example.com"),
     "ExitDenyDomain: 'bad..example.com' is not a domain pattern"),
    ("peer-max-connections-0",
     peer(f"PublicKey = {KEY_B_PUB}", ">>MaxConnections = 0"),
     "MaxConnections: 0 is out of range; allowed: 1 to 1048576"),
    ("upload-limit-no-unit",
     peer(f"PublicKey = {KEY_B_PUB}", ">>UploadLimit = 2000000"),
     "UploadLimit: '2000000' has no unit"),
    ("download-limit-ambiguous-unit",
     peer(f"PublicKey = {KEY_B_PUB}", ">>DownloadLimit = 10Mb/s"),
     "DownloadLimit: unit 'Mb/s' in '10Mb/s' is ambiguous or unknown"),
    ("download-limit-fraction",
     peer(f"PublicKey = {KEY_B_PUB}", ">>DownloadLimit = 1.5mbit"),
     "DownloadLimit: '1.5mbit' is not a bandwidth: write a whole number and a unit"),
    ("upload-limit-too-small",
     peer(f"PublicKey = {KEY_B_PUB}", ">>UploadLimit = 4kbit"),
     "UploadLimit: '4kbit' is out of range; allowed: 8kbit (1KB/s) to 1000gbit"),
    # -- [Socks], [Forward], [Server], [Log]
    ("socks-user-plain-password",
     iface() + "\n[Socks]\n>>User = alice:secret\n",
     "the password for 'alice' must be stored hashed"),
    ("socks-user-without-colon",
     iface() + "\n[Socks]\n>>User = alice\n",
     "expected NAME:HASH"),
    ("socks-listen-hostname",
     iface() + "\n[Socks]\n>>Listen = localhost:1080\n",
     "'localhost' must be an IP address to listen on"),
    ("socks-listen-twice",
     iface() + "\n[Socks]\nListen = 127.0.0.1:1080, 127.0.0.1:1080\n",
     "[Socks] Listen = 127.0.0.1:1080 is given twice"),
    ("http-listen-hostname",
     iface() + "\n[Http]\n>>Listen = localhost:8118\n",
     "'localhost' must be an IP address to listen on"),
    ("http-listen-twice",
     iface() + "\n[Http]\nListen = 127.0.0.1:8118, 127.0.0.1:8118\n",
     "[Http] Listen = 127.0.0.1:8118 is given twice"),
    ("http-listen-is-socks",
     iface() + "\n[Socks]\nListen = 127.0.0.1:1080\n\n[Http]\nListen = 127.0.0.1:1080\n",
     "[Http] Listen = 127.0.0.1:1080 is also a [Socks] Listen address"),
    ("http-header-timeout-0",
     iface() + "\n[Http]\nListen = 127.0.0.1:8118\n>>HeaderTimeout = 0\n",
     "HeaderTimeout: 0 is out of range"),
    ("http-max-connections-0",
     iface() + "\n[Http]\nListen = 127.0.0.1:8118\n>>MaxConnections = 0\n",
     "MaxConnections: 0 is out of range"),
    ("http-unknown-key",
     iface() + "\n[Http]\n>>Listn = 127.0.0.1:8118\n",
     "Listen"),
    ("forward-without-target",
     iface() + "\n>>[Forward]\nListen = 127.0.0.1:8080\n",
     "[Forward] has no Target"),
    ("forward-without-listen",
     iface() + "\n>>[Forward]\nTarget = 10.0.0.1:80\n",
     "[Forward] has no Listen"),
    ("forward-protocol-sctp",
     iface() + "\n[Forward]\nListen = 127.0.0.1:8080\nTarget = 10.0.0.1:80\n>>Protocol = sctp\n",
     "Protocol: 'sctp' is not a protocol; use tcp or udp"),
    ("server-socks-port",
     iface() + "\n[Server]\n>>Socks = 99999\n",
     "Socks: 99999 is out of range"),
    ("server-max-connections-0",
     iface() + "\n[Server]\n>>MaxConnections = 0\n",
     "MaxConnections: 0 is out of range; allowed: 1 to 1048576"),
    ("server-max-connections-per-peer-word",
     iface() + "\n[Server]\n>>MaxConnectionsPerPeer = many\n",
     "MaxConnectionsPerPeer: 'many' is not a whole number"),
    ("server-max-sessions-negative",
     iface() + "\n[Server]\n>>MaxSessions = -1\n",
     "MaxSessions: '-1' is not a whole number"),
    ("log-level-loud",
     iface() + "\n[Log]\n>>Level = loud\n",
     "Level: 'loud' is not a level"),
    ("log-format-xml",
     iface() + "\n[Log]\n>>Format = xml\n",
     "Format: 'xml' is not a format"),
]


def _split_marker(text):
    """Removes the ">>" marker; returns (text, line) with line 0 when there is no marker."""
    lines = text.split("\n")
    marked = [i for i, line in enumerate(lines) if line.startswith(">>")]
    assert len(marked) <= 1, "at most one marked line per case"
    if not marked:
        return text, 0
    i = marked[0]
    lines[i] = lines[i][2:]
    return "\n".join(lines), i + 1


def test_enough_malformed_cases():
    assert len(BAD) >= 35
    assert len({case[0] for case in BAD}) == len(BAD), "case ids must be unique"


@pytest.mark.parametrize("text,fragment", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_malformed_config_is_rejected(run, write_config, text, fragment):
    text, line = _split_marker(text)
    path = write_config(text)
    r = run("check", "-c", path)
    assert r.rc == 1, r
    where = f"{path}:{line}: error: " if line else f"{path}: error: "
    matching = [l for l in r.stderr.splitlines() if l.startswith(where)]
    assert matching, f"no diagnostic starting {where!r}:\n{r.stderr}"
    assert any(fragment in l for l in matching), \
        f"no diagnostic at {where!r} contains {fragment!r}:\n{r.stderr}"
    assert "error(s); the config is not usable" in r.stderr
    assert r.stdout == "", "no summary for an invalid config"


def test_one_error_per_rule(run, write_config):
    """A single broken rule gives a single error (no cascade of follow-up messages)."""
    text, _ = _split_marker(iface(">>MTU = abc"))
    r = run("check", "-c", write_config(text))
    assert r.rc == 1
    assert r.stderr.count(": error: ") == 1, r.stderr


def test_duplicate_section_keys_not_reported_as_sectionless(run, write_config):
    """Keys under a repeated [Interface] must not be blamed as 'before any section'."""
    r = run("check", "-c", write_config(iface() + "[Interface]\nListenPort = 1\nMTU = 1400\n"))
    assert r.rc == 1
    assert "appears twice" in r.stderr
    assert "before any section" not in r.stderr, r.stderr


def test_several_errors_reported_at_once(run, write_config):
    text = full("[Interface]", "PrivateKey = short", "Address = 10.0.0.300", "MTU = 1",
                "ListenPort = x")
    path = write_config(text)
    r = run("check", "-c", path)
    assert r.rc == 1
    for line in (2, 3, 4, 5):
        assert f"{path}:{line}: error: " in r.stderr, r.stderr
    assert "4 error(s)" in r.stderr


# ---- warnings: valid configs (exit 0) with a `warning:` -------------------------------------------

GOOD = [
    ("postup",
     iface(">>PostUp = iptables -A FORWARD -i %i -j ACCEPT"),
     "PostUp is a wg-quick setting"),
    ("jmax-2000",
     iface("Jc = 3", "Jmin = 100", ">>Jmax = 2000"),
     "Jmax = 2000: junk datagrams up to 2000 bytes exceed the 1472-byte UDP payload"),
    ("i1-1500-bytes",
     iface(">>I1 = <b 0xc0ffee><r 1497>"),
     "I1 expands to 1500 bytes"),
    ("s1-1400",
     iface(">>S1 = 1400"),
     "S1 = 1400 makes handshake initiations 1548 bytes"),
    ("mtu-1500",
     iface(">>MTU = 1500"),
     "S4 + 32 + MTU = 1532 bytes"),
    ("socks-non-loopback-without-users",
     iface() + "\n[Socks]\nListen = 0.0.0.0:1080\n",
     "[Socks] Listen = 0.0.0.0:1080 is reachable from other machines and no User is set"),
    ("http-non-loopback-without-users",
     iface() + "\n[Http]\nListen = 0.0.0.0:8118\n",
     "[Http] Listen = 0.0.0.0:8118 is reachable from other machines and no [Socks] User is set"),
    ("dns-search-domain",
     iface(">>DNS = 1.1.1.1, example.com"),
     "DNS entry 'example.com' is not an IP address"),
    ("peer-without-allowed-ips",
     IFACE + f"\n>>[Peer]\nPublicKey = {KEY_B_PUB}\n",
     "this peer has no AllowedIPs"),
    ("exit-allow-private-without-allow-private",
     IFACE + f"\n>>[Peer]\nPublicKey = {KEY_B_PUB}\nAllowedIPs = 10.0.0.1/32\n"
     "ExitAllow = 192.168.1.0/24:80\n",
     "ExitAllow 192.168.1.0/24:80 is a private range, which the exit refuses"),
    ("peer-cap-above-server-cap",
     IFACE + f"\n>>[Peer]\nPublicKey = {KEY_B_PUB}\nAllowedIPs = 10.0.0.1/32\n"
     "MaxConnections = 100\n\n[Server]\nMaxConnections = 50\n",
     "this peer's MaxConnections = 100 is above [Server] MaxConnections = 50"),
    ("random-trailers-with-wide-header-ranges",
     iface("S1 = 20", "S2 = 30", "S3 = 40", "S4 = 12", "H1 = 5-1000000000", "H2 = 2000000000",
           "H3 = 2000000001", "H4 = 2000000002",
           "HeaderProtectionKey = OBx+hdTx5qMNWwP4LIghKTpisrmvRRvQk8IdhwX12nA=",
           ">>RandomTrailers = on"),
     "with RandomTrailers and HeaderProtectionKey, H1-H3 cover 23.3% of all values"),
    ("per-peer-cap-above-server-cap",
     iface() + "\n[Server]\nMaxConnections = 50\nMaxConnectionsPerPeer = 60\n",
     "[Server] MaxConnectionsPerPeer = 60 is above MaxConnections = 50"),
]


@pytest.mark.parametrize("text,fragment", [c[1:] for c in GOOD], ids=[c[0] for c in GOOD])
def test_warning_config_is_accepted(run, write_config, text, fragment):
    text, line = _split_marker(text)
    path = write_config(text)
    r = run("check", "-c", path)
    assert r.rc == 0, r
    where = f"{path}:{line}: warning: " if line else f"{path}: warning: "
    matching = [l for l in r.stderr.splitlines() if l.startswith(where)]
    assert any(fragment in l for l in matching), \
        f"no warning at {where!r} contains {fragment!r}:\n{r.stderr}"
    assert ": error:" not in r.stderr
    assert f"{path}: OK" in r.stdout


def test_world_readable_file_warns(run, write_config):
    path = write_config(iface(), mode=0o644)
    r = run("check", "-c", path)
    assert r.rc == 0, r
    assert f"{path}: warning: the file holds a private key and is readable by others (mode 644)" \
        in r.stderr
    assert "chmod 600" in r.stderr


def test_private_file_does_not_warn(run, write_config):
    r = run("check", "-c", write_config(iface()))
    assert r.rc == 0, r
    assert r.stderr == ""
    assert "OK" in r.stdout


def test_summary_shows_exit_settings(run, write_config):
    text = (iface() + "ExitAllow = *:443, [2001:db8::/32]:80-90\nExitAllow = 198.51.100.0/24\n"
            "ExitDeny = 198.51.100.7\nExitAllowDomain = example.com, *.Example.org.\n"
            "ExitDenyDomain = ads.example.org\nMaxConnections = 64\nUploadLimit = 10mbit\n"
            "DownloadLimit = 2MB/s\n\n[Server]\nMaxConnections = 1000\n"
            "MaxConnectionsPerPeer = 100\nMaxSessions = 20\nAllowPrivate = yes\n")
    r = run("check", "-c", write_config(text))
    assert r.rc == 0, r
    assert ("    exit: allow-list mode; allow *:443, [2001:db8::/32]:80-90, 198.51.100.0/24; "
            "allow names example.com, *.example.org; deny 198.51.100.7/32; deny names "
            "ads.example.org; max 64 connections; upload 1250KB/s, download 2MB/s") in r.stdout
    assert ("  server exit: private ranges allowed; max 1000 connections (100 per peer); "
            "max sessions 20") in r.stdout
    # A stock peer: the defaults.
    r = run("check", "-c", write_config(iface()))
    assert "    exit: default policy; max 512 connections; upload off, download off" in r.stdout
    assert "max 8192 connections (512 per peer); max sessions no cap" in r.stdout


def test_summary_has_no_secrets(run, write_config):
    psk = "GH6EpssP4GaWAj8TRLKwhKIpAy+h+V1P756aqunzflM="
    r = run("check", "-c", write_config(iface() + f"PresharedKey = {psk}\n"))
    assert r.rc == 0, r
    assert KEY_A_PRIV not in r.stdout + r.stderr
    assert psk not in r.stdout + r.stderr
    assert "preshared key set" in r.stdout


# ---- command-line errors --------------------------------------------------------------------------


def test_missing_file(run, tmp_path):
    path = tmp_path / "nope.conf"
    r = run("check", "-c", path)
    assert r.rc == 1
    assert f"{path}: error: cannot open: No such file or directory" in r.stderr


def test_empty_directory_is_no_set(run, tmp_path):
    """-c DIR is a set of every DIR/*.conf: an empty one says so, and how to fill it."""
    r = run("check", "-c", tmp_path)
    assert r.rc == 1
    assert "holds no *.conf file" in r.stderr and "NAME.conf" in r.stderr, r.stderr


@pytest.mark.parametrize("args", [[], ["-c"], ["--config="], ["--bogus"], ["file.conf"]],
                         ids=["none", "c-without-file", "empty-config", "unknown-option",
                              "bare-file"])
def test_check_usage_errors(run, args):
    r = run("check", *args)
    assert r.rc == 2, r
    assert "Usage: awgproxy check" in r.stderr


def test_config_long_forms(run, write_config):
    path = write_config(iface())
    assert run("check", "--config", path).rc == 0
    assert run("check", f"--config={path}").rc == 0


def test_error_lines_are_machine_readable(run, write_config):
    """Every diagnostic line has the form FILE[:LINE]: error|warning: MESSAGE."""
    text, _ = _split_marker(iface(">>MTU = 1", "PostUp = x"))
    path = write_config(text, mode=0o644)
    r = run("check", "-c", path)
    pat = re.compile(re.escape(str(path)) + r"(:\d+)?: (error|warning): .+")
    diag_lines = [l for l in r.stderr.splitlines() if "error(s)" not in l]
    assert len(diag_lines) == 3, r.stderr
    assert all(pat.fullmatch(l) for l in diag_lines), r.stderr
