"""Big rooms at the core: batched presence, the welcome's first page, roster pages.

Frames in, effects out (no socket, no store): a room of a few people behaves as before
(one frame per event), a room past the threshold batches every join, leave and change
into one ``presence`` frame per window, and ``roster`` requests page the participants.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from parley.config import Limits
from parley.core import presence, roster
from parley.core import protocol as p
from parley.core.effects import Deliver, Effect, PresenceDue
from parley.core.protocol import ErrorCode, ProtocolError
from parley.core.rooms import Rooms

THRESHOLD = 5


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Room:
    """One room "big" past ``THRESHOLD`` people; people join by name."""

    def __init__(self, threshold: int = THRESHOLD) -> None:
        self.wall = Clock(1e9)
        limits = Limits(
            max_participants=10_000, presence_threshold=threshold, stage_threshold=10**9
        )
        self.rooms = Rooms(limits, monotonic=Clock(10.0), wall_clock=self.wall)
        self.ids: dict[str, str] = {}

    def join(self, name: str) -> list[Effect]:
        self.wall.t += 0.001  # distinct join times, as in life
        joined = self.rooms.join("hall", name, 1, address="10.0.0.1")
        self.ids[name] = joined.member.info.id
        return joined.effects

    def fill(self, n: int, prefix: str = "p") -> None:
        for i in range(n):
            self.join(f"{prefix}{i}")

    def send(self, who: str, /, **msg: Any) -> list[Effect]:
        return self.rooms.handle(self.ids[who], p.decode(json.dumps(msg)))

    def settle(self) -> None:
        """Let any pending window end, a flood's stretched one included."""
        self.wall.t += presence.FLOOD_WINDOW_MS / 1000
        self.rooms.presence_due("hall")

    def flush(self) -> p.PresenceOut:
        [d] = self.rooms.presence_due("hall")
        assert isinstance(d, Deliver) and isinstance(d.message, p.PresenceOut)
        assert d.to is None  # to everyone in the room
        return d.message

    def page(self, name: str, **msg: Any) -> p.RosterPage:
        [d] = self.send(name, type="roster", **msg)
        assert isinstance(d, Deliver) and d.to == (self.ids[name],)
        assert isinstance(d.message, p.RosterPage)
        return d.message


def frames(effects: list[Effect]) -> list[p.ServerMessage]:
    return [e.message for e in effects if isinstance(e, Deliver)]


def test_a_small_room_announces_each_event_at_once() -> None:
    room = Room()
    room.join("Ada")
    effects = room.join("Bob")
    [joined] = [m for m in frames(effects) if isinstance(m, p.ParticipantJoined)]
    assert joined.participant.name == "Bob"
    assert not any(isinstance(e, PresenceDue) for e in effects)
    [updated] = frames(room.send("Bob", type="hand", raised=True))
    assert isinstance(updated, p.ParticipantUpdated)
    assert [type(m) for m in frames(room.rooms.leave(room.ids["Bob"]))] == [p.ParticipantLeft]
    # The welcome still lists everyone, with no count or cursor.
    hall = room.rooms.rooms["hall"]
    people, count, cursor = room.rooms.welcome_roster(hall, room.ids["Ada"])
    assert [i.name for i in people] == ["Ada"] and count is None and cursor is None


def test_a_big_room_batches_joins_leaves_and_changes_into_one_frame() -> None:
    room = Room()
    room.fill(THRESHOLD)  # small until now: each join told at once
    effects = room.join("Cy")  # the room is big from here on
    assert not frames(effects)
    [due] = [e for e in effects if isinstance(e, PresenceDue)]
    assert due.room == "hall" and due.at_ms == room.rooms.now_ms() + presence.WINDOW_MS
    # More events in the same window arm nothing more and send nothing.
    assert not any(isinstance(e, Deliver | PresenceDue) for e in room.join("Dee"))
    assert not frames(room.send("p0", type="hand", raised=True))
    assert not frames(room.rooms.leave(room.ids["p1"], reason="left"))
    assert not frames(room.send("Dee", type="rename", name="Deirdre"))
    out = room.flush()
    assert [i.name for i in out.joined] == ["Cy", "Deirdre"]  # the state when sent
    assert [(d.id, d.reason) for d in out.left] == [(room.ids["p1"], "left")]
    assert [i.id for i in out.updated] == [room.ids["p0"]] and out.updated[0].hand
    assert out.count == THRESHOLD + 1 and not out.truncated
    # The window is over: nothing is pending, and the next event opens a new one.
    assert room.rooms.presence_due("hall") == []
    assert any(isinstance(e, PresenceDue) for e in room.join("Eve"))


