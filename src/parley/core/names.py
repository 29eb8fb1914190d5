"""Room names and display names: what the server accepts, and the reason it gives."""

from __future__ import annotations

import re
import unicodedata

from ..config import Limits
from .protocol import ErrorCode, ProtocolError

ROOM_NAME = re.compile(r"[A-Za-z0-9._-]+")


def check_room_name(name: str, limits: Limits) -> str:
    if not (1 <= len(name) <= limits.room_name_max) or not ROOM_NAME.fullmatch(name):
        raise ProtocolError(
            ErrorCode.BAD_ROOM,
            f"room names are 1-{limits.room_name_max} letters, digits, '-', '_' or '.'",
        )
    return name


#: Never in a display name: controls, format characters (bidi controls, zero-width
#: space/joiners, soft hyphen...), line/paragraph separators, surrogates, private use.
_NAME_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co"})
#: The other default-ignorable code points (Unicode DerivedCoreProperties): drawn as
#: nothing.  Variation selectors and Mongolian selectors are allowed after a base they
#: apply to (see _name_char_has_a_job).
_NAME_IGNORABLE = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong/jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian variation selectors
    (0x2065, 0x2065),
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF0, 0xFFF8),
    (0xE0000, 0xE0FFF),  # tags, variation selectors supplement
)
#: Scripts whose letters join (Arabic, Syriac, N'Ko, Mandaic, Mongolian, Phags-pa,
#: presentation forms, Manichaean...Adlam): ZWNJ between two of their letters is visible.
_JOINING_SCRIPTS = (
    (0x0600, 0x08FF),
    (0x1800, 0x18AF),
    (0xA840, 0xA877),
    (0xFB50, 0xFDFF),
    (0xFE70, 0xFEFF),
    (0x10AC0, 0x10D3F),
    (0x10F30, 0x10FDF),
    (0x1E900, 0x1E95F),
)
_ZWNJ, _ZWJ, _BLACK_FLAG, _CANCEL_TAG = "\u200c", "\u200d", "\U0001f3f4", "\U000e007f"


def _in_ranges(ch: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in ranges)


def _joining_letter(name: str, i: int, step: int) -> bool:
    """Whether the first non-mark character from ``i`` on (walking by ``step``) is a
    letter of a joining script."""
    while 0 <= i < len(name) and unicodedata.category(name[i]) == "Mn":
        i += step
    return (
        0 <= i < len(name)
        and unicodedata.category(name[i]).startswith("L")
        and _in_ranges(name[i], _JOINING_SCRIPTS)
    )


def _name_char_has_a_job(name: str, i: int) -> bool:
    """Whether the invisible ``name[i]`` changes how its visible neighbours are drawn,
    as the scripts and emoji that need it use it (after UTS #51 and RFC 5892 CONTEXTJ)."""
    ch = name[i]
    if i == 0:
        return False
    prev = name[i - 1]
    prev_cat = unicodedata.category(prev)
    after = unicodedata.category(name[i + 1]) if i + 1 < len(name) else ""
    if ch in (_ZWNJ, _ZWJ) and unicodedata.combining(prev) == 9:
        return True  # after a virama: Indic conjunct forms (Devanagari, Sinhala "Sri"...)
    if ch == _ZWNJ:  # Persian "Ali-Reza": breaks the join between two letters
        return _joining_letter(name, i - 1, -1) and _joining_letter(name, i + 1, 1)
    if ch == _ZWJ:  # emoji ZWJ sequence: woman + ZWJ + laptop = woman technologist
        return (prev_cat.startswith("S") or prev == "\ufe0f") and after.startswith("S")
    if ch in "\ufe0e\ufe0f":  # text/emoji style of a symbol, or a keycap ("1" VS16 U+20E3)
        return prev_cat[0] in "SPN"
    cp = ord(ch)
    if 0xFE00 <= cp <= 0xFE0D or 0xE0100 <= cp <= 0xE01EF:  # ideographic/math variants
        return unicodedata.name(prev, "").startswith("CJK ") or prev_cat.startswith("S")
    if 0x180B <= cp <= 0x180F:  # Mongolian variation selectors, vowel separator
        return 0x1800 <= ord(prev) <= 0x18AF
    return False


def _first_hidden_char(name: str) -> int | None:
    """Index of the first character of ``name`` that is drawn as nothing or reorders the
    text around it (and has no job where it stands); None if there is none.  One pass."""
    i, n = 0, len(name)
    while i < n:
        ch = name[i]
        if ch == _BLACK_FLAG and i + 1 < n and "\U000e0020" <= name[i + 1] <= "\U000e007e":
            # subdivision flag (Scotland): black flag, tag letters, cancel tag
            j = i + 1
            while j < n and "\U000e0020" <= name[j] <= "\U000e007e":
                j += 1
            if j == n or name[j] != _CANCEL_TAG:
                return i + 1
            i = j + 1
            continue
        cp = ord(ch)
        hidden = (
            unicodedata.category(ch) in _NAME_REFUSED_CATEGORIES
            or _in_ranges(ch, _NAME_IGNORABLE)
            or 0xFDD0 <= cp <= 0xFDEF
            or cp & 0xFFFE == 0xFFFE  # noncharacters
        )
        if hidden and not _name_char_has_a_job(name, i):
            return i
        i += 1
    return None


def check_display_name(name: str, limits: Limits) -> str:
    """The display name everyone will see: trimmed and in NFC; ``bad_name`` if it is
    empty or too long after that, starts with a combining mark, or holds a character
    that is invisible or reorders the text around it (bidi controls, zero-width
    characters, fillers...).  Joiners and selectors stay where a script or an emoji
    sequence needs them; unassigned code points pass (emoji newer than our Unicode)."""
    name = unicodedata.normalize("NFC", name.strip()).strip()
    if not name:
        raise ProtocolError(ErrorCode.BAD_NAME, "a display name is required")
    if len(name) > limits.display_name_max:
        raise ProtocolError(
            ErrorCode.BAD_NAME,
            f"display names are at most {limits.display_name_max} characters",
        )
    if unicodedata.category(name[0]).startswith("M"):
        raise ProtocolError(ErrorCode.BAD_NAME, "display names cannot start with a combining mark")
    # Printable ASCII holds no control, format or ignorable character: most names skip
    # the walk (about 3 µs a character, on every join).
    hidden = None if name.isascii() and name.isprintable() else _first_hidden_char(name)
    if hidden is not None:
        ch = name[hidden]
        what = unicodedata.name(ch, "")
        raise ProtocolError(
            ErrorCode.BAD_NAME,
            "display names cannot contain control, invisible or text-direction characters"
            f" (U+{ord(ch):04X}{' ' + what if what else ''})",
        )
    return name
