"""Property-based fuzzing of the WebSocket protocol against a LIVE server.

One real ``parley serve`` (rate limits ON) runs for the module.  Two bystanders
join a room and stay there.  Hypothesis then generates *examples*: short scripts
of steps for one or two fresh attacker connections — protocol messages of every
client type (and invalid, server-side or missing types) with valid, invalid or
random JSON field values and extra fields, mutated/truncated JSON, random text,
random and invalid-UTF-8 frames, binary frames, huge numbers, deep nesting within
the frame limit, oversized frames, and out-of-order sequences (chat before join,
join twice, messages after leave, resume of a dropped identity, moderation of
one attacker by the other, lobby/admit/deny, end-meeting ...).  A closed attacker
socket is simply reopened by the next step.

After every example the attackers' connections must have answered a ping (or
been closed by the server) and must never have been told ``internal``; about
twice a second the bystanders must still exchange a chat message.  At the end the
server process must be alive and its log must hold no traceback, no ``internal
error`` and no ERROR line.

The attackers connect from loopback addresses of their own (127.0.0.5 …
127.0.0.68, one per example in turn) so the per-address limits that a flood
rightly trips never starve the bystanders, who use 127.0.0.1.

Bugs it found have regression tests in ``test_regressions.py``.
``PARLEY_FUZZ_SECONDS`` sets the time budget (default 50; more for a longer hunt).
The number of inputs (frames) tried is printed and written to ``tests/fuzz/.last_run``.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Client

T = TypeVar("T")

FUZZ_SECONDS = float(os.environ.get("PARLEY_FUZZ_SECONDS", "50"))
DEBUG = os.environ.get("PARLEY_FUZZ_DEBUG", "") in ("1", "true", "yes")
KNOWN_BUGS = os.environ.get("PARLEY_FUZZ_KNOWN_BUGS", "") in ("1", "true", "yes")
#: Deepest JSON nesting generated: far past msgspec's recursion limit (about 1000
#: levels), which once made the server answer "internal" (see the regression test).
MAX_DEPTH = 30_000
CHUNK = 60  # examples per Hypothesis run; runs repeat until the time budget is spent
SYNC_TIMEOUT = 20.0
CHECK_EVERY = 0.75  # seconds between bystander chat checks (chat rate: 20 per 10 s)
ROOM = "fuzz-room"
ROOM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
ATTACKER_ADDRS = [f"127.0.0.{i}" for i in range(5, 69)]
LAST_RUN = Path(__file__).with_name(".last_run")

CLIENT_TYPES = [
    "join", "chat", "signal", "reaction", "hand", "media", "rename", "history", "ping",
    "leave", "mute", "mute-all", "remove", "set-role", "lower-hand", "room-settings",
    "admit", "deny", "end-meeting",
]  # fmt: skip
SERVER_TYPES = [
    "welcome", "participant-joined", "participant-left", "participant-updated", "chat-ack",
    "pong", "error", "room-updated", "lobby", "lobby-wait", "muted", "removed",
    "meeting-ended", "resume-token",
]  # fmt: skip
RELAYED = ["chat", "signal", "reaction", "history"]
REACTIONS = ["👍", "👏", "❤️", "😂", "😮", "🎉", "🤔", "👋"]

# -- strategies -------------------------------------------------------------------------

huge_ints = st.sampled_from(
    [2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64 - 1, 2**64, 10**30, -(10**40)]
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    huge_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 1e308, -0.0, 5e-324]),
)
#: Mostly Latin text (cheap to generate), sometimes any Unicode.
texts = st.one_of(
    st.text(alphabet=st.characters(max_codepoint=0x17F), max_size=30), st.text(max_size=10)
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(texts, children, max_size=4),
    ),
    max_leaves=8,
)
#: Placeholders replaced at send time by a real id/token known to the attacker.
PLACEHOLDER_IDS = ["$self", "$peer", "$A", "$B", "$waiting"]
ids = st.one_of(st.sampled_from(PLACEHOLDER_IDS), st.text(max_size=24), st.just("p_" + "A" * 16))
room_names = st.one_of(
    st.sampled_from([ROOM, "fz-1", "fz-2", "fz-3", "fz-1"]),
    st.text(alphabet=ROOM_CHARS, min_size=1, max_size=64),
    texts,
)
names = st.one_of(
    st.sampled_from(["Eve", "Mallory", " ", "", "<img src=x onerror=alert(1)>", "\x00\x07"]),
    st.text(max_size=80),
)
bools = st.booleans()
kinds = st.one_of(st.sampled_from(["mic", "cam", "screen"]), st.text(max_size=8))
roles = st.one_of(st.sampled_from(["host", "participant", "observer"]), st.text(max_size=8))

FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "join": {
        "room": room_names,
        "name": names,
        "v": st.one_of(st.just(1), numbers),
        "resume": st.one_of(st.just("$resume"), st.text(max_size=200)),
        "password": st.text(max_size=40),
        "token": st.text(max_size=100),
    },
    "chat": {"text": st.one_of(st.text(max_size=60), st.just("x" * 4001)), "to": ids},
    "signal": {"to": ids, "payload": json_values},
    "reaction": {"emoji": st.one_of(st.sampled_from(REACTIONS), st.text(max_size=4))},
    "hand": {"raised": bools},
    "media": {"mic": bools, "cam": bools, "screen": bools},
    "rename": {"name": names},
    "history": {"before": numbers, "limit": numbers},
    "ping": {},
    "leave": {},
    "mute": {"to": ids, "kind": kinds},
    "mute-all": {"kind": kinds},
    "remove": {"to": ids, "ban": bools},
    "set-role": {"to": ids, "role": roles},
    "lower-hand": {"to": ids},
    "room-settings": {
        "locked": bools,
        "lobby": bools,
        "password": st.one_of(st.just(""), st.text(max_size=20), st.just("p" * 200)),
        "max_participants": st.one_of(st.integers(min_value=-2, max_value=10), numbers),
    },
    "admit": {"to": ids},
    "deny": {"to": ids},
    "end-meeting": {},
}
assert set(FIELDS) == set(CLIENT_TYPES)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    """A message dict: mostly a real type with plausible fields, often broken somewhere."""
    type_value: Any = draw(
        st.one_of(
            st.sampled_from(CLIENT_TYPES),
            st.sampled_from(CLIENT_TYPES),
            st.sampled_from(CLIENT_TYPES),
            st.sampled_from(SERVER_TYPES),
            st.text(max_size=12),
            json_values,
        )
    )
    msg: dict[str, Any] = {}
    if draw(st.integers(0, 19)) != 0:  # sometimes no type at all
        msg["type"] = type_value
    fields = FIELDS.get(type_value, {}) if isinstance(type_value, str) else {}
    for name, valid in fields.items():
        choice = draw(st.integers(0, 9))
        if choice <= 5:
            msg[name] = draw(valid)
        elif choice <= 7:
            msg[name] = draw(json_values)
        # else: left out
    if draw(st.booleans()):
        msg["ref"] = draw(st.one_of(st.text(max_size=70), json_values))
    for key, value in draw(st.dictionaries(st.text(max_size=12), json_values, max_size=3)).items():
        msg.setdefault(key, value)
    return msg


def nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    if kind == "dict":
        return '{"a":' * depth + "1" + "}" * depth
    return '{"a":[' * (depth // 2) + "null" + "]}" * (depth // 2)


@st.composite
def raw_texts(draw: st.DrawFn) -> str:
    """Text frames that are not (quite) a message: mutated, truncated, random, nested."""
    how = draw(
        st.sampled_from(["truncate", "mutate", "random", "nested", "numbers", "big", "literal"])
    )
    if how == "random":
        return str(draw(st.text(max_size=300)))
    if how == "nested":
        depth = draw(st.integers(min_value=1, max_value=MAX_DEPTH))
        kind = draw(st.sampled_from(["list", "dict", "mixed"]))
        inner = nested(depth, kind)
        where = draw(st.sampled_from(["bare", "payload", "field", "ref"]))
        if where == "bare":
            return inner
        if where == "payload":
            return '{"type":"signal","to":"x","payload":' + inner + "}"
        if where == "ref":
            return '{"type":"ping","ref":' + inner + "}"
        return '{"type":"chat","text":' + inner + "}"
    if how == "numbers":
        literal = draw(
            st.sampled_from(
                ["1e999", "-1e999", "1" * 400, "-" + "9" * 50, "1.0e-400", "0x10", "01", "NaN"]
            )
        )
        field_name = draw(st.sampled_from(["v", "before", "limit", "max_participants", "raised"]))
        type_name = draw(st.sampled_from(CLIENT_TYPES))
        return f'{{"type":"{type_name}","{field_name}":{literal}}}'
    if how == "big":
        size = draw(st.sampled_from([60_000, 65_500, 65_537, 70_000]))
        return '{"type":"chat","text":"' + "y" * size + '"}'
    if how == "literal":
        return str(
            draw(
                st.sampled_from(
                    ["", " ", "null", "true", "1", '"join"', "[]", "{}", '{"type":null}',
                     '{"type":"join"', '{"type":"join",}', "{'type':'ping'}", "\ufeff{}",
                     '{"type":"ping"}{"type":"ping"}', '{"type":"ping","type":"join"}']
                )
            )
        )  # fmt: skip
    text = json.dumps(draw(messages()), ensure_ascii=draw(st.booleans()))
    if how == "truncate":
        return text[: draw(st.integers(min_value=0, max_value=max(0, len(text) - 1)))]
    # mutate: replace, insert or delete a character
    i = draw(st.integers(min_value=0, max_value=max(0, len(text) - 1)))
    ch = draw(st.sampled_from(['"', "{", "}", "[", "]", ",", ":", "\\", "\x00", "é", "1"]))
    op = draw(st.sampled_from(["replace", "insert", "delete"]))
    if op == "replace":
        return text[:i] + ch + text[i + 1 :]
    if op == "insert":
        return text[:i] + ch + text[i:]
    return text[:i] + text[i + 1 :]


slots = st.integers(min_value=0, max_value=1)
BAD_UTF8 = [b"\xff", b'{"type":"ping"}\xc3', b"\xed\xa0\x80", b'{"type":"chat","text":"\xc0\xaf"}']
steps = st.one_of(
    st.tuples(st.just("send"), slots, messages()),
    st.tuples(st.just("send"), slots, messages()),
    st.tuples(st.just("send"), slots, messages()),
    st.tuples(st.just("burst"), slots, st.lists(messages(), min_size=2, max_size=8)),
    st.tuples(st.just("burst"), slots, st.lists(messages(), min_size=2, max_size=8)),
    st.tuples(st.just("raw"), slots, raw_texts()),
    st.tuples(st.just("raw"), slots, raw_texts()),
    st.tuples(st.just("join"), slots, st.sampled_from([ROOM, "fz-1", "fz-2", "fz-3"])),
    st.tuples(st.just("reconnect"), slots, st.none()),
    # These close the connection (1003, 1007): rarer, so that most frames reach the protocol.
    st.integers(0, 3).flatmap(
        lambda n: (
            st.tuples(st.just("bytes"), slots, st.binary(max_size=64))
            if n == 0
            else st.tuples(st.just("badutf8"), slots, st.sampled_from(BAD_UTF8))
            if n == 1
            else st.tuples(st.just("send"), slots, messages())
        )
    ),
)


@st.composite
def examples(draw: st.DrawFn) -> tuple[list[tuple[str, int, Any]], bool]:
    script: list[tuple[str, int, Any]] = []
    if draw(st.integers(0, 9)) < 6:  # usually start inside a room, to reach deeper states
        script.append(("join", 0, draw(st.sampled_from([ROOM, "fz-1", "fz-2", "fz-3"]))))
        if draw(st.booleans()):
            script.append(("join", 1, script[0][2]))
    script += draw(st.lists(steps, min_size=1, max_size=10))
    leave_at_end = draw(st.integers(0, 9)) < 8
    return script, leave_at_end


# -- the live side ----------------------------------------------------------------------


class LoopThread:
    """An event loop in a thread: the bystanders live there for the whole test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise AssertionError(f"an example did not finish within {timeout}s") from None

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@dataclass
class Slot:
    """One attacker connection (reopened whenever the server closed it)."""

    client: Client | None = None
    session: aiohttp.ClientSession | None = None
    resume: str | None = None
    waiting_id: str | None = None

    @property
    def open(self) -> bool:
        return self.client is not None and not self.client.closed.is_set()

    def self_id(self) -> str | None:
        if self.client is None:
            return None
        for m in self.client.received:
            if m["type"] == "welcome":
                self.resume = m.get("resume", self.resume)
                return str(m["id"])
        return None


