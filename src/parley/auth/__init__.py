"""Access control: room passwords, attempt throttling and signed join tokens.

Self-contained (no I/O, no server state); the server and CLI wire these in.
"""

from __future__ import annotations

from .join_tokens import (
    ANY_ROOM,
    DEFAULT_AUDIENCE,
    MAX_TOKEN_CHARS,
    MIN_SECRET_BYTES,
    ROLES,
    JoinClaims,
    JoinTokenVerifier,
    TokenError,
    mint_token,
    mint_token_with_key,
    parse_ttl,
)
from .passwords import (
    MAX_PASSWORD_CHARS,
    AttemptThrottle,
    hash_password,
    password_needs_rehash,
    throttle_key,
    verify_password,
)

__all__ = [
    "ANY_ROOM",
    "DEFAULT_AUDIENCE",
    "MAX_PASSWORD_CHARS",
    "MAX_TOKEN_CHARS",
    "MIN_SECRET_BYTES",
    "ROLES",
    "AttemptThrottle",
    "JoinClaims",
    "JoinTokenVerifier",
    "TokenError",
    "hash_password",
    "mint_token",
    "mint_token_with_key",
    "parse_ttl",
    "password_needs_rehash",
    "throttle_key",
    "verify_password",
]
