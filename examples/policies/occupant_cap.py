"""At most ROOM_CAP people in any one room; the next one is told the room is full."""

import os

from parley.policy import allow, deny

CAP = int(os.environ.get("ROOM_CAP", "10"))


def on_join(join):
    return allow() if len(join.participants) < CAP else deny(f"this room is full ({CAP} people)")
