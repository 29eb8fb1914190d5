"""Leaving (the button, or closing the tab) removes the person and their video for the others."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(parley_server):
    """``--media mesh``: this module checks the browser-to-browser (peer-to-peer) path."""
    return parley_server("--media", "mesh")


def test_leave_button_and_tab_close(new_participant, room):
    ada = new_participant("Ada", room)
    bob = new_participant("Bob", room)
    cat = new_participant("Cat", room)
    for person in (ada, bob, cat):
        expect(person.participants.get_by_role("listitem")).to_have_count(3)
    ada.wait_remote_videos(2)
    cat.wait_remote_videos(2)

    bob.leave()
    for person in (ada, cat):
        expect(person.entry("Bob")).to_have_count(0)
        expect(person.participants.get_by_role("listitem")).to_have_count(2)
        person.wait_remote_videos(1)

    # Closing the tab, as a user does (beforeunload runs; a confirmation is accepted).
    cat.page.on("dialog", lambda dialog: dialog.accept())
    cat.page.close(run_before_unload=True)
    expect(ada.entry("Cat")).to_have_count(0)
    expect(ada.participants.get_by_role("listitem")).to_have_count(1)
    ada.wait_remote_videos(0)
