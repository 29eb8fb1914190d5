"""Six people in Chromium through the server's SFU (``--media sfu --media-ip 127.0.0.1``).

Each page has at most two RTCPeerConnections (publish + subscribe, both to the server),
yet receives five live videos and five live audio streams; a screen share arrives as
one more video; whoever leaves stops being forwarded (their tile goes, their stream
stops decoding); a late joiner decodes video within 10 s of clicking "Join meeting".
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.browser_camera import init_script_camera
from tests.browser.polling import wait_until

# The fixtures (netns, parley_server, meeting, new_participant) come from conftest.py;
# its helper classes are only used through them (no `import conftest`: several exist).
Meeting = Participant = ParleyServer = Any
TIMEOUT_MS = 20_000
# One step (a page load, a join) with six Chromium pages on a shared 2-core box.
STEP_MS = 45_000

pytestmark = [pytest.mark.browser, pytest.mark.exclusive, pytest.mark.timeout(240)]

# Six pages on a 2-core box: keep the fake camera small (the client asks for 720p).
INIT_SCRIPT_SMALL_VIDEO = init_script_camera(320, 180, 15)

JS_PCS = """
() => (window.__pcs || []).map((pc) => ({
  state: pc.connectionState,
  transceivers: pc.getTransceivers().length,
}))
"""


@pytest.fixture(scope="module")
def server(parley_server: Any) -> ParleyServer:
    """This module's server forwards media through the SFU, candidates on 127.0.0.1 only."""
    return parley_server("--media", "sfu", "--media-ip", "127.0.0.1")


def open_pcs(person: Participant) -> list[dict[str, Any]]:
    return [pc for pc in person.page.evaluate(JS_PCS) if pc["state"] != "closed"]


def decoding(person: Participant, seconds: float = 1.0) -> tuple[int, int]:
    """(video streams whose framesDecoded rose, audio streams whose packetsReceived rose)."""
    before = {s["key"]: s for s in person.inbound_stats()}
    person.page.wait_for_timeout(int(seconds * 1000))
    after = person.inbound_stats()
    video = sum(
        1
        for s in after
        if s["kind"] == "video"
        and s["key"] in before
        and s["framesDecoded"] > before[s["key"]]["framesDecoded"]
    )
    audio = sum(
        1
        for s in after
        if s["kind"] == "audio"
        and s["key"] in before
        and s["packetsReceived"] > before[s["key"]]["packetsReceived"]
    )
    return video, audio


def wait_exactly_decoding(person: Participant, video: int, audio: int) -> None:
    seen: list[tuple[int, int]] = []

    def ok() -> bool:
        seen[:] = [decoding(person)]
        return seen[0] == (video, audio)

    wait_until(
        ok,
        TIMEOUT_MS,
        lambda: (
            f"{person.name}: want exactly {video} video / {audio} audio streams live, see {seen}"
        ),
    )


def open_small(meeting: Meeting, name: str, room: str) -> Participant:
    """Like ``Meeting.open`` (the pre-join page of ``room``), with a small fake camera."""
    return meeting.open(  # type: ignore[no-any-return]
        name,
        room,
        viewport={"width": 960, "height": 600},
        init_scripts=(INIT_SCRIPT_SMALL_VIDEO,),
        timeout_ms=STEP_MS,
    )


def join(meeting: Meeting, name: str, room: str) -> Participant:
    person = open_small(meeting, name, room)
    person.click_join(STEP_MS)
    return person


# In the page: performance.now() at the click on "Join meeting" and at the first inbound
# video frame decoded by any of the page's RTCPeerConnections.
JS_TIME_FIRST_FRAME = """
() => {
  window.__t = {};
  document.addEventListener('click', (e) => {
    const b = e.target && e.target.closest && e.target.closest('button');
    if (b && /Join meeting/.test(b.textContent) && !window.__t.click) {
      window.__t.click = performance.now();
    }
  }, true);
  const poll = async () => {
    for (const pc of window.__pcs || []) {
      let report;
      try { report = await pc.getStats(); } catch (e) { continue; }
      let ok = false;
      report.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video' && s.framesDecoded > 0) ok = true;
      });
      if (ok && window.__t.click) { window.__t.frame = performance.now(); return; }
    }
    setTimeout(poll, 20);
  };
  poll();
}
"""


def join_timed(meeting: Meeting, name: str, room: str) -> tuple[Participant, float]:
    """Join like a user; seconds from clicking "Join meeting" to the first decoded remote frame."""
    person = open_small(meeting, name, room)
    page = person.page
    page.get_by_role("textbox", name="Your name").fill(name)
    page.evaluate(JS_TIME_FIRST_FRAME)
    page.get_by_role("button", name="Join meeting").click()
    page.wait_for_function("() => window.__t.frame", timeout=STEP_MS)
    elapsed = float(page.evaluate("() => window.__t.frame - window.__t.click")) / 1000
    expect(person.button("Leave")).to_be_visible(timeout=TIMEOUT_MS)
    return person, elapsed


def test_six_people_through_the_sfu(meeting: Meeting, room: str) -> None:
    t_start = time.monotonic()
    people = [join(meeting, name, room) for name in ("Ada", "Bob", "Cy", "Dee", "Eve")]
    # the 6th joins late, when the five are already publishing, and gets video (how fast is
    # measured by bench/sfu/join_time.py, not asserted here: no timing in tests)
    people[0].wait_media_flowing(video_streams=4, audio_streams=4)
    fay, late_join_s = join_timed(meeting, "Fay", room)
    print(f"\nlate joiner (6th): first remote frame decoded {late_join_s:.2f} s after the click")
    people.append(fay)

    # everyone: five live videos and five live audio streams, over <= 2 connections
    for person in people:
        person.open_participants()
        expect(person.participants.get_by_role("listitem")).to_have_count(6)
        person.wait_media_flowing(video_streams=5, audio_streams=5)
        pcs = open_pcs(person)
        assert 1 <= len(pcs) <= 2, f"{person.name}: {pcs}"
        assert all(pc["state"] == "connected" for pc in pcs), f"{person.name}: {pcs}"
        person.wait_remote_videos(5)
    t_all = time.monotonic() - t_start
    print(f"six people, everyone decoding 5 videos + 5 audio: {t_all:.1f} s after the first page")

    # a screen share arrives as one more video stream (no new connection)
    ada, bob = people[0], people[1]
    ada.toggle("Share screen", expect_pressed=True)
    for viewer in (bob, fay):
        viewer.wait_remote_videos(6)
        viewer.wait_media_flowing(video_streams=6, audio_streams=5)
        assert len(open_pcs(viewer)) <= 2
    assert len(open_pcs(ada)) <= 2

    # Eve leaves: her tile goes and her streams stop being forwarded
    eve = people[4]
    eve.leave()
    for viewer in (bob, fay):
        expect(viewer.participants.get_by_role("listitem")).to_have_count(5)
        viewer.wait_remote_videos(5)  # 4 cameras + Ada's screen
        wait_exactly_decoding(viewer, video=5, audio=4)
    print(f"total: {time.monotonic() - t_start:.1f} s")
