"""Media in breakout rooms, through the SFU and in a mesh: after a move on the same page,
the people of a breakout see and hear each other, and nobody else."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def mesh_server(parley_server):
    return parley_server("--media", "mesh")


def open_by_hand(host, plan):
    host.button("Breakout rooms").click()
    dialog = host.page.get_by_role("dialog", name="Breakout rooms")
    dialog.get_by_role("spinbutton", name="Number of rooms").fill(str(len(set(plan.values()))))
    dialog.get_by_role("radio", name="By hand").check()
    for who, title in plan.items():
        dialog.get_by_role("combobox", name=f"Room for {who}").select_option(label=title)
    dialog.get_by_role("button", name="Open breakout rooms").click()
    expect(dialog).to_be_hidden()
    return dialog


def media_in_a_breakout(meeting, room, server):
    ada, bob, cat = (meeting.join(n, room, server=server) for n in ("Ada", "Bob", "Cat"))
    bob.wait_remote_videos(2)
    dialog = open_by_hand(ada, {"Bob": "Room 1", "Cat": "Room 2"})
    expect(bob.page.get_by_role("status").filter(has_text="Breakout room: Room 1")).to_be_visible()
    expect(cat.page.get_by_role("status").filter(has_text="Breakout room: Room 2")).to_be_visible()
    ada.button("Breakout rooms").click()
    dialog.get_by_role("button", name="Join Room 1").click()
    expect(ada.page.get_by_role("status").filter(has_text="Breakout room: Room 1")).to_be_visible()
    # Ada and Bob see and hear each other in Room 1; Cat, alone in Room 2, sees nobody.
    for person in (ada, bob):
        person.wait_media_flowing(video_streams=1, audio_streams=1)
        person.wait_remote_videos(1)
    cat.wait_remote_videos(0)


def test_media_in_a_breakout_through_the_sfu(meeting, room):
    media_in_a_breakout(meeting, room, None)


def test_media_in_a_breakout_in_a_mesh(meeting, room, mesh_server):
    media_in_a_breakout(meeting, room, mesh_server)
