"""Signed join tokens end to end: ``--require-token`` with HS256 and RS256 servers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from typing import Any

from parley.auth import mint_token, mint_token_with_key
from tests.moderation.harness import Fleet, Net, rsa_keypair_pem
from tests.support.parley_process import ParleyProcess


def hs(fleet: Fleet, room: str, name: str | None = "Tok", role: str = "participant") -> str:
    """A valid HS256 join token from the server's secret."""
    return mint_token(fleet.jwt_secret, room, name, role, 600)


def role_of(welcome: dict[str, Any], pid: str) -> str:
    return next(p["role"] for p in welcome["participants"] if p["id"] == pid)


def b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


async def test_join_without_token_is_refused(fleet: Fleet, net: Net, room: str) -> None:
    c = await net.refused(fleet.hs256, room, "Ada", "token_required")
    # The same connection may try again with a token.
    await c.send({"type": "join", "room": room, "name": "Ada", "v": 1, "token": hs(fleet, room)})
    await c.expect("welcome")


async def test_bad_tokens_are_refused(fleet: Fleet, net: Net, room: str) -> None:
    srv = fleet.hs256
    other_secret = "another-secret-that-is-long-enough-0123456789"
    now = time.time()
    valid = hs(fleet, room)
    head, body, sig = valid.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    bad = {
        "forged": mint_token(other_secret, room, "Tok", "host", 600),
        "expired": mint_token(fleet.jwt_secret, room, "Tok", "host", 60, now=now - 3600),
        "wrong room": hs(fleet, room + "-elsewhere", role="host"),
        "not yet valid": mint_token(fleet.jwt_secret, room, "Tok", "host", 600, now=now + 3600),
        "wrong audience": mint_token(
            fleet.jwt_secret, room, "Tok", "host", 600, audience="someone-else"
        ),
        "tampered role": ".".join([head, b64({**claims, "role": "host"}), sig]),
        "alg none": ".".join([b64({"alg": "none", "typ": "JWT"}), b64(claims), ""]),
        "garbage": "not-a-token",
        "empty": "",
        "huge": "x" * 9000,
    }
    for what, token in bad.items():
        c = await net.refused(srv, room, "Tok", "bad_token", token=token)
        err = c.of_type("error")[0]
        assert err["message"] and "Traceback" not in err["message"], (what, err)
    # Nobody got in.
    ok = await net.join(srv, room, "Ada", token=valid)
    assert ok.welcome is not None and len(ok.welcome["participants"]) == 1


async def test_token_roles_and_names(fleet: Fleet, net: Net, room: str) -> None:
    srv = fleet.hs256
    # Roles come from tokens only: a participant token joining first is not host.
    pat = await net.join(srv, room, "Pat", token=hs(fleet, room, name=None))
    assert pat.welcome is not None
    assert role_of(pat.welcome, pat.id) == "participant"
    await pat.send({"type": "room-settings", "locked": True, "ref": "x"})
    assert (await pat.expect("error"))["code"] == "forbidden"
    # A host token makes a host, and the token's name wins over the join's name field.
    hst = await net.join(srv, room, "Mallory", token=hs(fleet, room, name="Hostess", role="host"))
    assert hst.welcome is not None
    me = next(p for p in hst.welcome["participants"] if p["id"] == hst.id)
    assert (me["name"], me["role"]) == ("Hostess", "host")
    joined = await pat.expect("participant-joined")
    assert joined["participant"]["name"] == "Hostess"
    assert joined["participant"]["role"] == "host"
    # The host can moderate; an observer token gives an observer.
    obs = await net.join(srv, room, "Olly", token=hs(fleet, room, name=None, role="observer"))
    assert obs.welcome is not None and role_of(obs.welcome, obs.id) == "observer"
    await obs.send({"type": "media", "mic": True, "ref": "m"})
    assert (await obs.expect("error"))["code"] == "forbidden"
    await hst.send({"type": "mute-all", "kind": "mic"})
    await pat.expect("muted")
    # The host leaving hands nothing over on a token server (roles come from tokens).
    await hst.send({"type": "leave"})
    await pat.expect("participant-left")
    await asyncio.sleep(0.2)
    await pat.roundtrip()
    assert not [m for m in pat.of_type("participant-updated") if m["participant"]["role"] == "host"]


async def test_wildcard_token(fleet: Fleet, net: Net, room: str) -> None:
    token = mint_token(fleet.jwt_secret, "*", "Roamer", "host", 600)
    for r in (room, room + "-b"):
        c = await net.join(fleet.hs256, r, "x", token=token)
        assert c.welcome is not None
        assert role_of(c.welcome, c.id) == "host"
        assert c.welcome["participants"][0]["name"] == "Roamer"


async def test_cli_token_is_accepted(fleet: Fleet, net: Net, room: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    argv = [sys.executable, "-m", "parley", "token", "--room", room, "--name", "Cli Host"]
    argv += ["--role", "host", "--ttl", "1h", f"--jwt-secret={fleet.jwt_secret}"]
    out = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    lines = out.stdout.splitlines()
    assert len(lines) == 1 and out.stdout == lines[0] + "\n"  # the token alone
    token = lines[0]
    assert token.count(".") == 2 and " " not in token
    c = await net.join(fleet.hs256, room, "ignored", token=token)
    assert c.welcome is not None
    me = c.welcome["participants"][0]
    assert (me["name"], me["role"]) == ("Cli Host", "host")
    # The secret can come from PARLEY_JWT_SECRET too.
    argv = [sys.executable, "-m", "parley", "token", "--room", room, "--role", "observer"]
    env2 = {**env, "PARLEY_JWT_SECRET": fleet.jwt_secret}
    out = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, env=env2, timeout=60
    )
    assert out.returncode == 0, out.stderr
    c2 = await net.join(fleet.hs256, room, "Obs", token=out.stdout.strip())
    assert c2.welcome is not None and role_of(c2.welcome, c2.id) == "observer"


async def test_rs256_public_key_server(fleet: Fleet, net: Net, room: str) -> None:
    srv: ParleyProcess = fleet.rs256
    token = mint_token_with_key(fleet.rsa_private_pem, room, "Rita", "host", 600)
    rita = await net.join(srv, room, "x", token=token)
    assert rita.welcome is not None
    assert role_of(rita.welcome, rita.id) == "host"
    # Another key's signature, an HS256 token (even one keyed with the public key's
    # bytes: the algorithm-confusion attack), and no token at all are all refused.
    other_private, _ = rsa_keypair_pem()
    await net.refused(
        srv,
        room,
        "Eve",
        "bad_token",
        token=mint_token_with_key(other_private, room, "Eve", "host", 600),
    )
    await net.refused(srv, room, "Eve", "bad_token", token=hs(fleet, room, role="host"))
    claims = {"aud": "parley", "room": room, "role": "host", "exp": int(time.time()) + 600}
    signing_input = b64({"alg": "HS256", "typ": "JWT"}) + "." + b64(claims)
    mac = hmac.new(fleet.rsa_public_pem, signing_input.encode(), hashlib.sha256).digest()
    confused = signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    await net.refused(srv, room, "Eve", "bad_token", token=confused)
    await net.refused(srv, room, "Eve", "token_required")
    expired = mint_token_with_key(
        fleet.rsa_private_pem, room, "Old", "host", 60, now=time.time() - 3600
    )
    await net.refused(srv, room, "Old", "bad_token", token=expired)
