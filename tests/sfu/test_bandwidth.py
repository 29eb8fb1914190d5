"""The bandwidth rule (``parley.sfu.bandwidth``): reports in, layer penalty out."""

from __future__ import annotations

from parley.sfu.bandwidth import BandwidthRule

MBIT = 1_000_000


def check(rule: BandwidthRule, start: int, end: int, loss: int | None = None) -> None:
    """One check a second from ``start`` to ``end`` (inclusive), with a fresh receiver
    report of ``loss`` before each (None: no report)."""
    for t in range(start, end + 1):
        if loss is not None:
            rule.on_loss(loss, float(t))
        rule.update(float(t), MBIT)


def test_two_lossy_checks_lower_one_layer_then_it_comes_back_after_the_backoff() -> None:
    rule = BandwidthRule()
    rule.on_loss(60, 0.0)  # ~23 % lost
    assert rule.update(0.0, MBIT) is False  # one congested check is not enough
    assert rule.update(0.5, MBIT) is False  # checked once a second only
    assert rule.update(1.0, MBIT) is True and rule.penalty == 1
    check(rule, 2, 8, loss=0)
    assert rule.penalty == 1  # the backoff is 8 s
    assert rule.update(9.0, MBIT) is True and rule.penalty == 0


def test_old_reports_and_light_loss_do_not_count() -> None:
    rule = BandwidthRule()
    check(rule, 0, 5, loss=20)  # under ~10 %
    rule.on_loss(200, 6.0)
    check(rule, 9, 12)  # that report is over 2 s old by then
    assert rule.penalty == 0


def test_low_remb_lowers_once_it_has_settled() -> None:
    rule = BandwidthRule()
    rule.on_remb(300_000, 5.0)  # well below 70 % of the 1 Mbit/s forwarded
    rule.update(5.0, MBIT)
    rule.update(6.0, MBIT)
    assert rule.penalty == 1
    rule.on_remb(300_000, 7.0)  # too soon after the change: the estimate lags
    rule.update(7.0, MBIT)
    rule.update(8.0, MBIT)
    assert rule.penalty == 1
    assert not rule.congested(8.0, 400_000)  # enough for what is forwarded now


def test_at_most_two_layers_down_and_flapping_doubles_the_backoff() -> None:
    rule = BandwidthRule()
    check(rule, 0, 5, loss=100)
    assert rule.penalty == 2 and rule.backoff == 8.0  # reached at t=3, then no lower
    check(rule, 6, 18, loss=0)
    assert rule.penalty == 1  # up at 3 + 8 = 11; the next step would be at 19
    check(rule, 19, 19, loss=0)
    assert rule.penalty == 0
    check(rule, 20, 21, loss=100)  # congested again 2 s after a raise: it flaps
    assert rule.penalty == 1 and rule.backoff == 16.0
    check(rule, 22, 36, loss=0)
    assert rule.penalty == 1
    check(rule, 37, 37, loss=0)
    assert rule.penalty == 0
