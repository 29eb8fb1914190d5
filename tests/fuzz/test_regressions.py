"""Inputs found by fuzzing the protocol, pinned as regression tests against a live server.

Each sends one hostile frame and checks the server answers with a protocol error
(never ``internal``), keeps the connection usable, and logs no traceback.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Client


@pytest.fixture(scope="module")
def regress_server(fuzz_server_factory: Callable[..., ParleyProcess]) -> ParleyProcess:
    return fuzz_server_factory()


@pytest.fixture
async def client(regress_server: ParleyProcess) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(regress_server.ws_url, max_msg_size=0)
        c = Client(ws).start()
        yield c
        await c.close()


async def join(c: Client) -> None:
    await c.send({"type": "join", "room": "r-" + uuid.uuid4().hex[:8], "name": "Fuzz", "v": 1})
    c.welcome = await c.expect("welcome")


def log_mentions(server: ParleyProcess, needle: str) -> list[str]:
    return [line for line in server.full_log().splitlines() if needle in line]


async def refused_cleanly(server: ParleyProcess, c: Client, frame: str, codes: set[str]) -> None:
    tracebacks = len(log_mentions(server, "Traceback"))
    await c.send_raw(frame)
    err = await c.expect("error")
    assert err["code"] in codes, err
    await c.roundtrip()  # still usable
    assert len(log_mentions(server, "Traceback")) == tracebacks, "a traceback was logged"


@pytest.mark.parametrize("depth", [100, 900])
async def test_nesting_below_the_recursion_limit(
    regress_server: ParleyProcess, client: Client, depth: int
) -> None:
    await refused_cleanly(regress_server, client, "[" * depth + "]" * depth, {"bad_message"})


@pytest.mark.parametrize(
    "frame",
    [
        "[" * 2000 + "]" * 2000,  # bare: fails in _peek_ref
        '{"type":"signal","to":"x","payload":' + "[" * 2000 + "]" * 2000 + "}",
        '{"type":"chat","text":' + '{"a":' * 1500 + "1" + "}" * 1500 + "}",
    ],
    ids=["bare-array", "signal-payload", "chat-text-object"],
)
async def test_deep_nesting_is_a_protocol_error(
    regress_server: ParleyProcess, client: Client, frame: str
) -> None:
    await join(client)
    await refused_cleanly(regress_server, client, frame, {"bad_json", "bad_message"})


@pytest.mark.parametrize("before", [2**63, 2**64 - 1, 2**70, -(2**63) - 1])
async def test_history_before_out_of_range(
    regress_server: ParleyProcess, client: Client, before: int
) -> None:
    """Found by the fuzz test: used to reach SQLite as an OverflowError (``internal``)."""
    await join(client)
    frame = json.dumps({"type": "history", "before": before, "ref": "h"})
    await refused_cleanly(regress_server, client, frame, {"bad_message"})


async def test_rest_history_before_out_of_range(
    regress_server: ParleyProcess, client: Client
) -> None:
    await join(client)
    room = client.welcome["room"]["name"] if client.welcome else ""
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{regress_server.url}/api/v1/rooms/{room}/messages?before={2**70}") as r:
            assert r.status == 400
            assert (await r.json())["error"]["code"] == "bad_request"
