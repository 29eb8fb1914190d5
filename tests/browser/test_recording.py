"""Recording in Chromium through the server's SFU: a host records two participants with
fake cameras, everyone sees that the meeting records (and the pre-join page says so before
anyone joins), the files are checked with ffprobe, the manifest against what happened, and
one recorded file plays in Chromium to its end.  On a mesh server the Record control says
why there is no recording."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.browser_camera import init_script_camera
from tests.browser.recording_support import JS_PLAY, finished_manifest
from tests.support.media_files import ffprobe

Meeting = Participant = ParleyServer = Any
TIMEOUT_MS = 30_000
STEP_MS = 45_000
ADMIN = "browser-recording-admin-token-0123"

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

SMALL_CAMERA = init_script_camera(320, 180, 15)


@pytest.fixture(scope="module")
def server(parley_server: Any) -> ParleyServer:
    return parley_server("--media", "sfu", "--media-ip", "127.0.0.1", "--admin-token", ADMIN)


def open_small(meeting: Meeting, name: str, room: str, server: Any = None) -> Participant:
    return meeting.open(  # type: ignore[no-any-return]
        name, room, server=server, viewport={"width": 1100, "height": 650},
        init_scripts=(SMALL_CAMERA,), timeout_ms=STEP_MS,
    )  # fmt: skip


def indicator(person: Participant) -> Any:
    return person.page.get_by_role("status", name=re.compile("Recording"))


def test_a_host_records_and_everyone_knows(meeting: Meeting, server: Any, room: str) -> None:
    ada = open_small(meeting, "Ada", room)
    ada.click_join(STEP_MS)  # the first in is the host
    bob = open_small(meeting, "Bob", room)
    bob.click_join(STEP_MS)
    ada.wait_media_flowing(video_streams=1, audio_streams=1)
    expect(bob.button("Record")).to_have_count(0)  # hosts only
    expect(indicator(bob)).to_have_count(0)

    ada.toggle("Record", expect_pressed=True)
    for person in (ada, bob):
        expect(indicator(person)).to_be_visible(timeout=TIMEOUT_MS)
    bob.open_chat()
    expect(bob.chat_log).to_contain_text("Ada started recording the meeting")
    # someone on the pre-join page is told before joining
    cy = open_small(meeting, "Cy", room)
    expect(cy.page.get_by_text("This meeting is being recorded")).to_be_visible(timeout=TIMEOUT_MS)
    bob.send_chat("hello from Bob")
    ada.pause(6000)  # both talk with their cameras on
    ada.toggle("Record", expect_pressed=False)
    for person in (ada, bob):
        expect(indicator(person)).to_have_count(0, timeout=TIMEOUT_MS)

    directory, manifest = finished_manifest(server, room)
    assert manifest["stop_reason"] == "stopped" and manifest["started_by"]["name"] == "Ada"
    names = manifest["participants"]
    assert sorted(names.values()) == ["Ada", "Bob"]
    by_name = {v: k for k, v in names.items()}
    tracks = {(t["participant"], t["track"]): t for t in manifest["tracks"]}
    assert {(by_name[n], k) for n in ("Ada", "Bob") for k in ("mic", "camera")} <= set(tracks)
    assert any(e["type"] == "chat" and e["text"] == "hello from Bob" for e in manifest["events"])
    for (_, kind), track in tracks.items():
        probe = ffprobe(directory / track["file"])
        codec = probe["streams"][0]["codec_name"]
        assert codec == ("opus" if kind == "mic" else track["codec"].lower()), probe
        assert 3.0 < float(probe["format"]["duration"]) < 60.0, (track, probe["format"])
        assert track["clock"] == "rtcp-sr"

    # the host lists the room's recordings in the settings dialog and downloads a file
    ada.button("Room settings").click()
    recordings = ada.page.get_by_role("list", name="Recordings")
    camera_file = tracks[(by_name["Bob"], "camera")]["file"]
    download_button = recordings.get_by_role("button", name=re.compile(re.escape(camera_file)))
    expect(download_button).to_be_visible(timeout=TIMEOUT_MS)
    with ada.page.expect_download() as got:
        download_button.click()
    saved = Path(got.value.path())
    assert saved.read_bytes() == (directory / camera_file).read_bytes()
    ada.page.keyboard.press("Escape")

    # one recorded camera file plays in Chromium to its end, frames decoded
    camera = tracks[(by_name["Bob"], "camera")]
    token = ADMIN  # (the REST API lets a host's resume token read it too: tests/recording)
    url = f"/api/v1/recordings/{manifest['id']}/files/{camera['file']}"
    seen = ada.page.evaluate(JS_PLAY, [url, token])
    assert "error" not in seen, seen
    assert seen["duration"] == pytest.approx(camera["duration"], abs=1.0), seen
    assert seen["currentTime"] >= seen["duration"] - 0.1 and seen["frames"] > 10, seen
    # and a microphone's file (Opus muxed in packets of up to 120 ms) plays to its end
    mic = tracks[(by_name["Bob"], "mic")]
    url = f"/api/v1/recordings/{manifest['id']}/files/{mic['file']}"
    heard = ada.page.evaluate(JS_PLAY, [url, token])
    assert "error" not in heard, heard
    assert heard["duration"] == pytest.approx(mic["duration"], abs=1.0), heard
    assert heard["currentTime"] >= heard["duration"] - 0.1, heard


def test_a_mesh_server_explains(meeting: Meeting, parley_server: Any, room: str) -> None:
    mesh = parley_server("--media", "mesh")
    ada = open_small(meeting, "Ada", room, server=mesh)
    ada.click_join(STEP_MS)
    record = ada.button("Record")
    expect(record).to_be_visible(timeout=TIMEOUT_MS)
    expect(record).to_have_attribute("aria-disabled", "true")
    # it stays focusable (aria-disabled, not disabled): pressing it says why
    record.focus()
    ada.page.keyboard.press("Enter")
    expect(ada.page.get_by_text(re.compile("Recording is not available here"))).to_be_visible(
        timeout=TIMEOUT_MS
    )
    expect(record).to_have_attribute("aria-pressed", "false")
