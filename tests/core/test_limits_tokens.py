"""TokenBucket with fake time, ResumeTokens, and the limits read from flags/env."""

from __future__ import annotations

import base64
import hashlib
import hmac

import msgspec
import pytest

from parley.cli import build_parser
from parley.config import Limits, RateLimit, limits_from
from parley.core.ratelimit import TokenBucket
from parley.core.resume_tokens import ResumeTokens, load_secret

# -- TokenBucket -------------------------------------------------------------------------


def test_burst_then_refusal_then_refill() -> None:
    t = 500.0
    bucket = TokenBucket(RateLimit(20, 10.0), t)
    assert all(bucket.allow(t) for _ in range(20))
    assert not bucket.allow(t)
    assert not bucket.allow(t + 0.1)
    assert bucket.retry_after() == pytest.approx(0.4, abs=1e-6)
    # one token every 0.5 s
    assert bucket.allow(t + 0.5)
    assert not bucket.allow(t + 0.5)
    assert not bucket.allow(t + 0.9)
    assert bucket.allow(t + 1.0)
    # a long pause refills to the burst size, never more
    t2 = t + 1000
    assert sum(bucket.allow(t2) for _ in range(50)) == 20


def test_bucket_ignores_time_going_backwards() -> None:
    bucket = TokenBucket(RateLimit(2, 1.0), 10.0)
    assert bucket.allow(10.0) and bucket.allow(10.0)
    assert not bucket.allow(5.0)
    assert bucket.allow(10.5)


def test_retry_after_is_zero_with_tokens() -> None:
    bucket = TokenBucket(RateLimit(3, 3.0), 0.0)
    assert bucket.retry_after() == 0.0


def test_default_rates() -> None:
    limits = Limits()
    assert (limits.chat_rate.count, limits.chat_rate.per) == (20, 10.0)
    assert (limits.signal_rate.count, limits.reaction_rate.count) == (400, 10)
    assert limits.other_rate.count == 60 and limits.max_errors == 100
    assert limits.max_frame_bytes == 65536 and limits.chat_max_chars == 4000
    assert limits.max_participants == 6 and limits.room_name_max == 64


def test_limits_from_flags_env_and_no_rate_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PARLEY_CHAT_MAX_CHARS", "PARLEY_HEARTBEAT", "PARLEY_NO_RATE_LIMITS"):
        monkeypatch.delenv(var, raising=False)
    assert limits_from({}) == Limits()
    monkeypatch.setenv("PARLEY_CHAT_MAX_CHARS", "123")
    monkeypatch.setenv("PARLEY_HEARTBEAT", "2.5")
    limits = limits_from({})
    assert limits.chat_max_chars == 123 and limits.heartbeat == 2.5
    assert limits_from({"chat_max_chars": 7}).chat_max_chars == 7  # the flag wins
    assert limits_from({"no_rate_limits": True}).rate_limits is False
    monkeypatch.setenv("PARLEY_NO_RATE_LIMITS", "1")
    assert limits_from({}).rate_limits is False


@pytest.mark.parametrize(
    ("text", "on"),
    [("1", True), ("TRUE", True), (" yes ", True), ("on", True)]
    + [("", False), ("0", False), ("False", False), ("no", False), ("off", False)],
)
def test_on_off_variables_read_one_way(
    monkeypatch: pytest.MonkeyPatch, text: str, on: bool
) -> None:
    # PARLEY_NO_RATE_LIMITS=0 must not turn the limits off (nor PARLEY_REUSE_PORT=0 on).
    monkeypatch.setenv("PARLEY_NO_RATE_LIMITS", text)
    assert limits_from({}).rate_limits is not on
    monkeypatch.setenv("PARLEY_REUSE_PORT", text)
    monkeypatch.setenv("PARLEY_LOG_JSON", text)
    monkeypatch.setenv("PARLEY_REQUIRE_TOKEN", text)
    args = build_parser().parse_args(["serve"])
    assert (args.reuse_port, args.log_json, args.require_token) == (on, on, on)


