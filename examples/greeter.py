"""Welcome each person who joins, by name.

python examples/greeter.py http://127.0.0.1:8000 standup
"""

import asyncio
import sys

from parley.client import connect


async def main(url: str, room: str) -> None:
    async with connect(url, room=room, name="Greeter") as meeting:
        async for event in meeting:
            if event.type == "participant-joined":
                await meeting.say(f"Welcome, {event.participant.name}!")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
