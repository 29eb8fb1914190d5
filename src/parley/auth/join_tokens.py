"""Signed join tokens (JWT) for ``parley serve --require-token``.

A join token is a JWT signed either with a shared secret (HS256) or with a
private key (RS256 for RSA keys, ES256/ES384/ES512 for EC keys on P-256/P-384/
P-521), verified by the server with the secret or the matching public key.
Its claims::

    {
      "aud":  "parley",          # audience, required, must match the verifier's
      "room": "standup",         # room name, or "*" for any room; required
      "name": "Ada",             # display name, 1-64 characters after trimming; optional
      "role": "host",            # host, participant, observer or bot; default "participant"
      "sub":  "ada@example.org", # subject (who the token was issued to); optional
      "iat":  1700000000,        # issued at, seconds since the epoch
      "exp":  1700003600         # expiry, seconds since the epoch; required
    }

``name`` and ``sub`` are left out when not given.  ``nbf`` is honoured if present.
The verifier accepts only the algorithm family of its key: a verifier built from a
secret accepts only HS256, one built from a public key only RS256 or ES256 (by key
type), so ``alg: none`` and the HS256-signed-with-the-public-key confusion are
refused.  HS256 secrets must be at least 32 bytes (RFC 7518 section 3.2).

Errors are :class:`TokenError` with a short human message that can be sent to
the client as it is ("token expired", "token signature invalid", ...).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = [
    "ANY_ROOM",
    "DEFAULT_AUDIENCE",
    "DEFAULT_ROLE",
    "MAX_TOKEN_CHARS",
    "MIN_SECRET_BYTES",
    "NAME_MAX",
    "ROLES",
    "JoinClaims",
    "JoinTokenVerifier",
    "TokenError",
    "mint_token",
    "mint_token_with_key",
    "parse_ttl",
]

ANY_ROOM: Final = "*"
DEFAULT_AUDIENCE: Final = "parley"
ROLES: Final = ("host", "participant", "observer", "bot")
DEFAULT_ROLE: Final = "participant"
#: Display names in tokens: 1..NAME_MAX characters after trimming.
NAME_MAX: Final = 64
#: Longest token accepted; anything longer is refused before parsing.
MAX_TOKEN_CHARS: Final = 8192
#: Shortest HS256 secret (bytes of its UTF-8 encoding).
MIN_SECRET_BYTES: Final = 32

# Same rule as parley.core.rooms.ROOM_NAME (copied: the core imports nothing from auth).
ROOM_NAME: Final = re.compile(r"[A-Za-z0-9._-]+")
_EC_ALGORITHMS: Final = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


class TokenError(Exception):
    """A join token was refused; ``str(error)`` is a human message for the client."""


@dataclass(frozen=True)
class JoinClaims:
    room: str  # "*" = any room
    name: str | None
    role: str  # "host" | "participant" | "observer" | "bot"
    subject: str | None
    expires_at: int
    #: Every claim of the verified token (the ones above, and any others its issuer
    #: added, e.g. ``email`` or ``staff``), for policy hooks to read.
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)


def _check_secret(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret:
        raise ValueError("the JWT secret must be a non-empty string")
    key = secret.encode()
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(
            f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes; generate one with"
            " python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return key


def _algorithm_for(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise ValueError("RSA keys must be at least 2048 bits")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        alg = _EC_ALGORITHMS.get(key.curve.name)
        if alg is None:
            raise ValueError(f"unsupported EC curve {key.curve.name} (use P-256, P-384 or P-521)")
        return alg
    raise ValueError("unsupported key type (use an RSA or EC key)")


def _check_room(room: str) -> str:
    if room != ANY_ROOM and not (isinstance(room, str) and ROOM_NAME.fullmatch(room)):
        raise ValueError("the room must be '*' or a room name (letters, digits, '-', '_', '.')")
    return room


def _check_name(name: str | None) -> str | None:
    if name is None:
        return None
    trimmed = name.strip()
    if not 1 <= len(trimmed) <= NAME_MAX:
        raise ValueError(f"the display name must be 1-{NAME_MAX} characters")
    return trimmed


def _claims(
    room: str,
    name: str | None,
    role: str,
    ttl_seconds: float,
    now: float | None,
    subject: str | None,
    audience: str,
) -> dict[str, Any]:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (use one of {', '.join(ROLES)})")
    if not _is_number(ttl_seconds) or ttl_seconds <= 0:
        raise ValueError("the time to live must be a positive number of seconds")
    issued = time.time() if now is None else now
    claims: dict[str, Any] = {
        "aud": audience,
        "room": _check_room(room),
        "role": role,
        "iat": int(issued),
        "exp": int(issued + ttl_seconds),
    }
    checked_name = _check_name(name)
    if checked_name is not None:
        claims["name"] = checked_name
    if subject is not None:
        claims["sub"] = subject
    return claims


def mint_token(
    secret: str,
    room: str,
    name: str | None,
    role: str,
    ttl_seconds: float,
    now: float | None = None,
    subject: str | None = None,
    audience: str = DEFAULT_AUDIENCE,
) -> str:
    """A join token signed with ``secret`` (HS256).  Raises ValueError for bad arguments."""
    key = _check_secret(secret)
    claims = _claims(room, name, role, ttl_seconds, now, subject, audience)
    return jwt.encode(claims, key, algorithm="HS256", headers={"typ": "JWT"})


def mint_token_with_key(
    private_key_pem: bytes,
    room: str,
    name: str | None,
    role: str,
    ttl_seconds: float,
    now: float | None = None,
    subject: str | None = None,
    audience: str = DEFAULT_AUDIENCE,
    password: bytes | None = None,
) -> str:
    """A join token signed with a PEM private key: RS256 (RSA) or ES256/384/512 (EC)."""
    try:
        key = serialization.load_pem_private_key(private_key_pem, password=password)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"cannot load the private key: {exc}") from None
    algorithm = _algorithm_for(key)
    claims = _claims(room, name, role, ttl_seconds, now, subject, audience)
    return jwt.encode(claims, key, algorithm=algorithm, headers={"typ": "JWT"})  # type: ignore[arg-type]


class JoinTokenVerifier:
    """Verifies join tokens with a shared secret (HS256) or a PEM public key (RS256/ES256).

    Exactly one of ``secret`` and ``public_key_pem`` must be given.  ``leeway`` is the
    clock skew (seconds) tolerated on ``exp``, ``nbf`` and ``iat``.
    """

    def __init__(
        self,
        secret: str | None = None,
        public_key_pem: bytes | None = None,
        audience: str = DEFAULT_AUDIENCE,
        leeway: float = 30,
    ) -> None:
        if (secret is None) == (public_key_pem is None):
            raise ValueError("give either a JWT secret or a public key, not both or neither")
        self.audience = audience
        self.leeway = float(leeway)
        self._key: Any
        if secret is not None:
            self._key = _check_secret(secret)
            self.algorithm = "HS256"
        else:
            assert public_key_pem is not None
            try:
                key = serialization.load_pem_public_key(public_key_pem)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"cannot load the public key: {exc}") from None
            self.algorithm = _algorithm_for(key)
            self._key = key

    def verify(self, token: str, room: str, now: float | None = None) -> JoinClaims:
        """Check ``token`` for a join to ``room``; the claims, or :class:`TokenError`."""
        if not isinstance(token, str) or not token:
            raise TokenError("token missing")
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenError("token too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("token malformed") from None
        if header.get("alg") != self.algorithm:
            raise TokenError(f"token algorithm not accepted (expected {self.algorithm})")
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[self.algorithm],
                audience=self.audience,
                # Times are checked below against ``now`` (PyJWT only knows the wall clock).
                options={
                    "verify_signature": True,
                    "verify_aud": True,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": ["aud"],
                },
            )
        except jwt.InvalidSignatureError:
            raise TokenError("token signature invalid") from None
        except jwt.MissingRequiredClaimError:
            raise TokenError("token has no audience") from None
        except jwt.InvalidAudienceError:
            raise TokenError("token is not for this server (audience)") from None
        except jwt.exceptions.InvalidSubjectError:
            raise TokenError("token subject invalid") from None
        except jwt.InvalidAlgorithmError:
            raise TokenError(f"token algorithm not accepted (expected {self.algorithm})") from None
        except jwt.PyJWTError:
            raise TokenError("token malformed") from None
        return self._check_claims(payload, room, time.time() if now is None else now)

    def _check_claims(self, payload: dict[str, Any], room: str, now: float) -> JoinClaims:
        exp = payload.get("exp")
        if exp is None:
            raise TokenError("token has no expiry")
        if not _is_number(exp):
            raise TokenError("token expiry invalid")
        if now > exp + self.leeway:
            raise TokenError("token expired")
        nbf = payload.get("nbf")
        if nbf is not None and (not _is_number(nbf) or now + self.leeway < nbf):
            raise TokenError("token not yet valid")
        iat = payload.get("iat")
        if iat is not None and (not _is_number(iat) or now + self.leeway < iat):
            raise TokenError("token issued in the future")

        token_room = payload.get("room")
        if not isinstance(token_room, str) or not token_room:
            raise TokenError("token has no room")
        if token_room != ANY_ROOM and token_room != room:
            raise TokenError(f"token is for room {token_room[:64]}")

        role = payload.get("role", DEFAULT_ROLE)
        if role not in ROLES:
            raise TokenError("unknown role")

        name = payload.get("name")
        if name is not None:
            if not isinstance(name, str):
                raise TokenError("token name invalid")
            name = name.strip()
            if not 1 <= len(name) <= NAME_MAX:
                raise TokenError(f"token name must be 1-{NAME_MAX} characters")

        subject = payload.get("sub")
        if subject is not None and not isinstance(subject, str):
            raise TokenError("token subject invalid")

        return JoinClaims(
            room=token_room,
            name=name,
            role=role,
            subject=subject,
            expires_at=int(exp),
            raw=MappingProxyType(dict(payload)),
        )


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


_TTL = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", re.IGNORECASE)
_TTL_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> float:
    """Seconds in a duration like ``"1h"``, ``"30m"``, ``"45s"``, ``"2d"`` or ``"3600"``."""
    match = _TTL.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"invalid duration {text!r} (examples: 3600, 45s, 30m, 1h, 2d)")
    seconds = float(match.group(1)) * _TTL_UNITS[match.group(2).lower()]
    if seconds <= 0:
        raise ValueError("the duration must be positive")
    return seconds
