"""TURN REST API credentials: the algorithm, and a real coturn accepting them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
import time
from collections.abc import Iterator

import pytest

from parley.ops.turn import TurnConfig, turn_credentials, turn_password
from tests.ops.stun import REALM, XOR_MAPPED_ADDRESS, XOR_RELAYED_ADDRESS, TurnClient, integrity_ok
from tests.support.coturn import Coturn, write_coturn_config
from tests.support.processes import free_udp_tcp_port, require_binary

SECRET = "s3cret-for-tests-0123456789abcdef"
REALM_NAME = "parley.test"


# -- the algorithm ------------------------------------------------------------------------


def test_credentials_follow_the_turn_rest_api_scheme() -> None:
    ice = turn_credentials(SECRET, ["turn:127.0.0.1:3478"], 3600, "p_abc", now=1_700_000_000.7)
    assert ice["urls"] == ["turn:127.0.0.1:3478"]
    assert ice["username"] == "1700003600:p_abc"
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), b"1700003600:p_abc", hashlib.sha1).digest()
    ).decode()
    assert ice["credential"] == expected
    assert set(ice) == {"urls", "username", "credential"}


def test_credential_matches_openssl() -> None:
    """An independent implementation of HMAC-SHA1 + base64 agrees."""
    openssl = require_binary("openssl")
    username = "1700003600:p_abc"
    out = subprocess.run(
        [openssl, "dgst", "-sha1", "-hmac", SECRET, "-binary"],
        input=username.encode(),
        capture_output=True,
        check=True,
    ).stdout
    assert turn_password(SECRET, username) == base64.b64encode(out).decode()


def test_known_vector() -> None:
    # Computed with `printf %s 1433895918506:my_username | openssl dgst -sha1 -hmac north
    # -binary | base64`, kept as a fixed regression vector.
    assert turn_password("north", "1433895918506:my_username") == "Gx/rOncp1ZXBdeBo0S3RrYQnHDA="


def test_user_part_optional_and_validated() -> None:
    assert turn_credentials(SECRET, [], 10, "", now=100)["username"] == "110"
    with pytest.raises(ValueError):
        turn_credentials(SECRET, [], 10, "a:b", now=100)
    with pytest.raises(ValueError):
        turn_credentials("", [], 10, "p", now=100)
    with pytest.raises(ValueError):
        turn_credentials(SECRET, [], 0, "p", now=100)


def test_turn_config_uses_the_clock() -> None:
    cfg = TurnConfig(SECRET, ("turn:h:3478?transport=udp", "turns:h:5349"), ttl=600)
    before = int(time.time())
    ice = cfg.ice_server("p_x")
    expiry = int(ice["username"].split(":")[0])
    assert before + 600 <= expiry <= int(time.time()) + 600
    assert ice["urls"] == ["turn:h:3478?transport=udp", "turns:h:5349"]
    assert cfg.ice_server("p_x", now=5)["username"] == "605:p_x"


# -- a real coturn ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    require_binary("turnserver")
    base = tmp_path_factory.mktemp("coturn")
    port = free_udp_tcp_port()
    config = write_coturn_config(base, port, SECRET, REALM_NAME)
    server = Coturn(config, base / "turnserver.out", port, turn_log=base / "turn.log").start()
    yield server
    server.stop()


def credentials(user: str, ttl: int = 600, now: float | None = None) -> dict[str, str]:
    ice = turn_credentials(
        SECRET, ["turn:127.0.0.1"], ttl, user, now=time.time() if now is None else now
    )
    return {"username": ice["username"], "password": ice["credential"]}


def client(server: Coturn, username: str, password: str) -> TurnClient:
    return TurnClient(("127.0.0.1", server.port), username, password)


def test_coturn_allocates_with_ephemeral_credentials(coturn: Coturn) -> None:
    creds = credentials("p_alloc")
    c = client(coturn, creds["username"], creds["password"])
    try:
        challenge = c.unauthenticated_allocate()
        assert challenge.error_code == 401
        assert challenge.get(REALM) == REALM_NAME.encode()
        resp = c.allocate()
        assert resp.ok, f"allocate failed: {resp.error_code}\n{coturn.text()}"
        relayed = resp.xor_address(XOR_RELAYED_ADDRESS)
        assert relayed is not None and relayed[0] == "127.0.0.1" and relayed[1] > 0
        assert resp.xor_address(XOR_MAPPED_ADDRESS) == ("127.0.0.1", c.sock.getsockname()[1])
        assert integrity_ok(resp, c.key), "coturn's answer is not signed with our key"
        # The allocation is usable: a permission towards a loopback peer (allowed here).
        assert c.create_permission("127.0.0.1").ok
    finally:
        c.close()


def test_coturn_refuses_a_wrong_password(coturn: Coturn) -> None:
    creds = credentials("p_wrong")
    c = client(coturn, creds["username"], "bm90IHRoZSByaWdodCBwYXNzd29yZA==")
    try:
        resp = c.allocate()
        assert not resp.ok
        assert resp.error_code in (401, 438)
        assert resp.xor_address(XOR_RELAYED_ADDRESS) is None
    finally:
        c.close()


def test_coturn_refuses_another_secret(coturn: Coturn) -> None:
    ice = turn_credentials("some-other-secret", [], 600, "p_other", now=time.time())
    c = client(coturn, ice["username"], ice["credential"])
    try:
        resp = c.allocate()
        assert not resp.ok and resp.error_code in (401, 438)
    finally:
        c.close()


def test_coturn_refuses_an_expired_credential(coturn: Coturn) -> None:
    # Issued two hours ago for one hour: expired an hour ago, correctly signed.
    creds = credentials("p_expired", ttl=3600, now=time.time() - 7200)
    c = client(coturn, creds["username"], creds["password"])
    try:
        resp = c.allocate()
        assert not resp.ok, "coturn accepted an expired credential"
        assert resp.error_code in (401, 438)
    finally:
        c.close()


def test_coturn_survived_the_bad_requests(coturn: Coturn) -> None:
    assert coturn.alive(), coturn.text()
