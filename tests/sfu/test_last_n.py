"""Last-N (``parley.sfu.last_n``): ranking, choosing and placing tracks, on plain values."""

from __future__ import annotations

from dataclasses import dataclass

from parley.sfu import last_n


@dataclass(frozen=True)
class Track:
    pid: str
    codec: str = "VP8"
    screen: bool = False


@dataclass(frozen=True)
class Pub:
    pid: str
    last_active: float
    order: int


ADA, BOB, CY, DEE = Track("ada"), Track("bob"), Track("cy", "H264"), Track("dee")


def test_publishers_by_who_spoke_last_then_who_joined_first() -> None:
    pubs = [Pub("a", float("-inf"), 0), Pub("b", 5.0, 1), Pub("c", 9.0, 2), Pub("d", 5.0, 3)]
    assert [p.pid for p in last_n.recent_first(pubs)] == ["c", "b", "d", "a"]


def test_screen_shares_first_then_videos_being_sent() -> None:
    screen = Track("dee", screen=True)
    ranked = last_n.rank_video([ADA, BOB, CY, screen], idle={ADA})
    assert ranked == [screen, BOB, CY, ADA]  # ada's camera is idle: after the live ones


def test_idle_video() -> None:
    now = 10.0
    assert not last_n.is_idle(screen=False, camera_off=False, last_seen=[9.0], now=now)
    assert last_n.is_idle(screen=False, camera_off=True, last_seen=[9.9], now=now)
    # a screen share is not a camera: "camera off" does not make it idle
    assert not last_n.is_idle(screen=True, camera_off=True, last_seen=[9.9], now=now)
    # nothing of it for SENDING_FOR seconds; a simulcast track counts any of its layers
    assert last_n.is_idle(screen=False, camera_off=False, last_seen=[7.0], now=now)
    assert not last_n.is_idle(screen=False, camera_off=False, last_seen=[7.0, 9.5], now=now)


def test_choose_skips_own_tracks_and_codecs_not_accepted() -> None:
    ranked = [ADA, BOB, CY, DEE]
    assert last_n.choose(ranked, "bob", 2, {"VP8", "H264"}) == [ADA, CY]
    assert last_n.choose(ranked, "bob", 2, {"VP8"}) == [ADA, DEE]  # no H.264 slot
    assert last_n.choose(ranked, "bob", 0, {"VP8"}) == []


def test_fill_keeps_tracks_in_place_and_fills_free_slots_in_rank_order() -> None:
    vp8_h264 = {"VP8", "H264"}
    # ada stays in slot 1; dee (chosen, not shown) takes the slot bob leaves
    assert last_n.fill([BOB, ADA, None], [vp8_h264] * 3, [ADA, DEE]) == [DEE, ADA, None]
    # cy (H.264) only fits the slot that accepts H.264, even if it is not the first free
    assert last_n.fill([None, None], [{"VP8"}, vp8_h264], [CY, ADA]) == [ADA, CY]
    # no free slot accepts it: left out
    assert last_n.fill([None], [{"VP8"}], [CY]) == [None]
