"""Dominant speaker detection (``parley.sfu.speaker``): per-tick counts in, speaker out."""

from __future__ import annotations

from parley.sfu.speaker import SpeakerDetector, loudest


def test_the_loudest_of_those_who_spoke_wins() -> None:
    # (pid, loud packets this tick, energy): bob had few loud packets, so did not speak
    spoke, best = loudest([("ada", 5, 400), ("bob", 2, 900), ("cy", 9, 700)], 3)
    assert spoke == ["ada", "cy"] and best == "cy"
    assert loudest([("ada", 2, 100)], 3) == ([], None)
    assert loudest([("ada", 3, 500), ("bob", 3, 500)], 3)[1] == "ada"  # a tie: first wins


def test_speaker_changes_only_when_someone_else_is_loudest() -> None:
    d = SpeakerDetector(speech_packets=3)
    assert d.speaker is None
    assert d.tick([("ada", 6, 600)]) == (["ada"], True)
    assert d.speaker == "ada"
    assert d.tick([("ada", 6, 300)]) == (["ada"], False)  # still ada: no change reported
    assert d.tick([]) == ([], False) and d.speaker == "ada"  # silence keeps the speaker
    assert d.tick([("ada", 4, 100), ("bob", 8, 800)]) == (["ada", "bob"], True)
    assert d.speaker == "bob"


def test_a_speaker_who_leaves_is_forgotten() -> None:
    d = SpeakerDetector()
    d.tick([("ada", 10, 900)])
    assert d.left("bob") is False and d.speaker == "ada"
    assert d.left("ada") is True and d.speaker is None
