"""Who a resume token restores, and what a room keeps when it empties (issue 11).

A resume token only proves who its holder was.  These are the rules of
admission the core applies to it, and to the settings of an emptied room, with
injected clocks and no I/O.
"""

from __future__ import annotations

import dataclasses

import pytest

from parley.config import Limits
from parley.core import protocol as p
from parley.core.admission import Enter, JoinRequest, NeedPassword, Refuse
from parley.core.effects import RoomEmptied, SaveMeeting
from parley.core.protocol import ErrorCode, ProtocolError
from parley.core.rooms import Rooms
from parley.core.state import MeetingRecord, RoomConfig, StoredRoom
from tests.core.support import bare


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def mono() -> Clock:
    return Clock(100.0)


@pytest.fixture
def rooms(mono: Clock) -> Rooms:
    return Rooms(Limits(), monotonic=mono)


def join(rooms: Rooms, name: str, **kw: object) -> str:
    return rooms.join("team", name, 1, **kw).member.info.id  # type: ignore[arg-type]


def restores(rooms: Rooms, pid: str, stored: StoredRoom | None = None, room: str = "team") -> str:
    """The role a resume of ``pid`` restores ("" for none: it would join as someone new)."""
    decision = rooms.decide(JoinRequest(room, "X", resume_id=pid), stored)
    return decision.role if isinstance(decision, Enter) and decision.restore else ""


def refused(code: str, fn: object, *args: object, **kw: object) -> None:
    with pytest.raises(ProtocolError) as info:
        fn(*args, **kw)  # type: ignore[operator]
    assert info.value.code == code


# -- resume: only an identity the server still holds, in its current role -------------


def test_removed_host_with_old_token_comes_back_as_nobody(rooms: Rooms) -> None:
    """The critical hole: a host's old token after the room was protected."""
    first = join(rooms, "First")  # host: first in
    real = join(rooms, "Real host")
    rooms.set_role(first, p.SetRole(to=real, role="host"))
    rooms.set_role(real, p.SetRole(to=first, role="participant"))  # demoted...
    rooms.remove(real, p.Remove(to=first))  # ...and removed
    rooms.update_settings(real, p.RoomSettingsUpdate(locked=True), None)
    # The old token names `first`: the server holds no such member now.
    assert restores(rooms, first) == ""
    refused(ErrorCode.LOCKED, rooms.join, "team", "First", 1, resume_id=first)
    assert [m.info.name for m in rooms.rooms["team"].members.values()] == ["Real host"]


def test_left_host_resume_goes_through_password_and_lobby(rooms: Rooms) -> None:
    first = join(rooms, "First")
    host = join(rooms, "Host")
    rooms.set_role(first, p.SetRole(to=host, role="host"))
    rooms.leave(first)
    rooms.update_settings(host, p.RoomSettingsUpdate(password="pw", lobby=True), "hash")
    refused(ErrorCode.PASSWORD_REQUIRED, rooms.join, "team", "First", 1, resume_id=first)
    back = rooms.join("team", "First", 1, resume_id=first, password_verified=True)
    assert back.waiting and back.member.info.id != first
    assert back.member.info.role == "participant" and back.resumed is False


def test_resume_within_grace_takes_the_current_role(rooms: Rooms, mono: Clock) -> None:
    host = join(rooms, "Host")
    bob = join(rooms, "Bob")
    rooms.set_role(host, p.SetRole(to=bob, role="host"))
    rooms.set_role(bob, p.SetRole(to=host, role="observer"))
    rooms.disconnected(host)
    mono.t += 10
    rooms.update_settings(bob, p.RoomSettingsUpdate(locked=True, password="x"), "hash")
    again = rooms.join("team", "Host", 1, resume_id=host)  # still a member: no checks
    assert again.resumed and again.member.info.id == host
    assert again.member.info.role == "observer"


def test_barred_identity_cannot_resume(rooms: Rooms) -> None:
    host = join(rooms, "Host")
    eve = join(rooms, "Eve", address="10.0.0.9")
    rooms.remove(host, p.Remove(to=eve, ban=True))
    assert restores(rooms, eve) == ""
    refused(ErrorCode.BANNED, rooms.join, "team", "Eve", 1, resume_id=eve, address="10.9.9.9")


def test_token_for_another_room_restores_nothing(rooms: Rooms) -> None:
    a = join(rooms, "A")
    assert restores(rooms, a, room="other") == ""


# -- after a restart: roles come from the stored meeting, for one grace -------------------


