"""The meeting's chat burnt into the video: a panel of the latest lines at the bottom.

Each public chat line of the manifest (system lines included, dimmer) appears when it
was sent and stays :data:`SHOW` seconds; the panel holds the last :data:`ROWS` rows of
what is showing (a long line wraps on two rows, then is cut with ``...``).  The panel
darkens the picture under it (a translucent band) and draws the text in the tiles'
font (capitals, ASCII).  Drawn in YUV 4:2:0 like the rest of the frame.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from .font import draw_text

__all__ = ["ROWS", "SHOW", "ChatPanel"]

SHOW = 8.0  # seconds a line stays on screen
ROWS = 4  # rows on screen at most
WRAP = 2  # rows one line may take
TEXT, SYSTEM = 235, 170  # luma of a person's line, of a system line


@dataclass(frozen=True, slots=True)
class _Line:
    t: float
    text: str
    system: bool


def _ascii(text: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text.replace("\n", " "))


class ChatPanel:
    """The chat of one recording, drawn at a time (see the module docstring)."""

    def __init__(self, doc: dict[str, Any], t0: float, width: int, height: int, scale: int):
        lines = []
        for e in doc.get("events") or []:
            if not isinstance(e, dict) or e.get("type") != "chat":
                continue
            text, who = str(e.get("text") or ""), str(e.get("name") or "")
            system = bool(e.get("system"))
            shown = text if system or not who else f"{who}: {text}"
            lines.append(_Line(float(e.get("t", 0)) - t0, _ascii(shown), system))
        lines.sort(key=lambda line: line.t)
        self.lines = lines
        self.times = [line.t for line in lines]
        self.scale = scale
        self.margin = max(4, width // 80) & ~1
        self.pad = 4 * scale
        self.row_h = 10 * scale
        self.width = width
        self.height = height
        self.chars = max(8, (width - 2 * self.margin - 2 * self.pad) // (6 * scale))
        self._wrapped: dict[int, list[tuple[str, bool]]] = {}

    def _wrap(self, i: int) -> list[tuple[str, bool]]:
        """Line ``i`` in rows (once per line: the same rows show frame after frame)."""
        done = self._wrapped.get(i)
        if done is not None:
            return done
        line = self.lines[i]
        rows: list[str] = []
        row = ""
        # a chat line may be long: only what can show is wrapped
        for word in line.text[: self.chars * (WRAP + 1)].split(" "):
            while word:
                room = self.chars - (len(row) + 1 if row else 0)
                if len(word) <= room:
                    row, word = (f"{row} {word}" if row else word), ""
                elif len(word) <= self.chars or room < 4:  # on the next row
                    rows.append(row)
                    row = ""
                else:  # a word longer than a row: cut where the row ends
                    rows.append(f"{row} {word[:room]}" if row else word[:room])
                    row, word = "", word[room:]
        rows.append(row)
        if len(rows) > WRAP or len(line.text) > self.chars * (WRAP + 1):
            rows = rows[: WRAP - 1] + [rows[WRAP - 1][: self.chars - 3] + "..."]
        done = self._wrapped[i] = [(r, line.system) for r in rows]
        return done

    def rows_at(self, t: float) -> list[tuple[str, bool]]:
        """The rows on screen at ``t`` (oldest first): (text, is a system line)."""
        lo = bisect.bisect_right(self.times, t - SHOW)
        hi = bisect.bisect_right(self.times, t)
        rows: list[tuple[str, bool]] = []
        for i in range(hi - 1, lo - 1, -1):  # the newest lines, whole, as many as fit
            wrapped = self._wrap(i)
            if len(rows) + len(wrapped) > ROWS:
                break
            rows[:0] = wrapped
        return rows

    def rect(self, rows: int) -> tuple[int, int, int, int]:
        """The panel's rectangle (x, y, w, h; even) for ``rows`` rows."""
        h = (rows * self.row_h + 2 * self.pad) & ~1
        y = (self.height - self.margin - h) & ~1
        return self.margin, max(0, y), self.width - 2 * self.margin, min(h, self.height)

    def draw(self, planes: Any, t: float) -> None:
        """Draw the panel into the frame's (Y, U, V) planes, if a line shows at ``t``."""
        rows = self.rows_at(t)
        if not rows:
            return
        x, y, w, h = self.rect(len(rows))
        luma = planes[0][y : y + h, x : x + w]
        luma >>= 2  # a quarter of the brightness: translucent dark
        luma += 12
        for chroma in planes[1:]:
            region = chroma[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2]
            region >>= 2  # towards grey (128): a quarter of the colour
            region += 96
        for i, (text, system) in enumerate(rows):
            ty = y + self.pad + i * self.row_h
            draw_text(planes[0], text, x + self.pad, ty, self.scale, SYSTEM if system else TEXT)