def test_a_bigger_room_waits_longer_for_its_frame_from_half_a_second_to_two() -> None:
    room = Room()
    room.fill(2_999)
    room.settle()

    def window_of_next_event(effects: list[Effect]) -> int:
        [due] = [e for e in effects if isinstance(e, PresenceDue)]
        room.rooms.presence_due("hall")  # the window ends; the next event opens another
        return due.at_ms - room.rooms.now_ms()

    # 3,000 people: 0.2 ms a person, and the room's size when the window opens.
    assert window_of_next_event(room.join("Tess")) == 600
    assert window_of_next_event(room.rooms.leave(room.ids["Tess"])) == 600
    room.fill(5_000 - 2_999, prefix="q")
    room.settle()
    assert window_of_next_event(room.send("q5", type="hand", raised=True)) == 1000
    # Bounded both ways: the smallest big room keeps half a second, no room waits over 2 s
    # (10,000 people and more).
    assert presence.window_ms(THRESHOLD + 1) == presence.WINDOW_MS == 500
    assert presence.window_ms(1_000_000) == presence.MAX_WINDOW_MS == 2000


def test_someone_who_comes_and_goes_in_one_window_is_never_shown() -> None:
    room = Room()
    room.fill(THRESHOLD + 1)
    room.rooms.presence_due("hall")
    room.join("Flash")
    room.send("Flash", type="hand", raised=True)
    room.rooms.leave(room.ids["Flash"])
    # One window, one frame: someone known who leaves and resumes is a join, not a leave.
    out = room.flush()
    assert out.joined == [] and out.left == [] and out.updated == []


def test_events_stay_batched_while_a_batch_is_pending_even_if_the_room_shrinks() -> None:
    room = Room()
    room.fill(THRESHOLD + 1)
    room.rooms.presence_due("hall")
    room.rooms.leave(room.ids["p5"])  # opens a batch; the room is no longer big
    assert not frames(room.rooms.leave(room.ids["p4"]))  # still batched: order kept
    out = room.flush()
    assert {d.id for d in out.left} == {room.ids["p5"], room.ids["p4"]}
    # Small again, with nothing pending: at once, as before.
    assert [type(m) for m in frames(room.rooms.leave(room.ids["p3"]))] == [p.ParticipantLeft]


def test_a_batch_is_bounded_past_it_the_frame_carries_the_count_only() -> None:
    room = Room()
    room.fill(THRESHOLD + 1)
    room.rooms.presence_due("hall")
    opened = room.rooms.now_ms() + 1  # (the next join's time)
    room.fill(presence.MAX_BATCH + 5, prefix="q")
    # A flood: the window is stretched, and its frame, when it comes, says only the count.
    [due] = room.rooms.presence_due("hall")
    assert isinstance(due, PresenceDue) and due.at_ms == opened + presence.FLOOD_WINDOW_MS
    room.join("Late")  # still the same window
    room.wall.t = due.at_ms / 1000
    out = room.flush()
    assert out.truncated and out.joined == [] and out.left == [] and out.updated == []
    assert out.count == THRESHOLD + 1 + presence.MAX_BATCH + 5 + 1
    assert room.rooms.presence_due("hall") == []
    # Calm again: the next window has its usual length.
    [next_due] = [e for e in room.join("Calm") if isinstance(e, PresenceDue)]
    assert next_due.at_ms == room.rooms.now_ms() + presence.WINDOW_MS


def test_the_pending_batch_ends_with_the_meeting() -> None:
    room = Room()
    room.fill(THRESHOLD + 1)
    host = room.ids["p0"]
    room.join("Late")
    room.rooms.handle(host, p.EndMeeting())
    assert room.rooms.presence_due("hall") == []


def test_a_big_rooms_welcome_carries_a_first_page_a_count_and_a_cursor() -> None:
    first = roster.WELCOME_EARLIEST
    room = Room(threshold=first)
    room.fill(first + 50)
    hall = room.rooms.rooms["hall"]
    late = room.ids[f"p{first + 40}"]
    room.send(f"p{first + 30}", type="hand", raised=True)
    people, count, cursor = room.rooms.welcome_roster(hall, late)
    names = [i.name for i in people]
    # The newcomer itself, the host, the raised hand, then the earliest to join (a page
    # much smaller than the room: the rest is fetched).
    assert names[:3] == [f"p{first + 40}", "p0", f"p{first + 30}"]
    assert names[3:] == [f"p{i}" for i in range(1, first)]
    assert count == first + 50
    assert cursor is not None
    # The next page starts right after the first one, in join order.
    rest = room.page("p0", after=cursor, limit=roster.MAX_PAGE)
    assert [i.name for i in rest.participants] == [f"p{i}" for i in range(first, first + 50)]
    assert rest.next is None and rest.count == first + 50


def welcome_json(room: Room, pid: str) -> list[dict[str, Any]]:
    """The welcome's ``participants`` as sent: the cached JSON of the first page."""
    hall = room.rooms.rooms["hall"]
    people, count, cursor = room.rooms.welcome_roster_json(hall, pid)
    assert (count, cursor) == room.rooms.welcome_roster(hall, pid)[1:]
    wire: list[dict[str, Any]] = json.loads(p.encode(p.PresenceOut(joined=people)))["joined"]
    return wire


