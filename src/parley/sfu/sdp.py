"""SDP as text: the few helpers the answer rewrites share (simulcast, TWCC).

aiortc parses and writes SDP itself but drops what it does not support
(``a=rid``, ``a=simulcast``, transport-cc); the modules that put those back work
on the SDP's lines, split into media sections.
"""

from __future__ import annotations


def sections(sdp: str) -> list[list[str]]:
    """The SDP's lines split at ``m=`` lines (first item: the session section)."""
    out: list[list[str]] = [[]]
    for line in sdp.splitlines():
        if line.startswith("m="):
            out.append([])
        out[-1].append(line)
    return out


def section_mid(section: list[str]) -> str:
    """A media section's ``a=mid`` ("" when it has none)."""
    return next((ln[6:].strip() for ln in section if ln.startswith("a=mid:")), "")
