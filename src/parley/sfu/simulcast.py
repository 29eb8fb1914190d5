"""Simulcast in SDP text: what aiortc's SDP parser drops and its answers never contain.

aiortc 1.16 parses neither ``a=rid`` (RFC 8851) nor ``a=simulcast`` (RFC 8853), and its
answers only carry the header extensions it implements itself.  The SFU receives raw
RTP below aiortc, so it can take simulcast anyway; this module is the one small place
that reads a browser's simulcast offer and adds to aiortc's answer what accepts it:

* :func:`parse_offer`: per ``a=mid``, the send rids listed by ``a=simulcast:send``
  (paused ``~rid`` and alternatives ``a,b`` reduced to the first choice) and the offer's
  ids of the ``sdes:mid``, ``sdes:rtp-stream-id`` and ``sdes:repaired-rtp-stream-id``
  header extensions (RFC 8852).
* :func:`accept_in_answer`: the answer's matching media sections get ``a=extmap`` lines
  for those extensions (with the offer's ids), ``a=rid:X recv`` per rid and
  ``a=simulcast:recv`` with the offer's order.

Layers are ranked by rid name: the web client names its encodings ``l``/``m``/``h``
(also understood: ``q``/``h``/``f``); other names are ranked in ``a=simulcast`` order,
first = highest (:func:`rank_rids`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .sdp import section_mid, sections

__all__ = ["MID_URI", "RID_URI", "RRID_URI", "SimulcastOffer", "accept_in_answer", "parse_offer"]

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
RRID_URI = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
MAX_LAYERS = 3

_KNOWN_ORDERS = (("l", "m", "h"), ("q", "h", "f"))


@dataclass
class SimulcastOffer:
    """One offered simulcast media section."""

    mid: str
    rids: list[str]  # ranked lowest .. highest quality
    rid_ext: int = 0
    rrid_ext: int = 0
    mid_ext: int = 0
    extmap: dict[str, str] = field(default_factory=dict)  # uri -> the offer's "id[/dir]"
    order: list[str] = field(default_factory=list)  # the rids in the offer's order


def rank_rids(rids: list[str]) -> list[str]:
    """``rids`` ordered lowest .. highest quality (see the module docstring)."""
    for order in _KNOWN_ORDERS:
        if all(r in order for r in rids):
            return sorted(rids, key=order.index)
    return list(reversed(rids))


def parse_offer(sdp: str) -> dict[str, SimulcastOffer]:
    """Simulcast media sections of an offer, by mid (sections without it are left out)."""
    found: dict[str, SimulcastOffer] = {}
    for section in sections(sdp)[1:]:
        mid = ""
        send_rids: set[str] = set()
        order: list[str] = []
        extmap: dict[str, str] = {}
        for line in section:
            if line.startswith("a=mid:"):
                mid = line[6:].strip()
            elif line.startswith("a=rid:"):
                parts = line[6:].split()
                if len(parts) >= 2 and parts[1] == "send":
                    send_rids.add(parts[0])
            elif line.startswith("a=simulcast:"):
                words = line[len("a=simulcast:") :].split()
                for direction, streams in zip(words[::2], words[1::2], strict=False):
                    if direction != "send":
                        continue
                    for alternatives in streams.split(";"):
                        first = alternatives.split(",")[0].lstrip("~")
                        if first:
                            order.append(first)
            elif line.startswith("a=extmap:"):
                parts = line[9:].split()
                if len(parts) >= 2:
                    extmap[parts[1]] = parts[0]
        rids = [r for r in order if r in send_rids][:MAX_LAYERS]
        if not mid or len(rids) < 2 or RID_URI not in extmap:
            continue

        def ext_id(uri: str, extmap: dict[str, str] = extmap) -> int:
            value = extmap.get(uri, "0").split("/")[0]
            return int(value) if value.isdigit() else 0

        found[mid] = SimulcastOffer(
            mid=mid,
            rids=rank_rids(rids),
            rid_ext=ext_id(RID_URI),
            rrid_ext=ext_id(RRID_URI),
            mid_ext=ext_id(MID_URI),
            extmap={u: extmap[u] for u in (RID_URI, RRID_URI) if u in extmap},
            order=rids,
        )
    return found


def accept_in_answer(answer: str, offers: dict[str, SimulcastOffer]) -> str:
    """``answer`` with the simulcast of ``offers`` accepted (receive side), as SDP text.

    Sections whose mid is not in ``offers``, or that are rejected (port 0) or not
    receiving, are left alone.
    """
    if not offers:
        return answer
    eol = "\r\n" if "\r\n" in answer else "\n"
    parts = sections(answer)
    for section in parts[1:]:
        mid = section_mid(section)
        offer = offers.get(mid)
        if offer is None or section[0].split()[1:2] == ["0"]:
            continue
        if not any(ln in ("a=recvonly", "a=sendrecv") for ln in section):
            continue
        existing = {ln.split()[1] for ln in section if ln.startswith("a=extmap:") and " " in ln}
        extra = [
            f"a=extmap:{offer.extmap[uri].split('/')[0]} {uri}"
            for uri in (RID_URI, RRID_URI)
            if uri in offer.extmap and uri not in existing
        ]
        order = offer.order or offer.rids
        extra += [f"a=rid:{rid} recv" for rid in order]
        extra.append("a=simulcast:recv " + ";".join(order))
        section[1:1] = [ln for ln in extra if ln not in section]
        # (inserted right after the m= line: attribute order is free in a media section)
        _move_after_c_line(section)
    lines = [ln for section in parts for ln in section]
    return eol.join(lines) + eol


def _move_after_c_line(section: list[str]) -> None:
    """RFC 8866 wants i=/c=/b= lines before the attributes: keep them first."""
    head = [ln for ln in section[1:] if ln[:2] in ("i=", "c=", "b=", "k=")]
    if not head:
        return
    rest = [ln for ln in section[1:] if ln[:2] not in ("i=", "c=", "b=", "k=")]
    section[1:] = head + rest
