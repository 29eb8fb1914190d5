"""A big room's people panel in Chromium (issue 16): 150 bots (plain WebSockets, from a
process in the browser's network namespace) are in the room before a person joins.

The panel shows the count, one page of people (not everyone), "Load more" for the rest,
and "Search people" finds a bot by name through the server.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from playwright.sync_api import Browser, expect

from tests.browser.conftest import REPO, Meeting, NetNS, _server_env
from tests.support.parley_process import ParleyProcess

BOTS = 150


def test_the_people_panel_of_a_big_room_pages_and_searches(
    browser: Browser, parley_server: Callable[..., ParleyProcess], netns: NetNS, room: str
) -> None:
    srv = parley_server("--max-participants", "500", "--max-connections-per-address", "400")
    bots = subprocess.Popen(
        netns.cmd(sys.executable, "-m", "tests.support.bots", srv.ws_url, room, str(BOTS)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
        env=_server_env(),
    )
    meeting = Meeting(browser=browser, server=srv)
    try:
        assert bots.stdout is not None
        assert bots.stdout.readline() == b"ready\n", "the bots did not all join"
        ada = meeting.join("Ada", room, camera=False)
        page = ada.page
        rows = ada.participants.get_by_role("listitem")
        expect(page.get_by_text(f"{BOTS + 1} people in the room")).to_be_visible()
        expect(ada.participants).to_have_attribute("aria-label", f"Participants ({BOTS + 1})")
        expect(rows).to_have_count(100)  # one page, not everyone
        page.get_by_role("button", name="Load more").click()
        expect(rows).to_have_count(BOTS + 1)
        expect(page.get_by_role("button", name="Load more")).to_be_hidden()

        page.get_by_label("Search people").fill("bot 149")
        expect(rows).to_have_count(1)
        expect(ada.entry("Bot 149")).to_have_count(1)
        page.get_by_label("Search people").fill("")
        expect(rows).to_have_count(BOTS + 1)
    finally:
        meeting.close()
        if bots.stdin is not None:
            bots.stdin.close()
        try:
            bots.wait(timeout=15)
        except subprocess.TimeoutExpired:
            bots.kill()
