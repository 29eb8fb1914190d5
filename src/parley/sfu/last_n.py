"""Last-N: which published tracks each subscriber's slots show.

Tracks are ranked by who spoke last (then by who joined first); video puts screen
shares first, then the videos being sent, then idle ones (:func:`rank_video`).  Each
subscriber gets the first ``limit`` of the ranking (``--last-n`` video slots, every
audio slot), leaving out its own tracks and those in a codec none of its slots accepts
(:func:`choose`).  A chosen track already shown stays in its slot, so a ranking change
moves as few streams as possible; the others fill the freed slots in rank order
(:func:`fill`).

Plain functions over anything with the attributes they read (:class:`Track`,
:class:`Speaking`): the forwarder's sources and publishers, or test values.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Hashable, Iterable, Sequence
from typing import Protocol, TypeVar

__all__ = ["SENDING_FOR", "Speaking", "Track", "choose", "fill", "is_idle", "rank_video"]

#: A video counts as being sent while any of its streams arrived this recently (seconds);
#: longer than a simulcast layer's liveness, so a short gap does not hand its slot away.
SENDING_FOR = 2.0


class Track(Hashable, Protocol):
    """What last-N reads of a published track."""

    @property
    def pid(self) -> str: ...  # its publisher

    @property
    def codec(self) -> str: ...  # upper case, e.g. "VP8"

    @property
    def screen(self) -> bool: ...  # a screen share


class Speaking(Protocol):
    """What last-N reads of a publisher to order them."""

    @property
    def last_active(self) -> float: ...  # when it last spoke (-inf: never)

    @property
    def order(self) -> int: ...  # join order


T = TypeVar("T", bound=Track)
P = TypeVar("P", bound=Speaking)


def recent_first(publishers: Iterable[P]) -> list[P]:
    """Publishers by who spoke last, then by who joined first."""
    return sorted(publishers, key=lambda p: (-p.last_active, p.order))


def is_idle(*, screen: bool, camera_off: bool, last_seen: Iterable[float], now: float) -> bool:
    """A video that must not keep a live camera out of the last N.

    A camera whose participant said it is off (Firefox may keep sending the last frame
    once a second), or any video of which nothing arrived for ``SENDING_FOR`` seconds
    (Chromium sends nothing once the track is replaced by none).  ``last_seen``: when
    each of its streams (simulcast layers) last had packets."""
    if not screen and camera_off:
        return True
    return all(now - seen > SENDING_FOR for seen in last_seen)


def rank_video(tracks: Iterable[T], idle: Container[T]) -> list[T]:
    """Video tracks (given by who spoke last): screen shares first, then the videos being
    sent, then the ``idle`` ones; the given order is kept within each group."""
    return sorted(tracks, key=lambda t: (not t.screen, t in idle))


def choose(ranked: Iterable[T], pid: str, limit: int, accepted: Container[str]) -> list[T]:
    """The first ``limit`` tracks of ``ranked`` for subscriber ``pid``: not its own, and
    in a codec it ``accepted`` (in any of its slots)."""
    wanted: list[T] = []
    for track in ranked:
        if len(wanted) >= limit:
            break
        if track.pid != pid and track.codec in accepted:
            wanted.append(track)
    return wanted


def fill(
    current: Sequence[T | None], accepts: Sequence[Collection[str]], wanted: Sequence[T]
) -> list[T | None]:
    """The track each slot shows next (None: empty), slot by slot.

    ``current``: what each slot shows now; ``accepts``: the codecs each slot accepts;
    ``wanted``: the tracks to show, best first (:func:`choose`).  A wanted track already
    in a slot stays there; the others go, in order, to the first free slot accepting
    their codec; a track no free slot accepts is left out."""
    keep = {t for t in current if t is not None and t in wanted}
    todo = [t for t in wanted if t not in keep]
    out: list[T | None] = []
    for track, codecs in zip(current, accepts, strict=True):
        if track is not None and track in keep:
            out.append(track)
            continue
        new = None
        for i, candidate in enumerate(todo):
            if candidate.codec in codecs:
                new = todo.pop(i)
                break
        out.append(new)
    return out
