"""A room's record as a file: Markdown, JSON or HTML, written piece by piece.

Each format is a header, one chunk per message and a footer, so an export of any
size is streamed batch by batch (nothing holds the whole history).  Everything a
participant typed is escaped for the format: Markdown punctuation is backslashed,
HTML is entity-escaped (the HTML file has no script and a CSP that allows none).
"""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass, field
from typing import Final

import msgspec

from ..core.protocol import ChatRecord

FORMATS: Final = ("md", "json", "html")
CONTENT_TYPES: Final = {
    "md": "text/markdown; charset=utf-8",
    "json": "application/json",
    "html": "text/html; charset=utf-8",
}
#: Served with the HTML export: if it is ever opened from the server's origin, nothing in
#: it may run or load.
HTML_CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~])")


def filename(room: str, fmt: str, now: float | None = None) -> str:
    """``parley-chat-<room>-<date>.<ext>``: ASCII letters, digits, ``.``, ``_``, ``-`` only."""
    safe = _UNSAFE_FILENAME.sub("_", room).strip("._")[:64] or "room"
    stamp = time.strftime("%Y%m%d-%H%M", time.gmtime(time.time() if now is None else now))
    return f"parley-chat-{safe}-{stamp}.{fmt}"


def _utc(ts_ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts_ms / 1000)) + " UTC"


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


class _JsonEntry(msgspec.Struct, omit_defaults=True):
    id: int
    ts: int
    time: str
    sender: str
    name: str
    text: str
    to: str | None = None
    to_name: str | None = None
    system: bool = False
    kind: str | None = None
    data: dict[str, object] | None = None


@dataclass
class Exporter:
    """Renders one export; ``names`` learns participants' names as messages go by
    (a private message names its recipient when they have spoken before)."""

    fmt: str
    room: str
    exported_at: float = field(default_factory=time.time)
    names: dict[str, str] = field(default_factory=dict)
    _first: bool = True

    def header(self) -> bytes:
        when = _utc(int(self.exported_at * 1000))
        if self.fmt == "md":
            return f"# Chat of {_md(self.room)}\n\nExported {when}.\n\n".encode()
        if self.fmt == "json":
            head = msgspec.json.encode(
                {"format": "parley-chat/1", "room": self.room, "exported_at": when}
            )
            return head[:-1] + b', "messages": ['
        room = html.escape(self.room)
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>Chat of {room}</title>"
            "<style>body{font:15px/1.45 system-ui,sans-serif;max-width:48rem;margin:2rem auto;"
            "padding:0 1rem;color:#1d2330}li{list-style:none;margin:.35rem 0}"
            "time{color:#667;font-size:.85em;margin-right:.5em}.system{color:#556;"
            "font-style:italic}.private{background:#f3f0ff}b{margin-right:.35em}"
            "p{white-space:pre-wrap;display:inline;margin:0}</style></head><body>"
            f"<h1>Chat of {room}</h1><p>Exported {html.escape(when)}.</p><ol>\n"
        ).encode()

    def entries(self, records: list[ChatRecord]) -> bytes:
        return b"".join(self._entry(r) for r in records)

    def footer(self) -> bytes:
        if self.fmt == "md":
            return b""
        if self.fmt == "json":
            return b"]}\n"
        return b"</ol></body></html>\n"

    def _entry(self, r: ChatRecord) -> bytes:
        if not r.system:
            self.names[r.sender] = r.name
        elif r.data is not None and isinstance(r.data.get("id"), str):
            # Attendance entries name who came and went.
            self.names[r.data["id"]] = str(r.data.get("name", ""))
        to_name = self.names.get(r.to, r.to) if r.to is not None else None
        if self.fmt == "json":
            entry = _JsonEntry(
                id=r.id,
                ts=r.ts,
                time=_utc(r.ts),
                sender=r.sender,
                name=r.name,
                text=r.text,
                to=r.to,
                to_name=to_name,
                system=r.system,
                kind=r.kind,
                data=r.data,
            )
            chunk = msgspec.json.encode(entry)
            if self._first:
                self._first = False
                return chunk
            return b"," + chunk
        if self.fmt == "md":
            when = _utc(r.ts)
            body = _md(r.text).replace("\n", "  \n  ")
            if r.system:
                return f"- {when} · *{body}*\n".encode()
            who = f"**{_md(r.name)}**"
            if to_name is not None:
                who += f" → **{_md(to_name)}** (private)"
            return f"- {when} · {who}: {body}\n".encode()
        when = html.escape(_utc(r.ts))
        text = html.escape(r.text)
        if r.system:
            return f'<li class="system"><time>{when}</time><p>{text}</p></li>\n'.encode()
        who = f"<b>{html.escape(r.name)}</b>"
        cls = ""
        if to_name is not None:
            who += f"→ <b>{html.escape(to_name)}</b>(private) "
            cls = ' class="private"'
        return f"<li{cls}><time>{when}</time>{who}<p>{text}</p></li>\n".encode()
