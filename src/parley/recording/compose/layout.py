"""Where the tiles go: a grid of cameras, or a shared screen large with the cameras beside it.

Pure functions of what is visible at one moment.  Rectangles are ``(x, y, w, h)`` in
output pixels, even numbers (the encoders' 4:2:0 chroma needs them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Tile", "fit", "layout"]

Rect = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class Tile:
    """One tile: whose (a track key), where, and whether it is the active speaker's."""

    key: str
    rect: Rect
    speaker: bool = False
    screen: bool = False


def _even(v: float) -> int:
    return int(v) & ~1


def _grid(n: int, x: int, y: int, w: int, h: int, gap: int) -> list[Rect]:
    """``n`` cells of 16:9 filling the box ``(x, y, w, h)`` as well as a grid can."""
    if n <= 0:
        return []
    best: tuple[float, int, int] = (0.0, 1, n)
    for cols in range(1, n + 1):
        rows = math.ceil(n / cols)
        cw, ch = (w - gap * (cols - 1)) / cols, (h - gap * (rows - 1)) / rows
        tw = min(cw, ch * 16 / 9)
        if tw > best[0]:
            best = (tw, cols, rows)
    tw, cols, rows = best
    th = tw * 9 / 16
    total_h = rows * th + gap * (rows - 1)
    out = []
    for i in range(n):
        r, c = divmod(i, cols)
        in_row = min(cols, n - r * cols)
        row_w = in_row * tw + gap * (in_row - 1)
        cx = x + (w - row_w) / 2 + c * (tw + gap)
        cy = y + (h - total_h) / 2 + r * (th + gap)
        out.append((_even(cx), _even(cy), _even(tw), _even(th)))
    return out


def layout(
    cameras: list[str], screens: list[str], speaker: str | None, width: int, height: int
) -> list[Tile]:
    """Tiles for the visible ``cameras`` and ``screens`` (track keys, in a stable order);
    ``speaker``: the key of the active speaker's camera, if visible.

    A shared screen (the first one) takes the left three quarters and the cameras stack
    in the column beside it; otherwise the cameras share a grid, the active speaker's
    first.  The active speaker's tile is marked (drawn with a highlight)."""
    gap = max(4, width // 160)
    if speaker in cameras:  # the active speaker first: the eye goes there
        cameras = [speaker] + [c for c in cameras if c != speaker]
    if screens:
        side = _even(width / 4) if cameras else 0
        main_w = width - side - (gap if cameras else 0)
        (sx, sy, sw, sh) = _grid(1, 0, 0, main_w, height, gap)[0]
        tiles = [Tile(screens[0], (sx, sy, sw, sh), screen=True)]
        rects: list[Rect] = []
        if cameras:  # a column beside the screen, one camera per row
            th = min(
                _even(side * 9 / 16), _even((height - gap * (len(cameras) - 1)) / len(cameras))
            )
            tw = _even(th * 16 / 9)
            top = (height - (th * len(cameras) + gap * (len(cameras) - 1))) // 2
            rects = [
                (width - side + (side - tw) // 2, _even(top + i * (th + gap)), tw, th)
                for i in range(len(cameras))
            ]
        tiles += [Tile(k, r, speaker=k == speaker) for k, r in zip(cameras, rects, strict=True)]
        return tiles
    rects = _grid(len(cameras), 0, 0, width, height, gap)
    return [Tile(k, r, speaker=k == speaker) for k, r in zip(cameras, rects, strict=True)]


def fit(src_w: int, src_h: int, rect: Rect) -> Rect:
    """The largest rectangle of the source's aspect ratio centred in ``rect`` (letterbox)."""
    x, y, w, h = rect
    if src_w <= 0 or src_h <= 0:
        return rect
    scale = min(w / src_w, h / src_h)
    fw, fh = max(2, _even(src_w * scale)), max(2, _even(src_h * scale))
    return x + (w - fw) // 2 & ~1, y + (h - fh) // 2 & ~1, fw, fh
