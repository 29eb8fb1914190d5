"""A small STUN/TURN client (RFC 5389 / RFC 5766) for testing coturn over UDP.

Just enough for the long-term credential mechanism: an unauthenticated
Allocate gets ``401`` with REALM and NONCE; the retry carries USERNAME,
REALM, NONCE and MESSAGE-INTEGRITY (HMAC-SHA1 keyed with
``MD5(username:realm:password)``), and a success carries XOR-RELAYED-ADDRESS.
Also CreatePermission, to test coturn's denied-peer-ip.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import socket
import struct
import zlib
from dataclasses import dataclass, field

MAGIC = 0x2112A442

ALLOCATE = 0x0003
CREATE_PERMISSION = 0x0008
SUCCESS = 0x0100
ERROR = 0x0110

USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
REALM = 0x0014
NONCE = 0x0015
XOR_PEER_ADDRESS = 0x0012
XOR_RELAYED_ADDRESS = 0x0016
REQUESTED_TRANSPORT = 0x0019
XOR_MAPPED_ADDRESS = 0x0020
LIFETIME = 0x000D
FINGERPRINT = 0x8028


@dataclass
class Response:
    method: int
    cls: int  # 0x0100 success, 0x0110 error
    txid: bytes
    attrs: list[tuple[int, bytes]]
    raw: bytes

    def get(self, kind: int) -> bytes | None:
        for k, v in self.attrs:
            if k == kind:
                return v
        return None

    @property
    def ok(self) -> bool:
        return self.cls == SUCCESS

    @property
    def error_code(self) -> int | None:
        v = self.get(ERROR_CODE)
        if v is None:
            return None
        return (v[2] & 0x7) * 100 + v[3]

    def xor_address(self, kind: int) -> tuple[str, int] | None:
        v = self.get(kind)
        if v is None:
            return None
        family, xport = struct.unpack("!xBH", v[:4])
        port = xport ^ (MAGIC >> 16)
        if family == 1:
            raw = bytes(a ^ b for a, b in zip(v[4:8], struct.pack("!I", MAGIC), strict=True))
            return str(ipaddress.IPv4Address(raw)), port
        key = struct.pack("!I", MAGIC) + self.txid
        raw = bytes(a ^ b for a, b in zip(v[4:20], key, strict=True))
        return str(ipaddress.IPv6Address(raw)), port


def _attr(kind: int, value: bytes) -> bytes:
    pad = (4 - len(value) % 4) % 4
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * pad


def xor_address_value(ip: str, port: int) -> bytes:
    addr = ipaddress.IPv4Address(ip)
    xport = port ^ (MAGIC >> 16)
    xaddr = bytes(a ^ b for a, b in zip(addr.packed, struct.pack("!I", MAGIC), strict=True))
    return struct.pack("!BBH", 0, 1, xport) + xaddr


def long_term_key(username: str, realm: str, password: str) -> bytes:
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).digest()


def build(
    method: int, attrs: list[tuple[int, bytes]], txid: bytes, key: bytes | None = None
) -> bytes:
    """A request; with ``key``, MESSAGE-INTEGRITY and FINGERPRINT are appended (RFC 5389 15.4)."""
    body = b"".join(_attr(k, v) for k, v in attrs)
    if key is not None:
        # The length field covers MESSAGE-INTEGRITY (24 bytes) when the HMAC is computed.
        header = struct.pack("!HHI", method, len(body) + 24, MAGIC) + txid
        mac = hmac.new(key, header + body, hashlib.sha1).digest()
        body += _attr(MESSAGE_INTEGRITY, mac)
    header = struct.pack("!HHI", method, len(body) + 8, MAGIC) + txid
    crc = (zlib.crc32(header + body) ^ 0x5354554E) & 0xFFFFFFFF
    body += _attr(FINGERPRINT, struct.pack("!I", crc))
    return struct.pack("!HHI", method, len(body), MAGIC) + txid + body


def parse(data: bytes) -> Response:
    mtype, length, magic = struct.unpack("!HHI", data[:8])
    assert magic == MAGIC, "not a STUN message"
    txid = data[8:20]
    attrs: list[tuple[int, bytes]] = []
    pos = 20
    while pos < 20 + length:
        kind, alen = struct.unpack("!HH", data[pos : pos + 4])
        attrs.append((kind, data[pos + 4 : pos + 4 + alen]))
        pos += 4 + alen + (4 - alen % 4) % 4
    method = mtype & 0x3EEF
    cls = mtype & 0x0110
    return Response(method, cls, txid, attrs, data)


def integrity_ok(resp: Response, key: bytes) -> bool:
    """Check a response's MESSAGE-INTEGRITY with the long-term ``key``."""
    data = resp.raw
    pos = 20
    while pos < len(data):
        kind, alen = struct.unpack("!HH", data[pos : pos + 4])
        if kind == MESSAGE_INTEGRITY:
            # As signed: the length field counts the attributes up to and including it.
            signed = data[:2] + struct.pack("!H", pos - 20 + 24) + data[4:pos]
            mac = hmac.new(key, signed, hashlib.sha1).digest()
            return hmac.compare_digest(mac, data[pos + 4 : pos + 24])
        pos += 4 + alen + (4 - alen % 4) % 4
    return False


@dataclass
class TurnClient:
    """One UDP 5-tuple towards a TURN server: Allocate, then CreatePermission."""

    server: tuple[str, int]
    username: str
    password: str
    sock: socket.socket = field(init=False)
    realm: str = ""
    nonce: bytes = b""

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2.0)

    def close(self) -> None:
        self.sock.close()

    @property
    def key(self) -> bytes:
        return long_term_key(self.username, self.realm, self.password)

    def transact(self, message: bytes, txid: bytes) -> Response:
        for _attempt in range(3):
            self.sock.sendto(message, self.server)
            try:
                while True:
                    data, _ = self.sock.recvfrom(4096)
                    resp = parse(data)
                    if resp.txid == txid:
                        return resp
            except TimeoutError:
                continue
        raise TimeoutError(f"no answer from TURN server {self.server}")

    def request(self, method: int, attrs: list[tuple[int, bytes]]) -> Response:
        """Send with credentials, learning realm/nonce from a 401 or 438 (retried once)."""
        resp: Response | None = None
        for _ in range(3):
            txid = os.urandom(12)
            if self.nonce:
                auth = [
                    (USERNAME, self.username.encode()),
                    (REALM, self.realm.encode()),
                    (NONCE, self.nonce),
                ]
                resp = self.transact(build(method, attrs + auth, txid, self.key), txid)
            else:
                resp = self.transact(build(method, attrs, txid), txid)
            if resp.ok or resp.error_code not in (401, 438):
                return resp
            realm, nonce = resp.get(REALM), resp.get(NONCE)
            if realm is None or nonce is None:
                return resp
            fresh = nonce != self.nonce
            self.realm, self.nonce = realm.decode(), nonce
            if resp.error_code == 401 and not fresh:
                return resp  # credentials refused, not just a new nonce
        assert resp is not None
        return resp

    def allocate(self) -> Response:
        return self.request(ALLOCATE, [(REQUESTED_TRANSPORT, struct.pack("!B3x", 17))])

    def unauthenticated_allocate(self) -> Response:
        txid = os.urandom(12)
        attrs = [(REQUESTED_TRANSPORT, struct.pack("!B3x", 17))]
        return self.transact(build(ALLOCATE, attrs, txid), txid)

    def create_permission(self, peer_ip: str) -> Response:
        return self.request(CREATE_PERMISSION, [(XOR_PEER_ADDRESS, xor_address_value(peer_ip, 9))])
