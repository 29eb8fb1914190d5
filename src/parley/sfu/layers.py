"""Simulcast layer choice: which layer of a track a subscriber's slot should show.

A published video may come as 2-3 layers (lowest first).  A slot shows the lowest layer
that covers the tile it is rendered in (``view``, told by the subscriber), lowered by
the subscriber's bandwidth ``penalty`` (:mod:`.bandwidth`), and never a layer the
publisher is not sending.  The forwarder asks every tick and switches at a key frame of
the target layer.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["COVER", "LIVE_FOR", "is_live", "layer_sizes", "wanted_layer"]

#: A layer covers a tile when its width or height is at least this share of the tile's.
COVER = 0.75
#: A layer is live while it sent packets this recently (seconds).  A browser that drops a
#: layer (short of CPU or bandwidth) just stops sending it; its subscribers see a frozen
#: picture until the SFU notices and moves them to a live layer, so this is short: a few
#: frames even at a degraded 5-10 fps.
LIVE_FOR = 0.5

Size = tuple[int, int]


def is_live(seen_at: float, now: float) -> bool:
    """Whether a layer last seen (packets arrived) at ``seen_at`` is being sent."""
    return now - seen_at <= LIVE_FOR


def layer_sizes(measured: Sequence[Size]) -> list[Size] | None:
    """Each layer's (width, height): measured (from its key frames; (0, 0) not yet), or
    derived from the nearest measured one (x2 per layer up, /2 down); None if none is."""
    known = [i for i, (w, h) in enumerate(measured) if w and h]
    if not known:
        return None
    sizes = []
    for i, (w, h) in enumerate(measured):
        if w and h:
            sizes.append((w, h))
            continue
        j = min(known, key=lambda k: abs(k - i))
        f = 2.0 ** (i - j)
        sizes.append((int(measured[j][0] * f), int(measured[j][1] * f)))
    return sizes


def wanted_layer(
    view: Size | None, measured: Sequence[Size], live: Sequence[bool], penalty: int
) -> int:
    """Index of the layer to show: tile size, then bandwidth, then liveness.

    Size: the lowest layer whose width or height is at least ``COVER`` of the tile's
    (``view``; sizes from :func:`layer_sizes`); no ``view`` known or no size measured:
    the top layer; a tile of size 0 (not shown): the lowest.  Bandwidth: ``penalty``
    layers lower.  Liveness: a layer that is not ``live`` (e.g. its encoder dropped it) is
    replaced by the nearest live one, lower first; none live: the choice stands.
    """
    n = len(measured)
    want = n - 1
    if view is not None:
        w, h = view
        if w <= 0 or h <= 0:
            want = 0
        else:
            sizes = layer_sizes(measured)
            if sizes is not None:
                want = next(
                    (i for i, (lw, lh) in enumerate(sizes) if lw >= COVER * w or lh >= COVER * h),
                    n - 1,
                )
    want = max(0, want - penalty)
    alive = [i for i, ok in enumerate(live) if ok]
    if alive and want not in alive:
        lower = [i for i in alive if i < want]
        want = lower[-1] if lower else alive[0]
    return want
