"""Many plain WebSocket participants in one room, from a separate process (the browser
suite runs it inside its network namespace: ``python -m tests.support.bots URL ROOM N``).

Joins ``N`` bots named "Bot 000", "Bot 001"… one after the other (so the first is the
room's host and join order is their number order), prints ``ready`` once every one has
its welcome, reads and drops whatever the server sends, and leaves when stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp


async def bot(session: aiohttp.ClientSession, url: str, room: str, name: str) -> None:
    ws = await session.ws_connect(url, max_msg_size=0)
    await ws.send_str(json.dumps({"type": "join", "room": room, "name": name}))
    while True:
        msg = await ws.receive()
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"{name}: the socket closed before its welcome")
        kind = json.loads(msg.data)["type"]
        if kind == "welcome":
            break
        if kind == "error":
            raise RuntimeError(f"{name}: {msg.data}")
    asyncio.get_running_loop().create_task(drain(ws))


async def drain(ws: aiohttp.ClientWebSocketResponse) -> None:
    async for _ in ws:
        pass


async def main(url: str, room: str, count: int) -> None:
    # (limit=0: aiohttp's default caps a session at 100 connections)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for i in range(count):
            await bot(session, url, room, f"Bot {i:03d}")
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
