"""``parley token``: the token alone on stdout, clear errors with exit status 2."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from parley.auth import JoinTokenVerifier
from parley.auth.token_command import SECRET_ENV, add_token_parser, run_token

SECRET = "cli-test-secret-0123456789-abcdefghij"


def parser() -> argparse.ArgumentParser:
    # The same wiring as parley.cli.build_parser.
    p = argparse.ArgumentParser(prog="parley")
    sub = p.add_subparsers(dest="command", required=True)
    add_token_parser(sub)
    return p


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    args = parser().parse_args(argv)
    assert args.command == "token"
    code = run_token(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def no_env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)


def test_token_alone_on_stdout_and_verifies(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        ["token", "--room", "R", "--name", "N", "--role", "host", "--ttl", "1h",
         "--jwt-secret", SECRET],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert err == ""
    assert out.endswith("\n") and out.count("\n") == 1
    token = out.strip()
    assert token.count(".") == 2 and " " not in token
    claims = JoinTokenVerifier(secret=SECRET).verify(token, "R")
    assert (claims.room, claims.name, claims.role) == ("R", "N", "host")
    assert claims.subject  # a subject by default (see test_subject_by_default)


def test_secret_from_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    code, out, _ = run(["token", "--room", "*", "--ttl", "30m", "--subject", "u1"], capsys)
    assert code == 0
    claims = JoinTokenVerifier(secret=SECRET).verify(out.strip(), "any-room")
    assert (claims.role, claims.subject, claims.name) == ("participant", "u1", None)


def subject_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str | None:
    code, out, err = run(["token", "--room", "R", "--jwt-secret", SECRET, *argv], capsys)
    assert code == 0, err
    return JoinTokenVerifier(secret=SECRET).verify(out.strip(), "R").subject


def test_subject_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    # A ban under --require-token bars the token's subject: without one it would bar only
    # the address, and the invitee could come back from another network with the same link.
    subjects = {subject_of([], capsys) for _ in range(20)}
    assert None not in subjects and len(subjects) == 20  # a fresh subject per token
    assert all(isinstance(s, str) and len(s) >= 16 for s in subjects)
    assert subject_of(["--subject", "ada@example.org"], capsys) == "ada@example.org"
    assert subject_of(["--no-subject"], capsys) is None  # the explicit way to leave it out


def test_subject_and_no_subject_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parser().parse_args(["token", "--room", "R", "--subject", "u", "--no-subject"])
    assert info.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_no_secret_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["token", "--room", "R"], capsys)
    assert code == 2
    assert out == ""
    assert "--jwt-secret" in err and SECRET_ENV in err and "--private-key" in err


def test_short_secret_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["token", "--room", "R", "--jwt-secret", "s3cret"], capsys)
    assert (code, out) == (2, "")
    assert "at least 32 bytes" in err


def test_bad_room_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["token", "--room", "no spaces", "--jwt-secret", SECRET], capsys)
    assert (code, out) == (2, "")
    assert "room" in err


def test_bad_ttl_and_role_rejected_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--ttl", "soon"], ["--role", "admin"]):
        with pytest.raises(SystemExit) as exc:
            parser().parse_args(["token", "--room", "R", "--jwt-secret", SECRET, *argv])
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid duration" in err and "invalid choice" in err


def test_secret_and_key_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(
            ["token", "--room", "R", "--jwt-secret", SECRET, "--private-key", str(tmp_path)]
        )


def test_private_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    code, out, err = run(
        ["token", "--room", "R", "--role", "observer", "--private-key", str(key_file)], capsys
    )
    assert code == 0, err
    assert JoinTokenVerifier(public_key_pem=public).verify(out.strip(), "R").role == "observer"

    code, out, err = run(["token", "--room", "R", "--private-key", str(tmp_path / "x")], capsys)
    assert (code, out) == (2, "")
    assert "cannot read" in err

    (tmp_path / "bad.pem").write_text("nonsense")
    code, out, err = run(["token", "--room", "R", "--private-key", str(tmp_path / "bad.pem")],
                         capsys)  # fmt: skip
    assert (code, out) == (2, "")
    assert "private key" in err


def test_namespace_directly(capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(
        room="R", name=None, role="host", ttl="45s", subject=None, jwt_secret=SECRET,
        private_key=None,
    )  # fmt: skip
    assert run_token(args) == 0
    token = capsys.readouterr().out.strip()
    assert JoinTokenVerifier(secret=SECRET).verify(token, "R").role == "host"


def test_in_a_subprocess() -> None:
    code = (
        "import argparse, sys\n"
        "from parley.auth.token_command import add_token_parser, run_token\n"
        "p = argparse.ArgumentParser(prog='parley')\n"
        "add_token_parser(p.add_subparsers(dest='command', required=True))\n"
        "sys.exit(run_token(p.parse_args(sys.argv[1:])))\n"
    )
    env = {**os.environ, SECRET_ENV: SECRET}
    result = subprocess.run(
        [sys.executable, "-c", code, "token", "--room", "R", "--name", "N", "--role", "host",
         "--ttl", "1h"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert JoinTokenVerifier(secret=SECRET).verify(lines[0], "R").name == "N"

    env.pop(SECRET_ENV)
    result = subprocess.run(
        [sys.executable, "-c", code, "token", "--room", "R"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stdout == ""
    assert "PARLEY_JWT_SECRET" in result.stderr
