"""History retention: a background sweep that deletes what is older than allowed.

Each room keeps ``retention_days`` if its hosts set it (``set-retention``), else the
server's ``--history-retention-days`` (0: forever).  The sweep runs at start and
then every ``interval`` seconds; the store deletes in small batches through the
(room, ts) index, so chat writes are never held up for long.  In a cluster every
node sweeps: the deletes are idempotent, and a node that stops leaves the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Final

from ..store import Store

log = logging.getLogger(__name__)

#: Seconds between sweeps.
SWEEP_INTERVAL: Final = 600.0


class RetentionSweeper:
    def __init__(self, store: Store, default_days: int, interval: float = SWEEP_INTERVAL) -> None:
        self.store = store
        self.default_days = default_days if default_days > 0 else None
        self.interval = interval
        self.deleted = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="parley-retention")

    async def sweep(self) -> int:
        """One sweep now; how many messages it deleted."""
        deleted = await self.store.purge_expired(self.default_days, int(time.time() * 1000))
        self.deleted += deleted
        if deleted:
            log.info("retention: deleted %d old chat messages", deleted)
        return deleted

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("retention sweep failed; retrying at the next one")
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
