"""Every meeting ends MEETING_MINUTES after it opened, with a warning in the chat a minute ahead."""

import os
import time

from parley.policy import every

MINUTES = float(os.environ.get("MEETING_MINUTES", "60"))
warned = set()  # the meetings already warned, as (room, when it ends)


@every(1)
async def auto_end(actions):
    # opened_at is 0 for a room this node did not open: skipped (see docs/hooks.md, clusters)
    live = {(r.room, r.opened_at / 1000 + MINUTES * 60) for r in actions.rooms() if r.opened_at}
    warned.intersection_update(live)  # forget the meetings that are over
    for room, ends in live:
        if time.time() >= ends:
            await actions.end(room)
        elif time.time() >= ends - 60 and (room, ends) not in warned:
            warned.add((room, ends))
            await actions.say(room, "This meeting ends in one minute.")
