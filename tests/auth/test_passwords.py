"""Room password hashing and the failed-attempt throttle."""

from __future__ import annotations

import pytest

from parley.auth import (
    AttemptThrottle,
    hash_password,
    password_needs_rehash,
    throttle_key,
    verify_password,
)
from parley.auth.passwords import MAX_PASSWORD_CHARS


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password("correct horse battery staple")


def test_hash_is_argon2id_and_salted(stored: str) -> None:
    assert stored.startswith("$argon2id$")
    assert "$m=19456,t=2,p=1$" in stored
    assert hash_password("correct horse battery staple") != stored  # fresh salt
    assert not password_needs_rehash(stored)


def test_roundtrip(stored: str) -> None:
    assert verify_password(stored, "correct horse battery staple") is True


def test_wrong_password(stored: str) -> None:
    assert verify_password(stored, "correct horse battery stapl") is False
    assert verify_password(stored, "") is False
    assert verify_password(stored, "x" * (MAX_PASSWORD_CHARS + 1)) is False


def test_unicode_password() -> None:
    h = hash_password("pässwörd ☃")
    assert verify_password(h, "pässwörd ☃")
    assert not verify_password(h, "passwort ☃")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "not a hash",
        "$argon2id$",
        "$argon2id$v=19$m=65536,t=3,p=4$garbage",
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$!!!notbase64!!!",
        "$argon2id$v=19$m=1,t=0,p=0$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$2b$12$abcdefghijklmnopqrstuu5ZaFkRb4s0nWTO6GbVcE8Lm8qPiyWy",
        "\x00\xff",
    ],
)
def test_garbage_hash_is_false(garbage: str) -> None:
    assert verify_password(garbage, "anything") is False


def test_non_string_input_is_false(stored: str) -> None:
    assert verify_password(None, "x") is False  # type: ignore[arg-type]
    assert verify_password(stored, None) is False  # type: ignore[arg-type]
    assert verify_password(stored, b"correct horse battery staple") is False  # type: ignore[arg-type]


def test_hash_refuses_empty_and_overlong() -> None:
    with pytest.raises(ValueError):
        hash_password("")
    with pytest.raises(ValueError):
        hash_password("x" * (MAX_PASSWORD_CHARS + 1))


def test_needs_rehash_for_other_parameters() -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")
    assert verify_password(weak, "pw")  # still verifies
    assert password_needs_rehash(weak)
    assert password_needs_rehash("garbage")


# --- throttle ---------------------------------------------------------------------------------


def test_throttle_allows_until_limit_then_blocks_until_window_frees() -> None:
    t = AttemptThrottle(max_failures=5, window=60)
    for i in range(5):
        assert t.check("a", 100.0 + i) == 0.0
        t.failure("a", 100.0 + i)
    # 5 failures at 100..104: blocked until the first one leaves the window at 160.
    assert t.check("a", 105.0) == pytest.approx(55.0)
    assert t.check("a", 159.5) == pytest.approx(0.5)
    assert t.check("a", 160.0) == 0.0
    t.failure("a", 160.0)  # a sixth failure: now 101..104,160 in the window
    assert t.check("a", 160.0) == pytest.approx(1.0)
    assert t.check("a", 161.0) == 0.0


def test_throttle_is_per_key() -> None:
    t = AttemptThrottle(max_failures=2, window=10)
    t.failure("a", 0.0)
    t.failure("a", 1.0)
    assert t.check("a", 2.0) == pytest.approx(8.0)
    assert t.check("b", 2.0) == 0.0


def test_success_clears() -> None:
    t = AttemptThrottle(max_failures=2, window=10)
    t.failure("a", 0.0)
    t.failure("a", 1.0)
    assert t.check("a", 2.0) > 0
    t.success("a")
    assert t.check("a", 2.0) == 0.0
    assert len(t) == 0
    t.success("never-seen")  # harmless


def test_failures_outside_window_do_not_count() -> None:
    t = AttemptThrottle(max_failures=3, window=10)
    t.failure("a", 0.0)
    t.failure("a", 5.0)
    t.failure("a", 11.0)  # the one at 0 has left the window
    assert t.check("a", 11.0) == 0.0
    t.failure("a", 12.0)  # 5, 11, 12
    assert t.check("a", 12.0) == pytest.approx(3.0)


def test_stale_keys_are_evicted() -> None:
    t = AttemptThrottle(max_failures=5, window=60)
    for i in range(100):
        t.failure(f"10.0.0.{i}", float(i))
    assert len(t) == 60  # recording at 99 already dropped the keys that failed at 0..39
    t.check("x", 100.0)  # the failure at 40 has now left the window too
    assert len(t) == 59  # keys with failures at 41..99 remain
    t.check("x", 1000.0)
    assert len(t) == 0


def test_key_cap_evicts_least_recent() -> None:
    t = AttemptThrottle(max_failures=2, window=1000, max_keys=3)
    t.failure("a", 0.0)
    t.failure("b", 1.0)
    t.failure("c", 2.0)
    t.failure("a", 3.0)  # a is now the most recent
    t.failure("d", 4.0)  # evicts b, the least recently failed
    assert len(t) == 3
    assert t.check("a", 5.0) > 0  # a kept both failures
    t.failure("b", 5.0)
    assert t.check("b", 5.0) == 0.0  # b's earlier failure was forgotten


def test_memory_is_bounded_under_flood() -> None:
    t = AttemptThrottle(max_failures=5, window=60, max_keys=10_000)
    for i in range(50_000):
        t.failure(f"k{i}", 0.0)
    assert len(t) == 10_000
    for _ in range(1000):
        t.failure("hot", 1.0)
    assert len(t._failures["hot"]) == 5


def test_throttle_rejects_bad_config() -> None:
    with pytest.raises(ValueError):
        AttemptThrottle(max_failures=0)
    with pytest.raises(ValueError):
        AttemptThrottle(window=0)
    with pytest.raises(ValueError):
        AttemptThrottle(max_keys=0)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("fe80::1%eth0", "fe80::/64"),
        ("unix-socket", "unix-socket"),
    ],
)
def test_throttle_key(address: str, key: str) -> None:
    assert throttle_key(address) == key
