"""Recording a Firefox participant (firefox-esr over WebDriver BiDi) through the SFU, with
a Chromium host (issue 14): the host starts recording, Firefox talks with its fake camera
and microphone (both sending simulcast from Firefox's own encoder: its VP8, its Opus,
its RTP header extensions), Firefox shows that the meeting records, the host stops.  The
Firefox participant's files exist, ffprobe shows one VP8 and one Opus stream of the
expected duration, PyAV decodes every frame without an error, the camera file plays to
its end in Chromium, and the manifest lists the Firefox participant by name.

One test, one Firefox launch (Firefox tests are slow to set up).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.browser_camera import init_script_camera
from tests.browser.recording_support import JS_PLAY, decode_all, finished_manifest
from tests.support.media_files import ffprobe

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

ADMIN = "browser-firefox-recording-admin-token"
TIMEOUT_MS = 30_000
STEP_MS = 45_000
#: Seconds of meeting recorded while Firefox talks.
TALK_S = 6

#: A visible role="status" element whose text holds ``text`` (the issue's contract).
JS_STATUS = """(text) => [...document.querySelectorAll('[role="status"]')]
  .some((el) => el.checkVisibility() && el.textContent.includes(text))"""


@pytest.fixture(scope="module")
def netns(veth_netns: Any) -> Any:
    """Firefox gathers no ICE candidate where only ``lo`` exists: the veth namespace."""
    return veth_netns


@pytest.fixture(scope="module")
def server(parley_server: Any) -> Any:
    return parley_server("--media", "sfu", "--admin-token", ADMIN)


def test_a_firefox_participant_is_recorded(
    firefox_meeting: Any, meeting: Any, server: Any, room: str
) -> None:
    ada = meeting.open(
        "Ada", room, viewport={"width": 1100, "height": 650},
        init_scripts=(init_script_camera(320, 180, 15),), timeout_ms=STEP_MS,
    )  # fmt: skip
    ada.click_join(STEP_MS)  # first in: the host, in Chromium
    bob = firefox_meeting.join("Bob", room)
    ada.wait_media_flowing(video_streams=1, audio_streams=1)  # Firefox's camera and mic

    ada.toggle("Record", expect_pressed=True)
    bob.wait_js(JS_STATUS, "Firefox never showed that the meeting records", arg="Recording")
    bob.pause(TALK_S * 1000)  # Firefox talks with its camera on
    ada.toggle("Record", expect_pressed=False)
    expect(ada.page.get_by_role("status", name=re.compile("Recording"))).to_have_count(
        0, timeout=TIMEOUT_MS
    )

    directory, manifest = finished_manifest(server, room)
    assert manifest["stop_reason"] == "stopped"
    by_name = {name: pid for pid, name in manifest["participants"].items()}
    assert "Bob" in by_name, manifest["participants"]
    tracks = {t["track"]: t for t in manifest["tracks"] if t["participant"] == by_name["Bob"]}
    assert set(tracks) >= {"mic", "camera"}, manifest["tracks"]

    mic, camera = tracks["mic"], tracks["camera"]
    assert camera["codec"] == "VP8" and mic["codec"] == "OPUS", (camera, mic)
    for track, codec in ((mic, "opus"), (camera, "vp8")):
        probe = ffprobe(directory / track["file"])
        assert [s["codec_name"] for s in probe["streams"]] == [codec], probe
        duration = float(probe["format"]["duration"])
        # the whole time Firefox talked, give or take the start and stop round trips
        assert TALK_S - 1.5 < duration < TALK_S + 15, (track, probe["format"])
        assert duration == pytest.approx(track["duration"], abs=0.5), (track, probe["format"])
        assert track["clock"] == "rtcp-sr", track  # Firefox's sender reports place it
        assert decode_all(directory / track["file"]) > 0  # raises on a decoding error
    assert camera["frames"] > 5 * TALK_S and camera["sizes"], camera
    assert abs(camera["start"] - mic["start"]) < 2.0, (camera, mic)  # one clock for both

    # the camera file plays in Chromium to its end, frames decoded
    url = f"/api/v1/recordings/{manifest['id']}/files/{camera['file']}"
    seen = ada.page.evaluate(JS_PLAY, [url, ADMIN])
    assert "error" not in seen, seen
    assert seen["duration"] == pytest.approx(camera["duration"], abs=1.0), seen
    assert seen["currentTime"] >= seen["duration"] - 0.1 and seen["frames"] > 10, seen