@pytest.mark.parametrize(
    ("var", "text"),
    [
        ("PARLEY_NO_RATE_LIMITS", "maybe"),
        ("PARLEY_REUSE_PORT", "2"),
        ("PARLEY_CHAT_MAX_CHARS", "lots"),
        ("PARLEY_HEARTBEAT", "8s"),
        ("PARLEY_PORT", "http"),
    ],
)
def test_a_bad_variable_stops_with_its_name(
    monkeypatch: pytest.MonkeyPatch, var: str, text: str
) -> None:
    monkeypatch.setenv(var, text)
    with pytest.raises(SystemExit) as stop:
        limits_from({})
        build_parser().parse_args(["serve"])
    assert f"{var}={text!r}" in str(stop.value)


# -- ResumeTokens --------------------------------------------------------------------------

SECRET = b"s" * 32
NOW = 1_790_000_000.0


def test_roundtrip() -> None:
    tokens = ResumeTokens(SECRET)
    token = tokens.issue("p_abc", "team", "Ada 🎉", NOW)
    claims = tokens.verify(token, NOW + 5)
    assert claims is not None
    assert (claims.pid, claims.room, claims.name, claims.issued_at) == (
        "p_abc", "team", "Ada 🎉", int(NOW)
    )  # fmt: skip
    # a fresh instance with the same secret (a restarted server) accepts it too
    assert ResumeTokens(SECRET).verify(token, NOW + 5) == claims


def test_tampered_tokens_are_refused() -> None:
    tokens = ResumeTokens(SECRET)
    token = tokens.issue("p_abc", "team", "Ada", NOW)
    body, sig = token.split(".")
    forged_body = (
        base64.urlsafe_b64encode(msgspec.json.encode(["p_victim", "team", "Ada", int(NOW)]))
        .rstrip(b"=")
        .decode()
    )
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    for bad in (
        f"{forged_body}.{sig}",
        f"{body}.{flipped}",
        f"{body}.",
        f".{sig}",
        f"{body}x.{sig}",
        token + "A",
        token[:-1],
        token.upper(),
    ):
        assert tokens.verify(bad, NOW) is None, bad


def test_expiry() -> None:
    tokens = ResumeTokens(SECRET, max_age=60)
    token = tokens.issue("p_abc", "team", "Ada", NOW)
    assert tokens.verify(token, NOW + 60) is not None
    assert tokens.verify(token, NOW + 61) is None
    assert tokens.verify(token, NOW - 10) is None  # issued in the future


def test_wrong_secret() -> None:
    token = ResumeTokens(SECRET).issue("p_abc", "team", "Ada", NOW)
    assert ResumeTokens(b"t" * 32).verify(token, NOW) is None


@pytest.mark.parametrize(
    "garbage",
    ["", ".", "..", "a.b.c", "no-dot", "a" * 2000, "a" * 1000 + "." + "b" * 100, "!!!.???"],
)
def test_garbage(garbage: str) -> None:
    assert ResumeTokens(SECRET).verify(garbage, NOW) is None


def _signed(body_bytes: bytes) -> str:
    body = base64.urlsafe_b64encode(body_bytes).rstrip(b"=").decode()
    sig = hmac.new(SECRET, body.encode(), hashlib.sha256).digest()[:18]
    return f"{body}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{}", b'["p","r","n"]', b'["p","r","n","x"]', b"[1,2,3,4]", b"\xff", b""],
)
def test_validly_signed_garbage_claims(body: bytes) -> None:
    assert ResumeTokens(SECRET).verify(_signed(body), NOW) is None


@pytest.mark.parametrize("garbage", ["é.é", "abc.défg", "x.ü"])
def test_non_ascii_garbage(garbage: str) -> None:
    assert ResumeTokens(SECRET).verify(garbage, NOW) is None


def test_load_secret_is_created_once(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    monkeypatch.delenv("PARLEY_SECRET", raising=False)
    d = Path(str(tmp_path)) / "data"
    first = load_secret(d)
    assert len(first) == 32 and load_secret(d) == first
    assert (d / "secret").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("PARLEY_SECRET", "from-env")
    assert load_secret(d) == b"from-env"
