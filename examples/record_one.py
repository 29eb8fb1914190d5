"""Record one participant's audio to an Ogg (Opus) file, until they leave or time is up.

    python examples/record_one.py http://127.0.0.1:8000 standup Ada ada.ogg [SECONDS]

Waits for someone named NAME to be in the room, subscribes to them through the server's
SFU and writes what they say with aiortc's MediaRecorder.
"""

import asyncio
import contextlib
import sys

from aiortc.contrib.media import MediaRecorder

from parley.client import Meeting, connect


async def find(meeting: Meeting, name: str) -> str:
    """The id of the participant called ``name`` (waiting for them to join)."""
    for person in meeting.participants.values():
        if person.name == name:
            return person.id
    async for event in meeting:
        if event.type == "participant-joined" and event.participant.name == name:
            return event.participant.id
    raise SystemExit(f"the meeting ended before {name} joined")


async def until_left(meeting: Meeting, pid: str) -> None:
    async for event in meeting:
        if event.type == "participant-left" and event.id == pid:
            return


async def main(url: str, room: str, name: str, path: str, seconds: float) -> None:
    async with connect(url, room=room, name="Recorder") as meeting:
        pid = await find(meeting, name)
        media = await meeting.subscribe(pid)
        recorder = MediaRecorder(path)  # .ogg: Opus in Ogg
        recorder.addTrack(media.audio)
        await recorder.start()
        print(f"recording {name} to {path}", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until_left(meeting, pid), seconds)
        await recorder.stop()
        print(f"stopped recording {name}", flush=True)


if __name__ == "__main__":
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 3600.0
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], seconds))
