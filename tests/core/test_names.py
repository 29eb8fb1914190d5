"""Display names: one normal form, and nothing invisible or text-reordering in them.

A name is shown to everyone in the room, inside other text (chat, system notes such as
"Ada removed Bob", toasts).  A bidi control in it reorders what follows ("\\u202eadA" shows
as "Ada"), a zero-width character makes two names that look the same differ, or a name
look empty.  Names in every script, and emoji sequences, must keep working.
"""

from __future__ import annotations

import unicodedata

import pytest

from parley.config import Limits
from parley.core.names import check_display_name
from parley.core.protocol import ErrorCode, ProtocolError

LIMITS = Limits()


def refused(name: str) -> str:
    """The bad_name message for ``name`` (fails if the name is accepted)."""
    with pytest.raises(ProtocolError) as info:
        check_display_name(name, LIMITS)
    assert info.value.code == ErrorCode.BAD_NAME
    return info.value.message


@pytest.mark.parametrize(
    ("name", "code_point"),
    [
        ("\u202eadA", "U+202E"),  # right-to-left override: shows as "Ada"
        ("Ada\u202e", "U+202E"),  # ... or reverses whatever the page writes after it
        ("A\u202dda", "U+202D"),  # left-to-right override
        ("\u2067Ada\u2069", "U+2067"),  # isolates
        ("Ada\u200f", "U+200F"),  # right-to-left mark
        ("\u200eAda", "U+200E"),  # left-to-right mark
        ("A\u061cda", "U+061C"),  # Arabic letter mark
        ("A\u200bda", "U+200B"),  # zero-width space
        ("Ad\u200ca", "U+200C"),  # zero-width non-joiner between Latin letters
        ("Ad\u200da", "U+200D"),  # zero-width joiner between Latin letters
        ("Ada\u2060", "U+2060"),  # word joiner
        ("\ufeffAda", "U+FEFF"),  # byte order mark
        ("Ad\u00ada", "U+00AD"),  # soft hyphen
        ("A\u2062da", "U+2062"),  # invisible times
        ("Ad\u034fa", "U+034F"),  # combining grapheme joiner
        ("Ada\ufe0f", "U+FE0F"),  # emoji variation selector after a letter
        ("Ad\U000e0100a", "U+E0100"),  # ideographic variation selector after a letter
        ("A\U000e0041da", "U+E0041"),  # tag character outside a flag
        ("\U0001f3f4\U000e0067\U000e0062", "U+E0067"),  # flag tags never cancelled
        ("Ada\u3164", "U+3164"),  # Hangul filler (a blank "letter")
        ("A\uffa0da", "U+FFA0"),  # halfwidth Hangul filler
        ("Ada\u2028Bob", "U+2028"),  # line separator
        ("Ada\u2029Bob", "U+2029"),  # paragraph separator
        ("Ada\ue000", "U+E000"),  # private use
        ("Ada\ufdd0", "U+FDD0"),  # noncharacter
        ("Ada\U0001fffe", "U+1FFFE"),  # noncharacter
        ("A\U0001d173da", "U+1D173"),  # musical symbol begin beam (format)
    ],
)
def test_invisible_and_text_direction_characters_are_refused(name: str, code_point: str) -> None:
    message = refused(name)
    assert code_point in message, message
    assert "invisible" in message and "text-direction" in message


@pytest.mark.parametrize("name", ["\u200b", " \u200b\u200c ", "\u3164", "\u2800\u200b"])
def test_names_made_only_of_invisible_characters_are_refused(name: str) -> None:
    refused(name)


def test_a_name_cannot_start_with_a_combining_mark() -> None:
    # it would draw itself onto whatever the page writes before the name
    assert "combining" in refused("\u0301Ada")
    assert "combining" in refused("  \u0308x")


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Zoe\u0308", "Zo\u00eb"),  # decomposed -> composed
        ("Zo\u00eb", "Zo\u00eb"),
        ("\u1100\u1161\u11a8", "\uac01"),  # conjoining Hangul jamo -> one syllable
        ("  A\u030angstr\u00f6m  ", "\u00c5ngstr\u00f6m"),
        ("\u212b", "\u00c5"),  # ANGSTROM SIGN is canonically the letter
    ],
)
def test_names_are_stored_in_nfc(typed: str, stored: str) -> None:
    assert check_display_name(typed, LIMITS) == stored


def test_length_counts_the_normalised_name() -> None:
    # 64 letters typed as letter + combining accent: 128 code points, 64 after NFC
    assert check_display_name("e\u0301" * 64, LIMITS) == "\u00e9" * 64
    refused("e\u0301" * 65)


@pytest.mark.parametrize(
    "name",
    [
        "Ada Lovelace",
        "Zo\u00eb \U0001f389",
        "\u5c71\u7530 \u592a\u90ce",  # Japanese
        "\u5c71\u7530\u3000\u592a\u90ce",  # with an ideographic space inside
        "\u674e\u5c0f\u9f99",  # Chinese
        "\uae40\ubbfc\uc900",  # Korean
        "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",  # Arabic
        "\u05d3\u05d5\u05d3 \u05db\u05d4\u05df",  # Hebrew
        "\u0639\u0644\u06cc\u200c\u0631\u0636\u0627",  # Persian, ZWNJ between letters
        "\u0645\u06cc\u200c\u0634\u0648\u062f",  # Persian, ZWNJ after a right-joining letter
        "\u0936\u094d\u200d\u0930\u0940",  # Devanagari, ZWJ after a virama
        "\u0915\u094d\u200c\u0937",  # Devanagari, ZWNJ after a virama
        "\u0dc1\u0dca\u200d\u0dbb\u0dd3",  # Sinhala "Sri" (ZWJ after al-lakuna)
        "\u0410\u043d\u043d\u0430",  # Cyrillic
        "\u0394\u03b7\u03bc\u03ae\u03c4\u03c1\u03b7\u03c2",  # Greek
        "\u0e2a\u0e21\u0e0a\u0e32\u0e22",  # Thai
        "Nguy\u1ec5n V\u0103n A",  # Vietnamese (stacked accents)
        "\u1824\u1837\u180b\u1822",  # Mongolian with a free variation selector
        "\u845b\U000e0100\u98fe",  # Japanese family name with an ideographic variant
        "O'Brien-Smith Jr.",
    ],
)
def test_names_in_every_script_keep_working(name: str) -> None:
    assert check_display_name(name, LIMITS) == unicodedata.normalize("NFC", name)


@pytest.mark.parametrize(
    "name",
    [
        "Ada \U0001f469\u200d\U0001f4bb",  # woman technologist (ZWJ sequence)
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # family
        "\U0001f3f3\ufe0f\u200d\U0001f308",  # rainbow flag (VS16 then ZWJ)
        "\U0001f9d1\U0001f3fd\u200d\U0001f4bb",  # technologist, skin tone, ZWJ
        "\u2764\ufe0f\u200d\U0001f525 Bob",  # heart on fire
        "\U0001f3f4\u200d\u2620\ufe0f",  # pirate flag
        "#\ufe0f\u20e3 1\ufe0f\u20e3",  # keycaps
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # Scotland
        "Ada \u2764\ufe0e",  # text-style heart
    ],
)
def test_emoji_sequences_are_allowed(name: str) -> None:
    assert check_display_name(name, LIMITS) == name
