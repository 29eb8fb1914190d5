"""The webhook signature: ``X-Parley-Signature: sha256=<hex HMAC-SHA256 of the body>``.

The receiver computes the HMAC of the raw body bytes (before any JSON parsing) with the
shared secret and compares in constant time; ``verify`` is what a Python receiver uses.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Parley-Signature"
EVENT_ID_HEADER = "X-Parley-Event-Id"


def sign(secret: str, body: bytes) -> str:
    """The header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """True if ``header`` (the X-Parley-Signature value) signs ``body`` with ``secret``."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)
