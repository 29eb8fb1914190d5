"""Polls over real WebSockets against the real server: a poll from start to the record."""

from __future__ import annotations

from tests.server.harness import get_json
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Clients


async def test_a_poll_from_start_to_results_in_the_history(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    host, bob, cy = await clients.join_all(room, (server, "Host"), (server, "Bob"), (server, "Cy"))
    await host.send(
        {
            "type": "poll-create",
            "question": "Where to?",
            "options": ["Lake", "Hills"],
            "anonymous": False,
            "ref": "p1",
        }
    )
    started = await bob.expect("poll")
    poll = started["poll"]
    assert (poll["question"], poll["options"]) == ("Where to?", ["Lake", "Hills"])
    assert "closed" not in poll  # absent while open
    assert "counts" not in poll  # participants do not see counts while it is open
    poll_id = poll["id"]

    await bob.send({"type": "poll-vote", "poll": poll_id, "choices": [0], "ref": "v1"})
    assert await bob.expect("poll-voted") == {
        "type": "poll-voted",
        "poll": poll_id,
        "choices": [0],
        "ref": "v1",
    }
    live = await host.expect("poll", lambda m: m["poll"].get("voters") == 1)
    assert live["poll"]["counts"] == [1, 0]

    await cy.send({"type": "poll-vote", "poll": poll_id, "choices": [1]})
    await cy.send({"type": "poll-vote", "poll": poll_id, "choices": [0]})  # changed its mind
    await host.expect("poll", lambda m: m["poll"].get("counts") == [2, 0])

    # A second choice at once on a single-choice poll, a stranger's close: refused.
    await cy.send({"type": "poll-vote", "poll": poll_id, "choices": [0, 1], "ref": "x"})
    assert (await cy.error("bad_message"))["ref"] == "x"
    await bob.send({"type": "poll-close", "poll": poll_id, "ref": "y"})
    assert (await bob.error("forbidden"))["ref"] == "y"

    await host.send({"type": "poll-close", "poll": poll_id})
    for client in (host, bob, cy):
        result = await client.expect("poll", lambda m: m["poll"].get("closed"))
        assert result["poll"]["counts"] == [2, 0]
        assert result["poll"]["names"] == [["Bob", "Cy"], []]
    await bob.send({"type": "poll-vote", "poll": poll_id, "choices": [1], "ref": "z"})
    assert (await bob.error("poll_closed"))["ref"] == "z"

    summary = 'Poll closed: "Where to?" — Lake: 2 (Bob, Cy); Hills: 0 (2 voters)'
    line = await cy.expect("chat", lambda m: m["message"]["text"] == summary)
    assert line["message"]["system"] is True
    status, body = await get_json(server, f"/api/v1/rooms/{room}/messages")
    assert status == 200
    assert summary in [m["text"] for m in body["messages"]]
    for client in (host, bob, cy):
        await client.roundtrip()


async def test_a_late_joiner_and_a_resume_get_the_open_poll(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    host = await clients.join(server, room, "Host")
    bob = await clients.join(server, room, "Bob")
    await host.send({"type": "poll-create", "question": "Tea?", "options": ["Yes", "No"]})
    poll_id = (await bob.expect("poll"))["poll"]["id"]
    await bob.send({"type": "poll-vote", "poll": poll_id, "choices": [1]})
    await bob.expect("poll-voted")

    late = await clients.join(server, room, "Late")
    got = await late.expect("poll")
    assert (got["poll"]["id"], got["poll"]["question"]) == (poll_id, "Tea?")
    assert "mine" not in got["poll"] and "counts" not in got["poll"]

    bob.drop()
    back = await clients.resume(server, bob, room)
    again = await back.expect("poll")
    assert again["poll"]["mine"] == [1]


async def test_bad_polls_are_refused_and_disturb_nobody(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    host, bob = await clients.join_all(room, (server, "Host"), (server, "Bob"))
    for options, code in ((["only"], "bad_message"), ([f"o{i}" for i in range(11)], "bad_message")):
        await host.send({"type": "poll-create", "question": "Q", "options": options, "ref": "c"})
        assert (await host.error(code))["ref"] == "c"
    await bob.send({"type": "poll-create", "question": "Q", "options": ["a", "b"], "ref": "n"})
    assert (await bob.error("forbidden"))["ref"] == "n"
    await host.send({"type": "poll-create", "question": "Q" * 301, "options": ["a", "b"]})
    await host.error("too_long")
    await host.send({"type": "poll-vote", "poll": "poll_nothing", "choices": [0]})
    await host.error("poll_closed")
    await host.roundtrip()
    await bob.roundtrip()
    assert bob.of_type("poll") == [] and host.of_type("poll") == []
