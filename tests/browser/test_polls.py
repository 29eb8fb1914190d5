"""Polls through the UI (issue 15): a host starts one, others vote from the meeting page,
the host watches the counts and closes it, everyone sees the results and the chat keeps
them.  Names are the issue's contract: "Poll", "Question", "Option N", "Start poll", a
region named by the question, radio buttons or checkboxes, "Vote"."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def start_poll(host, question, options, *, several=False, anonymous=True):
    host.button("Poll").click()
    dialog = host.page.get_by_role("dialog", name="Poll")
    expect(dialog).to_be_visible()
    dialog.get_by_role("textbox", name="Question", exact=True).fill(question)
    for i, option in enumerate(options, start=1):
        dialog.get_by_role("textbox", name=f"Option {i}", exact=True).fill(option)
    if several:
        dialog.get_by_role("checkbox", name="Allow several choices").check()
    if not anonymous:
        dialog.get_by_role("checkbox", name="Anonymous").uncheck()
    dialog.get_by_role("button", name="Start poll").click()
    expect(dialog).to_be_hidden()


def result(person, question, option):
    """The results row of ``option``: its text holds the option and its count."""
    poll = person.page.get_by_role("region", name=question)
    return poll.get_by_role("list", name="Results").get_by_role("listitem").filter(has_text=option)


def test_a_poll_from_the_host_to_everyone(new_participant, room):
    ada = new_participant("Ada", room)  # first in: the host
    bob = new_participant("Bob", room)
    cat = new_participant("Cat", room)
    question = "Which day suits?"

    # Only hosts may start polls.
    expect(ada.button("Poll")).to_be_visible()
    for person in (bob, cat):
        expect(person.button("Poll")).to_be_hidden()

    # One option is not a poll: the dialog says so and stays open.
    ada.button("Poll").click()
    dialog = ada.page.get_by_role("dialog", name="Poll")
    dialog.get_by_role("textbox", name="Question", exact=True).fill(question)
    dialog.get_by_role("textbox", name="Option 1", exact=True).fill("Monday")
    dialog.get_by_role("button", name="Start poll").click()
    expect(dialog.get_by_role("alert")).to_have_text("Give at least 2 options.")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()

    start_poll(ada, question, ["Monday", "Tuesday", "Friday"], anonymous=False)
    for person in (ada, bob, cat):
        poll = person.page.get_by_role("region", name=question)
        expect(poll).to_be_visible()
        expect(poll.get_by_role("radio")).to_have_count(3)
    # Participants do not see counts while it is open.
    expect(
        bob.page.get_by_role("region", name=question).get_by_role("list", name="Results")
    ).to_be_hidden()

    bob_poll = bob.page.get_by_role("region", name=question)
    bob_poll.get_by_role("radio", name="Tuesday").check()
    bob_poll.get_by_role("button", name="Vote").click()
    expect(bob_poll.get_by_role("status")).to_contain_text("Your vote is in")
    expect(result(ada, question, "Tuesday")).to_contain_text("1 vote")

    cat_poll = cat.page.get_by_role("region", name=question)
    cat_poll.get_by_role("radio", name="Monday").check()
    cat_poll.get_by_role("button", name="Vote").click()
    expect(result(ada, question, "Monday")).to_contain_text("1 vote")
    # Cat changes her mind: counted once, for the new choice.
    cat_poll.get_by_role("radio", name="Tuesday").check()
    cat_poll.get_by_role("button", name="Vote").click()
    expect(result(ada, question, "Tuesday")).to_contain_text("2 votes")
    expect(result(ada, question, "Monday")).to_contain_text("0 votes")

    ada.page.get_by_role("region", name=question).get_by_role("button", name="Close poll").click()
    for person in (ada, bob, cat):
        expect(result(person, question, "Tuesday")).to_contain_text("2 votes")
        expect(result(person, question, "Tuesday")).to_contain_text("Bob, Cat")
        expect(result(person, question, "Friday")).to_contain_text("0 votes")
        poll = person.page.get_by_role("region", name=question)
        expect(poll.get_by_role("button", name="Vote")).to_be_hidden()
        person.open_chat()
        line = person.chat_log.locator(".msg--system").filter(
            has_text=re.compile(r'Poll closed: "Which day suits\?"')
        )
        expect(line).to_have_count(1)
        expect(line).to_contain_text("Tuesday: 2 (Bob, Cat)")


def test_several_choices_and_a_reload_sees_the_open_poll(new_participant, room):
    ada = new_participant("Ada", room)
    bob = new_participant("Bob", room)
    question = "Snacks?"
    start_poll(ada, question, ["Fruit", "Nuts", "Cake"], several=True)
    poll = bob.page.get_by_role("region", name=question)
    expect(poll.get_by_role("checkbox")).to_have_count(3)
    poll.get_by_role("checkbox", name="Fruit").check()
    poll.get_by_role("checkbox", name="Cake").check()
    poll.get_by_role("button", name="Vote").click()
    expect(result(ada, question, "Fruit")).to_contain_text("1 vote")
    expect(result(ada, question, "Cake")).to_contain_text("1 vote")

    # A reload is a new participant (the page keeps no identity): the open poll is
    # there again, and the new vote counts beside the old one.
    bob.page.reload()
    bob.click_join()
    poll = bob.page.get_by_role("region", name=question)
    expect(poll).to_be_visible()
    poll.get_by_role("checkbox", name="Nuts").check()
    poll.get_by_role("button", name="Vote").click()
    expect(result(ada, question, "Nuts")).to_contain_text("1 vote")
    expect(result(ada, question, "Fruit")).to_contain_text("1 vote")
