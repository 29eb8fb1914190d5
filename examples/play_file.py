"""Play an audio file (Ogg, WAV, MP3: anything FFmpeg reads) into a room, then leave.

    python examples/play_file.py http://127.0.0.1:8000 standup music.ogg

The room must forward media through the server (``parley serve``'s default, ``--media sfu``).
"""

import asyncio
import sys

from aiortc.contrib.media import MediaPlayer

from parley.client import connect


async def main(url: str, room: str, path: str) -> None:
    player = MediaPlayer(path)  # paced in real time; decoded by FFmpeg (PyAV)
    if player.audio is None:
        sys.exit(f"{path} has no audio")
    finished = asyncio.Event()
    player.audio.on("ended", finished.set)  # the end of the file
    async with connect(url, room=room, name="Player") as meeting:
        await meeting.publish(player.audio)
        await finished.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
