"""Every example in examples/ runs against a real ``parley serve`` (each as its own process,
as a user runs it), and media really flows through the SFU."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiortc.contrib.media import MediaPlayer

from parley.client import events
from tests.client.conftest import Example, Meetings
from tests.client.test_connect import next_event
from tests.support.parley_process import ParleyProcess
from tests.support.processes import free_port


def tone(path: Path, seconds: float) -> Path:
    """An Ogg (Opus) file of a 440 Hz sine, made with FFmpeg."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi"]
        + ["-i", f"sine=frequency=440:duration={seconds}", "-c:a", "libopus", str(path)],
        check=True,
        timeout=60,
    )
    return path


async def wait_exit(ex: Example, within: float) -> int:
    return await asyncio.to_thread(ex.proc.wait, within)


def probe(path: Path) -> dict[str, Any]:
    """What ffprobe says of a media file: format and streams."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration,format_name"]
        + ["-show_entries", "stream=codec_type,codec_name", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    info: dict[str, Any] = json.loads(result.stdout)
    return info


def mean_volume(path: Path) -> float:
    """FFmpeg's volumedetect mean volume of a file, in dB."""
    result = subprocess.run(
        ["ffmpeg", "-v", "info", "-i", str(path), "-af", "volumedetect", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    mean = re.search(r"mean_volume: (-?[\d.]+) dB", result.stderr)
    assert mean is not None, result.stderr[-2000:]
    return float(mean.group(1))


async def test_echo_bot(
    server: ParleyProcess, room: str, meetings: Meetings, example: Callable[..., Example]
) -> None:
    bot = example("echo_bot.py", server.url, room)
    # once the bot is in, what Ada says reaches it live (not as its welcome's history)
    await asyncio.to_thread(server.wait_room_names, room, ["EchoBot"], 60_000)
    ada = await meetings.join(server, room, "Ada")
    await ada.say("hello bot")
    async with asyncio.timeout(30):
        async for event in ada:
            if event.type == "chat" and event.name == "EchoBot":
                assert event.text == "echo: hello bot"
                break
    assert bot.proc.poll() is None, bot.output()


async def test_greeter(
    server: ParleyProcess, room: str, meetings: Meetings, example: Callable[..., Example]
) -> None:
    greeter = example("greeter.py", server.url, room)
    await asyncio.to_thread(server.wait_room_names, room, ["Greeter"], 60_000)
    host = await meetings.join(server, room, "Host")
    for name in ("Ada", "Grace"):
        await meetings.join(server, room, name)
    greetings = []
    async with asyncio.timeout(30):
        async for event in host:
            if event.type == "chat" and event.name == "Greeter":
                greetings.append(event.text)
                if "Welcome, Grace!" in greetings:
                    break
    # the Host's own greeting may have come as its welcome's history instead of an event
    greetings = [m.text for m in host.history if m.name == "Greeter"]
    assert greetings == ["Welcome, Host!", "Welcome, Ada!", "Welcome, Grace!"], greeter.output()


async def test_play_file_sends_the_file_to_a_subscriber(
    server: ParleyProcess,
    room: str,
    meetings: Meetings,
    example: Callable[..., Example],
    tmp_path: Path,
) -> None:
    clip = tone(tmp_path / "tone.ogg", 8)
    listener = await meetings.join(server, room, "Listener")
    player = example("play_file.py", server.url, room, str(clip))
    joined = await next_event(listener, "participant-joined", 60)
    assert isinstance(joined, events.ParticipantJoined) and joined.participant.name == "Player"
    media = await listener.subscribe(joined.participant.id)
    loud = 0
    async with asyncio.timeout(30):
        while loud < 50:  # one second of the tone, not silence
            frame = await media.audio.recv()
            if np.abs(frame.to_ndarray()).max() > 1000:
                loud += 1
    assert listener.participants[joined.participant.id].mic  # publish said so
    # at the end of the file the player leaves, and its tracks end
    left = await next_event(listener, "participant-left", 30)
    assert isinstance(left, events.ParticipantLeft) and left.id == joined.participant.id
    assert await wait_exit(player, 30) == 0, player.output()
    assert media.audio.readyState == "ended"


async def test_record_one_writes_an_ogg_of_that_participant(
    server: ParleyProcess,
    room: str,
    meetings: Meetings,
    example: Callable[..., Example],
    tmp_path: Path,
) -> None:
    ada = await meetings.join(server, room, "Ada")
    player = MediaPlayer(str(tone(tmp_path / "ada.ogg", 20)))
    assert player.audio is not None
    await ada.publish(player.audio)
    out = tmp_path / "recorded.ogg"
    recorder = example("record_one.py", server.url, room, "Ada", str(out), "4")
    try:
        assert await wait_exit(recorder, 60) == 0, recorder.output()
    finally:
        player.audio.stop()  # its decoding thread, before this test's event loop closes
    assert "stopped recording Ada" in recorder.output()
    info = probe(out)
    assert info["format"]["format_name"] == "ogg"
    assert [(s["codec_type"], s["codec_name"]) for s in info["streams"]] == [("audio", "opus")]
    assert float(info["format"]["duration"]) >= 2.0, info
    assert mean_volume(out) > -40  # Ada's tone, not silence


async def test_webhook_receiver_checks_signatures_and_prints_events(
    parley_server: Callable[..., ParleyProcess],
    room: str,
    meetings: Meetings,
    example: Callable[..., Example],
) -> None:
    port = free_port()
    receiver = example("webhook_receiver.py", str(port), env={"WEBHOOK_SECRET": "shh-0123"})
    url = f"http://127.0.0.1:{port}/parley"
    while (await fetch_status(url)) == 0:
        assert receiver.proc.poll() is None, receiver.output()
        await asyncio.sleep(0.1)
    srv = parley_server("--webhook-url", url, "--webhook-secret", "shh-0123")
    ada = await meetings.join(srv, room, "Ada")
    await ada.leave()
    async with asyncio.timeout(30):
        while "room.finished" not in receiver.output():  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.1)
    lines = [ln.split(" ", 3) for ln in receiver.output().splitlines() if f" {room} " in ln]
    assert [ln[1] for ln in lines] == [
        "room.started",
        "participant.joined",
        "participant.left",
        "room.finished",
    ]
    # A forged event is refused: the receiver checks the signature.
    assert await fetch_status(url, b'{"id": 99}', {"X-Parley-Signature": "sha256=00"}) == 401


async def fetch_status(url: str, body: bytes = b"{}", headers: dict[str, str] | None = None) -> int:
    """POST ``body`` to ``url``: the status, 0 if nothing listens yet."""
    try:
        async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=headers) as r:
            return r.status
    except aiohttp.ClientConnectionError:
        return 0
