"""Breakout rooms and the meeting record in Firefox (firefox-esr over WebDriver BiDi) with
a Chromium host (issue 15): the host opens a breakout, the Firefox participant moves into
it without a reload (the same page and socket), chats there with the visiting host, and
comes back when the host closes the rooms; back in the main room it deletes a message of
its own (the Chromium page shows the tombstone), searches the history and downloads it.

One test, one Firefox launch: the flows share their pages (Firefox tests are slow to set up).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.polling import wait_until
from tests.support.parley_process import ParleyProcess

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

#: The close warning (seconds; the default 30 s is checked in tests/core) ...
WARNING = 5
#: ... and some room for a loaded machine.
RETURN_MS = (WARNING + 30) * 1000

#: A visible role="status" element whose text holds ``text`` (the issue's contract).
JS_STATUS = """(text) => [...document.querySelectorAll('[role="status"]')]
  .some((el) => el.checkVisibility() && el.textContent.includes(text))"""

#: The id of the newest chat entry holding ``text``.
JS_MESSAGE_ID = """(text) => {
  const found = [...document.querySelectorAll('#chat-log .msg[data-id]')]
    .filter((el) => el.textContent.includes(text));
  return found.length ? found[found.length - 1].dataset.id : null;
}"""

#: Keep what "Download chat" hands to the browser (the blob and its file name) instead of
#: saving it: a download in headless Firefox goes to a directory the test does not own.
JS_CAPTURE_DOWNLOAD = """() => {
  window.__saved = null;
  const blobs = new Map();
  const create = URL.createObjectURL.bind(URL);
  URL.createObjectURL = (blob) => { const url = create(blob); blobs.set(url, blob); return url; };
  HTMLAnchorElement.prototype.click = function () {
    const blob = blobs.get(this.href);
    if (blob) blob.text().then((text) => { window.__saved = { name: this.download, text }; });
  };
}"""


@pytest.fixture(scope="module")
def netns(veth_netns: Any) -> Any:
    """Firefox gathers no ICE candidate where only ``lo`` exists: the veth namespace."""
    return veth_netns


@pytest.fixture(scope="module")
def server(parley_server: Callable[..., ParleyProcess]) -> ParleyProcess:
    return parley_server("--breakout-close-warning", str(WARNING))


def test_breakouts_and_the_record_in_firefox(firefox_meeting: Any, meeting: Any, room: str) -> None:
    ada = meeting.join("Ada", room)  # first in: the host, in Chromium
    bob = firefox_meeting.join("Bob", room)
    bob.evaluate("() => { window.__samePage = true; }")  # gone if the page reloads
    ada.send_chat("agenda: the budget review")
    bob.wait_chat_entry("agenda: the budget review", "Ada")

    # The host opens one breakout, "Red", with Bob in it.
    ada.button("Breakout rooms").click()
    dialog = ada.page.get_by_role("dialog", name="Breakout rooms")
    dialog.get_by_role("spinbutton", name="Number of rooms").fill("1")
    dialog.get_by_role("textbox", name="Name of room 1").fill("Red")
    dialog.get_by_role("radio", name="By hand").check()
    dialog.get_by_role("combobox", name="Room for Bob").select_option(label="Red")
    dialog.get_by_role("button", name="Open breakout rooms").click()
    expect(dialog).to_be_hidden()
    bob.wait_js(JS_STATUS, "never saw 'Breakout room: Red'", arg="Breakout room: Red")
    assert bob.evaluate("() => window.__samePage") is True  # moved without a reload

    # The host visits; they chat in the breakout, whose chat is not the main room's.
    ada.button("Breakout rooms").click()
    dialog.get_by_role("button", name="Join Red").click()
    expect(ada.page.get_by_role("status").filter(has_text="Breakout room: Red")).to_be_visible()
    bob.send_chat("hello from firefox")
    ada.wait_chat_entry("hello from firefox", "Bob")
    ada.send_chat("hi Bob, this is Red")
    bob.wait_chat_entry("hi Bob, this is Red", "Ada")
    assert "budget review" not in bob.evaluate(
        "() => document.getElementById('chat-log').textContent"
    )

    # Close all: a warning, then both are back in the main room, on the same page.
    ada.button("Breakout rooms").click()
    dialog.get_by_role("button", name="Close all rooms").click()
    bob.wait_js(JS_STATUS, "never warned of the return", arg="back to the main room in")
    bob.wait_js(
        "() => document.getElementById('breakout-bar').hidden",
        "never came back to the main room",
        timeout_ms=RETURN_MS,
    )
    expect(ada.page.locator("#breakout-bar")).to_be_hidden(timeout=RETURN_MS)
    assert bob.evaluate("() => window.__samePage") is True
    bob.wait_chat_entry("agenda: the budget review", "Ada")  # the main room's chat again

    # Bob deletes a message of his own: both browsers show a tombstone instead.
    bob.send_chat("oops, the wrong link")
    ada.wait_chat_entry("oops, the wrong link", "Bob")
    msg_id = bob.evaluate(JS_MESSAGE_ID, "oops, the wrong link")
    assert msg_id is not None
    bob.click(f'#chat-log .msg[data-id="{msg_id}"] .msg-delete')
    bob.wait_js(
        "() => document.getElementById('confirm-title').textContent === 'Delete this message?'",
        "no confirmation asked",
    )
    bob.click("#confirm-actions .btn-danger")
    expect(ada.chat_log).to_contain_text("Message deleted")
    expect(ada.chat_log).not_to_contain_text("oops, the wrong link")
    bob.wait_js(
        "() => { const t = document.getElementById('chat-log').textContent;"
        " return t.includes('Message deleted') && !t.includes('oops, the wrong link'); }",
        "Firefox never showed the tombstone",
    )

    # "Search messages" finds the agenda and jumps to it.
    bob.driver.call("type", page=bob.page_id, selector="#chat-search", text="Budget")
    status = "() => document.getElementById('chat-search-status').textContent"
    wait_until(
        lambda: bob.evaluate(status) == "1 message found",
        30_000,
        lambda: f"Firefox search: {bob.evaluate(status)!r}",
    )
    bob.click("#chat-search-list button")
    bob.wait_js(
        "() => document.querySelector('#chat-log .msg--found')?.textContent"
        ".includes('agenda: the budget review')",
        "the search result was never shown in the chat",
    )

    # "Download chat" (JSON): the main room's record, without the deleted message and
    # without the breakout's chat (that is the breakout room's own record).
    bob.evaluate(JS_CAPTURE_DOWNLOAD)
    bob.evaluate("() => { document.getElementById('chat-download-format').value = 'json'; }")
    bob.click("#chat-download")
    bob.wait_js("() => window.__saved !== null", "Download chat gave the browser no file")
    saved = bob.evaluate("() => window.__saved")
    assert saved["name"].startswith(f"parley-chat-{room}-") and saved["name"].endswith(".json")
    texts = [m["text"] for m in json.loads(saved["text"])["messages"]]
    assert "agenda: the budget review" in texts
    assert "Bob joined" in texts
    assert "oops, the wrong link" not in texts
    assert "hello from firefox" not in texts
