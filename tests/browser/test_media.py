"""Three people meet: everyone sees and hears the two others (and the README screenshot)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

NAMES = ("Ada Lovelace", "Grace Hopper", "Alan Turing")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot.png"


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


def test_screenshot_of_three_person_meeting(new_participant):
    # This module's server is fresh, so a readable room name is still unique.
    room = "weekly-sync"
    viewport = {"width": 1280, "height": 800}
    people = [new_participant(name, room, viewport=viewport) for name in NAMES]
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
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    ada.page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000
