"""Breakout rooms through the UI (issue 15): a host opens them, everyone moves without a
reload (the same page and socket), sees their breakout's name and the people and chat of
their room, asks for help; the host visits, closes them all, and everyone comes back.
Names are the issue's contract: a "Breakout rooms" button and dialog; in a breakout, an
element with role="status" whose text holds the breakout's name."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

#: This module's close warning (seconds; the default 30 s is checked in tests/core) ...
WARNING = 8
#: ... and some room for a loaded machine.
RETURN_MS = (WARNING + 30) * 1000


@pytest.fixture(scope="module")
def server(parley_server):
    return parley_server("--breakout-close-warning", str(WARNING))


def breakout_status(person, title):
    return person.page.get_by_role("status").filter(has_text=f"Breakout room: {title}")


def test_breakouts_open_move_everyone_and_bring_them_back(new_participant, room):
    ada = new_participant("Ada", room)  # the host
    bob = new_participant("Bob", room)
    cat = new_participant("Cat", room)
    dan = new_participant("Dan", room)
    for person in (bob, cat, dan):
        expect(person.button("Breakout rooms")).to_be_hidden()
        person.page.evaluate("window.__samePage = true")  # gone if the page reloads

    ada.send_chat("agenda in the main room")
    bob.wait_chat_entry("agenda in the main room", "Ada")

    ada.button("Breakout rooms").click()
    dialog = ada.page.get_by_role("dialog", name="Breakout rooms")
    expect(dialog).to_be_visible()
    dialog.get_by_role("spinbutton", name="Number of rooms").fill("2")
    dialog.get_by_role("textbox", name="Name of room 1").fill("Red")
    dialog.get_by_role("textbox", name="Name of room 2").fill("Blue")
    dialog.get_by_role("radio", name="By hand").check()
    dialog.get_by_role("combobox", name="Room for Bob").select_option(label="Red")
    dialog.get_by_role("combobox", name="Room for Cat").select_option(label="Red")
    dialog.get_by_role("combobox", name="Room for Dan").select_option(label="Blue")
    dialog.get_by_role("button", name="Open breakout rooms").click()
    expect(dialog).to_be_hidden()

    expect(breakout_status(bob, "Red")).to_be_visible()
    expect(breakout_status(cat, "Red")).to_be_visible()
    expect(breakout_status(dan, "Blue")).to_be_visible()
    for person in (bob, cat, dan):
        assert person.page.evaluate("window.__samePage") is True  # no reload
    # The participant list and the chat are the breakout's.
    for person in (bob, cat):
        person.open_participants()
        expect(person.entry("Bob")).to_have_count(1)
        expect(person.entry("Cat")).to_have_count(1)
        expect(person.entry("Ada")).to_have_count(0)
        expect(person.entry("Dan")).to_have_count(0)
    bob.send_chat("hello red")
    cat.wait_chat_entry("hello red", "Bob")
    dan.open_chat()
    expect(dan.chat_log.get_by_text("hello red")).to_have_count(0)

    # The main room's chat stays readable from a breakout.
    expect(bob.chat_log.get_by_text("agenda in the main room")).to_have_count(0)
    bob.page.get_by_role("button", name="Main room chat").click()
    main_chat = bob.page.get_by_role("dialog", name="Main room chat")
    expect(main_chat.get_by_role("log").get_by_text("agenda in the main room")).to_be_visible()
    main_chat.get_by_role("button", name="Close").click()

    # A reload in a breakout lands back in it, as the same participant.
    cat.page.reload()
    cat.click_join()
    expect(breakout_status(cat, "Red")).to_be_visible()
    cat.open_participants()
    expect(cat.entry("Bob")).to_have_count(1)
    expect(cat.entry("Cat")).to_have_count(1)
    bob.open_participants()
    expect(bob.entry("Cat")).to_have_count(1)

    # Dan asks for help; the host sees it and visits Blue.
    dan.page.get_by_role("button", name="Ask for help").click()
    expect(ada.page.get_by_text("Dan asks for help in Blue")).to_be_visible()
    ada.button("Breakout rooms").click()
    dialog.get_by_role("button", name="Join Blue").click()
    expect(breakout_status(ada, "Blue")).to_be_visible()
    expect(dialog).to_be_hidden()
    ada.open_participants()
    expect(ada.entry("Dan")).to_have_count(1)

    # Close all: everyone is back in the main room after the warning.
    ada.button("Breakout rooms").click()
    dialog.get_by_role("button", name="Close all rooms").click()
    expect(
        dan.page.get_by_role("status").filter(has_text="back to the main room in")
    ).to_be_visible()
    for person in (ada, bob, cat, dan):
        expect(person.page.locator("#breakout-bar")).to_be_hidden(timeout=RETURN_MS)
        person.open_participants()
        for name in ("Ada", "Bob", "Cat", "Dan"):
            expect(person.entry(name)).to_have_count(1)
    assert bob.page.evaluate("window.__samePage") is True
