"""A TLS ClientHello parser and its JA3 / JA4 fingerprints, for the TLS carrier's "looking
ordinary" checks (issue 12) and docs/dpi.md.

    hello = parse_client_hello(first_bytes_of_a_tcp_connection)
    ja3_string(hello), ja3(hello), ja4(hello)

Definitions followed:
- JA3 (Salesforce): "version,ciphers,extensions,groups,point_formats", each list as decimal
  values joined by '-', GREASE values (0x?a?a) removed; the fingerprint is its MD5.
- JA4 (FoxIO, JA4 TLS client): a_b_c where
  a = 't' (TCP) + TLS version (highest supported_versions entry, else the hello's) + 'd' when SNI
      names a host, 'i' otherwise + number of ciphers and of extensions (2 digits each, GREASE
      excluded) + first and last character of the first ALPN value ('00' without ALPN);
  b = first 12 hex digits of SHA-256 over the sorted cipher list ("002f,0035,...");
  c = the same over the sorted extension list without SNI (0x0000) and ALPN (0x0010), then '_'
      and the signature algorithms in the order sent.
"""
import hashlib
import socket
import struct
import threading

GREASE = {0x0A0A + 0x1010 * i for i in range(16)}
VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3"}

EXT_SNI, EXT_GROUPS, EXT_POINT_FORMATS, EXT_SIG_ALGS, EXT_ALPN = 0x0000, 0x000A, 0x000B, 0x000D, 0x0010
EXT_SESSION_TICKET, EXT_SUPPORTED_VERSIONS, EXT_KEY_SHARE, EXT_PSK = 0x0023, 0x002B, 0x0033, 0x0029


class HelloError(ValueError):
    pass


class ClientHello:
    """What a fingerprint needs from a ClientHello; every list in the order sent, GREASE kept."""

    def __init__(self):
        self.legacy_version = 0
        self.ciphers = []
        self.extensions = []  # extension types in order
        self.ext_data = {}  # type -> raw body
        self.groups = []
        self.point_formats = []
        self.sig_algs = []
        self.alpn = []
        self.sni = None
        self.versions = []
        self.key_share_groups = []
        self.session_id_len = 0

    @property
    def version(self):
        """The highest TLS version offered (supported_versions when present)."""
        offered = [v for v in self.versions if v not in GREASE]
        return max(offered) if offered else self.legacy_version


class _Reader:
    def __init__(self, data, what):
        self.data, self.pos, self.what = data, 0, what

    def take(self, n):
        if self.pos + n > len(self.data):
            raise HelloError(f"{self.what}: {n} bytes wanted at offset {self.pos}, "
                             f"{len(self.data) - self.pos} left")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("!H", self.take(2))[0]

    def u24(self):
        return int.from_bytes(self.take(3), "big")

    def vec(self, width):
        n = {1: self.u8, 2: self.u16, 3: self.u24}[width]()
        return _Reader(self.take(n), self.what)

    def done(self):
        return self.pos >= len(self.data)

    def u16_list(self):
        if len(self.data) % 2:
            raise HelloError(f"{self.what}: odd length {len(self.data)} for a list of 16-bit values")
        return [struct.unpack_from("!H", self.data, i)[0] for i in range(0, len(self.data), 2)]


def handshake_message(stream):
    """The first handshake message from the TLS records at the start of `stream` (bytes), once
    it is complete; None while more bytes are needed."""
    body = bytearray()
    pos = 0
    while pos + 5 <= len(stream):
        ctype, _ver, n = struct.unpack_from("!BHH", stream, pos)
        if ctype != 22:
            raise HelloError(f"record at offset {pos} has content type {ctype}, not handshake (22)")
        if pos + 5 + n > len(stream):
            return None
        body += stream[pos + 5:pos + 5 + n]
        pos += 5 + n
        if len(body) >= 4 and len(body) >= 4 + int.from_bytes(body[1:4], "big"):
            return bytes(body[:4 + int.from_bytes(body[1:4], "big")])
    return None


def parse_client_hello(stream):
    msg = handshake_message(stream)
    if msg is None:
        raise HelloError(f"no complete handshake message in {len(stream)} bytes")
    if msg[0] != 1:
        raise HelloError(f"handshake message type {msg[0]}, not ClientHello (1)")
    r = _Reader(msg[4:], "ClientHello")
    h = ClientHello()
    h.legacy_version = r.u16()
    r.take(32)  # random
    h.session_id_len = len(r.vec(1).data)
    h.ciphers = r.vec(2).u16_list()
    r.vec(1)  # compression methods
    if r.done():
        return h
    exts = r.vec(2)
    while not exts.done():
        etype = exts.u16()
        body = exts.vec(2)
        h.extensions.append(etype)
        h.ext_data[etype] = body.data
        _extension(h, etype, body)
    return h


