"""Cross-site WebSocket hijacking defence: check the Origin of WebSocket handshakes.

Browsers always send ``Origin`` on a WebSocket handshake and a page cannot
forge it, so a handshake from another site's page is refused.  Clients that
are not browsers (scripts, bots) send none and are let through: they carry
no victim's cookies, which is what the check protects.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web


def own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}".lower()


def origin_allowed(request: web.Request, allowed: Iterable[str]) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    origin = origin.rstrip("/").lower()
    if origin == own_origin(request):
        return True
    # Behind a TLS-terminating proxy the server sees http:// while the page is https://.
    forwarded = request.headers.get("X-Forwarded-Proto")
    if forwarded and origin == f"{forwarded}://{request.host}".lower():
        return True
    return any(origin == a.rstrip("/").lower() or a == "*" for a in allowed)
