"""The web client's pages and files, and the security headers on every response."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


#: A Host header CSP can name: DNS labels and a port.  Anything else (a space or ';' would
#: add directives; IPv6 literals have no CSP syntax) is left out of the policy.
_CSP_HOST = re.compile(r"(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+\.?(?::[0-9]{1,5})?")


def csp_host(host: str) -> str:
    """``host`` if it can go into the policy as it is, else ""."""
    return host if _CSP_HOST.fullmatch(host) else ""


@functools.lru_cache(maxsize=64)
def content_security_policy(host: str) -> str:
    """The policy for a page served as ``host`` (already checked by :func:`csp_host`).

    connect-src names the WebSocket origins explicitly: older browsers do not let
    'self' cover ws:/wss:.  Without a usable host it is 'self' alone, which current
    browsers apply to ws:/wss: of the page's own origin (a proxy passing the public
    ``Host``, as deploy/nginx does, keeps the explicit form).
    """
    sockets = f" ws://{host} wss://{host}" if host else ""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob: mediastream:",
            f"connect-src 'self'{sockets}",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ]
    )


async def security_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """``on_response_prepare``: headers on every response, errors included.

    A signal rather than a middleware: a middleware's coroutine frame would stay
    alive for the whole life of every WebSocket and be resumed on each message.
    """
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault(
        "Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self)"
    )
    # Harmless on non-HTML responses, and FileResponse only learns its type later.
    headers.setdefault("Content-Security-Policy", content_security_policy(csp_host(request.host)))


#: The server's media mode ("sfu" or "mesh"), set by whoever builds the app.
MEDIA_MODE_KEY: web.AppKey[str] = web.AppKey("media_mode", str)


def media_mode(app: web.Application) -> str:
    """The server's media mode ("sfu" or "mesh"); "" if the app does not say."""
    return app.get(MEDIA_MODE_KEY, "")


def add_routes(app: web.Application, web_dir: Path) -> None:
    def page(name: str) -> Handler:
        path = web_dir / name

        async def handler(request: web.Request) -> web.StreamResponse:
            # The page states the media mode (<html data-media>), so what it tells people
            # about where their audio and video go is what this server does.
            html = path.read_text(encoding="utf-8").replace(
                'data-media=""', f'data-media="{media_mode(request.app)}"', 1
            )
            return web.Response(
                text=html, content_type="text/html", headers={"Cache-Control": "no-cache"}
            )

        return handler

    app.router.add_get("/", page("index.html"))
    app.router.add_get("/r/{room}", page("room.html"))
    app.router.add_static("/static", web_dir, append_version=False)
