"""What the pages promise about where audio and video go is what the server does (issue 11):
the landing page and the pre-join page say "through this server" under the default (SFU)
and "directly between browsers" under ``--media mesh``, and never the other claim."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# Claims only true of a mesh, and only true of the SFU (case-insensitive).
MESH_CLAIMS = re.compile(
    r"peer[- ]to[- ]peer|directly|straight between|only introduces"
    r"|between (?:participants' )?browsers",
    re.I,
)
SFU_CLAIMS = re.compile(r"through (?:this|the) server|via server|forward", re.I)


@pytest.fixture(scope="module")
def mesh_server(parley_server):
    return parley_server("--media", "mesh")


def landing(meeting, server):
    context = meeting.browser.new_context()
    page = context.new_page()
    page.goto(server.url + "/")
    return context, page


def test_default_server_says_media_goes_through_it(meeting, server, room):
    context, page = landing(meeting, server)
    try:
        card = page.get_by_role("region", name="Where audio and video go")
        expect(card).to_contain_text("Via server")
        expect(card).to_contain_text("through this server")
        assert not MESH_CLAIMS.search(page.locator("body").inner_text())
    finally:
        context.close()

    person = meeting.open("Ada", room)
    hint = person.page.locator("#pj-media")
    expect(hint).to_contain_text("through this server")
    text = person.page.locator("#prejoin").inner_text()
    assert not MESH_CLAIMS.search(text), text


def test_mesh_server_says_media_goes_between_browsers(meeting, mesh_server, room):
    context, page = landing(meeting, mesh_server)
    try:
        card = page.get_by_role("region", name="Where audio and video go")
        expect(card).to_contain_text("Peer-to-peer")
        expect(card).to_contain_text("directly between browsers")
        assert not SFU_CLAIMS.search(page.locator("body").inner_text())
    finally:
        context.close()

    person = meeting.open("Ada", room, server=mesh_server)
    hint = person.page.locator("#pj-media")
    expect(hint).to_contain_text("directly between")
    text = person.page.locator("#prejoin").inner_text()
    assert not SFU_CLAIMS.search(text), text
