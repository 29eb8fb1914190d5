"""What the SFU tells publishers (``parley.sfu.upstream``): NACKs, PLI pacing, RR, REMB."""

from __future__ import annotations

from parley.sfu import upstream


def test_a_gap_is_nacked_a_jump_is_not() -> None:
    assert upstream.lost_between(10, 3) == [7, 8, 9]
    assert upstream.lost_between(1, 3) == [65534, 65535, 0]  # across the wrap
    assert upstream.lost_between(500, 65) is None


def test_nacked_numbers_are_bounded_and_retried_until_they_arrive_or_expire() -> None:
    nacked: dict[int, float] = {}
    upstream.remember_nacked(nacked, range(300), 0.0)
    assert len(nacked) == upstream.NACKED_KEPT and min(nacked) == 300 - upstream.NACKED_KEPT
    nacked = {}
    upstream.remember_nacked(nacked, [7, 8, 9], 0.0)
    assert upstream.due_nacks(nacked, 0.05, set(), 0.1) == []  # not yet
    assert upstream.due_nacks(nacked, 0.1, {8}, 0.1) == [7, 9]  # 8 arrived: forgotten
    assert sorted(nacked) == [7, 9]
    assert upstream.due_nacks(nacked, 1.5, set(), 0.1) == [] and nacked == {}  # given up


def test_pli_pacing() -> None:
    assert upstream.pli_allowed(float("-inf"), 0.0, 0.5)
    assert not upstream.pli_allowed(1.0, 1.4, 0.5)
    assert upstream.pli_allowed(1.0, 1.5, 0.5)


def test_report_block_fraction_lost_over_the_interval() -> None:
    # 100 expected (seq 1000..1099), 90 received; no sender report yet
    block, expected = upstream.report_block(
        0xABC,
        received=90,
        base_seq=1000,
        ext_highest=1099,
        expected_prior=0,
        received_prior=0,
        sr_ntp=0,
        sr_time=-1.0,
        now=5.0,
    )
    assert expected == 100
    assert block == (0xABC, (10 << 8) // 100, 10, 1099, 0, 0, 0)
    # next interval: 100 more expected, all received; a sender report 0.5 s ago
    block, _ = upstream.report_block(
        0xABC,
        received=190,
        base_seq=1000,
        ext_highest=1199,
        expected_prior=100,
        received_prior=90,
        sr_ntp=0x1122334455667788,
        sr_time=4.5,
        now=5.0,
    )
    assert block == (0xABC, 0, 10, 1199, 0, 0x33445566, 32768)


def test_remb_cap() -> None:
    assert upstream.remb_cap(2_500_000, 150_000, [], twcc=False) == 2_500_000
    assert upstream.remb_cap(2_500_000, 150_000, [0, 800_000, 1_200_000], twcc=False) == 800_000
    assert upstream.remb_cap(2_500_000, 150_000, [50_000], twcc=False) == 150_000  # floor
    # transport-cc: the publisher estimates itself; only a subscriber's cap is sent
    assert upstream.remb_cap(2_500_000, 150_000, [], twcc=True) is None
    assert upstream.remb_cap(2_500_000, 150_000, [900_000], twcc=True) == 900_000
