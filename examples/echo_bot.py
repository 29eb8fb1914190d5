"""Echo every chat message: python examples/echo_bot.py http://127.0.0.1:8000 standup"""

import asyncio, sys  # noqa: E401, I001
from parley.client import connect


async def main(url: str, room: str) -> None:
    async with connect(url, room=room, name="EchoBot") as meeting:
        async for event in meeting:
            if event.type == "chat" and event.sender != meeting.id:
                await meeting.say(f"echo: {event.text}")


asyncio.run(main(*sys.argv[1:3]))