def stored_meeting(rooms: Rooms) -> StoredRoom:
    record = rooms.meeting_record("team")
    assert record is not None
    room = rooms.rooms["team"]
    return StoredRoom(room.created_at, dataclasses.replace(room.config), record)


def test_restart_restores_stored_roles_not_token_roles(mono: Clock) -> None:
    before = Rooms(Limits(), monotonic=mono)
    host = join(before, "Host")
    bob = join(before, "Bob")
    cy = join(before, "Cy")
    before.set_role(host, p.SetRole(to=cy, role="host"))
    before.set_role(cy, p.SetRole(to=host, role="participant"))  # Host demoted
    before.update_settings(cy, p.RoomSettingsUpdate(password="pw", locked=True), "hash")
    stored = stored_meeting(before)
    assert stored.meeting == MeetingRecord({host: "participant", bob: "participant", cy: "host"})

    after = Rooms(Limits(), monotonic=mono)  # a new process: nothing in memory
    assert restores(after, host, stored) == "participant"
    kw = {"config": stored.config, "meeting": stored.meeting}
    back = after.join("team", "Host", 1, resume_id=host, **kw)  # type: ignore[arg-type]
    # A member of the interrupted meeting: through the lock and password, same id and role.
    assert back.resumed and back.member.info.id == host
    assert back.member.info.role == "participant"
    again = after.join("team", "Cy", 1, resume_id=cy, **kw)  # type: ignore[arg-type]
    assert again.member.info.role == "host"
    # A stranger is still stopped by the lock.
    refused(ErrorCode.LOCKED, after.join, "team", "Mallory", 1, **kw)


def test_restored_members_wait_only_one_grace(mono: Clock) -> None:
    before = Rooms(Limits(), monotonic=mono)
    host = join(before, "Host")
    bob = join(before, "Bob")
    before.update_settings(host, p.RoomSettingsUpdate(password="pw"), "hash")
    stored = stored_meeting(before)
    after = Rooms(Limits(), monotonic=mono)
    kw = {"config": stored.config, "meeting": stored.meeting}
    after.join("team", "Host", 1, resume_id=host, **kw)  # type: ignore[arg-type]
    mono.t += Limits().resume_grace
    assert restores(after, bob) == ""
    refused(ErrorCode.PASSWORD_REQUIRED, after.join, "team", "Bob", 1, resume_id=bob)


def test_stored_bans_hold_after_a_restart(mono: Clock) -> None:
    before = Rooms(Limits(), monotonic=mono)
    host = join(before, "Host")
    eve = join(before, "Eve", address="10.0.0.9")
    before.remove(host, p.Remove(to=eve, ban=True))
    stored = stored_meeting(before)
    assert f"pid:{eve}" in stored.meeting.banned  # type: ignore[union-attr]
    after = Rooms(Limits(), monotonic=mono)
    assert restores(after, eve, stored) == ""
    decision = after.decide(JoinRequest("team", "Eve", address="10.0.0.9"), stored)
    assert decision == Refuse(ErrorCode.BANNED, "you were removed from this meeting")


def test_membership_changes_are_saved(rooms: Rooms) -> None:
    joined = rooms.join("team", "A", 1)
    assert SaveMeeting("team") in bare(joined.effects)
    b = join(rooms, "B")
    a = joined.member.info.id
    assert SaveMeeting("team") in bare(rooms.set_role(a, p.SetRole(to=b, role="host")))
    assert SaveMeeting("team") in bare(rooms.leave(b))


# -- an emptied room: settings of a passer-by expire; managed ones stay ---------------------


def test_squatter_settings_expire_when_the_room_empties(rooms: Rooms) -> None:
    squatter = join(rooms, "Squatter")
    rooms.update_settings(
        squatter, p.RoomSettingsUpdate(password="pw", max_participants=1, lobby=True), "hash"
    )
    effects = rooms.leave(squatter)
    assert RoomEmptied("team", 1, None) in bare(effects)
    # The next comer finds an ordinary room.
    assert "team" not in rooms.rooms
    nxt = rooms.join("team", "Next", 1)
    assert not nxt.waiting and nxt.member.info.role == "host"
    assert rooms.rooms["team"].config == RoomConfig()


def test_invited_hosts_settings_outlive_the_meeting(rooms: Rooms) -> None:
    host = join(rooms, "Host", role="host")  # a role from a join token
    rooms.update_settings(host, p.RoomSettingsUpdate(password="pw", locked=True), "hash")
    effects = rooms.leave(host)
    (emptied,) = [e for e in effects if isinstance(e, RoomEmptied)]
    assert emptied.keep == RoomConfig(locked=False, password_hash="hash", managed=True)


