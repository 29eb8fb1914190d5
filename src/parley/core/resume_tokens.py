"""Resume tokens: signed, self-contained proof of a participant identity.

A token names the participant id, room and display name and is signed with
the server secret (HMAC-SHA256), so it stays valid across a server restart
and, with a shared secret, across nodes.  It carries no permissions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import msgspec


class _Claims(msgspec.Struct, array_like=True):
    pid: str
    room: str
    name: str
    iat: int  # seconds since the epoch
    role: str = ""  # the role when issued ("": a token from before roles were kept)


@dataclass(frozen=True)
class ResumeClaims:
    pid: str
    room: str
    name: str
    issued_at: int
    role: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ResumeTokens:
    """Issue and verify resume tokens with one secret."""

    def __init__(self, secret: bytes, max_age: float = 12 * 3600) -> None:
        self._secret = secret
        self.max_age = max_age
        # Keyed once and copied per token (the same HMAC-SHA256): a one-shot hmac.new
        # derives the key pads and looks SHA-256 up again each time, about 2-3 us of a
        # join's CPU (every welcome carries a token).
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)

    def _sign(self, body: str) -> str:
        mac = self._keyed.copy()
        mac.update(body.encode())
        return _b64(mac.digest()[:18])

    def issue(self, pid: str, room: str, name: str, now: float, role: str = "") -> str:
        body = _b64(msgspec.json.encode(_Claims(pid, room, name, int(now), role)))
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str, now: float) -> ResumeClaims | None:
        """The claims of a genuine, unexpired token; None for anything else."""
        if len(token) > 1024 or not token.isascii() or token.count(".") != 1:
            return None
        body, sig = token.split(".")
        if not hmac.compare_digest(sig, self._sign(body)):
            return None
        try:
            claims = msgspec.json.decode(_unb64(body), type=_Claims)
        except (msgspec.DecodeError, ValueError):
            return None
        if not 0 <= now - claims.iat <= self.max_age:
            return None
        return ResumeClaims(claims.pid, claims.room, claims.name, claims.iat, claims.role)


def load_secret(data_dir: Path) -> bytes:
    """PARLEY_SECRET if set, else a random secret kept in the data dir (created once)."""
    env = os.environ.get("PARLEY_SECRET")
    if env:
        return env.encode()
    path = data_dir / "secret"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
    return secret
