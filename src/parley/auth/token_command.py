"""The ``parley token`` subcommand: mint a signed join token.

Wired into :mod:`parley.cli` with::

    add_token_parser(sub)              # sub = parser.add_subparsers(...)
    ...
    if args.command == "token":
        return run_token(args)

The token alone goes to stdout (so ``TOKEN=$(parley token ...)`` works);
errors go to stderr with exit status 2.

Every token gets a ``sub`` (subject) unless ``--no-subject``: ``--subject`` or a fresh random
one, so that a ban under ``--require-token`` bars the token itself, not only the address it
was used from.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from .join_tokens import DEFAULT_ROLE, ROLES, mint_token, mint_token_with_key, parse_ttl

SECRET_ENV = "PARLEY_JWT_SECRET"


def _ttl(text: str) -> float:
    try:
        return parse_ttl(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_token_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``token`` to ``subparsers`` (from ``add_subparsers``); returns the new parser."""
    token = subparsers.add_parser(
        "token",
        help="mint a signed join token",
        description="Mint a signed join token (JWT) for parley serve --require-token and print"
        " it alone on stdout. Signs with HS256 using --jwt-secret or PARLEY_JWT_SECRET, or with"
        " RS256/ES256 using --private-key.",
    )
    token.add_argument("--room", required=True, help="room the token admits to, or '*' for any")
    token.add_argument("--name", default=None, help="display name (1-64 characters)")
    token.add_argument(
        "--role", default=DEFAULT_ROLE, choices=ROLES, help=f"role (default {DEFAULT_ROLE})"
    )
    token.add_argument(
        "--ttl",
        type=_ttl,
        default=_ttl("1h"),
        metavar="DURATION",
        help="how long the token stays valid: 3600, 45s, 30m, 1h, 2d (default 1h)",
    )
    subject = token.add_mutually_exclusive_group()
    subject.add_argument(
        "--subject",
        default=None,
        help="subject (sub claim), e.g. a user id; bans bar it (default: a random subject,"
        " new for every token)",
    )
    subject.add_argument(
        "--no-subject",
        action="store_true",
        help="leave sub out: a ban then bars only the address the token was used from",
    )
    key = token.add_mutually_exclusive_group()
    key.add_argument(
        "--jwt-secret",
        default=None,
        help=f"shared HS256 secret, at least 32 bytes (default: ${SECRET_ENV}; prefer the"
        " environment, command lines are visible to other users)",
    )
    key.add_argument(
        "--private-key",
        type=Path,
        default=None,
        metavar="FILE",
        help="PEM private key (RSA for RS256, EC P-256 for ES256) instead of a secret",
    )
    return token  # type: ignore[no-any-return]


def _fail(message: str) -> int:
    print(f"parley token: error: {message}", file=sys.stderr)
    return 2


def random_subject() -> str:
    """A subject no other token has (128 random bits), for tokens minted without --subject."""
    return "parley-" + secrets.token_urlsafe(16)


def run_token(args: argparse.Namespace) -> int:
    """Mint the token described by ``args`` and print it; the exit status."""
    subject: str | None = args.subject
    if subject is None and not getattr(args, "no_subject", False):
        subject = random_subject()
    try:
        ttl = args.ttl if isinstance(args.ttl, float | int) else parse_ttl(str(args.ttl))
        if args.private_key is not None:
            try:
                pem = Path(args.private_key).read_bytes()
            except OSError as exc:
                return _fail(f"cannot read {args.private_key}: {exc.strerror or exc}")
            token = mint_token_with_key(pem, args.room, args.name, args.role, ttl, subject=subject)
        else:
            secret = args.jwt_secret or os.environ.get(SECRET_ENV)
            if not secret:
                return _fail(
                    f"no signing key: pass --jwt-secret, set {SECRET_ENV}, or pass"
                    " --private-key FILE"
                )
            token = mint_token(secret, args.room, args.name, args.role, ttl, subject=subject)
    except ValueError as exc:
        return _fail(str(exc))
    sys.stdout.write(token + "\n")
    sys.stdout.flush()
    return 0
