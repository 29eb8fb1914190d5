"""The bandwidth rule: lower a subscriber's simulcast layers when its downlink struggles.

Per subscriber (:class:`BandwidthRule`, its state): the latest loss its receiver reports
give for its video slots, and its latest REMB.  Checked once a second (the forwarder's
tick calls :meth:`BandwidthRule.update`):

* congested = the latest receiver report (< 2 s old) says more than ~10 % loss
  (``LOSS_FRACTION``), or the latest REMB is below ``REMB_SHARE`` of the video bit rate
  being forwarded to it (REMBs from the first 4 s after a change are not trusted: the
  browser's estimate lags);
* two congested checks in a row: one layer lower for all its simulcast slots
  (``penalty``, at most ``MAX_PENALTY``);
* not congested for ``backoff`` seconds (8 s, doubling when a raise is followed by a
  drop within 15 s, up to 64 s): one layer back up.

This is not a bandwidth estimator: it does not probe, and a REMB only ever lowers layers.
"""

from __future__ import annotations

__all__ = ["LOSS_FRACTION", "MAX_PENALTY", "REMB_SHARE", "BandwidthRule"]

#: RR fraction lost above this (of 256) is loss.
LOSS_FRACTION = 25  # ~10 %
#: REMB below this share of what is being forwarded to the subscriber counts as congestion.
REMB_SHARE = 0.7
#: At most this many layers below what the tile size asks for.
MAX_PENALTY = 2
CHECK_EVERY = 1.0  # seconds
LOSS_VALID_FOR = 2.0  # a receiver report older than this says nothing
REMB_VALID_FOR = 3.0
REMB_SETTLE = 4.0  # REMBs this soon after a penalty change are not trusted
BACKOFF_FIRST = 8.0
BACKOFF_MAX = 64.0
FLAP_WITHIN = 15.0  # a drop this soon after a raise doubles the backoff


class BandwidthRule:
    """One subscriber's bandwidth state; ``penalty`` is the rule's output."""

    __slots__ = (
        "remb",
        "remb_time",
        "loss",
        "loss_time",
        "penalty",
        "penalty_time",
        "upgrade_time",
        "backoff",
        "strikes",
        "checked",
    )

    def __init__(self) -> None:
        self.remb = 0
        self.remb_time = float("-inf")
        self.loss = 0  # highest RR fraction lost (of 256) of its video slots, latest report
        self.loss_time = float("-inf")
        self.penalty = 0  # simulcast layers below what the tile size asks for
        self.penalty_time = float("-inf")
        self.upgrade_time = float("-inf")
        self.backoff = BACKOFF_FIRST
        self.strikes = 0
        self.checked = float("-inf")

    def on_loss(self, fraction: int, now: float) -> None:
        """A receiver report: the worst fraction lost (of 256) of the video slots."""
        self.loss, self.loss_time = fraction, now

    def on_remb(self, bitrate: int, now: float) -> None:
        """A REMB (bit/s) from the subscriber."""
        self.remb, self.remb_time = bitrate, now

    def congested(self, now: float, forwarded: float) -> bool:
        """Loss, or a (settled) REMB below ``REMB_SHARE`` of ``forwarded`` (bit/s)."""
        lossy = now - self.loss_time < LOSS_VALID_FOR and self.loss > LOSS_FRACTION
        low_remb = (
            self.remb > 0
            and self.remb_time - self.penalty_time > REMB_SETTLE
            and now - self.remb_time < REMB_VALID_FOR
            and self.remb < REMB_SHARE * forwarded
        )
        return lossy or low_remb

    def update(self, now: float, forwarded: float) -> bool:
        """The once-a-second check (earlier calls do nothing); ``forwarded``: the video bit
        rate being forwarded to the subscriber.  True if ``penalty`` changed."""
        if now - self.checked < CHECK_EVERY:
            return False
        self.checked = now
        if self.congested(now, forwarded):
            self.strikes += 1
            if self.strikes >= 2 and self.penalty < MAX_PENALTY:
                self.penalty += 1
                if now - self.upgrade_time < FLAP_WITHIN:
                    self.backoff = min(BACKOFF_MAX, 2 * self.backoff)
                else:
                    self.backoff = BACKOFF_FIRST
                self.penalty_time = now
                self.strikes = 0
                return True
            return False
        self.strikes = 0
        if self.penalty > 0 and now - self.penalty_time >= self.backoff:
            self.penalty -= 1
            self.penalty_time = self.upgrade_time = now
            return True
        return False
