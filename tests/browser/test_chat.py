"""Chat: everyone (the sender too) sees each message with its sender; late joiners get history."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_chat_reaches_everyone_and_late_joiner_sees_history(new_participant, room):
    ada = new_participant("Ada", room)
    bob = new_participant("Bob", room)

    ada.send_chat("the agenda is in the shared folder")
    for person in (ada, bob):
        person.wait_chat_entry("the agenda is in the shared folder", sender="Ada")

    bob.send_chat("thanks, reading it now")
    for person in (ada, bob):
        person.wait_chat_entry("thanks, reading it now", sender="Bob")

    cat = new_participant("Cat", room)
    cat.wait_chat_entry("the agenda is in the shared folder", sender="Ada")
    cat.wait_chat_entry("thanks, reading it now", sender="Bob")
    log = cat.chat_log.inner_text()
    assert log.index("the agenda is in") < log.index("thanks, reading"), log

    # The late joiner takes part like everyone else.
    cat.send_chat("sorry I'm late")
    for person in (ada, bob, cat):
        person.wait_chat_entry("sorry I'm late", sender="Cat")


def test_chat_text_is_shown_as_text_not_html(new_participant, room):
    ada = new_participant("Ada", room)
    bob = new_participant("Bob", room)
    ada.send_chat("<b>bold?</b> <img src=x onerror=window.__pwned=1>")
    bob.wait_chat_entry("<b>bold?</b> <img src=x onerror=window.__pwned=1>", sender="Ada")
    expect(bob.chat_log.locator("b")).to_have_count(0)
    expect(bob.chat_log.locator("img[src=x]")).to_have_count(0)
    assert bob.page.evaluate("window.__pwned") is None
