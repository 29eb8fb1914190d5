"""The events the core names for the event log: in the effect that stores their cause,
only where the change is made (never for a change replicated from another node)."""

from __future__ import annotations

from typing import Any

from parley.core import protocol as p
from parley.core.effects import Effect, RoomEmptied, SaveMeeting
from tests.core.test_moderation import Meeting


def logged(effects: list[Effect]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (e.type, e.data)
        for effect in effects
        if isinstance(effect, SaveMeeting | RoomEmptied)
        for e in effect.events
    ]


def person(m: Meeting, name: str, role: str) -> dict[str, str]:
    return {"id": m.ids[name], "name": name, "role": role}


def test_a_meeting_from_start_to_finish() -> None:
    m = Meeting()
    first = m.rooms.join("team", "Ada", 1)
    m.ids["Ada"] = first.member.info.id
    assert logged(first.effects) == [
        ("room.started", {}),
        ("participant.joined", {"participant": person(m, "Ada", "host")}),
    ]
    second = m.rooms.join("team", "Bob", 1)
    m.ids["Bob"] = second.member.info.id
    assert logged(second.effects) == [
        ("participant.joined", {"participant": person(m, "Bob", "participant")})
    ]
    made = m.frame("Ada", type="set-role", to="Bob", role="observer")
    assert logged(made) == [
        (
            "role.changed",
            {
                "participant": person(m, "Bob", "observer"),
                "role": "observer",
                "by": person(m, "Ada", "host"),
            },
        )
    ]
    bob_left = m.rooms.leave(m.ids["Bob"])
    assert logged(bob_left) == [
        ("participant.left", {"participant": person(m, "Bob", "observer"), "reason": "left"})
    ]
    last = m.rooms.leave(m.ids["Ada"])
    types = [t for t, _ in logged(last)]
    assert types == ["participant.left", "room.finished"]
    assert "duration_ms" in logged(last)[1][1]


def test_the_event_is_stored_before_anyone_is_told() -> None:
    m = Meeting()
    m.join("Ada")
    effects = m.rooms.join("team", "Bob", 1).effects
    assert isinstance(effects[0], SaveMeeting) and effects[0].events


def test_a_handed_over_host_and_an_ended_meeting() -> None:
    m = Meeting()
    m.join("Ada")
    m.join("Bob")
    m.join("Cy")
    handed = m.rooms.leave(m.ids["Ada"])
    assert [t for t, _ in logged(handed)] == ["participant.left", "role.changed"]
    assert logged(handed)[1][1]["by"] is None  # nobody chose: the server handed over
    ended = m.frame("Bob", type="end-meeting")
    assert [t for t, _ in logged(ended)] == [
        "meeting.ended",
        "participant.left",
        "participant.left",
        "room.finished",
    ]
    assert logged(ended)[0][1] == {"by": {"id": m.ids["Bob"], "name": "Bob"}}
    assert {d["reason"] for t, d in logged(ended) if t == "participant.left"} == {"ended"}


def test_admitted_from_the_lobby_is_a_join_and_replicated_changes_log_nothing() -> None:
    m = Meeting()
    m.join("Ada")
    m.rooms.update_settings(m.ids["Ada"], p.RoomSettingsUpdate(lobby=True), None)
    m.join("Guest")
    assert logged(m.frame("Ada", type="admit", to="Guest")) == [
        ("participant.joined", {"participant": person(m, "Guest", "participant")})
    ]
    member = m.rooms.find(m.ids["Guest"])
    assert member is not None
    # What another node changed arrives through the replication entry points: the node
    # that made the change logged it; here nothing is.
    assert logged(m.rooms.put_remote_member(member, 1)) == []
    assert logged(m.rooms.drop_remote_member("team", m.ids["Guest"])) == []
