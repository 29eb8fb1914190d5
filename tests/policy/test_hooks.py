"""Policy hooks end to end: ``parley serve --policy FILE`` with real WebSocket clients.

What a user notices: who gets in and as what, which chat lines reach the room, what a
timer does, and that a broken, slow or wrong hook never breaks the meeting.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jwt

from tests.policy.conftest import SECRET
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Client, Clients


def token(room: str, name: str, **claims: object) -> str:
    """A join token with extra claims, as an identity provider would issue it."""
    now = int(time.time())
    body = {"aud": "parley", "room": room, "name": name, "role": "participant"}
    return jwt.encode({**body, "iat": now, "exp": now + 600, **claims}, SECRET, "HS256")


def chat_texts(client: Client) -> list[str]:
    return [
        m["message"]["text"]
        for m in client.received
        if m["type"] == "chat" and not m["message"].get("system")
    ]


JOIN_POLICY = """
    from parley.policy import allow, deny, lobby

    def on_join(join):
        if join.name.lower().startswith("mallory"):
            return deny("not here")
        if join.claims.get("staff"):
            return allow(role="host")
        if join.claims.get("guest"):
            return lobby()
        return allow()
"""


async def test_on_join_denies_promotes_and_sends_to_the_lobby(
    policy_server: Callable[..., ParleyProcess], clients: Clients, room: str
) -> None:
    srv = policy_server(JOIN_POLICY)
    mallory = await clients.join(srv, room, "Mallory", expect="", ref="j")
    refused = await mallory.expect("error")
    assert (refused["code"], refused["message"], refused["ref"]) == ("forbidden", "not here", "j")
    first = await clients.join(srv, room, "First")  # the room's rules: first in is host
    staff = await clients.join(srv, room, "Sam", token=token(room, "Sam", staff=True))
    assert staff.welcome is not None
    roles = {x["name"]: x["role"] for x in staff.welcome["participants"]}
    assert roles == {"First": "host", "Sam": "host"}
    guest = await clients.join(srv, room, "Gus", expect="", token=token(room, "Gus", guest=True))
    await guest.expect("lobby-wait")  # the room has no lobby: the policy sent them there
    lobby = await first.expect("lobby")
    assert [w["name"] for w in lobby["waiting"]] == ["Gus"]


async def test_on_chat_drops_and_rewrites(
    policy_server: Callable[..., ParleyProcess], clients: Clients, room: str
) -> None:
    srv = policy_server(
        """
        def on_chat(msg):
            if "forbidden-word" in msg.text:
                return None
            if "darn" in msg.text:
                return msg.text.replace("darn", "d**n")
            return msg
        """
    )
    ada = await clients.join(srv, room, "Ada")
    bob = await clients.join(srv, room, "Bob")
    await ada.send({"type": "chat", "text": "a forbidden-word here", "ref": "c1"})
    blocked = await ada.expect("error")
    assert (blocked["code"], blocked["ref"]) == ("forbidden", "c1")
    await ada.chat("darn it")
    await ada.chat("hello")
    await bob.expect("chat", lambda m: m["message"]["text"] == "hello")
    assert chat_texts(bob) == ["d**n it", "hello"]  # the blocked line never arrived
    await bob.send({"type": "history", "ref": "h"})
    history = await bob.expect("history")
    assert [m["text"] for m in history["messages"] if not m.get("system")] == ["d**n it", "hello"]


async def test_a_slow_failing_or_wrong_hook_never_breaks_the_meeting(
    policy_server: Callable[..., ParleyProcess], clients: Clients, room: str
) -> None:
    srv = policy_server(
        """
        import time

        def on_join(join):
            if join.name == "Spin":    # never returns, and swallows every Exception
                while True:
                    try:
                        sum(range(1000))
                    except Exception:
                        pass
            if join.name == "Slow":
                time.sleep(2)          # far past the 50 ms budget
            if join.name == "Boom":
                raise RuntimeError("the policy's own bug")
            if join.name == "Odd":
                return 42              # not a decision
            return None

        def on_chat(msg):
            if msg.text == "crash":
                raise ValueError("oops")
            return msg
        """,
        "--policy-default",
        "deny",
    )
    ada = await clients.join(srv, room, "Ada")
    for name in ("Spin", "Slow", "Boom", "Odd"):
        c = await clients.join(srv, room, name, expect="", ref=name)
        err = await c.expect("error")
        assert (err["code"], err["ref"]) == ("forbidden", name)  # --policy-default deny
        assert "oops" not in err["message"] and "bug" not in err["message"]
    await ada.chat("crash")  # the hook raises: the message passes unchanged
    await ada.roundtrip()
    assert "crash" in chat_texts(ada)
    log = srv.full_log()
    assert "policy on_join took more than 50 ms" in log
    # The spinning hook ran on the server's thread and was cut off at its budget; a hook
    # that holds the server that long runs in a worker thread from then on.
    assert "policy on_join held the server for" in log
    assert "RuntimeError: the policy's own bug" in log  # the traceback is in the log
    assert "policy on_join returned int" in log
    assert srv.health() is not None  # still serving


async def test_the_file_is_reloaded_on_change_without_dropping_anyone(
    policy_server: Callable[..., ParleyProcess], clients: Clients, room: str
) -> None:
    srv = policy_server("def on_chat(msg):\n    return msg.text.upper()\n")
    path = Path(srv.args[1])
    ada = await clients.join(srv, room, "Ada")
    await ada.chat("one")
    await asyncio.to_thread(path.write_text, "def on_chat(msg):\n    return msg.text + '!'\n")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while "reloaded (the file changed)" not in srv.full_log():
        assert loop.time() < deadline, srv.log()
        await asyncio.sleep(0.2)
    await ada.chat("two")
    # A file that no longer loads keeps the policy in force.
    await asyncio.to_thread(path.write_text, "def on_chat(msg:\n")
    while "policy not reloaded" not in srv.full_log():
        assert loop.time() < deadline + 15, srv.log()
        await asyncio.sleep(0.2)
    await ada.chat("three")
    assert chat_texts(ada) == ["ONE", "two!", "three!"]
    assert ada.close_code is None  # never dropped


async def test_timers_and_room_events_act_in_the_meeting(
    policy_server: Callable[..., ParleyProcess], clients: Clients, room: str
) -> None:
    srv = policy_server(
        """
        from parley.policy import every

        seen = []

        def on_room_open(room):
            seen.append(("open", room.room))

        def on_leave(leave):
            seen.append(("leave", leave.name, leave.reason))

        @every(0.5)
        async def announce(actions):
            for r in actions.rooms():
                people = actions.participants(r.room)
                if any(name == "Eve" for _, name, _ in people):
                    pid = next(p for p, name, _ in people if name == "Eve")
                    await actions.remove(r.room, pid)
                if seen and seen[-1][0] == "leave":
                    await actions.say(r.room, f"{seen[-1][1]} left ({seen[-1][2]})")
                    seen.append(("said",))
        """
    )
    ada = await clients.join(srv, room, "Ada")
    eve = await clients.join(srv, room, "Eve")
    assert await eve.wait_closed(within=15) == 4001  # removed by the timer
    note = await ada.expect(
        "chat", lambda m: m["message"].get("system") and "Eve left" in m["message"]["text"], 15
    )
    assert note["message"]["text"] == "Eve left (removed)"


async def test_a_policy_sends_someone_back_to_the_lobby_and_a_host_lets_them_in(
    policy_server: Callable[..., ParleyProcess], clients: Clients, room: str
) -> None:
    srv = policy_server(
        """
        async def on_chat(msg, actions):
            if not msg.text.startswith("!lobby "):
                return msg
            wanted = msg.text.split(" ", 1)[1]
            for pid, name, _role in actions.participants(msg.room):
                if name == wanted:
                    await actions.to_lobby(msg.room, pid)
            return None
        """
    )
    ada = await clients.join(srv, room, "Ada")  # the host
    bob = await clients.join(srv, room, "Bob")
    await ada.send({"type": "chat", "text": "!lobby Bob", "ref": "c1"})
    await bob.expect("lobby-wait")
    gone = await ada.expect("participant-left")
    assert (gone["id"], gone["reason"]) == (bob.id, "lobby")
    lobby = await ada.expect("lobby", lambda m: bool(m["waiting"]))
    assert [w["id"] for w in lobby["waiting"]] == [bob.id]
    await bob.send({"type": "chat", "text": "let me talk", "ref": "b1"})
    assert (await bob.error("waiting"))["ref"] == "b1"
    # A host is never sent away (someone must stay who can let people in).
    await ada.send({"type": "chat", "text": "!lobby Ada", "ref": "c2"})
    await ada.roundtrip()
    assert ada.close_code is None
    await ada.send({"type": "admit", "to": bob.id})
    again = await bob.expect("welcome")
    assert again["id"] == bob.id  # the same person, let back in
    back = await ada.expect("participant-joined")
    assert back["participant"]["id"] == bob.id
    assert "Bob was moved to the lobby" in [
        m["message"]["text"] for m in ada.of_type("chat") if m["message"].get("system")
    ]
    assert "no such room or participant" in srv.full_log()  # the refused "!lobby Ada"


def test_policy_check_command(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text(
        "from parley.policy import every\n"
        "def on_join(join):\n    return None\n"
        "@every(60)\ndef tick(actions):\n    pass\n"
    )
    bad = tmp_path / "bad.py"
    bad.write_text("import no_such_module_here\n")
    ok = subprocess.run(
        [sys.executable, "-m", "parley", "policy", "check", str(good)],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "on_join" in ok.stdout and "tick" in ok.stdout
    no = subprocess.run(
        [sys.executable, "-m", "parley", "policy", "check", str(bad)],
        capture_output=True,
        text=True,
    )
    assert no.returncode == 1
    assert no.stderr.count("\n") == 1 and "ModuleNotFoundError" in no.stderr
    # and the server refuses to start with it, in one line
    serve = subprocess.run(
        [sys.executable, "-m", "parley", "serve", "--port", "1", "--data-dir",
         str(tmp_path / "d"), "--policy", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert serve.returncode == 1 and "--policy" in serve.stderr
    assert "Traceback" not in serve.stderr
