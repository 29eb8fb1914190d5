"""Simulcast through the SFU in Chromium: each viewer gets the layer that fits its tile.

Three people, cameras at 640x360 (Chromium then sends two layers, 320x180 and 640x360).
Bob's window is small, so his tiles are small: he receives the low layer.  Cy's window is
big: he receives the high layer.  When Bob enlarges his window, he gets the high layer.
Resolutions are read from getStats (``frameWidth`` of inbound video), as a user would see
a sharper or blurrier picture.  "The high layer" is the top layer the publishers send at
that moment: on a busy machine Chromium scales its layers down and back up.

A starved CPU also makes each browser's receive-side bandwidth estimate (its REMB) fall
below what it is sent, and the server then lowers that viewer's layers on purpose
(sfu/bandwidth.py): this test needs the machine to itself (``exclusive``), and a failure
shows the server's decisions from its log.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.browser_camera import init_script_camera

Meeting = Participant = ParleyServer = Any
TIMEOUT_MS = 45_000
STEP_MS = 45_000

pytestmark = [pytest.mark.browser, pytest.mark.exclusive, pytest.mark.timeout(300)]

INIT_SCRIPT_CAMERA_360P = init_script_camera(640, 360, 15, exact=True)

# Video inbound streams of the subscribe connection that are decoding, with their width.
JS_VIDEO_IN = """
async () => {
  const out = [];
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === 'closed') continue;
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video' && s.framesDecoded > 0) {
        out.push({ mid: s.mid, width: s.frameWidth || 0, decoded: s.framesDecoded });
      }
    });
  }
  return out;
}
"""

# Active simulcast layers this page sends: rid -> frameWidth.
JS_LAYERS_OUT = """
async () => {
  const out = {};
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === 'closed') continue;
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video' && s.rid && s.framesEncoded > 0) {
        out[s.rid] = s.frameWidth || 0;
      }
    });
  }
  return out;
}
"""


@pytest.fixture(scope="module")
def server(parley_server: Any) -> ParleyServer:
    return parley_server("--media", "sfu", "--media-ip", "127.0.0.1")


def join(meeting: Meeting, name: str, room: str, viewport: dict[str, int]) -> Participant:
    person: Participant = meeting.open(
        name,
        room,
        viewport=viewport,
        init_scripts=(INIT_SCRIPT_CAMERA_360P,),
        timeout_ms=STEP_MS,
    )
    person.page.get_by_role("textbox", name="Your name").fill(name)
    person.page.get_by_role("button", name="Join meeting").click()
    expect(person.button("Leave")).to_be_visible(timeout=STEP_MS)
    return person


def widths(person: Participant) -> list[int]:
    """Widths of the remote videos being decoded now (framesDecoded rising)."""
    before = {s["mid"]: s["decoded"] for s in person.page.evaluate(JS_VIDEO_IN)}
    person.page.wait_for_timeout(1000)
    return sorted(
        s["width"]
        for s in person.page.evaluate(JS_VIDEO_IN)
        if s["decoded"] > before.get(s["mid"], s["decoded"])
    )


def wait_widths(person: Participant, count: int, ok: Any, what: str) -> list[int]:
    seen: list[int] = []
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        seen = widths(person)
        if len(seen) == count and all(ok(w) for w in seen):
            return seen
        if time.monotonic() > deadline:
            pytest.fail(f"{person.name}: want {count} videos {what}, see widths {seen}")
        time.sleep(0.5)


def sent_layers(person: Participant) -> dict[str, int]:
    """The simulcast layers ``person``'s browser sends now: rid -> width (0: paused)."""
    return {rid: w for rid, w in person.page.evaluate(JS_LAYERS_OUT).items() if w}


def layer_decisions(server: ParleyServer) -> str:
    """The server's bandwidth decisions (a subscriber's layers lowered or raised): on a
    busy machine a browser's REMB falls below what it is sent, and the server lowers it."""
    lines = [line for line in server.full_log().splitlines() if "simulcast layers" in line]
    return "\n".join(lines[-8:]) or "(none)"


def wait_top_layers(
    viewer: Participant, publishers: list[Participant], what: str, server: ParleyServer
) -> list[int]:
    """Wait until ``viewer`` decodes each publisher's top layer as it is sent now.

    On a busy machine Chromium scales its layers down (a 640-wide top layer becomes 480
    or 320 wide) and back: the viewer must get the layer the server forwards for a big
    tile, the top one, whatever its width at the moment; never the bottom one."""
    seen: list[int] = []
    sent: list[dict[str, int]] = []
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        sent = [sent_layers(p) for p in publishers]
        seen = widths(viewer)
        if all(len(set(layers.values())) >= 2 for layers in sent):
            need = min(max(layers.values()) for layers in sent)
            bottom = max(min(layers.values()) for layers in sent)
            if len(seen) == len(publishers) and all(w >= need > bottom for w in seen):
                return seen
        if time.monotonic() > deadline:
            pytest.fail(
                f"{viewer.name}: want {len(publishers)} videos {what} (the top layers sent,"
                f" now {sent}), see widths {seen}; the server's layer decisions:\n"
                + layer_decisions(server)
            )
        time.sleep(0.5)


def test_each_viewer_gets_the_layer_that_fits_its_tile(
    meeting: Meeting, room: str, server: ParleyServer
) -> None:
    ada = join(meeting, "Ada", room, {"width": 1280, "height": 800})
    bob = join(meeting, "Bob", room, {"width": 360, "height": 300})
    cy = join(meeting, "Cy", room, {"width": 1600, "height": 1000})

    # Ada's browser sends simulcast: two layers (or more) of different sizes
    layers: dict[str, int] = {}
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while len(set(layers.values())) < 2 and time.monotonic() < deadline:
        ada.page.wait_for_timeout(500)
        # a layer the browser has not started yet (or paused: a busy machine) reports 0
        layers = sent_layers(ada)
    assert len(set(layers.values())) >= 2, f"Ada does not send simulcast: {layers}"
    low = min(layers.values())
    print(f"\nAda's layers: {layers}")

    # small tiles: the low layer; big tiles: the high layer (Ada's and the other's camera)
    got_bob = wait_widths(bob, 2, lambda w: 0 < w <= low, f"at most {low} wide (small tiles)")
    got_cy = wait_top_layers(cy, [ada, bob], "of the top layer (big tiles)", server)
    print(f"Bob (small window) receives widths {got_bob}; Cy (big window) {got_cy}")

    # Bob enlarges his window: his tiles grow, he gets the high layer
    bob.page.set_viewport_size({"width": 1600, "height": 1000})
    got = wait_top_layers(bob, [ada, cy], "of the top layer after enlarging the window", server)
    print(f"Bob after enlarging his window: {got}")
    # and back: the low layer again
    bob.page.set_viewport_size({"width": 360, "height": 300})
    wait_widths(bob, 2, lambda w: 0 < w <= low, f"at most {low} wide after shrinking again")
