"""examples/policies/ end to end: each file, unchanged, in a real ``parley serve --policy``.

These are the policies integrators write for Jitsi as Prosody modules; each test drives
the example with WebSocket clients and asserts what the people in the meeting notice.
The examples read their settings from the environment, which is how a test picks small
numbers (a two-person cap, a meeting of seconds, an opening window around now).
"""

from __future__ import annotations

import ast
import datetime as dt
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.policy.conftest import SECRET
from tests.policy.test_hooks import chat_texts, token
from tests.support.parley_process import ParleyProcess, clean_env
from tests.support.processes import free_port
from tests.support.ws_client import Client, Clients

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"

ExampleServer = Callable[..., ParleyProcess]


@pytest.fixture
def example_server(tmp_path: Path) -> Iterator[ExampleServer]:
    """``example_server("auto_end", MEETING_MINUTES="0.05")``: a server running that
    example file in place, with those environment variables."""
    started: list[ParleyProcess] = []

    def start(name: str, **env: str) -> ParleyProcess:
        path = EXAMPLES / f"{name}.py"
        assert path.is_file(), f"{path} is missing"
        n = len(started)
        srv = ParleyProcess(
            port=free_port(),
            data_dir=tmp_path / f"data{n}",
            log_path=tmp_path / f"server{n}.log",
            args=("--policy", str(path), "--media", "mesh", f"--jwt-secret={SECRET}"),
            env=clean_env(**env),
            ready_timeout=30,
        )
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.send_signal(signal.SIGTERM)
    for srv in started:
        srv.stop()


def code_lines(path: Path) -> int:
    """Lines of code: not blank, not only a comment, not the module docstring."""
    source = path.read_text()
    tree = ast.parse(source)
    doc = tree.body[0] if tree.body and isinstance(tree.body[0], ast.Expr) else None
    skip = set(range(doc.lineno, (doc.end_lineno or doc.lineno) + 1)) if doc else set()
    return sum(
        1
        for i, line in enumerate(source.splitlines(), 1)
        if i not in skip and line.strip() and not line.strip().startswith("#")
    )


def test_every_example_is_short_documented_and_checked() -> None:
    examples = sorted(EXAMPLES.glob("*.py"))
    assert {p.stem for p in examples} >= {
        "email_domain",
        "opening_hours",
        "occupant_cap",
        "staff_and_guests",
        "profanity_filter",
        "auto_end",
        "frozen_names",
    }
    for path in examples:
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and "\n" not in doc, f"{path.name}: a one-line docstring"
        assert code_lines(path) <= 15, f"{path.name}: {code_lines(path)} lines of code"


async def refused(client: Client) -> str:
    err = await client.error("forbidden")
    return str(err["message"])


async def test_email_domain(example_server: ExampleServer, clients: Clients, room: str) -> None:
    srv = example_server("email_domain", ALLOWED_DOMAINS="example.org, Staff.Example.com")
    ada = await clients.join(srv, room, "Ada", token=token(room, "Ada", email="ada@example.org"))
    bob = await clients.join(
        srv, room, "Bob", token=token(room, "Bob", email="bob@STAFF.example.com")
    )
    assert ada.welcome is not None and bob.welcome is not None
    for name, claims in (
        ("Eve", {"email": "eve@example.org.evil.test"}),  # a look-alike domain
        ("Mal", {"email": "mal@evil.test"}),
        ("Nob", {}),  # a token without e-mail
        ("Odd", {"email": ["ada@example.org"]}),  # not a string
    ):
        c = await clients.join(srv, room, name, expect="", token=token(room, name, **claims))
        assert await refused(c) == "sign in with your organisation's account"
    anon = await clients.join(srv, room, "Anon", expect="")  # no token at all
    assert await refused(anon) == "sign in with your organisation's account"
    await ada.roundtrip()
    assert [m["participant"]["name"] for m in ada.of_type("participant-joined")] == ["Bob"]


def window(start_s: float, end_s: float) -> str:
    """ROOM_HOURS from now + start_s to now + end_s (seconds; may cross midnight)."""
    now = dt.datetime.now()
    a, b = now + dt.timedelta(seconds=start_s), now + dt.timedelta(seconds=end_s)
    return f"{a:%H:%M:%S}-{b:%H:%M:%S}"


