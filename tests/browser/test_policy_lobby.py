"""A room's policy sends someone back to the lobby during the meeting, in real Chromium:
their media stops and they are told, the host lets them in again, and media flows again."""

from __future__ import annotations

import textwrap

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

POLICY = """
async def on_chat(msg, actions):
    if not msg.text.startswith("!lobby "):
        return msg
    wanted = msg.text.split(" ", 1)[1]
    for pid, name, _role in actions.participants(msg.room):
        if name == wanted:
            await actions.to_lobby(msg.room, pid)
    return None
"""


@pytest.fixture(scope="module")
def server(parley_server, tmp_path_factory):
    path = tmp_path_factory.mktemp("policy") / "policy.py"
    path.write_text(textwrap.dedent(POLICY))
    return parley_server("--media", "mesh", "--policy", str(path))


def test_sent_to_the_lobby_and_let_back_in(new_participant, room):
    ada = new_participant("Ada", room)
    bob = new_participant("Bob", room)
    ada.wait_remote_videos(1)
    bob.wait_remote_videos(1)
    ada.send_chat("!lobby Bob")
    banner = bob.page.get_by_text("You were moved to the lobby")
    expect(banner).to_be_visible()
    bob.wait_remote_videos(0)
    ada.open_participants()
    expect(ada.entry("Bob")).to_have_count(0)
    expect(ada.page.get_by_text("Bob is waiting to join")).to_be_visible()
    ada.wait_remote_videos(0)
    ada.button("Admit Bob").click()
    expect(banner).to_be_hidden()
    expect(ada.entry("Bob")).to_have_count(1)
    ada.wait_remote_videos(1)
    bob.wait_remote_videos(1)
