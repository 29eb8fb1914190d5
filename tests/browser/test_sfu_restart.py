"""SFU media survives a server restart, a dropped WebSocket and a page reload (issue #6).

People meet in Chromium through the server's SFU (``--media sfu --media-ip 127.0.0.1``),
each page with one publish and one subscribe RTCPeerConnection to the server.

* **Server restart** (SIGTERM, then a new process on the same port and data dir): the
  server's SFU state is gone; the pages reconnect by themselves (resume token), find
  out that the server no longer knows their media connections, and publish and
  subscribe again.  Within a generous bound each page again decodes everyone else's
  live video, still over exactly one publish and one subscribe connection (the old
  ones closed).
* **WebSocket drop** (the page's socket closes, the page resumes within the grace
  period; the server and its SFU keep running): media keeps flowing over the very same
  two connections; nothing is duplicated.
* **Page reload**: the reloaded page joins again and sees, and is seen by, the others.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.browser_camera import init_script_camera
from tests.browser.polling import wait_until

# Fixtures (netns, parley_server, meeting) come from conftest.py; its helpers are reached
# through the module pytest loaded (no `import conftest`: several conftest.py exist).
Meeting = Participant = ParleyServer = Any

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

#: One step a user waits for (a join, media after a reconnect) on a shared 2-core box.
STEP_MS = 60_000

# Several pages on a 2-core box: keep the fake camera small (the client asks for 720p).
INIT_SCRIPT_SMALL_VIDEO = init_script_camera(320, 180, 15)

# Every WebSocket the page opens, so a test can drop the current one.
INIT_SCRIPT_RECORD_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  if (!Native || Native.__parleyWrapped) return;
  window.__sockets = [];
  class Recorded extends Native {
    constructor(...args) { super(...args); window.__sockets.push(this); }
  }
  Recorded.__parleyWrapped = true;
  window.WebSocket = Recorded;
})();
"""

# The page's RTCPeerConnections that are not closed: which way their media goes
# ("publish": we send, "subscribe": we receive) and their connection state.
JS_OPEN_PCS = """
() => (window.__pcs || [])
  .map((pc, i) => ({ pc, i }))
  .filter(({ pc }) => pc.connectionState !== 'closed')
  .map(({ pc, i }) => {
    const dirs = pc.getTransceivers().map((t) => t.direction);
    return {
      index: i,
      state: pc.connectionState,
      role: dirs.some((d) => d === 'sendonly' || d === 'sendrecv') ? 'publish' : 'subscribe',
    };
  })
"""

# Closes the page's current WebSocket like a network blip would (the server keeps the
# participant for the resume grace period); returns how many sockets the page opened.
JS_DROP_SOCKET = """
() => {
  const open = (window.__sockets || []).filter((ws) => ws.readyState === WebSocket.OPEN);
  for (const ws of open) ws.close(4999, 'test: network blip');
  return (window.__sockets || []).length;
}
"""


@pytest.fixture(scope="module")
def server(parley_server: Any) -> ParleyServer:
    """This module's server forwards media through the SFU, candidates on 127.0.0.1 only."""
    return parley_server("--media", "sfu", "--media-ip", "127.0.0.1")


def open_page(meeting: Meeting, name: str, room: str) -> Participant:
    """Like ``Meeting.open`` (the pre-join page of ``room``), with a small fake camera."""
    return meeting.open(  # type: ignore[no-any-return]
        name,
        room,
        viewport={"width": 960, "height": 600},
        init_scripts=(INIT_SCRIPT_RECORD_SOCKETS, INIT_SCRIPT_SMALL_VIDEO),
        timeout_ms=STEP_MS,
    )


def join(meeting: Meeting, name: str, room: str) -> Participant:
    person = open_page(meeting, name, room)
    person.click_join(STEP_MS)
    return person


def meet(meeting: Meeting, room: str, *names: str) -> list[Participant]:
    """``names`` join ``room`` one after another; returns once everyone sees everyone."""
    people = [join(meeting, name, room) for name in names]
    for person in people:
        person.open_participants()
    sees_everyone(people)
    return people


def open_pcs(person: Participant) -> list[dict[str, Any]]:
    return person.page.evaluate(JS_OPEN_PCS)