async def test_opening_hours_closed_now(
    example_server: ExampleServer, clients: Clients, room: str
) -> None:
    srv = example_server("opening_hours", ROOM_HOURS=window(3600, 7200))
    ada = await clients.join(srv, room, "Ada", expect="")
    assert (await refused(ada)).startswith("rooms are open ")
    assert srv.health() is not None


async def test_opening_hours_open_now_and_the_meeting_ends_at_closing_time(
    example_server: ExampleServer, clients: Clients, room: str
) -> None:
    # Closing in 15 s: time for a slow start on a busy machine, then for the timer.
    srv = example_server("opening_hours", ROOM_HOURS=window(-60, 15))
    ada = await clients.join(srv, room, "Ada")
    bob = await clients.join(srv, room, "Bob")
    assert ada.welcome is not None and bob.welcome is not None
    for c in (ada, bob):  # closing time: the meeting ends for everyone
        await c.expect("meeting-ended", within=40)
        assert await c.wait_closed(within=10) == 4002
    late = await clients.join(srv, room, "Late", expect="")
    assert (await refused(late)).startswith("rooms are open ")


async def test_occupant_cap(example_server: ExampleServer, clients: Clients, room: str) -> None:
    srv = example_server("occupant_cap", ROOM_CAP="2")
    ada = await clients.join(srv, room, "Ada")
    bob = await clients.join(srv, room, "Bob")
    cy = await clients.join(srv, room, "Cy", expect="")
    assert await refused(cy) == "this room is full (2 people)"
    other = await clients.join(srv, room + "-b", "Cy")  # another room has its own count
    assert other.welcome is not None
    await bob.send({"type": "leave"})
    await ada.expect("participant-left")
    again = await clients.join(srv, room, "Cy")  # a seat is free again
    assert [x["name"] for x in (again.welcome or {})["participants"]] == ["Ada", "Cy"]


async def test_staff_straight_in_guests_to_the_lobby(
    example_server: ExampleServer, clients: Clients, room: str
) -> None:
    srv = example_server("staff_and_guests")
    early = await clients.join(srv, room, "Early", expect="")  # a guest before any staff
    await early.expect("lobby-wait")
    sam = await clients.join(srv, room, "Sam", token=token(room, "Sam", staff=True))
    assert sam.welcome is not None
    assert [(x["name"], x["role"]) for x in sam.welcome["participants"]] == [("Sam", "host")]
    lobby = await sam.expect("lobby")  # the host sees who waits
    assert [w["name"] for w in lobby["waiting"]] == ["Early"]
    gus = await clients.join(srv, room, "Gus", expect="", token=token(room, "Gus"))
    await gus.expect("lobby-wait")  # a token without the staff claim is a guest
    pat = await clients.join(srv, room, "Pat", expect="", token=token(room, "Pat", staff="yes"))
    await pat.expect("lobby-wait")  # only "staff": true counts
    lobby = await sam.expect("lobby", lambda m: len(m["waiting"]) == 3)
    ids = {w["name"]: w["id"] for w in lobby["waiting"]}
    await sam.send({"type": "admit", "to": ids["Gus"]})
    welcome = await gus.expect("welcome")
    roles = {x["name"]: x["role"] for x in welcome["participants"]}
    assert roles == {"Sam": "host", "Gus": "participant"}
    staff2 = await clients.join(srv, room, "Kim", token=token(room, "Kim", staff=True))
    assert {x["name"] for x in (staff2.welcome or {})["participants"]} == {"Sam", "Gus", "Kim"}


async def test_profanity_filter(example_server: ExampleServer, clients: Clients, room: str) -> None:
    srv = example_server("profanity_filter")
    ada = await clients.join(srv, room, "Ada")
    bob = await clients.join(srv, room, "Bob")
    await ada.chat("what the HECK, darn it")
    await ada.chat("the Heckler and the frakking darned")  # only whole words
    await ada.chat("fine")
    await bob.expect("chat", lambda m: m["message"]["text"] == "fine")
    expected = ["what the ****, **** it", "the Heckler and the frakking darned", "fine"]
    assert chat_texts(bob) == expected
    assert chat_texts(ada) == expected  # the sender sees what the others saw
    late = await clients.join(srv, room, "Late")  # and the history holds the clean text
    assert late.welcome is not None
    history = [m["text"] for m in late.welcome["history"] if not m.get("system")]
    assert history == expected


