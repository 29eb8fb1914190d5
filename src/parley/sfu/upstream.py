"""What the SFU tells publishers: NACKs for lost packets, key frame requests, receiver
reports and the REMB cap.  The decisions, as plain functions; the forwarder's
:class:`~parley.sfu.forwarder.Router` builds the RTCP packets (:mod:`.rtp`) and sends
them.

* NACK (RFC 4585): a gap of up to ``MAX_NACK_GAP`` packets in a video source is NACKed
  at once (:func:`lost_between`); a larger jump is a restart, not loss.  Each NACKed
  sequence number is remembered (at most ``NACKED_KEPT`` per source, oldest dropped)
  and NACKed again every ``nack_retry`` until it arrives or ``NACK_GIVE_UP`` passes
  (:func:`due_nacks`).
* PLI: at most one per ``pli_interval`` per stream (:func:`pli_allowed`): every
  subscriber joining or switching asks, the publisher need not hear it each time.
* Receiver reports (RFC 3550 6.4.1, :func:`report_block`) once a second, with a REMB
  (:func:`remb_cap`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

__all__ = [
    "MAX_NACK_GAP",
    "NACKED_KEPT",
    "NACK_GIVE_UP",
    "Arrived",
    "ReportBlock",
    "due_nacks",
    "lost_between",
    "pli_allowed",
    "remb_cap",
    "remember_nacked",
    "report_block",
]

#: A gap larger than this is a jump (restart, source change), not loss: not NACKed.
MAX_NACK_GAP = 64
#: Sequence numbers remembered as NACKed per source (the oldest are forgotten).
NACKED_KEPT = 256
#: A NACKed packet still missing after this long (seconds) is given up.
NACK_GIVE_UP = 1.0
#: Sequence numbers per NACK packet sent again.
NACK_RETRY_MAX = 64

#: (SSRC, fraction lost, cumulative lost, extended highest seq, jitter, LSR, DLSR)
ReportBlock = tuple[int, int, int, int, int, int, int]


class Arrived(Protocol):
    """The sequence numbers a stream has (its retransmission cache, or a set)."""

    def __contains__(self, seq: int, /) -> bool: ...


def lost_between(seq: int, missing: int) -> list[int] | None:
    """The ``missing`` sequence numbers just before ``seq`` (oldest first), or None when
    the gap is too large to be loss."""
    if missing > MAX_NACK_GAP:
        return None
    return [(seq - i) & 0xFFFF for i in range(missing, 0, -1)]


def remember_nacked(nacked: dict[int, float], lost: Iterable[int], now: float) -> None:
    """Note ``lost`` as NACKed at ``now`` in ``nacked`` (seq -> time), keeping the newest
    ``NACKED_KEPT`` (a dict keeps insertion order)."""
    for s in lost:
        nacked[s] = now
    if len(nacked) > NACKED_KEPT:
        for s in list(nacked)[: len(nacked) - NACKED_KEPT]:
            del nacked[s]


def due_nacks(nacked: dict[int, float], now: float, arrived: Arrived, retry: float) -> list[int]:
    """Sequence numbers to NACK again now (at most ``NACK_RETRY_MAX``).

    Forgets in ``nacked`` those that ``arrived`` since and those NACKed more than
    ``NACK_GIVE_UP`` ago; the others are due once ``retry`` seconds passed."""
    again = []
    for s, t in list(nacked.items()):
        if s in arrived or now - t > NACK_GIVE_UP:
            del nacked[s]
        elif now - t >= retry:
            again.append(s)
    return again[:NACK_RETRY_MAX]


def pli_allowed(last_pli: float, now: float, interval: float) -> bool:
    """Whether a PLI may be sent now, the previous one having been sent at ``last_pli``."""
    return now - last_pli >= interval


def report_block(
    ssrc: int,
    *,
    received: int,
    base_seq: int,
    ext_highest: int,
    expected_prior: int,
    received_prior: int,
    sr_ntp: int,
    sr_time: float,
    now: float,
) -> tuple[ReportBlock, int]:
    """An RR report block for a stream, and the packets expected so far (RFC 3550 A.3).

    ``received``/``base_seq``/``ext_highest``: packets received, the first and the
    highest (extended) sequence number; ``expected_prior``/``received_prior``: the
    counts at the previous report (for the fraction lost over the interval); ``sr_ntp``/
    ``sr_time``: the NTP time of the publisher's latest sender report and when it arrived
    (``sr_time`` < 0: none yet)."""
    expected = ext_highest - base_seq + 1
    lost = expected - received
    exp_i = expected - expected_prior
    rec_i = received - received_prior
    lost_i = exp_i - rec_i
    fraction = (lost_i << 8) // exp_i if exp_i > 0 and lost_i > 0 else 0
    lsr = (sr_ntp >> 16) & 0xFFFFFFFF if sr_time >= 0 else 0
    dlsr = int((now - sr_time) * 65536) if sr_time >= 0 else 0
    return (ssrc, min(fraction, 255), lost, ext_highest, 0, lsr, dlsr), expected


def remb_cap(
    max_rate: int, min_rate: int, subscriber_rembs: Iterable[int], twcc: bool
) -> int | None:
    """The REMB (bit/s) to send a publisher with video, or None for none.

    ``max_rate``, or less when subscribers of its non-simulcast video say less (their
    REMBs; never below ``min_rate``).  A simulcast layer is not held back by one slow
    subscriber: that one gets a lower layer instead (so its REMBs are not given here).
    A publisher with transport-cc feedback (``twcc``) estimates its bandwidth itself:
    it gets only the subscribers' cap, no fixed REMB."""
    rembs = [r for r in subscriber_rembs if r]
    rate = max_rate
    if rembs:
        rate = max(min_rate, min(rate, min(rembs)))
    if twcc and rate >= max_rate:
        return None
    return rate
