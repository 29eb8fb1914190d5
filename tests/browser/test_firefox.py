"""Firefox as a first-class browser: Debian's firefox-esr (WebDriver BiDi) meets Chromium.

* Firefox and Chromium through the SFU: video and audio both ways (frames decoded and
  audio packets received, from each page's getStats), chat both ways; then Firefox's
  camera off really stops its video (nothing leaves Firefox, nothing reaches Chromium:
  Firefox kept sending the last frame once a second on every simulcast layer after
  ``replaceTrack(null)``) and on brings it back.
* The same in mesh (``parley serve --media mesh``): browser to browser.
* A Chromium publisher preferring H.264 (``?codec=h264``) and a Firefox without OpenH264
  (the profile disables it): the Firefox user sees that video (the SFU has the
  publisher send VP8 instead of leaving a black tile).

Everything runs in one network namespace with ``lo`` and a private veth pair (Firefox
gathers no ICE candidate where only ``lo`` exists): ``veth_netns`` in conftest.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.polling import wait_until

# Fixtures (veth_netns, parley_server, meeting, firefox_meeting) come from conftest.py.
Meeting = Participant = ParleyServer = FirefoxMeeting = FirefoxParticipant = Any

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

# Outbound video of every recorded peer connection: bytes sent per stream (simulcast:
# one per layer), and the inbound video streams' decoded frames.
JS_VIDEO_COUNTERS = """
async () => {
  const out = { sent: 0, decoded: 0, received: 0 };
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === 'closed') continue;
    let report;
    try { report = await pc.getStats(); } catch (e) { continue; }
    report.forEach((s) => {
      if (s.kind !== 'video') return;
      if (s.type === 'outbound-rtp') out.sent += s.bytesSent || 0;
      if (s.type === 'inbound-rtp') {
        out.decoded += s.framesDecoded || 0;
        out.received += s.packetsReceived || 0;
      }
    });
  }
  return out;
}
"""


# The codecs of the page's outbound video streams that encoded frames.
JS_OUTBOUND_CODECS = """
async () => {
  const out = [];
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === 'closed') continue;
    let report;
    try { report = await pc.getStats(); } catch (e) { continue; }
    const codecs = {};
    report.forEach((s) => { if (s.type === 'codec') codecs[s.id] = s.mimeType; });
    report.forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video' && s.framesEncoded > 0) {
        out.push(codecs[s.codecId] || null);
      }
    });
  }
  return out;
}
"""


@pytest.fixture(scope="module")
def netns(veth_netns: Any) -> Any:
    """This module's server, Chromium and Firefox: the namespace with a veth pair."""
    return veth_netns


@pytest.fixture(scope="module")
def server(parley_server: Any) -> ParleyServer:
    return parley_server("--media", "sfu")


def video_counters(person: Any) -> dict[str, int]:
    return dict(person.evaluate(JS_VIDEO_COUNTERS))


def camera_off_stops(ff: FirefoxParticipant, cr: Participant) -> None:
    """Firefox's camera off: nothing more leaves Firefox, nothing reaches Chromium; on
    again: Chromium decodes Firefox's video again."""
    ff.toggle("#btn-cam", expect_pressed=False)
    ff.pause(2_000)  # what was in flight
    sent, got = video_counters(ff), video_counters(cr)
    ff.pause(3_500)  # Firefox resent its last frame about once a second on every layer
    sent2, got2 = video_counters(ff), video_counters(cr)
    assert sent2["sent"] == sent["sent"], f"Firefox still sends video: {sent} -> {sent2}"
    assert got2["received"] == got["received"], f"Chromium still gets video: {got} -> {got2}"
    ff.toggle("#btn-cam", expect_pressed=True)
    cr.wait_media_flowing(video_streams=1, audio_streams=1)


def chat_both_ways(ff: FirefoxParticipant, cr: Participant) -> None:
    ff.send_chat("hello from Firefox")
    cr.wait_chat_entry("hello from Firefox", ff.name)
    cr.send_chat("hello from Chromium")
    ff.wait_chat_entry("hello from Chromium", cr.name)


def test_firefox_and_chromium_through_the_sfu(
    firefox_meeting: FirefoxMeeting, meeting: Meeting, room: str
) -> None:
    ada = firefox_meeting.join("Ada", room)
    bob = meeting.join("Bob", room)
    bob.wait_media_flowing(video_streams=1, audio_streams=1)
    ada.wait_media_flowing(video_streams=1, audio_streams=1)
    bob.wait_remote_videos(1)
    ada.wait_remote_videos(1)
    chat_both_ways(ada, bob)
    camera_off_stops(ada, bob)


def test_firefox_without_h264_sees_a_chromium_h264_publisher(
    firefox_meeting: FirefoxMeeting, meeting: Meeting, room: str
) -> None:
    cy = meeting.open("Cy", room, query="?codec=h264")
    cy.click_join()
    codecs: list[Any] = []

    def sends(mime: str) -> bool:
        codecs[:] = cy.page.evaluate(JS_OUTBOUND_CODECS)
        return mime in codecs

    wait_until(lambda: sends("video/H264"), 30_000, lambda: f"Cy never sent H.264: {codecs}")
    dee = firefox_meeting.join("Dee", room)
    # Dee's Firefox has no H.264 decoder (OpenH264 disabled): the server asks Cy to offer
    # again and answers with VP8; Dee sees Cy's video
    wait_until(
        lambda: sends("video/VP8"),
        30_000,
        lambda: f"Cy never switched: {codecs}; console: {cy.console[-20:]}",
    )
    dee.wait_media_flowing(video_streams=1, audio_streams=1)
    dee.wait_remote_videos(1)
    cy.wait_media_flowing(video_streams=1, audio_streams=1)


@pytest.fixture(scope="module")
def mesh_server(parley_server: Any) -> ParleyServer:
    return parley_server("--media", "mesh")


def test_firefox_and_chromium_in_mesh(
    firefox_meeting: FirefoxMeeting, meeting: Meeting, mesh_server: ParleyServer, room: str
) -> None:
    ada = firefox_meeting.join("Ada", room, server=mesh_server)
    bob = meeting.join("Bob", room, server=mesh_server)
    bob.wait_media_flowing(video_streams=1, audio_streams=1)
    ada.wait_media_flowing(video_streams=1, audio_streams=1)
    bob.wait_remote_videos(1)
    ada.wait_remote_videos(1)
    chat_both_ways(ada, bob)
    camera_off_stops(ada, bob)