def _extension(h, etype, body):
    if etype == EXT_SNI and body.data:
        names = body.vec(2)
        while not names.done():
            kind, name = names.u8(), names.vec(2).data
            if kind == 0:
                h.sni = name.decode("ascii", "replace")
    elif etype == EXT_GROUPS:
        h.groups = body.vec(2).u16_list()
    elif etype == EXT_POINT_FORMATS:
        h.point_formats = list(body.vec(1).data)
    elif etype == EXT_SIG_ALGS:
        h.sig_algs = body.vec(2).u16_list()
    elif etype == EXT_ALPN:
        protos = body.vec(2)
        while not protos.done():
            h.alpn.append(protos.vec(1).data.decode("ascii", "replace"))
    elif etype == EXT_SUPPORTED_VERSIONS:
        h.versions = body.vec(1).u16_list()
    elif etype == EXT_KEY_SHARE:
        shares = body.vec(2)
        while not shares.done():
            h.key_share_groups.append(shares.u16())
            shares.vec(2)


def _no_grease(values):
    return [v for v in values if v not in GREASE]


def ja3_string(h):
    parts = [str(h.legacy_version)]
    for values in (h.ciphers, h.extensions, h.groups):
        parts.append("-".join(str(v) for v in _no_grease(values)))
    parts.append("-".join(str(v) for v in h.point_formats))
    return ",".join(parts)


def ja3(h):
    return hashlib.md5(ja3_string(h).encode()).hexdigest()


def _hash12(text):
    return hashlib.sha256(text.encode()).hexdigest()[:12] if text else "000000000000"


def ja4_parts(h):
    """(a, b's input, c's input): the readable form behind ja4()."""
    ciphers = _no_grease(h.ciphers)
    exts = _no_grease(h.extensions)
    alpn = h.alpn[0] if h.alpn else ""
    alpn_code = (alpn[0] + alpn[-1]) if alpn else "00"
    a = (f"t{VERSIONS.get(h.version, '00')}{'d' if h.sni else 'i'}"
         f"{min(len(ciphers), 99):02d}{min(len(exts), 99):02d}{alpn_code}")
    b_in = ",".join(f"{c:04x}" for c in sorted(ciphers))
    c_in = ",".join(f"{e:04x}" for e in sorted(exts) if e not in (EXT_SNI, EXT_ALPN))
    sigs = ",".join(f"{s:04x}" for s in h.sig_algs)
    if sigs:
        c_in += "_" + sigs
    return a, b_in, c_in


def ja4(h):
    a, b_in, c_in = ja4_parts(h)
    return f"{a}_{_hash12(b_in)}_{_hash12(c_in)}"


class HelloCatcher:
    """A TCP listener that keeps the first ClientHello sent to it, then closes: point a TLS
    client at (host, port) and read .hello (a ClientHello) after .wait()."""

    def __init__(self, host="127.0.0.1", port=0, family=socket.AF_INET):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.hellos = []
        self.error = None
        self._got = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        self.sock.settimeout(60)
        try:
            conn, _ = self.sock.accept()
            conn.settimeout(10)
            data = b""
            with conn:
                while handshake_message(data) is None:
                    chunk = conn.recv(4096)
                    if not chunk:
                        raise HelloError(f"connection closed after {len(data)} bytes")
                    data += chunk
            self.hellos.append(parse_client_hello(data))
        except (OSError, HelloError) as e:
            self.error = e
        finally:
            self._got.set()

    def wait(self, timeout=30):
        if not self._got.wait(timeout):
            raise AssertionError(f"no ClientHello within {timeout} s")
        if self.error:
            raise AssertionError(f"ClientHello: {self.error}")
        return self.hellos[0]

    def close(self):
        self.sock.close()


def describe(h):
    """A readable summary for logs and docs."""
    return (f"version {h.version:#06x}, ciphers {[f'{c:04x}' for c in h.ciphers]}, "
            f"extensions {[f'{e:04x}' for e in h.extensions]}, groups {h.groups}, "
            f"key shares {h.key_share_groups}, ALPN {h.alpn}, SNI {h.sni!r}, "
            f"JA3 {ja3(h)}, JA4 {ja4(h)}")


if __name__ == "__main__":  # python3 tls_hello.py PORT: print every ClientHello sent to PORT
    import sys

    catcher = HelloCatcher(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(f"listening on 127.0.0.1:{catcher.port}", flush=True)
    print(describe(catcher.wait(timeout=600)))
    print(ja3_string(catcher.hellos[0]))
    print(*ja4_parts(catcher.hellos[0]), sep="\n")
