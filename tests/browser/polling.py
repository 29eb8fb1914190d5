"""Waiting for a condition the page does not expose as a locator (WebRTC stats, sockets)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def wait_until(predicate: Callable[[], bool], timeout_ms: int, message: Callable[[], str]) -> None:
    """Poll ``predicate`` until true; fail with ``message()`` after ``timeout_ms``."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            pytest.fail(message(), pytrace=False)
        time.sleep(0.25)
