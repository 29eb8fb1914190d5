"""Microphone and raised-hand state shows up in everyone's participants list."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def indicator(person, who, label):
    return person.entry(who).get_by_role("img", name=label, exact=True)


def test_mute_and_hand_indicators(new_participant, room):
    ada = new_participant("Ada", room)
    bob = new_participant("Bob", room)
    everyone = (ada, bob)

    expect(ada.button("Microphone")).to_have_attribute("aria-pressed", "true")
    for person in everyone:
        expect(indicator(person, "Ada", "Microphone off")).to_have_count(0)

    ada.toggle("Microphone", expect_pressed=False)
    for person in everyone:
        expect(indicator(person, "Ada", "Microphone off")).to_be_visible()
    expect(indicator(bob, "Bob", "Microphone off")).to_have_count(0)

    ada.toggle("Microphone", expect_pressed=True)
    for person in everyone:
        expect(indicator(person, "Ada", "Microphone off")).to_have_count(0)

    expect(bob.button("Raise hand")).to_have_attribute("aria-pressed", "false")
    bob.toggle("Raise hand", expect_pressed=True)
    for person in everyone:
        expect(indicator(person, "Bob", "Hand raised")).to_be_visible()
    expect(indicator(ada, "Ada", "Hand raised")).to_have_count(0)

    bob.toggle("Raise hand", expect_pressed=False)
    for person in everyone:
        expect(indicator(person, "Bob", "Hand raised")).to_have_count(0)
