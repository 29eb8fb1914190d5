"""Someone without a camera joins with audio only; the others see their initials."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(parley_server):
    """``--media mesh``: this module checks the browser-to-browser (peer-to-peer) path."""
    return parley_server("--media", "mesh")


def test_join_without_camera(new_participant, room):
    ada = new_participant("Ada Byron", room)
    nora = new_participant("Nora Quinn", room, camera=False)

    expect(nora.button("Camera")).to_have_attribute("aria-pressed", "false")
    expect(nora.button("Microphone")).to_have_attribute("aria-pressed", "true")
    for person in (ada, nora):
        expect(person.participants.get_by_role("listitem")).to_have_count(2)
        expect(person.entry("Nora Quinn")).to_have_count(1)

    # Ada sees a tile with Nora's initials instead of a video, and hears her.
    expect(ada.page.get_by_text("NQ", exact=True).first).to_be_visible()
    ada.wait_media_flowing(video_streams=0, audio_streams=1)
    ada.wait_remote_videos(0)

    # Nora sees and hears Ada.
    nora.wait_media_flowing(video_streams=1, audio_streams=1)
    nora.wait_remote_videos(1)
