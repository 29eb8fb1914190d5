"""The admin REST API's HTTP layer, against a fake server implementing ``AdminTarget``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from parley.ops.admin import AdminTarget, add_admin_routes, describe_rooms

TOKEN = "a-long-random-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class FakeServer:
    rooms: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {
            "team": [
                {"id": "p_a", "name": "Ada", "role": "host", "node": "n1"},
                {"id": "p_b", "name": "Bob", "role": "participant", "node": "n2"},
            ]
        }
    )
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def admin_rooms(self) -> list[dict[str, Any]]:
        return [{"room": r, "participants": ps} for r, ps in self.rooms.items()]

    async def admin_end(self, room: str) -> bool:
        self.calls.append(("end", room))
        return self.rooms.pop(room, None) is not None

    async def admin_remove(self, room: str, pid: str) -> bool:
        self.calls.append(("remove", room, pid))
        people = self.rooms.get(room, [])
        kept = [p for p in people if p["id"] != pid]
        if len(kept) == len(people):
            return False
        self.rooms[room] = kept
        return True

    async def admin_drain(self) -> None:
        self.calls.append(("drain",))


Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[str | None], Awaitable[tuple[Client, FakeServer]]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    opened: list[Client] = []

    async def make(token: str | None) -> tuple[Client, FakeServer]:
        fake = FakeServer()
        target: AdminTarget = fake  # the fake satisfies the Protocol (checked by mypy)
        app = web.Application()

        async def other(_r: web.Request) -> web.Response:
            return web.Response(text="other")

        app.router.add_get("/api/v1/rooms/{room}", other)
        add_admin_routes(app, target, token)
        client: Client = TestClient(TestServer(app))
        await client.start_server()
        opened.append(client)
        return client, fake

    yield make
    for c in opened:
        await c.close()


async def test_list_rooms(make_client: MakeClient) -> None:
    client, _ = await make_client(TOKEN)
    resp = await client.get("/api/v1/admin/rooms", headers=AUTH)
    assert resp.status == 200
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert body["rooms"][0]["room"] == "team"
    assert [p["node"] for p in body["rooms"][0]["participants"]] == ["n1", "n2"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": "Bearer"},
    ],
)
async def test_refused_without_the_token(make_client: MakeClient, headers: dict[str, str]) -> None:
    client, fake = await make_client(TOKEN)
    for method, path in [
        ("GET", "/api/v1/admin/rooms"),
        ("POST", "/api/v1/admin/rooms/team/end"),
        ("DELETE", "/api/v1/admin/rooms/team/participants/p_a"),
        ("POST", "/api/v1/admin/drain"),
        ("GET", "/api/v1/admin/nothing-here"),
    ]:
        resp = await client.request(method, path, headers=headers)
        assert resp.status == 401, (method, path)
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        body = await resp.json()
        assert body["error"]["code"] == "unauthorized"
    assert fake.calls == []


async def test_non_ascii_authorization_is_refused(make_client: MakeClient) -> None:
    client, _ = await make_client(TOKEN)
    weird = "Bearer caf\u00e9"
    resp = await client.get("/api/v1/admin/rooms", headers={"Authorization": weird})
    assert resp.status == 401


async def test_end_room(make_client: MakeClient) -> None:
    client, fake = await make_client(TOKEN)
    resp = await client.post("/api/v1/admin/rooms/team/end", headers=AUTH)
    assert resp.status == 200
    assert await resp.json() == {"ended": "team"}
    assert fake.calls == [("end", "team")]
    again = await client.post("/api/v1/admin/rooms/team/end", headers=AUTH)
    assert again.status == 404
    assert (await again.json())["error"]["code"] == "no_such_room"


async def test_remove_participant(make_client: MakeClient) -> None:
    client, fake = await make_client(TOKEN)
    resp = await client.delete("/api/v1/admin/rooms/team/participants/p_b", headers=AUTH)
    assert resp.status == 200
    assert await resp.json() == {"removed": "p_b", "room": "team"}
    assert [p["id"] for p in fake.rooms["team"]] == ["p_a"]
    missing = await client.delete("/api/v1/admin/rooms/team/participants/p_zz", headers=AUTH)
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "no_such_participant"


async def test_bad_names_are_refused_before_the_server_sees_them(make_client: MakeClient) -> None:
    client, fake = await make_client(TOKEN)
    long = "x" * 65
    resp = await client.post(f"/api/v1/admin/rooms/{long}/end", headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "bad_request"
    resp = await client.delete("/api/v1/admin/rooms/team/participants/a%20b", headers=AUTH)
    assert resp.status == 400
    assert fake.calls == []


async def test_drain(make_client: MakeClient) -> None:
    client, fake = await make_client(TOKEN)
    resp = await client.post("/api/v1/admin/drain", headers=AUTH)
    assert resp.status == 202
    assert await resp.json() == {"draining": True}
    assert fake.calls == [("drain",)]


async def test_wrong_method_and_unknown_path(make_client: MakeClient) -> None:
    client, fake = await make_client(TOKEN)
    assert (await client.get("/api/v1/admin/drain", headers=AUTH)).status in (404, 405)
    resp = await client.get("/api/v1/admin/nope", headers=AUTH)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
    assert fake.calls == []


@pytest.mark.parametrize("token", [None, ""])
async def test_disabled_without_a_token(make_client: MakeClient, token: str | None) -> None:
    client, fake = await make_client(token)
    for method, path, headers in [
        ("GET", "/api/v1/admin/rooms", {}),
        ("GET", "/api/v1/admin/rooms", {"Authorization": "Bearer "}),
        ("POST", "/api/v1/admin/drain", AUTH),
        ("DELETE", "/api/v1/admin/rooms/team/participants/p_a", AUTH),
        ("GET", "/api/v1/admin", {}),
    ]:
        resp = await client.request(method, path, headers=headers)
        assert resp.status == 404, (method, path)
        assert (await resp.json())["error"]["code"] == "not_found"
    assert fake.calls == []
    # The rest of the API is untouched.
    assert (await client.get("/api/v1/rooms/team")).status == 200


async def test_actions_are_audited(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = await make_client(TOKEN)
    with caplog.at_level(logging.INFO, logger="parley.ops.admin"):
        await client.post("/api/v1/admin/rooms/team/end", headers=AUTH)
        await client.post("/api/v1/admin/drain", headers={"Authorization": "Bearer nope"})
    actions = [getattr(r, "admin", None) for r in caplog.records]
    assert "end" in actions and "refused" in actions
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


def test_short_token_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="parley.ops.admin"):
        add_admin_routes(web.Application(), FakeServer(), "short")
    assert "short" in caplog.text


# -- describe_rooms, from the real core -----------------------------------------------------


def test_describe_rooms_from_the_core() -> None:
    from parley.config import Limits
    from parley.core import protocol as p
    from parley.core.rooms import Member, Rooms

    rooms = Rooms(Limits(), auto_host=True)
    rooms.put_remote_member(
        Member(info=p.Participant(id="p_r", name="Remote", role="participant"), room="team",
               node="n2"),
        created_at=5,
    )  # fmt: skip
    local = Member(info=p.Participant(id="p_l", name="Local", role="host"), room="team")
    rooms.put_remote_member(local, created_at=5)
    out = describe_rooms(rooms.rooms.values(), node="n1")
    assert out == [
        {
            "room": "team",
            "created_at": 5,
            "participants": [
                {"id": "p_r", "name": "Remote", "role": "participant", "joined_at": 0,
                 "connected": True, "node": "n2"},
                {"id": "p_l", "name": "Local", "role": "host", "joined_at": 0,
                 "connected": True, "node": "n1"},
            ],
            "lobby": [],
        }
    ]  # fmt: skip
