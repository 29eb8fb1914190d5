"""Three people meet: everyone sees and hears the two others (and the README screenshot).

The three-person check runs in a mesh (``--media mesh``, browser to browser); two tabs on
a plain ``parley serve`` check the default, the SFU, with the host candidates the server
picks by itself (no ``--media-ip``); the README screenshot shows the default too.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

NAMES = ("Ada Lovelace", "Grace Hopper", "Alan Turing")
#: Where the screenshot goes: a temp file, unless PARLEY_UPDATE_SCREENSHOT=1 asks for the
#: README's docs/screenshot.png to be refreshed (a test run never dirties the checkout).
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot.png"


@pytest.fixture(scope="module")
def server(parley_server):
    """``--media mesh``: the peer-to-peer path, every page connected to both others."""
    return parley_server("--media", "mesh")


@pytest.fixture(scope="module")
def default_server(parley_server):
    """Plain ``parley serve``: SFU media, host candidates of the server's own choosing (in
    this loopback-only namespace that is 127.0.0.1, which aioice alone leaves out)."""
    return parley_server()


def test_three_participants_exchange_audio_and_video(new_participant, room):
    people = [new_participant(name, room) for name in NAMES]

    for person in people:
        # Camera and microphone are on by default when available.
        expect(person.button("Microphone")).to_have_attribute("aria-pressed", "true")
        expect(person.button("Camera")).to_have_attribute("aria-pressed", "true")
        expect(person.participants.get_by_role("listitem")).to_have_count(3)
        for name in NAMES:
            expect(person.entry(name)).to_have_count(1)

    for person in people:
        # Frames decoded and audio packets received keep increasing, from both others.
        person.wait_media_flowing(video_streams=2, audio_streams=2)
        # And both remote cameras are on screen, with a real picture size.
        person.wait_remote_videos(2)


def test_two_tabs_on_a_plain_server_meet_through_the_sfu(new_participant, default_server, room):
    """What a laptop user gets from ``parley serve`` and two tabs on http://127.0.0.1:8000."""
    ada = new_participant("Ada", room, server=default_server)
    bob = new_participant("Bob", room, server=default_server)
    for person in (ada, bob):
        expect(person.page.locator("#media-mode")).to_have_attribute("data-mode", "sfu")
        expect(person.page.get_by_text("Media: via server")).to_be_visible()
    for person in (ada, bob):
        person.wait_media_flowing(video_streams=1, audio_streams=1)
        person.wait_remote_videos(1)


def test_screenshot_of_three_person_meeting(new_participant, default_server, tmp_path):
    # This module's default server is fresh, so a readable room name is still unique.
    room = "weekly-sync"
    viewport = {"width": 1280, "height": 800}
    people = [
        new_participant(name, room, viewport=viewport, server=default_server) for name in NAMES
    ]
    ada = people[0]
    for person in people:
        expect(person.participants.get_by_role("listitem")).to_have_count(3)
    people[1].send_chat("Morning! Shall we go through the agenda?")
    ada.send_chat("Yes, starting with the release notes.")
    expect(ada.chat_log).to_contain_text("starting with the release notes")
    ada.wait_remote_videos(2)
    ada.wait_media_flowing(video_streams=2, audio_streams=2)
    ada.page.mouse.move(0, 0)
    # Let the "… joined" notices fade if they do (not part of the contract).
    for name in NAMES[1:]:
        notice = ada.page.get_by_text(f"{name} joined", exact=True)
        try:
            notice.first.wait_for(state="hidden", timeout=10_000)
        except PlaywrightError:
            pass
    shot = (
        DOCS_SCREENSHOT
        if os.environ.get("PARLEY_UPDATE_SCREENSHOT") == "1"
        else tmp_path / "screenshot.png"
    )
    ada.page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
