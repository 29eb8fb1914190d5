"""Breakout rooms at the core: frames in (decoded as the server decodes them), effects out."""

from __future__ import annotations

from typing import Any

import pytest

from parley.config import Limits
from parley.core import breakouts as b
from parley.core import protocol as p
from parley.core.effects import Deliver, Effect, Moved, StopForwarding, Wake
from parley.core.protocol import ErrorCode

from .test_moderation import Clock, Meeting


class Breakout(Meeting):
    def __init__(self, people: int = 8, **limits: Any) -> None:
        super().__init__(Limits(max_participants=50, **limits))
        self.wall = Clock(1e9)
        self.rooms._wall = self.wall
        for i in range(people):
            self.join(f"u{i}")
        assert self.role("u0") == "host"

    def open(self, **msg: Any) -> list[Effect]:
        msg.setdefault("names", ["Red", "Blue"])
        if "assign" in msg:
            msg["assign"] = {self.ids.get(k, k): v for k, v in msg["assign"].items()}
        return self.frame("u0", type="breakouts-open", **msg)

    def where(self, name: str) -> str:
        member = self.rooms.find(self.ids[name])
        assert member is not None
        return member.room

    def sizes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for name in self.ids:
            out[self.where(name)] = out.get(self.where(name), 0) + 1
        return out


def moved(effects: list[Effect]) -> list[tuple[str, str]]:
    return [(e.pid, e.room) for e in effects if isinstance(e, Moved)]


def test_open_spreads_everyone_but_hosts_evenly_and_moves_their_sockets() -> None:
    m = Breakout(people=8)  # a host and 7 others
    effects = m.open(names=["Red", "Blue", ""])
    assert m.sizes() == {"team": 1, "team~1": 3, "team~2": 2, "team~3": 2}
    assert m.where("u0") == "team"
    assert len(moved(effects)) == 7
    # Media follows: each mover's forwarding in the main room stops.
    stops = {e.pid for e in effects if isinstance(e, StopForwarding) and e.room == "team"}
    assert stops == {pid for pid, _ in moved(effects)}
    # Everyone is told the plan, each in their room; unnamed rooms get a default name.
    states = [
        e.message.state
        for e in effects
        if isinstance(e, Deliver) and isinstance(e.message, p.BreakoutsOut)
    ]
    assert {s.rooms[2].title for s in states} == {"Room 3"}
    here = m.rooms.breakouts.here("team~2")
    assert here is not None and (here.main, here.index, here.title) == ("team", 1, "Blue")
    assert m.rooms.breakouts.here("team") is None


def test_assign_by_hand_then_the_rest_automatically() -> None:
    m = Breakout(people=4)
    m.open(assign={"u1": 1, "u2": 1}, auto=False)
    assert (m.where("u1"), m.where("u2"), m.where("u3")) == ("team~2", "team~2", "team")
    # A late joiner (or anyone left in the main room) is assigned while they are open.
    m.frame("u0", type="breakout-assign", to=m.ids["u3"], room=0)
    assert m.where("u3") == "team~1"
    m.frame("u0", type="breakout-assign", to=m.ids["u3"], room=None)
    assert m.where("u3") == "team"


def test_who_sees_whom_follows_the_room() -> None:
    m = Breakout(people=3)
    m.open(assign={"u1": 0, "u2": 1}, auto=False)
    room1 = m.rooms.room("team~1")
    assert room1 is not None and list(room1.members) == [m.ids["u1"]]
    # A signal or a private message to someone in another breakout finds nobody.
    m.refused(ErrorCode.NO_SUCH_PARTICIPANT, "u1", type="signal", to=m.ids["u2"], payload={})
    m.refused(ErrorCode.NO_SUCH_PARTICIPANT, "u1", type="chat", text="hi", to=m.ids["u2"])


