"""Bad input gets a clear, visible answer and loses nothing."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(parley_server):
    # A small room limit so that the third person meets a full room.
    return parley_server("--max-participants", "2")


def visible_alert(page):
    return page.get_by_role("alert").filter(visible=True).first


def test_empty_name_cannot_join(meeting, room):
    person = meeting.open("", room)
    name = person.page.get_by_role("textbox", name="Your name")
    for value in ("", "   "):
        name.fill(value)
        person.page.get_by_role("button", name="Join meeting").click()
        expect(visible_alert(person.page)).to_be_visible()
        expect(visible_alert(person.page)).to_have_text(re.compile(r"\S"))
        expect(person.page.get_by_role("button", name="Join meeting")).to_be_visible()
        expect(person.button("Leave")).to_have_count(0)


def test_overlong_message_is_refused_and_kept(new_participant, room):
    ada = new_participant("Ada", room)
    bob = new_participant("Bob", room)

    too_long = "x" * 3992 + "TOOLONG-1"  # 4,000 + 1 characters
    assert len(too_long) == 4001
    ada.send_chat(too_long)
    expect(visible_alert(ada.page)).to_be_visible()
    expect(ada.message_box).to_have_value(too_long)

    # Refused, not delivered: a later message arrives and the long one never did.
    ada.message_box.fill("short one")
    ada.button("Send").click()
    bob.wait_chat_entry("short one", sender="Ada")
    for person in (ada, bob):
        assert "TOOLONG-1" not in person.chat_log.inner_text()

    # Exactly at the limit is fine.
    fits = "y" * 3990 + "FITS-LIMIT"
    assert len(fits) == 4000
    ada.send_chat(fits)
    for person in (ada, bob):
        expect(person.chat_log).to_contain_text("FITS-LIMIT")


def test_full_room_is_reported(meeting, new_participant, room):
    ada = new_participant("Ada", room)
    new_participant("Bob", room)

    cat = meeting.open("Cat", room)
    cat.page.get_by_role("textbox", name="Your name").fill("Cat")
    cat.page.get_by_role("button", name="Join meeting").click()
    expect(cat.page.get_by_text(re.compile(r"room is full", re.I)).first).to_be_visible()
    expect(cat.button("Leave")).to_have_count(0)
    expect(ada.participants.get_by_role("listitem")).to_have_count(2)
    expect(ada.entry("Cat")).to_have_count(0)
