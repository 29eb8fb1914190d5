"""Rooms are open only between two times of day (server time): no joins outside, meetings end."""

import datetime as dt
import os

from parley.policy import allow, deny, every

#: "HH:MM-HH:MM" (or with seconds); a window may cross midnight ("22:00-06:00").
OPENS, CLOSES = map(dt.time.fromisoformat, os.environ.get("ROOM_HOURS", "08:00-18:00").split("-"))


def open_now():
    now = dt.datetime.now().time()
    return OPENS <= now < CLOSES if OPENS <= CLOSES else not CLOSES <= now < OPENS


def on_join(join):
    return allow() if open_now() else deny(f"rooms are open {OPENS:%H:%M}-{CLOSES:%H:%M}")


@every(1)
async def close_rooms(actions):
    for r in [] if open_now() else actions.rooms():
        await actions.end(r.room)
