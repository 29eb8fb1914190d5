"""A big room's people panel and its stage in Chromium (issue 16): Ada opens the room (its
host), 150 bots (plain WebSockets, from a process in the browser's network namespace)
join, then Bea.  A room of up to 500 is in stage mode (past ``--stage-threshold``, 100):
the bots and Bea are the audience.

The panel shows the count, one page of people (not everyone), "Load more" for the rest,
and "Search people" finds a bot by name through the server.  Bea, in the audience, has no
microphone or camera buttons (a note says why); she raises her hand, Ada finds her with
"Search people" and clicks "Invite Bea to stage": Bea gets the buttons, turns her camera
on, and Ada receives her video through the SFU.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from playwright.sync_api import Browser, expect

from tests.browser.conftest import REPO, Meeting, NetNS, _server_env
from tests.support.parley_process import ParleyProcess

BOTS = 150
#: The first looks after 150 joins: the page takes them in presence frames, and on a busy
#: machine it renders them later than Playwright's 5 s default.
SETTLE_MS = 20_000


def test_the_people_panel_and_the_stage_of_a_big_room(
    browser: Browser, parley_server: Callable[..., ParleyProcess], netns: NetNS, room: str
) -> None:
    srv = parley_server("--max-participants", "500", "--max-connections-per-address", "400")
    meeting = Meeting(browser=browser, server=srv)
    bots: subprocess.Popen[bytes] | None = None
    try:
        ada = meeting.join("Ada", room, camera=False)  # the first in: the host
        bots = subprocess.Popen(
            netns.cmd(sys.executable, "-m", "tests.support.bots", srv.ws_url, room, str(BOTS)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
            env=_server_env(),
        )
        assert bots.stdout is not None
        assert bots.stdout.readline() == b"ready\n", "the bots did not all join"
        bea = meeting.join("Bea", room)
        people = BOTS + 2
        page = ada.page
        rows = ada.participants.get_by_role("listitem")
        expect(page.get_by_text(f"{people} people in the room")).to_be_visible(timeout=SETTLE_MS)
        expect(ada.participants).to_have_attribute(
            "aria-label", f"Participants ({people})", timeout=SETTLE_MS
        )
        expect(rows).to_have_count(100, timeout=SETTLE_MS)  # one page, not everyone
        page.get_by_role("button", name="Load more").click()
        expect(rows).to_have_count(people, timeout=SETTLE_MS)
        expect(page.get_by_role("button", name="Load more")).to_be_hidden()

        page.get_by_label("Search people").fill("bot 149")
        expect(rows).to_have_count(1)
        expect(ada.entry("Bot 149")).to_have_count(1)

        # The audience: no media buttons that cannot work, and a note that says why.
        expect(bea.page.get_by_text("You're in the audience")).to_be_visible()
        expect(bea.button("Camera")).to_be_hidden()
        expect(bea.button("Microphone")).to_be_hidden()
        bea.toggle("Raise hand", expect_pressed=True)
        page.get_by_label("Search people").fill("bea")
        expect(rows).to_have_count(1)
        expect(ada.entry("Bea").get_by_text("Audience")).to_be_visible()
        ada.entry("Bea").get_by_role("button", name="Invite Bea to stage").click()

        # On stage: the buttons are back, the hand is down, and her camera reaches Ada.
        expect(bea.button("Camera")).to_be_visible()
        expect(bea.page.get_by_text("You're in the audience")).to_be_hidden()
        expect(ada.entry("Bea").get_by_text("On stage")).to_be_visible()
        expect(bea.button("Raise hand")).to_have_attribute("aria-pressed", "false")
        bea.button("Camera").click()
        ada.wait_remote_videos(1)
    finally:
        meeting.close()
        if bots is not None:
            if bots.stdin is not None:
                bots.stdin.close()
            try:
                bots.wait(timeout=15)
            except subprocess.TimeoutExpired:
                bots.kill()