def test_the_cached_first_page_follows_leaves_and_changes() -> None:
    room = Room(threshold=3)
    room.fill(roster.PAGE_SIZE + 5)
    hall = room.rooms.rooms["hall"]
    me = room.ids["p0"]

    def sent_as(people: list[p.Participant], pid: str) -> None:
        # What the welcome sends (encoded once per change) is the page of the moment.
        assert welcome_json(room, pid) == [json.loads(p.encode(i)) for i in people]

    first, _, _ = room.rooms.welcome_roster(hall, me)
    sent_as(first, me)
    assert room.ids["p7"] in {i.id for i in first}
    room.rooms.leave(room.ids["p7"])
    again, _, _ = room.rooms.welcome_roster(hall, me)
    sent_as(again, me)
    assert room.ids["p7"] not in {i.id for i in again}
    room.send(f"p{roster.PAGE_SIZE + 2}", type="media", screen=True)
    shown, _, _ = room.rooms.welcome_roster(hall, me)
    assert shown[1].name == f"p{roster.PAGE_SIZE + 2}"  # after the host: a screen
    sent_as(shown, me)
    room.send("p3", type="rename", name="Trinity")  # someone on the page changed
    late = room.ids[f"p{roster.PAGE_SIZE + 4}"]  # not on the page: put in front
    renamed, _, _ = room.rooms.welcome_roster(hall, late)
    assert renamed[0].id == late and "Trinity" in [i.name for i in renamed]
    sent_as(renamed, late)


def test_roster_pages_walk_the_whole_room_in_join_order() -> None:
    room = Room()
    room.fill(45)
    seen: list[str] = []
    after = None
    while True:
        msg: dict[str, Any] = {"limit": 10, "ref": "r"}
        if after is not None:
            msg["after"] = after
        page = room.page("p3", **msg)
        assert page.ref == "r" and page.count == 45
        seen += [i.name for i in page.participants]
        after = page.next
        if after is None:
            break
    assert seen == [f"p{i}" for i in range(45)]


def test_roster_search_matches_a_name_anywhere_in_any_case() -> None:
    room = Room()
    room.fill(20)
    room.join("Grace Hopper")
    room.join("grace kelly")
    page = room.page("p0", q="  GRACE ")
    assert [i.name for i in page.participants] == ["Grace Hopper", "grace kelly"]
    assert page.q == "GRACE" and page.next is None
    paged = room.page("p0", q="grace", limit=1)
    assert [i.name for i in paged.participants] == ["Grace Hopper"]
    assert paged.next is not None
    rest = room.page("p0", q="grace", after=paged.next)
    assert [i.name for i in rest.participants] == ["grace kelly"]


@pytest.mark.parametrize(
    ("msg", "code", "words"),
    [
        ({"limit": roster.MAX_PAGE + 1}, ErrorCode.BAD_MESSAGE, "limit must be"),
        ({"limit": 0}, ErrorCode.BAD_MESSAGE, "limit must be"),
        ({"after": "yesterday"}, ErrorCode.BAD_MESSAGE, "cursor"),
        ({"after": "12.x" + "y" * roster.MAX_CURSOR}, ErrorCode.BAD_MESSAGE, "cursor"),
        ({"after": "-5.p_x"}, ErrorCode.BAD_MESSAGE, "cursor"),
        ({"q": "a" * (roster.MAX_QUERY + 1)}, ErrorCode.TOO_LONG, "at most"),
    ],
)
def test_bad_roster_requests_are_refused_clearly(
    msg: dict[str, Any], code: str, words: str
) -> None:
    room = Room()
    room.fill(3)
    with pytest.raises(ProtocolError) as caught:
        room.send("p1", type="roster", ref="bad", **msg)
    assert caught.value.code == code and words in caught.value.message
    assert caught.value.ref == "bad"


def test_a_wrongly_typed_roster_request_fails_validation() -> None:
    with pytest.raises(ProtocolError) as caught:
        p.decode(json.dumps({"type": "roster", "limit": "all"}))
    assert caught.value.code == ErrorCode.BAD_MESSAGE


def test_only_members_page_the_roster() -> None:
    room = Room()
    room.fill(2)
    with pytest.raises(ProtocolError) as caught:
        room.rooms.handle("p_nobody", p.Roster())
    assert caught.value.code == ErrorCode.NOT_JOINED


def test_presence_frames_read_as_single_events() -> None:
    info = p.Participant(id="p_a", name="A")
    out = p.PresenceOut(
        joined=[info], left=[p.Departure(id="p_b", reason="left")], updated=[info], count=3
    )
    assert [type(e) for e in presence.as_events(out)] == [
        p.ParticipantLeft,
        p.ParticipantJoined,
        p.ParticipantUpdated,
    ]
    wire = json.loads(p.encode(out))
    assert wire == {
        "type": "presence",
        "joined": [json.loads(p.encode(p.ParticipantJoined(participant=info)))["participant"]],
        "left": [{"id": "p_b", "reason": "left"}],
        "updated": [wire["joined"][0]],
        "count": 3,
        "truncated": False,
    }