def wait_one_publish_one_subscribe(person: Participant) -> list[dict[str, Any]]:
    """Wait until the page has exactly one publish and one subscribe connection open,
    both connected (and nothing else open); returns them."""
    seen: list[dict[str, Any]] = []

    def ok() -> bool:
        seen[:] = open_pcs(person)
        roles = sorted(pc["role"] for pc in seen)
        return roles == ["publish", "subscribe"] and all(pc["state"] == "connected" for pc in seen)

    wait_until(
        ok,
        STEP_MS,
        lambda: f"{person.name}: want one publish + one subscribe connection, open: {seen}",
    )
    return list(seen)


def sees_everyone(people: list[Participant]) -> None:
    """Everyone decodes the others' live video (and hears them), over two connections."""
    others = len(people) - 1
    for person in people:
        expect(person.participants.get_by_role("listitem")).to_have_count(
            len(people), timeout=STEP_MS
        )
        person.wait_media_flowing(video_streams=others, audio_streams=others, timeout_ms=STEP_MS)
        person.wait_remote_videos(others, timeout_ms=STEP_MS)
        wait_one_publish_one_subscribe(person)


def test_sfu_media_comes_back_after_a_server_restart(
    server: ParleyServer, meeting: Meeting, room: str
) -> None:
    people = meet(meeting, room, "Ada", "Bob", "Cy")
    before = {p.name: {pc["index"] for pc in open_pcs(p)} for p in people}

    server.restart()  # SIGTERM: clients get 1001 "server shutting down"
    t_restarted = time.monotonic()

    # The pages reconnect by themselves, as the same people (resume token).
    server.wait_room_names(room, ["Ada", "Bob", "Cy"], timeout_ms=STEP_MS)
    # The new server process knows nothing of their media: they publish and subscribe
    # again, and everyone sees everyone's live video.
    sees_everyone(people)
    for person in people:
        now = {pc["index"] for pc in open_pcs(person)}
        assert not now & before[person.name], (
            f"{person.name}: the connections to the old server process are still open"
        )
        expect(person.page.get_by_text("Reconnecting…")).to_be_hidden()
    print(f"\nafter the restart: everyone sees everyone in {time.monotonic() - t_restarted:.1f} s")


def test_sfu_media_survives_a_dropped_websocket(
    server: ParleyServer, meeting: Meeting, room: str
) -> None:
    people = meet(meeting, room, "Ada", "Bob")
    ada, bob = people
    pcs_before = ada.page.evaluate("() => window.__pcs.length")
    sockets_before = ada.page.evaluate(JS_DROP_SOCKET)

    # Ada's page opens a new socket and resumes; nobody sees her leave.
    wait_until(
        lambda: ada.page.evaluate(
            "(n) => window.__sockets.length > n"
            " && window.__sockets[window.__sockets.length - 1].readyState === WebSocket.OPEN",
            sockets_before,
        ),
        STEP_MS,
        lambda: "Ada's page never opened a new WebSocket",
    )
    expect(ada.page.get_by_text("Reconnecting…")).to_be_hidden(timeout=STEP_MS)
    # A message sent after the resume arrives: the new socket is joined.
    ada.send_chat("back after the blip")
    bob.wait_chat_entry("back after the blip", sender="Ada", timeout_ms=STEP_MS)

    sees_everyone(people)
    # The media connections never stopped: the same two, none added.
    assert ada.page.evaluate("() => window.__pcs.length") == pcs_before
    expect(bob.participants.get_by_role("listitem")).to_have_count(2)


def test_sfu_reloaded_page_rejoins_with_media(
    server: ParleyServer, meeting: Meeting, room: str
) -> None:
    people = meet(meeting, room, "Ada", "Bob")
    ada, bob = people

    bob.page.reload()
    bob.click_join(STEP_MS)
    bob.open_participants()

    # Ada sees one Bob, not two, and both see each other's live video again.
    server.wait_room_names(room, ["Ada", "Bob"], timeout_ms=STEP_MS)
    expect(ada.entry("Bob")).to_have_count(1, timeout=STEP_MS)
    sees_everyone(people)
