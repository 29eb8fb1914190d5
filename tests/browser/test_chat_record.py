"""The meeting record in the browser: "Download chat", "Search messages", deleting a message."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.support.parley_process import ParleyProcess

pytestmark = pytest.mark.browser

#: Sends ``n`` chats as another participant over its own WebSocket (quicker than typing).
JS_FILLER = """async ([room, n]) => {
  const ws = new WebSocket(`ws://${location.host}/ws`);
  await new Promise((r) => { ws.onopen = r; });
  ws.send(JSON.stringify({ type: "join", room, name: "Filler", v: 1 }));
  await new Promise((resolve) => {
    let acks = 0;
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.type === "welcome") {
        for (let i = 0; i < n; i++) {
          ws.send(JSON.stringify({ type: "chat", text: `filler ${i}`, ref: `f${i}` }));
        }
      } else if (m.type === "chat-ack" && ++acks === n) resolve();
    };
  });
  ws.send(JSON.stringify({ type: "leave" }));
}"""


@pytest.fixture(scope="module")
def server(parley_server: Callable[..., ParleyProcess]) -> ParleyProcess:
    """No rate limits: the filler sends a burst of messages."""
    return parley_server("--no-rate-limits")


def test_download_chat_saves_the_record_as_a_file(new_participant, room, tmp_path):
    ada = new_participant("Ada", room)
    bob = new_participant("Bob", room)
    ada.send_chat("<img src=x onerror=alert(1)> minutes of the meeting")
    bob.wait_chat_entry("<img src=x onerror=alert(1)> minutes of the meeting", sender="Ada")
    bob.page.get_by_role("combobox", name="Download format").select_option("json")
    with bob.page.expect_download() as info:
        bob.button("Download chat").click()
    download = info.value
    assert download.suggested_filename.startswith(f"parley-chat-{room}-")
    assert download.suggested_filename.endswith(".json")
    path = tmp_path / "chat.json"
    download.save_as(path)
    doc = json.loads(path.read_text())
    texts = [m["text"] for m in doc["messages"]]
    assert "<img src=x onerror=alert(1)> minutes of the meeting" in texts
    assert "Bob joined" in texts  # attendance is part of the record

    bob.page.get_by_role("combobox", name="Download format").select_option("html")
    with bob.page.expect_download() as info:
        bob.button("Download chat").click()
    html_path = tmp_path / "chat.html"
    info.value.save_as(html_path)
    page = html_path.read_text()
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_search_jumps_to_an_old_message_in_context(new_participant, room):
    ada = new_participant("Ada", room)
    ada.send_chat("the quarterly budget is approved")
    ada.wait_chat_entry("the quarterly budget is approved", sender="Ada")
    # Enough newer messages that a late joiner's first page does not hold it.
    ada.page.evaluate(JS_FILLER, [room, 120])
    cat = new_participant("Cat", room)
    cat.open_chat()
    expect(cat.chat_log).to_contain_text("filler 119")
    assert "quarterly budget" not in cat.chat_log.inner_text()

    box = cat.page.get_by_role("searchbox", name="Search messages")
    box.fill("Budget")
    box.press("Enter")
    results = cat.page.get_by_role("region", name="Search results")
    expect(results.get_by_role("status")).to_have_text("1 message found")
    hit = results.get_by_role("button").filter(has_text="quarterly budget")
    expect(hit.locator("mark")).to_have_text("budget")
    hit.click()
    # Older history was loaded until the message was there; it is shown and marked.
    found = cat.chat_log.locator(".msg--found")
    expect(found).to_contain_text("the quarterly budget is approved")
    expect(found).to_be_in_viewport()
    expect(cat.chat_log).to_contain_text("filler 0")

    # Query syntax is only words: no error, and nothing found for a word nobody wrote.
    box.fill('"budget NEAR( -x* text:y')
    box.press("Enter")
    expect(results.get_by_role("status")).to_have_text("No messages found")


def test_deleting_a_message_leaves_a_tombstone_for_everyone(new_participant, room):
    ada = new_participant("Ada", room)
    bob = new_participant("Bob", room)
    ada.send_chat("oops, wrong meeting link")
    bob.wait_chat_entry("oops, wrong meeting link", sender="Ada")
    # Bob may not delete Ada's message; only its author (or a host) sees the button.
    bob_msg = bob.chat_log.locator(".msg").filter(has_text="oops, wrong meeting link")
    expect(bob_msg.get_by_role("button", name="Delete message")).to_have_count(0)

    msg = ada.chat_log.locator(".msg").filter(has_text="oops, wrong meeting link")
    msg.hover()
    msg.get_by_role("button", name="Delete message").click()
    dialog = ada.page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete this message?")
    dialog.get_by_role("button", name="Delete", exact=True).click()
    for person in (ada, bob):
        expect(person.chat_log).to_contain_text("Message deleted")
        expect(person.chat_log).not_to_contain_text("oops, wrong meeting link")
    # It is gone from the record: a late joiner does not get it, nor a tombstone.
    cat = new_participant("Cat", room)
    cat.open_chat()
    box = cat.page.get_by_role("searchbox", name="Search messages")
    box.fill("oops")
    box.press("Enter")
    expect(
        cat.page.get_by_role("region", name="Search results").get_by_role("status")
    ).to_have_text("No messages found")
    assert "wrong meeting link" not in cat.chat_log.inner_text()


def test_a_host_sets_how_long_the_chat_history_is_kept(new_participant, room):
    ada = new_participant("Ada", room)  # the host
    bob = new_participant("Bob", room)
    ada.button("Room settings").click()
    dialog = ada.page.get_by_role("dialog", name="Room settings")
    keep = dialog.get_by_role("combobox", name="Keep chat history")
    expect(keep).to_be_enabled()
    expect(keep.locator("option:checked")).to_have_text("Server default (keep everything)")
    expect(dialog.get_by_role("status").filter(has_text="kept until")).to_be_visible()

    keep.select_option(label="30 days")
    expect(dialog).to_contain_text("Messages older than 30 days are deleted.")
    bob.open_chat()
    expect(bob.chat_log).to_contain_text("Ada set the chat history to be kept 30 days")

    # Read back from the server when the dialog opens again.
    dialog.get_by_role("button", name="Close", exact=True).click()
    expect(dialog).to_be_hidden()
    ada.button("Room settings").click()
    expect(keep).to_be_enabled()
    expect(keep.locator("option:checked")).to_have_text("30 days")
    keep.select_option(label="Server default (keep everything)")
    expect(bob.chat_log).to_contain_text("Ada set the chat history to the server's retention")
