"""Signed join tokens: minting, verification and the attacks they must refuse."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from parley.auth import (
    JoinClaims,
    JoinTokenVerifier,
    TokenError,
    mint_token,
    mint_token_with_key,
    parse_ttl,
)

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
NOW = 1_700_000_000.0


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any], alg: str = "none") -> str:
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(payload).encode())}."


def hs256(payload: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(payload, secret.encode(), algorithm="HS256")


def claims(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "aud": "parley",
        "room": "standup",
        "role": "participant",
        "iat": int(NOW),
        "exp": int(NOW) + 3600,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def pem_private(key: Any) -> bytes:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def pem_public(key: Any) -> bytes:
    return key.public_key().public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


verifier = JoinTokenVerifier(secret=SECRET)


# --- HS256 ------------------------------------------------------------------------------------


def test_hs256_roundtrip() -> None:
    token = mint_token(SECRET, "standup", " Ada ", "host", 3600, now=NOW, subject="ada@x")
    got = verifier.verify(token, "standup", now=NOW + 10)
    assert got == JoinClaims(
        room="standup", name="Ada", role="host", subject="ada@x", expires_at=int(NOW) + 3600
    )
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload == {
        "aud": "parley",
        "room": "standup",
        "name": "Ada",
        "role": "host",
        "sub": "ada@x",
        "iat": int(NOW),
        "exp": int(NOW) + 3600,
    }
    assert dict(got.raw) == payload  # every claim, for policy hooks
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_optional_claims_absent() -> None:
    token = mint_token(SECRET, "standup", None, "observer", 60, now=NOW)
    payload = jwt.decode(token, options={"verify_signature": False})
    assert "name" not in payload and "sub" not in payload
    got = verifier.verify(token, "standup", now=NOW)
    assert got.name is None and got.subject is None and got.role == "observer"


def test_role_defaults_to_participant() -> None:
    token = hs256(claims(role=None))
    assert verifier.verify(token, "standup", now=NOW).role == "participant"


def test_default_now_is_wall_clock() -> None:
    token = mint_token(SECRET, "r", "A", "host", 60)
    assert verifier.verify(token, "r").expires_at == pytest.approx(time.time() + 60, abs=2)


def test_expired() -> None:
    token = mint_token(SECRET, "standup", "Ada", "host", 60, now=NOW)
    assert verifier.verify(token, "standup", now=NOW + 60 + 29).role == "host"  # within leeway
    with pytest.raises(TokenError, match="^token expired$"):
        verifier.verify(token, "standup", now=NOW + 60 + 31)


def test_zero_leeway() -> None:
    strict = JoinTokenVerifier(secret=SECRET, leeway=0)
    token = mint_token(SECRET, "standup", "Ada", "host", 60, now=NOW)
    with pytest.raises(TokenError, match="expired"):
        strict.verify(token, "standup", now=NOW + 61)


def test_not_yet_valid_and_future_iat() -> None:
    with pytest.raises(TokenError, match="not yet valid"):
        verifier.verify(hs256(claims(nbf=int(NOW) + 600)), "standup", now=NOW)
    with pytest.raises(TokenError, match="issued in the future"):
        verifier.verify(hs256(claims(iat=int(NOW) + 600)), "standup", now=NOW)


def test_wrong_secret_is_forged() -> None:
    token = mint_token(
        "another-secret-that-is-also-long-enough", "standup", "Eve", "host", 60, now=NOW
    )
    with pytest.raises(TokenError, match="^token signature invalid$"):
        verifier.verify(token, "standup", now=NOW)


def test_tampered_payload_is_forged() -> None:
    token = mint_token(SECRET, "standup", "Eve", "participant", 60, now=NOW)
    header, _, sig = token.split(".")
    evil = b64(json.dumps(claims(role="host")).encode())
    with pytest.raises(TokenError, match="signature invalid"):
        verifier.verify(f"{header}.{evil}.{sig}", "standup", now=NOW)


def test_wrong_room() -> None:
    token = mint_token(SECRET, "standup", "Ada", "host", 60, now=NOW)
    with pytest.raises(TokenError, match="^token is for room standup$"):
        verifier.verify(token, "board", now=NOW)


def test_wildcard_room() -> None:
    token = mint_token(SECRET, "*", "Ada", "host", 60, now=NOW)
    assert verifier.verify(token, "standup", now=NOW).room == "*"
    assert verifier.verify(token, "board", now=NOW).room == "*"


def test_missing_exp_refused() -> None:
    with pytest.raises(TokenError, match="^token has no expiry$"):
        verifier.verify(hs256(claims(exp=None)), "standup", now=NOW)


@pytest.mark.parametrize("exp", ["tomorrow", True, [1], 1e400])
def test_bad_exp_refused(exp: Any) -> None:
    with pytest.raises(TokenError):
        verifier.verify(hs256(claims(exp=exp)), "standup", now=NOW)


def test_wrong_or_missing_audience() -> None:
    with pytest.raises(TokenError, match="audience"):
        verifier.verify(hs256(claims(aud="other")), "standup", now=NOW)
    with pytest.raises(TokenError, match="audience"):
        verifier.verify(hs256(claims(aud=None)), "standup", now=NOW)
    custom = JoinTokenVerifier(secret=SECRET, audience="acme")
    token = mint_token(SECRET, "standup", None, "host", 60, now=NOW, audience="acme")
    assert custom.verify(token, "standup", now=NOW).role == "host"


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_refused(alg: str) -> None:
    with pytest.raises(TokenError, match="algorithm not accepted"):
        verifier.verify(unsigned(claims(role="host"), alg), "standup", now=NOW)


def test_other_hmac_algorithms_refused() -> None:
    token = jwt.encode(claims(), SECRET.encode() * 2, algorithm="HS512")
    with pytest.raises(TokenError, match="algorithm not accepted"):
        verifier.verify(token, "standup", now=NOW)


def test_bad_role() -> None:
    with pytest.raises(TokenError, match="^unknown role$"):
        verifier.verify(hs256(claims(role="admin")), "standup", now=NOW)
    with pytest.raises(TokenError, match="^unknown role$"):
        verifier.verify(hs256(claims(role=["host"])), "standup", now=NOW)
    with pytest.raises(ValueError, match="unknown role"):
        mint_token(SECRET, "standup", None, "admin", 60)


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, 42])
def test_bad_name(name: Any) -> None:
    with pytest.raises(TokenError, match="name"):
        verifier.verify(hs256(claims(name=name)), "standup", now=NOW)


def test_name_trimmed_and_max_length() -> None:
    got = verifier.verify(hs256(claims(name="  " + "é" * 64 + " ")), "standup", now=NOW)
    assert got.name == "é" * 64


@pytest.mark.parametrize("room", [None, "", 7])
def test_bad_room_claim(room: Any) -> None:
    with pytest.raises(TokenError, match="room"):
        verifier.verify(hs256(claims(room=room)), "standup", now=NOW)


def test_bad_subject() -> None:
    with pytest.raises(TokenError, match="subject"):
        verifier.verify(hs256(claims(sub=123)), "standup", now=NOW)


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b.c", "a.b", "....", "eyJhbGciOiJIUzI1NiJ9.!!!.x", "x" * 10_000],
)
def test_garbage_tokens(token: str) -> None:
    with pytest.raises(TokenError):
        verifier.verify(token, "standup", now=NOW)


def test_non_object_payload() -> None:
    header = b64(b'{"alg":"HS256","typ":"JWT"}')
    body = b64(b"[1,2,3]")
    sig = b64(hmac.new(SECRET.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest())
    with pytest.raises(TokenError):
        verifier.verify(f"{header}.{body}.{sig}", "standup", now=NOW)


def test_short_secret_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        JoinTokenVerifier(secret="short")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        mint_token("short", "standup", None, "host", 60)


def test_verifier_needs_exactly_one_key(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError):
        JoinTokenVerifier()
    with pytest.raises(ValueError):
        JoinTokenVerifier(secret=SECRET, public_key_pem=pem_public(rsa_key))
    with pytest.raises(ValueError, match="public key"):
        JoinTokenVerifier(public_key_pem=b"-----BEGIN PUBLIC KEY-----\nnope\n")


def test_mint_refuses_bad_arguments() -> None:
    for ttl in (0, -5, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            mint_token(SECRET, "standup", None, "host", ttl)
    with pytest.raises(ValueError, match="room"):
        mint_token(SECRET, "bad room!", None, "host", 60)
    with pytest.raises(ValueError, match="display name"):
        mint_token(SECRET, "standup", "   ", "host", 60)


# --- RS256 / ES256 ----------------------------------------------------------------------------


def test_rs256_roundtrip(rsa_key: rsa.RSAPrivateKey) -> None:
    token = mint_token_with_key(pem_private(rsa_key), "standup", "Ada", "host", 600, now=NOW)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    v = JoinTokenVerifier(public_key_pem=pem_public(rsa_key))
    assert v.algorithm == "RS256"
    assert v.verify(token, "standup", now=NOW).name == "Ada"
    with pytest.raises(TokenError, match="expired"):
        v.verify(token, "standup", now=NOW + 700)


def test_es256_roundtrip(ec_key: ec.EllipticCurvePrivateKey) -> None:
    token = mint_token_with_key(
        pem_private(ec_key), "*", None, "observer", 600, now=NOW, subject="bot"
    )
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    v = JoinTokenVerifier(public_key_pem=pem_public(ec_key))
    assert v.algorithm == "ES256"
    got = v.verify(token, "anything", now=NOW)
    assert (got.room, got.role, got.subject) == ("*", "observer", "bot")


def test_traditional_openssl_pem_formats(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    pub = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    )
    token = mint_token_with_key(pem, "standup", None, "host", 60, now=NOW)
    assert JoinTokenVerifier(public_key_pem=pub).verify(token, "standup", now=NOW).role == "host"


def test_wrong_public_key_refused(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = mint_token_with_key(pem_private(other_rsa), "standup", None, "host", 60, now=NOW)
    with pytest.raises(TokenError, match="signature invalid"):
        JoinTokenVerifier(public_key_pem=pem_public(rsa_key)).verify(token, "standup", now=NOW)
    # An RSA-signed token is refused by an EC verifier, by algorithm.
    with pytest.raises(TokenError, match="algorithm not accepted"):
        JoinTokenVerifier(public_key_pem=pem_public(ec_key)).verify(token, "standup", now=NOW)


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_hs256_with_public_key_confusion_refused(
    kind: str, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    """The classic attack: sign HS256 with the (public) PEM bytes as the HMAC secret."""
    public_pem = pem_public(rsa_key if kind == "rsa" else ec_key)

    header = b64(b'{"alg":"HS256","typ":"JWT"}')
    body = b64(json.dumps(claims(role="host")).encode())
    sig = b64(hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    v = JoinTokenVerifier(public_key_pem=public_pem)
    with pytest.raises(TokenError, match="algorithm not accepted"):
        v.verify(f"{header}.{body}.{sig}", "standup", now=NOW)
    # With the header claiming the key's own algorithm, the HMAC is no valid signature.
    rs_header = b64(json.dumps({"alg": v.algorithm, "typ": "JWT"}).encode())
    sig2 = b64(hmac.new(public_pem, f"{rs_header}.{body}".encode(), hashlib.sha256).digest())
    with pytest.raises(TokenError):
        v.verify(f"{rs_header}.{body}.{sig2}", "standup", now=NOW)


def test_unsupported_keys_refused() -> None:
    ed = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(ValueError, match="unsupported key type"):
        JoinTokenVerifier(public_key_pem=pem_public(ed))
    with pytest.raises(ValueError, match="unsupported key type"):
        mint_token_with_key(pem_private(ed), "standup", None, "host", 60)
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError, match="2048"):
        JoinTokenVerifier(public_key_pem=pem_public(small))
    k1 = ec.generate_private_key(ec.SECP256K1())
    with pytest.raises(ValueError, match="curve"):
        JoinTokenVerifier(public_key_pem=pem_public(k1))
    with pytest.raises(ValueError, match="private key"):
        mint_token_with_key(b"not a key", "standup", None, "host", 60)


# --- parse_ttl --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h", 3600),
        ("30m", 1800),
        ("45s", 45),
        ("2d", 172800),
        ("3600", 3600),
        ("1.5h", 5400),
        (" 10M ", 600),
    ],
)
def test_parse_ttl(text: str, seconds: float) -> None:
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1w", "-5m", "0", "0s", "1h30m", "abc", "1e3", "inf"])
def test_parse_ttl_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ttl(text)
