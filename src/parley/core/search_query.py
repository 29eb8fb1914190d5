"""A chat search query, reduced to plain words.

Users type words; the stores' query languages (FTS5 MATCH, PostgreSQL tsquery)
have operators (quotes, NEAR, ``*``, parentheses, ``-``, ``column:``) that are not
for them and could make a query fail or cost a lot.  So a query is taken as its
words only: every character that is not part of a word separates words, and the
stores search for messages containing all of them (each quoted as a literal).
"""

from __future__ import annotations

import re
from typing import Final

from .protocol import ErrorCode, ProtocolError

#: Longest query accepted (characters), and most words in it.
MAX_QUERY_CHARS: Final = 200
MAX_QUERY_WORDS: Final = 8
#: Longest word kept (longer runs are cut: nothing real is that long).
MAX_WORD_CHARS: Final = 64

_WORD = re.compile(r"\w+")


def query_words(raw: str) -> tuple[str, ...]:
    """The words of ``raw``, lowercased, at most :data:`MAX_QUERY_WORDS` of them.

    Raises :class:`ProtocolError` ``too_long`` or ``empty`` (a query with no word).
    """
    if len(raw) > MAX_QUERY_CHARS:
        raise ProtocolError(ErrorCode.TOO_LONG, f"a search is at most {MAX_QUERY_CHARS} characters")
    words: list[str] = []
    for match in _WORD.finditer(raw):
        word = match.group().lower()[:MAX_WORD_CHARS]
        if word not in words:
            words.append(word)
    if not words:
        raise ProtocolError(ErrorCode.EMPTY, "search for at least one word")
    if len(words) > MAX_QUERY_WORDS:
        raise ProtocolError(ErrorCode.TOO_LONG, f"a search has at most {MAX_QUERY_WORDS} words")
    return tuple(words)


def fts5_match(words: tuple[str, ...], room: str | None = None) -> str:
    """An FTS5 MATCH expression: every word as a quoted string in the ``text`` column (no
    operator survives), and the room's name as a phrase in the ``room`` column."""
    quoted = ["text : " + _quote(w) for w in words]
    # A name of only separators ("---") has no token to match: the room filter alone.
    if room is not None and _WORD.search(room.replace("_", " ")):
        quoted.insert(0, "room : " + _quote(room))
    return " AND ".join(quoted)


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'
