"""Sharing a screen gives the others one more video; stopping takes it away."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(parley_server):
    """``--media mesh``: this module checks the browser-to-browser (peer-to-peer) path."""
    return parley_server("--media", "mesh")


def test_screen_share_start_and_stop(new_participant, room):
    ada = new_participant("Ada", room)
    bob = new_participant("Bob", room)
    bob.wait_remote_videos(1)

    ada.toggle("Share screen", expect_pressed=True)
    bob.wait_remote_videos(2)
    bob.wait_media_flowing(video_streams=2, audio_streams=1)

    ada.toggle("Share screen", expect_pressed=False)
    bob.wait_remote_videos(1)
    bob.wait_media_flowing(video_streams=1, audio_streams=1)
