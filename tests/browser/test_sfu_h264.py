"""H.264 through the SFU in Chromium: one person publishes H.264 (``?codec=h264`` in the
page URL), another joins with the defaults (VP8) and sees, receives and decodes the H.264
video, while the first one decodes the second one's VP8 (one room, both codecs).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

# Fixtures (netns, parley_server, meeting) come from conftest.py (reached through them).
Meeting = Participant = ParleyServer = Any
STEP_MS = 45_000

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

# Every video stream of the page's RTCPeerConnections with its codec's mimeType.
JS_VIDEO_STREAMS = """
async () => {
  const out = [];
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === 'closed') continue;
    let report;
    try { report = await pc.getStats(); } catch (e) { continue; }
    const codecs = {};
    report.forEach((s) => { if (s.type === 'codec') codecs[s.id] = s.mimeType; });
    report.forEach((s) => {
      if ((s.type !== 'inbound-rtp' && s.type !== 'outbound-rtp') || s.kind !== 'video') return;
      out.push({
        type: s.type,
        key: s.type + ':' + s.ssrc,
        mimeType: codecs[s.codecId] || null,
        framesDecoded: s.framesDecoded || 0,
        framesEncoded: s.framesEncoded || 0,
      });
    });
  }
  return out;
}
"""


@pytest.fixture(scope="module")
def server(parley_server: Any) -> ParleyServer:
    return parley_server("--media", "sfu", "--media-ip", "127.0.0.1")


def join(meeting: Meeting, name: str, room: str, query: str = "") -> Participant:
    """Open ``/r/<room><query>`` in a fresh context, join as ``name``."""
    person: Participant = meeting.open(name, room, timeout_ms=STEP_MS, query=query)
    person.page.get_by_role("textbox", name="Your name").fill(name)
    person.page.get_by_role("button", name="Join meeting").click()
    expect(person.button("Leave")).to_be_visible(timeout=STEP_MS)
    return person


def video_streams(person: Participant) -> list[dict[str, Any]]:
    return person.page.evaluate(JS_VIDEO_STREAMS)


def wait_decoding(person: Participant, mime: str) -> list[dict[str, Any]]:
    """Wait until an inbound video stream of codec ``mime`` decodes more frames between two
    getStats() samples; returns the last sample."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + STEP_MS / 1000
    while True:
        before = {s["key"]: s for s in video_streams(person)}
        person.page.wait_for_timeout(1000)
        seen = video_streams(person)
        if any(
            s["type"] == "inbound-rtp"
            and s["mimeType"] == mime
            and s["key"] in before
            and s["framesDecoded"] > before[s["key"]]["framesDecoded"] > 0
            for s in seen
        ):
            return seen
        if time.monotonic() > deadline:
            pytest.fail(f"{person.name}: no {mime} video decoding; streams: {seen}", pytrace=False)


def test_h264_publisher_seen_by_a_default_participant(meeting: Meeting, room: str) -> None:
    ada = join(meeting, "Ada", room, "?codec=h264")
    bob = join(meeting, "Bob", room)

    # Bob (defaults) receives Ada's camera as H.264 and decodes it; her tile plays
    streams = wait_decoding(bob, "video/H264")
    inbound = [s for s in streams if s["type"] == "inbound-rtp" and s["framesDecoded"] > 0]
    assert {s["mimeType"] for s in inbound} == {"video/H264"}, streams
    bob.wait_remote_videos(1)

    # Ada encodes H.264 only, and decodes Bob's VP8: one room, both codecs
    sent = [s for s in video_streams(ada) if s["type"] == "outbound-rtp" and s["framesEncoded"]]
    assert sent and {s["mimeType"] for s in sent} == {"video/H264"}, sent
    wait_decoding(ada, "video/VP8")
    ada.wait_remote_videos(1)
    bob_sent = [s for s in video_streams(bob) if s["type"] == "outbound-rtp" and s["framesEncoded"]]
    assert bob_sent and {s["mimeType"] for s in bob_sent} == {"video/VP8"}, bob_sent
