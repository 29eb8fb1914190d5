"""The recording rules at the core: frames in, effects out (parley.core.recording)."""

from __future__ import annotations

import pytest

from parley.core import protocol as p
from parley.core.effects import RoomEmptied, StartRecording, StopRecording
from parley.core.protocol import ErrorCode
from parley.core.state import Recording, RoomConfig
from tests.core.test_moderation import Meeting, delivered


@pytest.fixture
def m() -> Meeting:
    meeting = Meeting()
    meeting.rooms.recordable = True
    meeting.join("Host")
    meeting.join("Bob")
    return meeting


def test_a_host_starts_and_stops_everyone_is_told(m: Meeting) -> None:
    effects = m.frame("Host", type="record", action="start")
    start = [e for e in effects if isinstance(e, StartRecording)]
    assert len(start) == 1 and start[0].by == m.ids["Host"] and start[0].by_name == "Host"
    assert [d.message.recording for d in delivered(effects, p.RoomUpdated)] == [True]
    assert m.notes(effects) == ["Host started recording the meeting"]
    room = m.rooms.room("team")
    assert room is not None and room.recording is not None
    assert room.recording.id == start[0].id
    effects = m.frame("Host", type="record", action="stop")
    stop = [e for e in effects if isinstance(e, StopRecording)]
    assert [(s.id, s.reason) for s in stop] == [(start[0].id, "stopped")]
    assert [d.message.recording for d in delivered(effects, p.RoomUpdated)] == [False]
    assert m.notes(effects) == ["Host stopped recording the meeting"]


def test_bad_requests_are_refused(m: Meeting) -> None:
    m.refused(ErrorCode.FORBIDDEN, "Bob", type="record", action="start")
    m.refused(ErrorCode.NOT_RECORDING, "Host", type="record", action="stop")
    m.frame("Host", type="record", action="start")
    m.refused(ErrorCode.ALREADY_RECORDING, "Host", type="record", action="start")
    m.refused(ErrorCode.BAD_MESSAGE, "Host", type="record", action="pause")


def test_a_mesh_server_cannot_record(m: Meeting) -> None:
    m.rooms.recordable = False
    m.refused(ErrorCode.RECORDING_UNAVAILABLE, "Host", type="record", action="start")


def test_the_recording_ends_with_the_meeting(m: Meeting) -> None:
    m.frame("Host", type="record", action="start")
    effects = m.rooms.leave(m.ids["Bob"]) + m.rooms.leave(m.ids["Host"])
    stops = [e for e in effects if isinstance(e, StopRecording)]
    assert [s.reason for s in stops] == ["meeting-ended"]
    assert effects.index(stops[0]) < next(
        i for i, e in enumerate(effects) if isinstance(e, RoomEmptied)
    )
    m.join("Host")
    effects = m.frame("Host", type="record", action="start")
    assert [e for e in effects if isinstance(e, StartRecording)]
    effects = m.frame("Host", type="end-meeting")
    assert [e.reason for e in effects if isinstance(e, StopRecording)] == ["meeting-ended"]


def test_a_recording_that_failed_is_cleared_once(m: Meeting) -> None:
    effects = m.frame("Host", type="record", action="start")
    rec_id = next(e.id for e in effects if isinstance(e, StartRecording))
    assert m.rooms.recording_failed("team", "20000101T000000Z-000000", "disk-full") == []
    effects = m.rooms.recording_failed("team", rec_id, "disk-full")
    assert [d.message.recording for d in delivered(effects, p.RoomUpdated)] == [False]
    assert "disk is full" in m.notes(effects)[0]
    assert m.rooms.recording_failed("team", rec_id, "disk-full") == []


def test_settings_changes_keep_saying_it_records(m: Meeting) -> None:
    m.frame("Host", type="record", action="start")
    effects = m.rooms.update_settings(m.ids["Host"], p.RoomSettingsUpdate(locked=True), None)
    assert [d.message.recording for d in delivered(effects, p.RoomUpdated)] == [True]


def test_a_server_records_a_bounded_number_of_rooms(
    m: Meeting, monkeypatch: pytest.MonkeyPatch
) -> None:
    from parley.core import recording

    monkeypatch.setattr(recording, "MAX_RECORDINGS", 1)
    other = m.rooms.join("other", "Eve", 1, address="10.0.0.9")
    m.rooms.handle(other.member.info.id, p.Record(action="start"))
    m.refused(ErrorCode.TOO_MANY, "Host", type="record", action="start")


def test_another_nodes_recording_state_starts_and_stops_it_here(m: Meeting) -> None:
    """A cluster: the state another node shares hands this node the start and the stop
    (its media side decides whether it writes); the change is journalled for the others."""
    m.rooms.journal.clear()
    m.frame("Host", type="record", action="start")
    assert ("room", "team", None) in m.rooms.journal  # shared with the other nodes
    room = m.rooms.room("team")
    assert room is not None and room.recording is not None
    mine = room.recording
    m.rooms.recording_here("team", mine.id)
    assert room.recording.node == m.rooms.node
    # Another node's state says: stopped there, then a new one started there.
    effects = m.rooms.put_remote_room("team", room.created_at, RoomConfig(), set(), 0, None)
    assert [(type(e), e.id) for e in effects] == [(StopRecording, mine.id)]
    new = Recording("20261207T000000Z-abcdef", "admin", "An administrator", 1)
    effects = m.rooms.put_remote_room("team", room.created_at, RoomConfig(), set(), 0, new)
    assert [(type(e), e.id) for e in effects] == [(StartRecording, new.id)]
    # The same recording again (its writer named itself): nothing to do.
    named = Recording(new.id, new.by, new.by_name, new.since, "n_other")
    assert m.rooms.put_remote_room("team", room.created_at, RoomConfig(), set(), 0, named) == []
    assert room.recording == named
    # The meeting ends on another node: the recording stops with it.
    effects = m.rooms.drop_room("team")
    assert [(type(e), e.reason) for e in effects if isinstance(e, StopRecording)] == [
        (StopRecording, "meeting-ended")
    ]
