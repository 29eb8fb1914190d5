"""Delivery of the event log to webhook receivers: in order, at least once.

One task per receiver URL reads the log after the receiver's stored cursor, POSTs one
event at a time and moves the cursor once the receiver answered 2xx.  A failure (an
error status, a timeout, a refused or unresolvable address) is retried with
exponential backoff, forever: events wait in the log, nothing is dropped, and the
meeting never waits for a receiver.  The cursor lives in the store, so a restart (or
a SIGKILL) resumes where the receiver stopped acknowledging; an event may then be sent
twice, which is why it carries its id (receivers de-duplicate by ``id``).

In a cluster every node runs this, and a lease on each receiver (in the store) lets one
node at a time deliver to it; when that node dies, another takes over after the lease
runs out (``lease``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
import msgspec

from ..core.events import LoggedEvent
from .signing import EVENT_ID_HEADER, SIGNATURE_HEADER, sign

log = logging.getLogger(__name__)


class EventSource(Protocol):
    """What delivery needs of the store."""

    async def events_after(self, after: int, limit: int) -> list[LoggedEvent]: ...

    async def claim_receiver(
        self, target: str, holder: str, now_ms: int, lease_ms: int
    ) -> int | None: ...

    async def advance_receiver(self, target: str, holder: str, last: int) -> bool: ...

    async def release_receiver(self, target: str, holder: str) -> None: ...


def event_body(event: LoggedEvent) -> bytes:
    """The POST body: exactly these fields, compact JSON."""
    return msgspec.json.encode(
        {"id": event.id, "type": event.type, "room": event.room, "at": event.at, "data": event.data}
    )


def receiver_key(url: str) -> str:
    """A receiver's key in the store's cursors: its URL may carry a token, so not the URL."""
    return hashlib.sha256(url.encode()).hexdigest()


def shown(url: str) -> str:
    """A receiver URL for logs: scheme, host and path (a query may hold a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


class Delivery:
    #: Events read from the log per round trip.
    BATCH = 100

    def __init__(
        self,
        source: EventSource,
        urls: tuple[str, ...],
        secret: str,
        holder: str,
        *,
        timeout: float = 10.0,
        poll: float = 1.0,
        lease: float = 10.0,
        first_backoff: float = 0.5,
        max_backoff: float = 60.0,
    ) -> None:
        self.source = source
        self.urls = urls
        self.secret = secret
        self.holder = holder
        self.timeout = timeout
        self.poll = poll
        self.lease = lease
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self._wake = [asyncio.Event() for _ in urls]
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        #: Events each receiver acknowledged, and failed attempts (for /metrics and tests).
        self.delivered = 0
        self.failures = 0

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"User-Agent": "Parley-Webhooks"},
        )
        for url in self.urls:
            # A receiver seen for the first time starts at the newest event: register it
            # now, before the server listens, or the first events of this run (a join
            # racing the first round on a busy machine) would fall before its cursor.
            try:
                await self._claim(receiver_key(url))
            except Exception as exc:  # the store is down: the first round retries
                log.warning("webhook %s: cannot read the event log (%s)", shown(url), exc)
        for i, url in enumerate(self.urls):
            self._tasks.append(
                asyncio.get_running_loop().create_task(
                    self._serve(url, self._wake[i]), name=f"parley-webhook-{i}"
                )
            )

    def wake(self) -> None:
        """New events were committed here: look now rather than at the next poll."""
        for event in self._wake:
            event.set()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for url in self.urls:  # let another node take over at once
            with contextlib.suppress(Exception):
                await self.source.release_receiver(receiver_key(url), self.holder)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _claim(self, target: str) -> int | None:
        now = int(time.time() * 1000)
        return await self.source.claim_receiver(target, self.holder, now, int(self.lease * 1000))

    async def _serve(self, url: str, wake: asyncio.Event) -> None:
        target = receiver_key(url)
        while True:
            try:
                await self._round(url, target, wake)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is down, say: the log waits for it
                log.warning("webhook %s: cannot read the event log (%s); retrying", shown(url), exc)
                await asyncio.sleep(self.poll)

    async def _round(self, url: str, target: str, wake: asyncio.Event) -> None:
        wake.clear()
        cursor = await self._claim(target)
        if cursor is None:  # another node delivers to this receiver
            await asyncio.sleep(self.poll)
            return
        batch = await self.source.events_after(cursor, self.BATCH)
        if not batch:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.poll)
            return
        renewed = time.monotonic()
        for event in batch:
            if time.monotonic() - renewed > self.lease / 3:  # slow receiver: keep the lease
                if await self._claim(target) is None:
                    return
                renewed = time.monotonic()
            if not await self._deliver(url, target, event):
                return  # the lease went elsewhere: that node resends from the cursor
            if not await self.source.advance_receiver(target, self.holder, event.id):
                return

    async def _deliver(self, url: str, target: str, event: LoggedEvent) -> bool:
        """POST ``event`` until the receiver takes it; False if the lease was lost."""
        body = event_body(event)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.secret, body),
            EVENT_ID_HEADER: str(event.id),
        }
        backoff = self.first_backoff
        lease_renewed = time.monotonic()
        while True:
            problem = await self._post(url, body, headers)
            if problem is None:
                self.delivered += 1
                return True
            self.failures += 1
            delay = backoff * (0.75 + random.random() / 2)  # jitter: receivers recover in peace
            log.warning(
                "webhook %s: event %d (%s) not delivered: %s; retrying in %.1f s",
                shown(url),
                event.id,
                event.type,
                problem,
                delay,
            )
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, self.max_backoff)
            if time.monotonic() - lease_renewed > self.lease / 3:
                if await self._claim(target) is None:
                    return False
                lease_renewed = time.monotonic()

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> str | None:
        """None if the receiver answered 2xx, else what went wrong, in words."""
        assert self._session is not None
        try:
            async with self._session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except TimeoutError:
            return f"no answer within {self.timeout:g} s"
        except aiohttp.ClientConnectorError as exc:
            return f"cannot connect ({exc.os_error or exc})"
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {exc}"