async def test_auto_end_warns_a_minute_before(
    example_server: ExampleServer, clients: Clients, room: str
) -> None:
    # 0.1 minute: under the one-minute mark from the start, so the warning comes at once.
    srv = example_server("auto_end", MEETING_MINUTES="0.1")
    ada = await clients.join(srv, room, "Ada")
    bob = await clients.join(srv, room, "Bob")
    for c in (ada, bob):
        note = await c.expect("chat", lambda m: bool(m["message"].get("system")), within=15)
        assert note["message"]["text"] == "This meeting ends in one minute."
        await c.expect("meeting-ended", within=20)
        assert await c.wait_closed(within=10) == 4002
    assert [m["message"]["text"] for m in ada.of_type("chat")].count(
        "This meeting ends in one minute."
    ) == 1  # warned once
    fresh = await clients.join(srv, room, "Ada")  # a new meeting in the same room: its own clock
    note = await fresh.expect("chat", lambda m: bool(m["message"].get("system")), within=15)
    assert note["message"]["text"] == "This meeting ends in one minute."
    await fresh.expect("meeting-ended", within=20)


async def test_frozen_names(example_server: ExampleServer, clients: Clients, room: str) -> None:
    srv = example_server("frozen_names")
    # The name typed in the join form does not count: the token's does.
    ada = await clients.join(srv, room, "Whoever", token=token(room, "Ada Lovelace"))
    bob = await clients.join(srv, room, "Bob", token=token(room, "Bob"))
    assert ada.welcome is not None
    assert {x["name"] for x in ada.welcome["participants"]} == {"Ada Lovelace"}
    no_name = token(room, "x")
    anon = await clients.join(srv, room, "Anon", expect="")
    assert await refused(anon) == "join with your invitation link"
    nameless = await clients.join(srv, room, "Nameless", expect="", token=_without_name(no_name))
    assert await refused(nameless) == "join with your invitation link"
    await ada.send({"type": "rename", "name": "The Queen", "ref": "r1"})
    err = await ada.error("forbidden")
    assert err["ref"] == "r1"
    await ada.roundtrip()
    await bob.roundtrip()
    assert not [m for m in bob.of_type("participant-updated") if m["participant"]["id"] == ada.id]
    late = await clients.join(srv, room, "Cy", token=token(room, "Cy"))
    names = {x["name"] for x in (late.welcome or {})["participants"]}
    assert names == {"Ada Lovelace", "Bob", "Cy"}


def _without_name(jwt_token: str) -> str:
    """The same token with its ``name`` claim taken out (re-signed)."""
    import jwt

    body = jwt.decode(jwt_token, SECRET, algorithms=["HS256"], audience="parley")
    del body["name"]
    return jwt.encode(body, SECRET, "HS256")


async def test_on_rename_may_replace_the_name_and_a_failure_lets_it_pass(
    policy_server: Callable[..., ParleyProcess], clients: Clients, room: str
) -> None:
    """The hook frozen_names.py needs, its other answers (docs/hooks.md)."""
    srv = policy_server(
        """
        def on_rename(rename):
            if rename.new_name == "boom":
                raise RuntimeError("policy bug")
            if rename.new_name == "Ada L.":
                return rename
            return f"{rename.name} (not {rename.new_name})"
        """
    )
    ada = await clients.join(srv, room, "Ada")
    bob = await clients.join(srv, room, "Bob")
    for asked, shown in (("Ada L.", "Ada L."), ("Queen", "Ada L. (not Queen)"), ("boom", "boom")):
        await ada.send({"type": "rename", "name": asked})
        update = await bob.expect("participant-updated")
        assert update["participant"]["name"] == shown
    await ada.send({"type": "rename", "name": "   ", "ref": "bad"})
    assert (await ada.error("bad_name"))["ref"] == "bad"  # checked before the hook sees it