def test_ending_the_meeting_expires_unmanaged_settings(rooms: Rooms) -> None:
    host = join(rooms, "Host")
    rooms.update_settings(host, p.RoomSettingsUpdate(password="pw", locked=True), "hash")
    effects = rooms.end_meeting(host, p.EndMeeting())
    assert bare(effects)[1] == RoomEmptied("team", 1, None)


# -- room-creation flood: rooms held only by a resume grace give way -------------------------


def test_full_server_evicts_a_room_held_only_by_the_grace(mono: Clock) -> None:
    rooms = Rooms(dataclasses.replace(Limits(), max_rooms=2), monotonic=mono)
    a = rooms.join("one", "A", 1).member.info.id
    rooms.join("two", "B", 1)
    refused(ErrorCode.TOO_MANY, rooms.make_room_for, "three")
    rooms.disconnected(a)  # "one" is now held only for A's resume
    effects = rooms.make_room_for("three")
    assert "one" not in rooms.rooms and a not in rooms.members
    assert any(isinstance(e, RoomEmptied) for e in effects)
    rooms.join("three", "C", 1)
    assert sorted(rooms.rooms) == ["three", "two"]


def test_refused_join_opens_no_room(rooms: Rooms) -> None:
    config = RoomConfig(locked=True)
    refused(ErrorCode.LOCKED, rooms.join, "team", "A", 1, config=config)
    assert "team" not in rooms.rooms


# -- every outcome of Rooms.decide, and that deciding changes nothing ------------------------


def test_decide_answers_every_outcome_and_changes_nothing(mono: Clock) -> None:
    limits = dataclasses.replace(Limits(), max_rooms=2, max_lobby=1)
    rooms = Rooms(limits, monotonic=mono)
    host = rooms.join("team", "Host", 1, address="10.0.0.1").member.info.id

    def decide(room: str = "team", stored: StoredRoom | None = None, **kw: object) -> object:
        before = (dict(rooms.members), {n: dict(r.members) for n, r in rooms.rooms.items()})
        decision = rooms.decide(JoinRequest(room, "X", **kw), stored)  # type: ignore[arg-type]
        after = (dict(rooms.members), {n: dict(r.members) for n, r in rooms.rooms.items()})
        assert before == after  # a decision is only a decision
        return decision

    assert decide() == Enter("participant")
    assert decide(role="host") == Enter("host")
    assert decide(resume_id=host) == Enter("host", restore=True)
    assert decide(room="fresh") == Enter("host")  # an empty room's first comer
    rooms.join("other", "O", 1)
    assert decide(room="third") == Refuse(
        ErrorCode.TOO_MANY, "this server has too many open rooms; try later"
    )
    rooms.update_settings(host, p.RoomSettingsUpdate(password="pw"), "hash")
    assert decide() == NeedPassword("hash")
    assert decide(password_verified=True) == Enter("participant")
    assert decide(role="host") == Enter("host")  # a host by token needs no password
    rooms.update_settings(host, p.RoomSettingsUpdate(locked=True), None)
    assert decide(password_verified=True) == Refuse(ErrorCode.LOCKED, "the room is locked")
    rooms.update_settings(host, p.RoomSettingsUpdate(locked=False, lobby=True), None)
    assert decide(password_verified=True) == Enter("participant", lobby=True)
    rooms.join("team", "Waiting", 1, password_verified=True)
    assert decide(password_verified=True) == Refuse(
        ErrorCode.TOO_MANY, "the lobby is full; try later"
    )
    # Lobby off: "Waiting" is let in (2 in the room), one seat left of 3.
    rooms.update_settings(host, p.RoomSettingsUpdate(lobby=False, max_participants=3), None)
    assert decide(password_verified=True) == Enter("participant")
    rooms.join("team", "Second", 1, password_verified=True, address="10.0.0.3")
    assert decide(password_verified=True) == Refuse(
        ErrorCode.ROOM_FULL, "room team is full (3 participants)"
    )
    assert decide(resume_id=host) == Enter("host", restore=True)  # a member, full or not
    second = next(pid for pid, m in rooms.members.items() if m.info.name == "Second")
    rooms.remove(host, p.Remove(to=second, ban=True))
    assert decide(address="10.0.0.3", password_verified=True) == Refuse(
        ErrorCode.BANNED, "you were removed from this meeting"
    )