def test_hosts_visit_broadcast_and_get_help_calls() -> None:
    m = Breakout(people=3)
    m.open(assign={"u1": 0, "u2": 1}, auto=False)
    help_calls = m.frame("u1", type="breakout-help")
    (call,) = help_calls
    assert isinstance(call, Deliver) and call.to == (m.ids["u0"],) and call.room == "team"
    assert call.message == p.BreakoutHelpOut(sender=m.ids["u1"], name="u1", index=0, title="Red")

    m.frame("u0", type="breakout-visit", room=0)
    assert m.where("u0") == "team~1"
    assert m.rooms.room("team") is not None  # the main room stays open, even empty
    # The host is in a breakout now: help calls reach it there.
    (call,) = m.frame("u2", type="breakout-help")
    assert isinstance(call, Deliver) and call.room == "team~1"

    sent = m.frame("u0", type="breakout-broadcast", text=" Five minutes left ")
    rooms = {e.room for e in sent if isinstance(e, Deliver)}
    assert rooms == {"team", "team~1", "team~2"}
    assert m.notes(sent) == ["u0 to all rooms: Five minutes left"] * 3
    m.frame("u0", type="breakout-visit", room=None)
    assert m.where("u0") == "team"


def test_close_warns_then_everyone_returns() -> None:
    m = Breakout(people=5)
    m.open()
    effects = m.frame("u0", type="breakouts-close")
    (wake,) = [e for e in effects if isinstance(e, Wake)]
    assert wake == Wake("team", int(1e12) + b.CLOSE_WARNING_MS)
    assert m.sizes()["team"] == 1  # nobody moved yet: 30 seconds' warning
    assert m.rooms.breakouts.due("team") == [wake]  # woken early: sleep again
    m.wall.t += b.CLOSE_WARNING_MS / 1000
    back = m.rooms.breakouts.due("team")
    assert m.sizes() == {"team": 5}
    assert len(moved(back)) == 4
    assert m.notes(back) == ["The breakout rooms closed: everyone is back"]
    assert not m.rooms.breakouts.is_open("team")
    assert m.rooms.room("team~1") is None  # emptied breakouts are forgotten
    assert m.rooms.breakouts.due("team") == []  # a stale wake does nothing


def test_a_server_sets_its_own_close_warning() -> None:
    m = Breakout(people=3, breakout_close_warning=5.0)
    m.open()
    (wake,) = [e for e in m.frame("u0", type="breakouts-close") if isinstance(e, Wake)]
    assert wake == Wake("team", int(1e12) + 5_000)
    m.wall.t += 5
    assert len(moved(m.rooms.breakouts.due("team"))) == 2
    assert m.sizes() == {"team": 3}


def test_a_duration_brings_everyone_back_on_its_own() -> None:
    m = Breakout(people=3)
    effects = m.open(duration=600)
    assert Wake("team", int(1e12) + 600_000) in effects
    m.wall.t += 600
    m.rooms.breakouts.due("team")
    assert m.sizes() == {"team": 3}


@pytest.mark.parametrize(
    ("msg", "code"),
    [
        ({"names": []}, ErrorCode.BAD_MESSAGE),
        ({"names": ["r"] * 21}, ErrorCode.BAD_MESSAGE),
        ({"names": ["x" * 41]}, ErrorCode.TOO_LONG),
        ({"duration": 5}, ErrorCode.BAD_MESSAGE),
        ({"assign": {"u1": 2}}, ErrorCode.NO_SUCH_BREAKOUT),
        ({"assign": {"u1": -1}}, ErrorCode.NO_SUCH_BREAKOUT),
        ({"assign": {"p_nobody": 0}}, ErrorCode.NO_SUCH_PARTICIPANT),
    ],
)
def test_bad_plans_are_refused_and_nobody_moves(msg: dict[str, Any], code: str) -> None:
    m = Breakout(people=3)
    msg.setdefault("names", ["a", "b"])
    assign = {m.ids.get(k, k): v for k, v in msg.pop("assign", {}).items()}
    m.refused(code, "u0", type="breakouts-open", assign=assign, **msg)
    assert m.sizes() == {"team": 3}
    assert not m.rooms.breakouts.is_open("team")


