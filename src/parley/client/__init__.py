"""Parley's client SDK: join a room from Python, as a bot or a script.

```python
from parley.client import connect

async with connect("http://127.0.0.1:8000", room="standup", name="EchoBot") as meeting:
    async for event in meeting:
        if event.type == "chat" and event.sender != meeting.id:
            await meeting.say(f"echo: {event.text}")
```

:func:`connect` joins and returns a :class:`Meeting`; the events are the protocol's own
structs (:mod:`parley.client.events`); the errors are in :mod:`parley.client.errors`;
media (SFU rooms) uses aiortc (:mod:`parley.client.media`, imported on first use).
docs/sdk.md is the reference.  This package imports nothing of the server: only the
protocol's messages (:mod:`parley.core.protocol`).
"""

from __future__ import annotations

from . import events
from .errors import (
    BadName,
    BadPassword,
    BadRoom,
    BadToken,
    Banned,
    ConnectionLost,
    Denied,
    Forbidden,
    IncompatibleServer,
    JoinRefused,
    Locked,
    MediaError,
    MeetingClosed,
    ParleyError,
    PasswordRequired,
    RateLimited,
    Refused,
    RequestRefused,
    RoomFull,
    TokenRequired,
    TooMany,
)
from .events import Event
from .meeting import PROTOCOL_VERSION, Meeting, connect, websocket_url

__all__ = [
    "PROTOCOL_VERSION",
    "BadName",
    "BadPassword",
    "BadRoom",
    "BadToken",
    "Banned",
    "ConnectionLost",
    "Denied",
    "Event",
    "Forbidden",
    "IncompatibleServer",
    "JoinRefused",
    "Locked",
    "MediaError",
    "Meeting",
    "MeetingClosed",
    "ParleyError",
    "PasswordRequired",
    "RateLimited",
    "Refused",
    "RequestRefused",
    "RoomFull",
    "TokenRequired",
    "TooMany",
    "connect",
    "events",
    "websocket_url",
]
