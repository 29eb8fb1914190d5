"""Cross-site WebSocket hijacking defence: check the Origin of WebSocket handshakes.

Browsers always send ``Origin`` on a WebSocket handshake and a page cannot
forge it, so a handshake from another site's page is refused.  Clients that
are not browsers (scripts, bots) send none and are let through: they carry
no victim's cookies, which is what the check protects.
"""

from __future__ import annotations

from collections.abc import Iterable


def origin_allowed(
    origin: str | None,
    *,
    scheme: str,
    host: str,
    forwarded_proto: str | None,
    allowed: Iterable[str],
) -> bool:
    """Whether a handshake with ``origin`` may open, on a server reached as ``scheme://host``."""
    if origin is None:
        return True
    origin = origin.rstrip("/").lower()
    host = host.lower()
    if origin == f"{scheme}://{host}":
        return True
    # Behind a TLS-terminating proxy the server sees http:// while the page is https://.
    if forwarded_proto and origin == f"{forwarded_proto.lower()}://{host}":
        return True
    return any(origin == a.rstrip("/").lower() or a == "*" for a in allowed)