def test_non_hosts_and_wrong_states_are_refused() -> None:
    m = Breakout(people=3)
    m.refused(ErrorCode.FORBIDDEN, "u1", type="breakouts-open", names=["a"])
    m.refused(ErrorCode.NO_BREAKOUTS, "u0", type="breakouts-close")
    m.refused(ErrorCode.NO_BREAKOUTS, "u0", type="breakout-visit", room=0)
    m.refused(ErrorCode.NO_BREAKOUTS, "u1", type="breakout-help")
    m.open(assign={"u1": 0}, auto=False)
    m.refused(ErrorCode.BREAKOUTS_OPEN, "u0", type="breakouts-open", names=["again"])
    m.refused(ErrorCode.NO_BREAKOUTS, "u2", type="breakout-help")  # in the main room
    for kind, extra in (
        ("breakout-assign", {"to": m.ids["u2"], "room": 0}),
        ("breakout-visit", {"room": 0}),
        ("breakouts-close", {}),
        ("breakout-broadcast", {"text": "hi"}),
    ):
        m.refused(ErrorCode.FORBIDDEN, "u1", type=kind, **extra)
    m.refused(ErrorCode.NO_SUCH_BREAKOUT, "u0", type="breakout-assign", to=m.ids["u2"], room=5)
    m.refused(ErrorCode.NO_SUCH_PARTICIPANT, "u0", type="breakout-assign", to="p_x", room=0)
    m.refused(ErrorCode.EMPTY, "u0", type="breakout-broadcast", text="  ")
    assert m.sizes() == {"team": 2, "team~1": 1}


def test_ending_the_meeting_ends_its_breakouts() -> None:
    m = Breakout(people=4)
    m.open()
    m.frame("u0", type="end-meeting")
    assert m.rooms.open_rooms() == []
    assert m.rooms.members == {}
    assert not m.rooms.breakouts.is_open("team")


def test_leaving_from_a_breakout_is_an_ordinary_leave() -> None:
    m = Breakout(people=2)
    m.open()
    effects = m.rooms.leave(m.ids["u1"])
    left = [
        e for e in effects if isinstance(e, Deliver) and isinstance(e.message, p.ParticipantLeft)
    ]
    assert [d.room for d in left] == ["team~1"]
    assert m.rooms.room("team~1") is None
    m.frame("u0", type="breakouts-close")


def test_a_meeting_spread_over_nodes_moves_everyone_and_journals_the_breakouts() -> None:
    """In a cluster anyone may be moved from any node: the socket's own node follows the
    ``Moved`` effect; the open breakouts are journalled for the other nodes."""
    m = Breakout(people=3)
    member = m.rooms.find(m.ids["u2"])
    assert member is not None
    member.node = "n_other"  # its socket is on another node of a cluster
    m.rooms.journal.clear()
    effects = m.open(names=["a"])
    assert (m.ids["u2"], "team~1") in moved(effects)
    assert m.sizes() == {"team": 1, "team~1": 2}
    assert m.rooms.journal[0] == ("breakouts", "team", None)  # before anyone moves
    m.rooms.journal.clear()
    m.frame("u0", type="breakouts-close")
    assert m.rooms.journal == [("breakouts", "team", None)]


def test_only_the_node_acting_for_the_meeting_brings_people_back() -> None:
    """Timers fire on every node of a meeting; the lowest node id among its people's acts,
    the others look again later (and take over once that node's people are gone)."""
    m = Breakout(people=3)
    m.rooms.node = "n_b"  # this node; u1 (in a breakout) is on "n_a", which acts
    member = m.rooms.find(m.ids["u1"])
    assert member is not None
    for name in m.ids:
        found = m.rooms.find(m.ids[name])
        assert found is not None
        found.node = "n_b"
    member.node = "n_a"
    m.open(names=["a"], duration=60)
    m.wall.t += 60
    again = m.rooms.breakouts.due("team")
    assert again == [Wake("team", int(1e12) + 60_000 + b.TAKEOVER_MS)]
    assert m.rooms.breakouts.is_open("team") and m.sizes()["team~1"] == 2
    member.node = "n_c"  # n_a stopped; its person resumed on n_c: n_b is now the lowest
    back = m.rooms.breakouts.due("team")
    assert m.sizes() == {"team": 3} and len(moved(back)) == 2


def test_breakouts_mirrored_from_another_node_arm_a_timer_once_per_deadline() -> None:
    m = Breakout(people=2)
    bset = b.BreakoutSet("team", ["a"], "p_x", ends_at=5, rooms=["team~1"])
    assert m.rooms.breakouts.put_remote(bset) == [Wake("team", 5)]
    same = b.BreakoutSet("team", ["a"], "p_x", ends_at=5, rooms=["team~1"])
    assert m.rooms.breakouts.put_remote(same) == []
    assert m.rooms.breakouts.here("team~1") is not None
    m.rooms.breakouts.drop_remote("team")
    assert not m.rooms.breakouts.is_open("team")
