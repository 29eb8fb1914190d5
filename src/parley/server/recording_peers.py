"""Recordings on other nodes' disks (a cluster): listed and downloaded through any node.

A recording is written by the room's media owner, on its own disk.  Each node
publishes the address other nodes reach its HTTP API at (``--node-url``; default
``http://<--host>:<--port>``, the host name when ``--host`` is a wildcard) in the
Redis hash ``parley:http``.  A listing asks every other live node for its listing and
merges them (by id: nodes sharing one ``--recordings-dir`` list the same recordings);
a download of a file this node does not have asks the other nodes in turn and streams
the first that has it.  The caller's ``Authorization`` goes along unchanged: every
node checks it itself (the admin token, or a host's resume token: the cluster shares
the secret and the room's members).  Requests between nodes carry ``X-Parley-Local``,
so a node answers them from its own disk only (no loops, no fan-out amplification).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

__all__ = ["LOCAL_HEADER", "RecordingPeers", "node_url"]

#: Set on requests between nodes: answer from this node's disk only.
LOCAL_HEADER = "X-Parley-Local"
_KEY = "parley:http"
#: Seconds a peer has to answer (a listing; a download's first bytes).
PEER_TIMEOUT = 10.0


def node_url(settings: Settings) -> str:
    """Where the other nodes reach this node's HTTP API."""
    if settings.node_url:
        return settings.node_url.rstrip("/")
    host = settings.host
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()
    elif ":" in host:
        host = f"[{host}]"
    scheme = "https" if settings.certfile else "http"
    return f"{scheme}://{host}:{settings.port}"


class RecordingPeers:
    """The other nodes' recording API (see the module docstring)."""

    def __init__(self, redis: Any, node: str, url: str) -> None:
        self.redis = redis
        self.node = node
        self.url = url
        self._session: aiohttp.ClientSession | None = None

    async def register(self) -> None:
        """Say where this node answers (again after a Redis restart: the heartbeat)."""
        with contextlib.suppress(RedisError, OSError):
            await self.redis.hset(_KEY, self.node, self.url)

    async def others(self) -> list[str]:
        """The addresses of the other live nodes."""
        try:
            raw = await self.redis.hgetall(_KEY)
            nodes = {_text(k): _text(v) for k, v in raw.items() if _text(k) != self.node}
            if not nodes:
                return []
            alive = await asyncio.gather(*[self.redis.exists("parley:node:" + n) for n in nodes])
        except (RedisError, OSError) as exc:
            log.warning("other nodes' recordings unavailable: %s", exc)
            return []
        return [url for url, up in zip(nodes.values(), alive, strict=True) if up]

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=PEER_TIMEOUT,
                                            sock_read=PEER_TIMEOUT)  # fmt: skip
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def listings(self, query: str, auth: str) -> list[dict[str, Any]]:
        """The other nodes' recordings for ``GET /api/v1/recordings?<query>``."""

        async def one(url: str) -> list[dict[str, Any]]:
            try:
                async with self.session().get(
                    f"{url}/api/v1/recordings?{query}", headers=self._headers(auth)
                ) as r:
                    if r.status != 200:
                        return []
                    body = await r.json()
                    found = body.get("recordings") if isinstance(body, dict) else None
                    return [x for x in found if isinstance(x, dict)] if found else []
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("recordings of %s unavailable: %s", url, exc)
                return []

        results = await asyncio.gather(*[one(url) for url in await self.others()])
        return [entry for found in results for entry in found]

    @contextlib.asynccontextmanager
    async def download(self, path: str, auth: str) -> AsyncIterator[aiohttp.ClientResponse | None]:
        """The first other node's answer 200 to ``GET path`` (None: nobody has it)."""
        for url in await self.others():
            try:
                r = await self.session().get(url + path, headers=self._headers(auth))
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("recording file from %s unavailable: %s", url, exc)
                continue
            if r.status != 200:
                r.release()
                continue
            try:
                yield r
            finally:
                r.release()
            return
        yield None

    @staticmethod
    def _headers(auth: str) -> dict[str, str]:
        return {"Authorization": auth, LOCAL_HEADER: "1"}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
