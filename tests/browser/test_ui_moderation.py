"""Hosts and moderation through the UI (issue 4): controls only hosts see, mute,
remove, the lobby, the room password, and the system lines in everyone's chat."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def host_badge(person, who):
    return person.entry(who).get_by_text("Host", exact=True)


def indicator(person, who, label):
    return person.entry(who).get_by_role("img", name=label, exact=True)


def system_line(person, text):
    person.open_chat()
    return person.chat_log.locator(".msg--system").filter(has_text=text)


def visible_alert(page):
    return page.get_by_role("alert").filter(visible=True).first


def knock(meeting, name, room):
    """Open the room and click "Join meeting" without waiting to be in."""
    person = meeting.open(name, room)
    person.page.get_by_role("textbox", name="Your name").fill(name)
    person.page.get_by_role("button", name="Join meeting").click()
    return person


def test_hosts_see_controls_mute_and_remove(new_participant, room):
    ada = new_participant("Ada", room)  # first in: the host
    bob = new_participant("Bob", room)
    cat = new_participant("Cat", room)
    everyone = (ada, bob, cat)

    # Roles are shown to everyone; only the host gets the controls.
    for person in everyone:
        expect(host_badge(person, "Ada")).to_be_visible()
        expect(host_badge(person, "Bob")).to_have_count(0)
    expect(ada.button("Mute Bob")).to_be_visible()
    expect(ada.button("Remove Cat")).to_be_visible()
    expect(ada.button("Make Bob host")).to_be_visible()
    expect(ada.button("Mute everyone")).to_be_visible()
    expect(ada.button("Room settings")).to_be_visible()
    for person in (bob, cat):
        page = person.page
        for name in ("Mute Ada", "Mute Bob", "Mute Cat", "Remove Ada", "Remove Cat", "Remove Bob",
                     "Make Bob host", "Lower hand of Cat"):  # fmt: skip
            expect(page.get_by_role("button", name=name)).to_have_count(0)
        expect(person.button("Mute everyone")).to_be_hidden()
        expect(person.button("Room settings")).to_be_hidden()
        expect(page.get_by_role("checkbox", name="Lock room")).to_be_hidden()

    # Mute: Bob's microphone goes off on his side, everyone sees it, a system line says so.
    expect(bob.button("Microphone")).to_have_attribute("aria-pressed", "true")
    expect(ada.button("Mute Bob")).to_be_enabled()
    ada.button("Mute Bob").click()
    expect(bob.button("Microphone")).to_have_attribute("aria-pressed", "false")
    expect(bob.page.get_by_text("A host turned off your microphone")).to_be_visible()
    for person in everyone:
        expect(indicator(person, "Bob", "Microphone off")).to_be_visible()
        expect(system_line(person, "Ada turned off Bob's microphone")).to_have_count(1)
    # A system line names no sender bubble, but lives in the chat log.
    assert bob.chat_entry("Ada turned off Bob's microphone", "Bob") is not None
    # Only Bob can turn it back on.
    bob.toggle("Microphone", expect_pressed=True)
    for person in everyone:
        expect(indicator(person, "Bob", "Microphone off")).to_have_count(0)

    # Observers publish nothing: their media buttons are disabled, with an explanation.
    ada.button("Make Bob observer").click()
    for person in everyone:
        expect(person.entry("Bob").get_by_text("Observer", exact=True)).to_be_visible()
    for name in ("Microphone", "Camera"):
        expect(bob.button(name)).to_be_disabled()
        expect(bob.button(name)).to_have_attribute("aria-pressed", "false")
    expect(bob.page.locator("#observer-note")).to_be_visible()
    for person in everyone:
        expect(indicator(person, "Bob", "Microphone off")).to_be_visible()
        expect(indicator(person, "Bob", "Camera off")).to_be_visible()
    ada.button("Make Bob participant").click()
    expect(bob.button("Microphone")).to_be_enabled()
    bob.toggle("Microphone", expect_pressed=True)
    expect(indicator(ada, "Bob", "Microphone off")).to_have_count(0)

    # The raise-hand queue, in order, for everyone; the host lowers a hand.
    cat.toggle("Raise hand", expect_pressed=True)
    bob.toggle("Raise hand", expect_pressed=True)
    for person in everyone:
        hands = person.page.get_by_role("list", name=re.compile(r"^Raised hands"))
        expect(hands.get_by_role("listitem")).to_have_text([re.compile("Cat"), re.compile("Bob")])
    ada.button("Lower hand of Cat").click()
    expect(cat.button("Raise hand")).to_have_attribute("aria-pressed", "false")
    for person in everyone:
        expect(indicator(person, "Cat", "Hand raised")).to_have_count(0)
        expect(system_line(person, "Ada lowered Cat's hand")).to_have_count(1)

    # Remove (with a confirmation): Cat sees the final screen and is gone for the others.
    ada.button("Remove Cat").click()
    dialog = ada.page.get_by_role("dialog", name=re.compile("Remove Cat"))
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Remove", exact=True).click()
    expect(cat.page.get_by_text("You were removed from the meeting")).to_be_visible()
    expect(cat.button("Leave")).to_be_hidden()
    for person in (ada, bob):
        expect(person.entry("Cat")).to_have_count(0)
        expect(person.participants.get_by_role("listitem")).to_have_count(2)
        expect(system_line(person, "Ada removed Cat")).to_have_count(1)
    # No reconnect behind the user's back.
    cat.page.wait_for_timeout(1_500)
    expect(ada.entry("Cat")).to_have_count(0)
    expect(cat.page.get_by_text("You were removed from the meeting")).to_be_visible()


def test_lobby_admit_and_deny(meeting, new_participant, room):
    ada = new_participant("Ada", room)
    ada.button("Room settings").click()
    lobby = ada.page.get_by_role("checkbox", name="Lobby")
    lobby.check()
    expect(lobby).to_be_checked()
    ada.page.get_by_role("button", name="Close", exact=True).click()
    expect(system_line(ada, "Ada turned the lobby on")).to_have_count(1)

    eve = knock(meeting, "Eve", room)
    status = eve.page.get_by_role("status").filter(has_text="Waiting for a host to let you in")
    expect(status).to_be_visible()
    expect(eve.button("Cancel")).to_be_visible()
    expect(eve.button("Leave")).to_be_hidden()
    # Waiting people see nothing of the room; the host sees them knock.
    ada.open_participants()
    expect(ada.page.get_by_text("Eve is waiting to join")).to_be_visible()
    expect(ada.entry("Eve")).to_have_count(0)
    ada.button("Admit Eve").click()
    expect(eve.button("Leave")).to_be_visible()
    eve.open_participants()
    for person in (ada, eve):
        expect(person.entry("Eve")).to_have_count(1)
        expect(person.entry("Ada")).to_have_count(1)
    expect(ada.button("Admit Eve")).to_have_count(0)
    expect(system_line(ada, "Ada admitted Eve")).to_have_count(1)

    mal = knock(meeting, "Mallory", room)
    expect(mal.page.get_by_role("status").filter(has_text="Waiting for a host")).to_be_visible()
    ada.button("Deny Mallory").click()
    expect(visible_alert(mal.page)).to_have_text(re.compile("A host declined your request"))
    expect(mal.page.get_by_role("button", name="Join meeting")).to_be_visible()
    for person in (ada, eve):
        expect(person.entry("Mallory")).to_have_count(0)


def test_password_lock_and_end_meeting(meeting, new_participant, room):
    ada = new_participant("Ada", room)
    ada.button("Room settings").click()
    ada.page.get_by_label("Room password").fill("open sesame")
    ada.page.get_by_role("button", name="Set password").click()
    expect(ada.page.get_by_text("This room has a password.")).to_be_visible()
    ada.page.get_by_role("button", name="Close", exact=True).click()
    expect(system_line(ada, "Ada set a room password")).to_have_count(1)

    bob = knock(meeting, "Bob", room)
    page = bob.page
    expect(visible_alert(page)).to_have_text(re.compile("password", re.I))
    password = page.get_by_label("Room password")
    expect(password).to_be_visible()
    password.fill("wrong guess")
    page.get_by_role("button", name="Join meeting").click()
    expect(visible_alert(page)).to_have_text(re.compile("not right", re.I))
    expect(bob.button("Leave")).to_have_count(0)
    password.fill("open sesame")
    page.get_by_role("button", name="Join meeting").click()
    expect(bob.button("Leave")).to_be_visible()
    bob.open_participants()
    expect(bob.entry("Ada")).to_have_count(1)

    # Locking shows in everyone's header; a newcomer is told the room is locked.
    ada.button("Room settings").click()
    ada.page.get_by_role("checkbox", name="Lock room").check()
    ada.page.get_by_role("button", name="Close", exact=True).click()
    for person in (ada, bob):
        expect(person.page.get_by_role("img", name="Room locked")).to_be_visible()
    # The lock is checked before the password (docs/protocol.md, Admission).
    cat = knock(meeting, "Cat", room)
    expect(visible_alert(cat.page)).to_have_text(re.compile("locked", re.I))
    expect(cat.button("Leave")).to_have_count(0)

    # Ending the meeting (with a confirmation) ends it for everyone, host included.
    ada.button("Room settings").click()
    ada.page.get_by_role("button", name="End meeting for all").click()
    ada.page.get_by_role("dialog", name=re.compile("End the meeting")).get_by_role(
        "button", name="End meeting", exact=True
    ).click()
    for person in (ada, bob):
        expect(person.page.get_by_text("The host ended the meeting")).to_be_visible()
        expect(person.button("Leave")).to_be_hidden()
