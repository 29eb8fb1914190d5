"""A receiver is registered when delivery starts, before the server listens.

A receiver seen for the first time starts at the newest event. When its first round ran
after the server was already taking joins (a busy machine), the first events of the run
fell before its cursor and were never posted: a `room.started` lost.
"""

from __future__ import annotations

import time
from pathlib import Path

from parley.core.events import MeetingEvent
from parley.store.sql import SqlStore
from parley.webhooks import Delivery
from tests.support.webhook_receiver import Receiver
from tests.webhooks.conftest import SECRET


async def test_an_event_logged_right_after_start_is_delivered(
    tmp_path: Path, receiver: Receiver
) -> None:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}")
    await store.start()
    delivery = Delivery(store, (receiver.url,), SECRET, "node-a", poll=0.2)
    try:
        await store.log_events([MeetingEvent("room.started", "old", 1, {})])  # before: history
        await delivery.start()
        # At once, as the first join of a run would be: before any delivery round ran.
        now = int(time.time() * 1000)
        await store.log_events([MeetingEvent("room.started", "standup", now, {})])
        got = await receiver.wait_types("room.started", within=20)
        assert [(e["type"], e["room"]) for e in got] == [("room.started", "standup")]
    finally:
        await delivery.close()
        await store.close()