@dataclass
class Fuzzer:
    server: ParleyProcess
    bystanders: tuple[Client, Client] | None = None
    sessions: dict[str, aiohttp.ClientSession] = field(default_factory=dict)
    frames: Counter[str] = field(default_factory=Counter)
    closes: Counter[int | None] = field(default_factory=Counter)
    examples: int = 0
    checks: int = 0
    last_check: float = 0.0
    addr_turn: int = 0

    def session(self, addr: str) -> aiohttp.ClientSession:
        s = self.sessions.get(addr)
        if s is None:
            connector = aiohttp.TCPConnector(local_addr=(addr, 0), force_close=True, limit=0)
            s = self.sessions[addr] = aiohttp.ClientSession(connector=connector)
        return s

    async def connect(self, addr: str) -> Client:
        ws = await self.session(addr).ws_connect(self.server.ws_url, max_msg_size=0)
        return Client(ws).start()

    async def start_bystanders(self) -> None:
        a = await self.connect("127.0.0.1")
        await a.send({"type": "join", "room": ROOM, "name": "Bystander A", "v": 1})
        a.welcome = await a.expect("welcome")
        b = await self.connect("127.0.0.1")
        await b.send({"type": "join", "room": ROOM, "name": "Bystander B", "v": 1})
        b.welcome = await b.expect("welcome")
        self.bystanders = (a, b)
        await self.check_bystanders(force=True)

    async def check_bystanders(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_check < CHECK_EVERY:
            return
        assert self.bystanders is not None
        a, b = self.bystanders
        for c in (a, b):
            assert not c.closed.is_set(), f"a bystander was disconnected: {c.close_code}"
            c.pending.clear()
            c.received.clear()
            c.raw.clear()
        text = f"still here {uuid.uuid4().hex}"
        ack = await a.chat(text)
        assert ack["type"] == "chat-ack"
        got = await b.expect("chat", lambda m: m["message"]["text"] == text, within=SYNC_TIMEOUT)
        assert got["message"]["sender"] == a.id
        self.checks += 1
        self.last_check = time.monotonic()

    def fill(self, value: Any, slots: list[Slot], me: int) -> Any:
        """Replace placeholder strings by ids/tokens the attacker knows."""
        if not isinstance(value, str) or not value.startswith("$"):
            return value
        assert self.bystanders is not None
        known = {
            "$self": slots[me].self_id(),
            "$peer": slots[1 - me].self_id(),
            "$A": self.bystanders[0].id,
            "$B": self.bystanders[1].id,
            "$waiting": slots[me].waiting_id or slots[1 - me].waiting_id,
            "$resume": slots[me].resume or slots[1 - me].resume,
        }
        return known.get(value) or value

    async def send(self, slot: Slot, kind: str, payload: Any) -> None:
        assert slot.client is not None
        ws = slot.client.ws
        try:
            async with asyncio.timeout(SYNC_TIMEOUT):
                if kind == "bytes":
                    await ws.send_bytes(payload)
                elif kind == "badutf8":
                    await ws.send_frame(payload, aiohttp.WSMsgType.TEXT)
                else:
                    await ws.send_str(payload)
        except (ConnectionError, aiohttp.ClientError, RuntimeError):
            return  # the server closed it meanwhile: fine, the next step reconnects
        except TimeoutError:
            raise AssertionError(
                f"sending a {kind} frame blocked for {SYNC_TIMEOUT}s: {str(payload)[:300]}"
            ) from None
        self.frames[kind] += 1

    async def sync(self, slot: Slot) -> None:
        """The server answers a ping on this connection, or has closed it."""
        c = slot.client
        if c is None or not slot.open:
            return
        ref = "sync-" + uuid.uuid4().hex[:8]
        start = len(c.received)
        await self.send(slot, "sync", json.dumps({"type": "ping", "ref": ref}))

        def answered(m: dict[str, Any]) -> bool:
            if m["type"] == "pong":
                return bool(m.get("ref") == ref)
            return m["type"] == "error" and (m.get("ref") == ref or m["code"] == "rate_limited")

        deadline = time.monotonic() + SYNC_TIMEOUT
        while not c.closed.is_set():
            if any(answered(m) for m in c.received[start:]):
                break
            assert time.monotonic() < deadline, (
                f"no answer to a ping within {SYNC_TIMEOUT}s; got {c.received[-5:]}"
            )
            c.arrived.clear()
            try:
                await asyncio.wait_for(c.arrived.wait(), 0.5)
            except TimeoutError:
                pass
        for m in c.received:
            if m["type"] == "lobby" and m["waiting"]:
                slot.waiting_id = m["waiting"][-1]["id"]

    async def finish(self, slot: Slot, leave: bool) -> None:
        c = slot.client
        if c is None:
            return
        if slot.open:
            await self.sync(slot)
            joined = any(m["type"] in ("welcome", "lobby-wait") for m in c.received)
            if leave and joined:  # (before a join, leave is refused and the socket stays)
                await self.send(slot, "text", '{"type":"leave"}')
                try:
                    await asyncio.wait_for(c.closed.wait(), SYNC_TIMEOUT)
                except TimeoutError:
                    pass
        internal = [m for m in c.received if m["type"] == "error" and m["code"] == "internal"]
        assert not internal, f"the server reported an internal error: {internal}"
        for m in c.received:
            assert m["type"] in SERVER_TYPES + [
                "chat",
                "signal",
                "reaction",
                "history",
                "__closed__",
            ], m
        if c.closed.is_set():
            self.closes[c.close_code] += 1
        await c.close()
        slot.client = None

    async def run_example(self, script: list[tuple[str, int, Any]], leave_at_end: bool) -> None:
        addr = ATTACKER_ADDRS[self.addr_turn % len(ATTACKER_ADDRS)]
        self.addr_turn += 1
        slots = [Slot(), Slot()]
        try:
            for kind, i, arg in script:
                slot = slots[i]
                if kind == "reconnect":
                    await self.finish(slot, leave=False)
                    continue
                if not slot.open:
                    if slot.client is not None:
                        await self.finish(slot, leave=False)
                    try:
                        async with asyncio.timeout(SYNC_TIMEOUT):
                            slot.client = await self.connect(addr)
                    except TimeoutError:
                        raise AssertionError(
                            f"no WebSocket handshake within {SYNC_TIMEOUT}s"
                        ) from None
                    except aiohttp.WSServerHandshakeError as exc:
                        assert exc.status in (429, 503), exc
                        continue
                if kind == "join":
                    msg = {"type": "join", "room": arg, "name": f"Attacker {i}", "v": 1}
                    await self.send(slot, "text", json.dumps(msg))
                    await self.sync(slot)
                elif kind in ("send", "burst"):
                    for one in [arg] if kind == "send" else arg:
                        msg = {k: self.fill(v, slots, i) for k, v in one.items()}
                        await self.send(slot, "text", json.dumps(msg))
                        if not slot.open:
                            break
                        if msg.get("type") == "join":
                            await self.sync(slot)
                else:
                    await self.send(slot, "text" if kind == "raw" else kind, arg)
            for slot in slots:
                await self.finish(slot, leave_at_end)
        finally:
            for slot in slots:
                if slot.client is not None:
                    await slot.client.close()
        self.examples += 1
        await self.check_bystanders()

    async def close(self) -> None:
        if self.bystanders is not None:
            for c in self.bystanders:
                await c.close()
        for s in self.sessions.values():
            await s.close()


def run_fuzz(fuzzer: Fuzzer, lt: LoopThread, seconds: float) -> None:
    @settings(
        max_examples=CHUNK,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(example=examples())
    def one(example: tuple[list[tuple[str, int, Any]], bool]) -> None:
        script, leave_at_end = example
        if time.monotonic() > deadline:
            return  # time is up: let Hypothesis finish this run quickly
        assert fuzzer.server.proc is not None and fuzzer.server.proc.poll() is None, "server died"
        t0 = time.monotonic()
        lt.run(fuzzer.run_example(script, leave_at_end), timeout=90)
        if DEBUG:
            print(f"{time.monotonic() - t0:6.2f}s {[(k, i) for k, i, _ in script]}")

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        one()


@pytest.mark.timeout(FUZZ_SECONDS + 240)
def test_fuzz_protocol_live_server(
    fuzz_server_factory: Callable[..., ParleyProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    server = fuzz_server_factory()  # default limits, rate limits ON
    lt = LoopThread()
    fuzzer = Fuzzer(server)
    started = time.monotonic()
    try:
        lt.run(fuzzer.start_bystanders())
        run_fuzz(fuzzer, lt, FUZZ_SECONDS)
        lt.run(fuzzer.check_bystanders(force=True))
    finally:
        lt.run(fuzzer.close())
        lt.stop()
    elapsed = time.monotonic() - started

    assert server.proc is not None and server.proc.poll() is None, "the server died"
    log = server.full_log()
    total = sum(fuzzer.frames.values())
    summary = {
        "frames": total,
        "frames_by_kind": dict(fuzzer.frames),
        "examples": fuzzer.examples,
        "bystander_checks": fuzzer.checks,
        "attacker_close_codes": {str(k): v for k, v in sorted(fuzzer.closes.items(), key=str)},
        "seconds": round(elapsed, 1),
        "known_bugs_generated": KNOWN_BUGS,
    }
    try:
        LAST_RUN.write_text(json.dumps(summary, indent=2) + "\n")
    except OSError:
        pass
    with capsys.disabled():
        print(
            f"\nfuzz: {total} inputs (frames) tried in {fuzzer.examples} examples, "
            f"{fuzzer.checks} bystander chat checks, {elapsed:.0f} s: {json.dumps(summary)}"
        )

    for needle in ("Traceback", "internal error", " ERROR ", "Task exception was never retrieved"):
        lines = [line for line in log.splitlines() if needle in line]
        assert not lines, f"{needle!r} in the server log:\n" + "\n".join(lines[:20])
    assert fuzzer.examples > 0 and fuzzer.checks > 1
    assert total >= fuzzer.examples
