"""Dominant speaker detection, from the RFC 6464 audio levels publishers send.

Per audio packet the forwarder counts the *loud* ones, whose level is at most
``speech_level`` (0 is the loudest, 127 silence), and their energy (``127 - level``);
that counting is inline on the packet path (``Source.receive``).  Every tick (200 ms)
:meth:`SpeakerDetector.tick` gets those counts per audio source: a publisher with at
least ``speech_packets`` loud packets spoke (last-N ranks it first), and the one with
the most energy becomes the dominant speaker.  A quiet tick keeps the speaker.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["SPEECH_LEVEL", "SPEECH_PACKETS", "SpeakerDetector", "loudest"]

#: RFC 6464 level (dBov below 0) at or above which a packet counts as speech.
SPEECH_LEVEL = 70
#: Loud packets per tick (of ~10 at 20 ms packets) for a publisher to count as speaking.
SPEECH_PACKETS = 3

#: One audio source's counts over a tick: (publisher id, loud packets, energy).
Activity = tuple[str, int, int]


def loudest(activity: Iterable[Activity], speech_packets: int) -> tuple[list[str], str | None]:
    """(who spoke this tick, in the order given; the one with the most energy, or None).

    On equal energy the first wins."""
    spoke: list[str] = []
    best: tuple[int, str] | None = None
    for pid, loud, energy in activity:
        if loud >= speech_packets:
            spoke.append(pid)
            if best is None or energy > best[0]:
                best = (energy, pid)
    return spoke, None if best is None else best[1]


class SpeakerDetector:
    """The room's dominant speaker, updated once a tick."""

    __slots__ = ("speech_level", "speech_packets", "speaker")

    def __init__(
        self, speech_level: int = SPEECH_LEVEL, speech_packets: int = SPEECH_PACKETS
    ) -> None:
        self.speech_level = speech_level
        self.speech_packets = speech_packets
        self.speaker: str | None = None

    def tick(self, activity: Iterable[Activity]) -> tuple[list[str], bool]:
        """(who spoke this tick, whether the dominant speaker changed)."""
        spoke, best = loudest(activity, self.speech_packets)
        if best is None or best == self.speaker:
            return spoke, False
        self.speaker = best
        return spoke, True

    def left(self, pid: str) -> bool:
        """``pid`` stopped publishing: True if it was the speaker (now none)."""
        if self.speaker != pid:
            return False
        self.speaker = None
        return True
