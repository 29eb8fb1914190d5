"""Polls in Firefox (firefox-esr over WebDriver BiDi) with Chromium: a Firefox host starts
a poll from its dialog, a Chromium participant and the host vote, the host sees the
counts and closes it, both browsers show the results."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.polling import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

# The text of the results list of the poll card whose question is ``q``.
JS_RESULTS = """
(q) => {
  for (const card of document.querySelectorAll('.poll-card')) {
    if (card.querySelector('.poll-question')?.textContent !== q) continue;
    const list = card.querySelector('.poll-results');
    return list && !list.hidden ? list.textContent : null;
  }
  return null;
}
"""


@pytest.fixture(scope="module")
def netns(veth_netns: Any) -> Any:
    """Firefox gathers no ICE candidate where only ``lo`` exists: the veth namespace."""
    return veth_netns


def test_a_poll_between_firefox_and_chromium(firefox_meeting: Any, meeting: Any, room: str) -> None:
    ada = firefox_meeting.join("Ada", room)  # first in: the host
    bob = meeting.join("Bob", room)
    question = "Firefox or Chromium?"

    ada.click("#btn-poll")
    ada.wait_js("() => document.getElementById('poll-dialog')?.open", "poll dialog never opened")
    ada.driver.call("type", page=ada.page_id, selector="#poll-question", text=question)
    ada.driver.call("type", page=ada.page_id, selector="#poll-option-1", text="Firefox")
    ada.driver.call("type", page=ada.page_id, selector="#poll-option-2", text="Chromium")
    ada.click("#poll-start")

    poll = bob.page.get_by_role("region", name=question)
    expect(poll).to_be_visible()
    poll.get_by_role("radio", name="Chromium").check()
    poll.get_by_role("button", name="Vote").click()
    ada.wait_js(JS_RESULTS, "the host never saw Bob's vote", arg=question)
    wait_until(
        lambda: "Chromium1 vote" in (ada.evaluate(JS_RESULTS, question) or ""),
        15_000,
        lambda: f"host's results: {ada.evaluate(JS_RESULTS, question)!r}",
    )

    ada.click('.poll-card input[value="0"]')
    ada.click(".poll-card .poll-vote")
    wait_until(
        lambda: "Firefox1 vote" in (ada.evaluate(JS_RESULTS, question) or ""),
        15_000,
        lambda: f"host's results: {ada.evaluate(JS_RESULTS, question)!r}",
    )
    ada.click(".poll-card .poll-close")
    results = poll.get_by_role("list", name="Results")
    expect(results.get_by_role("listitem").filter(has_text="Firefox")).to_contain_text("1 vote")
    expect(results.get_by_role("listitem").filter(has_text="Chromium")).to_contain_text("1 vote")
    ada.wait_js(
        "() => document.querySelector('.poll-card--closed') !== null", "Firefox never saw it close"
    )
    bob.open_chat()
    line = bob.chat_log.locator(".msg--system").filter(has_text="Poll closed")
    expect(line).to_contain_text("Firefox: 1; Chromium: 1 (2 voters)")
