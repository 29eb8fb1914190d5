"""Time-limited TURN credentials: the "TURN REST API" scheme coturn implements.

coturn, started with ``use-auth-secret`` and ``static-auth-secret=SECRET``,
accepts any username of the form ``<expiry unix time>:<anything>`` whose
password is ``base64(HMAC-SHA1(SECRET, username))``, until that time
(draft-uberti-behave-turn-rest-00).  The meeting server shares the secret
with coturn and hands each participant such a credential in ``welcome``;
nothing is stored anywhere, and a leaked credential dies at its expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["TurnConfig", "turn_credentials", "turn_password"]


def turn_password(secret: str, username: str) -> str:
    """``base64(HMAC-SHA1(secret, username))`` -- what coturn computes for ``username``."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def turn_credentials(
    secret: str, urls: Sequence[str], ttl: int, user: str, now: float
) -> dict[str, Any]:
    """An ``RTCIceServer`` dict valid for ``ttl`` seconds from ``now`` (Unix time).

    ``user`` ends up in coturn's logs; pass an opaque id (the participant id),
    not a display name.  It must not contain ``:`` (the separator coturn uses).
    """
    if not secret:
        raise ValueError("the TURN secret is empty")
    if ttl <= 0:
        raise ValueError("the TURN credential lifetime must be positive")
    if ":" in user:
        raise ValueError("the TURN user part cannot contain ':'")
    expiry = int(now) + int(ttl)
    username = f"{expiry}:{user}" if user else str(expiry)
    return {
        "urls": list(urls),
        "username": username,
        "credential": turn_password(secret, username),
    }


@dataclass(frozen=True)
class TurnConfig:
    """The TURN settings of a server: shared secret, URLs for clients, credential lifetime.

    ``urls`` e.g. ``("turn:turn.example.com:3478?transport=udp",
    "turn:turn.example.com:3478?transport=tcp", "turns:turn.example.com:5349")``.
    The lifetime should cover a long meeting: a TURN allocation is refreshed
    with the same credential, and refreshes fail once it has expired.
    """

    secret: str
    urls: tuple[str, ...]
    ttl: int = 12 * 3600

    def ice_server(self, user: str, now: float | None = None) -> dict[str, Any]:
        """A fresh credential for ``user`` (the participant id)."""
        return turn_credentials(
            self.secret, self.urls, self.ttl, user, time.time() if now is None else now
        )
