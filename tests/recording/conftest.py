"""Fixtures of the recording tests: the SFU tests' loopback-only aiortc peers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from parley.sfu.aiortc import host_addresses


@pytest.fixture
def loopback_only() -> Iterator[None]:
    """ICE candidates of this process's aiortc peers on 127.0.0.1 only (aioice skips it)."""
    host_addresses.restrict_host_addresses(["127.0.0.1"])
    yield
    host_addresses.restrict_host_addresses(None)
