"""User text is text (issue 4): an HTML payload as a display name, a lobby entry and a chat
message shows as those characters and runs nothing; the pages load with no CSP violation."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__xss=1">'
XSS_SCRIPT = "<script>window.__xss=2</script><b>bold?</b>"

# Installed before any page script: records Content-Security-Policy violations.
CSP_RECORDER = """
(() => {
  window.__csp = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
  }, true);
})();
"""


def open_recorded(meeting, name, room):
    """A person on the pre-join screen whose page records CSP violations from the start."""
    person = meeting.open(name, room)
    person.context.add_init_script(CSP_RECORDER)
    person.page.reload()
    person.page.get_by_role("textbox", name="Your name").fill(name)
    return person


def join_recorded(meeting, name, room):
    person = open_recorded(meeting, name, room)
    person.page.get_by_role("button", name="Join meeting").click()
    expect(person.button("Leave")).to_be_visible()
    person.open_participants()
    expect(person.entry(name)).to_have_count(1)
    return person


def assert_clean(person):
    page = person.page
    assert page.evaluate("() => typeof window.__xss") == "undefined", f"{person.name}: script ran"
    assert page.evaluate("() => window.__csp") == [], f"{person.name}: CSP violations"
    assert page.locator('img[src="x"]').count() == 0, f"{person.name}: an <img> was created"
    assert page.locator("#chat-log b, #people-list b, #toasts b").count() == 0
    bad = [
        line
        for line in person.console
        if "Content Security Policy" in line or line.startswith("[pageerror]")
    ]
    assert bad == [], f"{person.name}: {bad}"


def test_html_in_names_and_chat_is_inert_text(meeting, room):
    ada = join_recorded(meeting, "Ada", room)

    # The lobby shows the knocking person's name too: turn it on first.
    ada.button("Room settings").click()
    ada.page.get_by_role("checkbox", name="Lobby").check()
    ada.page.get_by_role("button", name="Close", exact=True).click()

    mal = open_recorded(meeting, XSS, room)
    mal.page.get_by_role("button", name="Join meeting").click()
    expect(mal.page.get_by_role("status").filter(has_text="Waiting for a host")).to_be_visible()
    ada.open_participants()
    expect(ada.page.get_by_text(f"{XSS} is waiting to join")).to_be_visible()
    admit = ada.button(f"Admit {XSS}")
    expect(admit).to_be_visible()
    admit.click()
    expect(mal.button("Leave")).to_be_visible()
    mal.open_participants()

    for person in (ada, mal):
        expect(person.entry(XSS)).to_have_count(1)
        expect(person.entry(XSS)).to_contain_text(XSS)
    # The stage's name tag too.
    expect(ada.page.locator("#stage").get_by_text(XSS, exact=True).first).to_be_visible()

    mal.send_chat(XSS)
    ada.send_chat(XSS_SCRIPT)
    for person in (ada, mal):
        person.wait_chat_entry(XSS, sender=XSS)
        expect(person.chat_log).to_contain_text(XSS)
        expect(person.chat_log).to_contain_text(XSS_SCRIPT)
        # The system line names the person as text as well.
        expect(person.chat_log).to_contain_text(re.compile(re.escape(f"admitted {XSS}")))

    ada.page.wait_for_timeout(500)  # anything that would run has had its chance
    for person in (ada, mal):
        assert_clean(person)


def test_pages_load_without_csp_violations(meeting, server, room):
    person = meeting.open("Ada", room)
    person.context.add_init_script(CSP_RECORDER)
    page = person.page
    page.goto(server.url + "/")
    expect(page.get_by_role("button").first).to_be_visible()
    assert page.evaluate("() => window.__csp") == []
    page.goto(server.room_url(room))
    expect(page.get_by_role("button", name="Join meeting")).to_be_visible()
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__csp") == []
    assert not [c for c in person.console if "Content Security Policy" in c or "[pageerror]" in c]
