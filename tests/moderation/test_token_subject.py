"""A ban under ``--require-token`` bars the invitation itself: ``parley token`` gives every
token a subject by default, so coming back with the same link from another address fails."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from parley.auth import mint_token
from tests.moderation.harness import Fleet, Net


async def cli_token(fleet: Fleet, room: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    argv = [sys.executable, "-m", "parley", "token", "--room", room, *args]
    argv.append(f"--jwt-secret={fleet.jwt_secret}")
    out = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


async def test_ban_bars_a_default_cli_token_from_any_address(
    fleet: Fleet, net: Net, room: str
) -> None:
    srv = fleet.hs256
    host = mint_token(fleet.jwt_secret, room, "Ada", "host", 600)
    ada = await net.join(srv, room, "Ada", token=host)
    invite = await cli_token(fleet, room, "--name", "Bob")  # no --subject: the default
    bob = await net.join(srv, room, "Bob", addr="127.0.3.1", token=invite)
    assert bob.welcome is not None
    await ada.send({"type": "remove", "to": bob.id, "ban": True})
    assert (await bob.expect("removed"))["ban"] is True
    assert await bob.wait_closed() == 4001
    # the same invitation from another network (another address) is still barred ...
    await net.refused(srv, room, "Bob", "banned", addr="127.0.3.2", token=invite)
    # ... while another invitation minted the same way (a different subject) gets in
    cy = await net.join(
        srv, room, "Cy", addr="127.0.3.3", token=await cli_token(fleet, room, "--name", "Cy")
    )
    assert cy.welcome is not None
