"""The client address behind trusted proxies."""

from __future__ import annotations

from parley.ops.proxy import TrustedProxies


def test_untrusted_remote_is_the_client() -> None:
    p = TrustedProxies(["127.0.0.1"])
    assert p.client_address("203.0.113.5", "1.2.3.4") == "203.0.113.5"


def test_no_proxies_configured() -> None:
    p = TrustedProxies([])
    assert not p
    assert p.client_address("127.0.0.1", "1.2.3.4") == "127.0.0.1"


def test_rightmost_untrusted_hop_wins() -> None:
    p = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    assert p.client_address("127.0.0.1", "198.51.100.7") == "198.51.100.7"
    # The client forged a first entry; nginx appended the real one.
    assert p.client_address("127.0.0.1", "6.6.6.6, 198.51.100.7") == "198.51.100.7"
    # Two layers of our own proxies.
    assert p.client_address("127.0.0.1", "198.51.100.7, 10.1.2.3") == "198.51.100.7"
    assert p.client_address("::ffff:127.0.0.1", "2001:db8::1") == "2001:db8::1"


def test_garbage_is_not_believed() -> None:
    p = TrustedProxies(["127.0.0.1"])
    assert p.client_address("127.0.0.1", "not-an-ip") == "127.0.0.1"
    assert p.client_address("127.0.0.1", " , ") == "127.0.0.1"
    assert p.client_address("127.0.0.1", None) == "127.0.0.1"
    assert p.client_address(None, "1.2.3.4") is None
