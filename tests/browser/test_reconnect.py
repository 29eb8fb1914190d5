"""A server restart (SIGTERM, same port and data) does not end the meeting."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(parley_server):
    """``--media mesh``: this module checks the browser-to-browser (peer-to-peer) path."""
    return parley_server("--media", "mesh")


def test_meeting_survives_server_restart(server, new_participant, room):
    ada = new_participant("Ada", room)
    bob = new_participant("Bob", room)
    ada.send_chat("said before the restart")
    bob.wait_chat_entry("said before the restart", sender="Ada")
    for person in (ada, bob):
        person.wait_media_flowing(video_streams=1, audio_streams=1)

    server.restart()

    # Both browsers reconnect by themselves: the new server process has them in the room.
    server.wait_room_names(room, ["Ada", "Bob"])

    for person in (ada, bob):
        expect(person.participants.get_by_role("listitem")).to_have_count(2)
        expect(person.entry("Ada")).to_have_count(1)
        expect(person.entry("Bob")).to_have_count(1)

    bob.send_chat("said after the restart")
    for person in (ada, bob):
        person.wait_chat_entry("said after the restart", sender="Bob")
        # Nothing lost, nothing shown twice.
        assert person.chat_log.inner_text().count("said before the restart") == 1

    for person in (ada, bob):
        person.wait_media_flowing(video_streams=1, audio_streams=1)
        person.wait_remote_videos(1)
