"""Fixtures and conventions shared by every suite.

Layout:

* ``tests/`` is a package tree: every folder holding Python has an ``__init__.py``.
  Under pytest's default ``prepend`` import mode that puts the repository root (the
  first folder up without an ``__init__.py``) on ``sys.path`` and imports every test
  module by its dotted name (``tests.moderation.test_lobby``), so file names may repeat
  across folders and carry no folder prefix.  ``python -m pytest`` from the repository
  root (what ``.ci/run`` does) runs everything; ``python -m pytest tests/server`` one suite.
* Helpers are imported absolutely, never by editing ``sys.path``:
  ``from tests.support.parley_process import ParleyProcess``,
  ``from tests.server.harness import ...``.  A new folder needs an ``__init__.py``.
* ``tests/support/`` is what the suites share (see its ``__init__``): the one class that
  runs ``parley serve`` (:class:`~tests.support.parley_process.ParleyProcess`), one
  Redis and one coturn helper, the WebSocket client.  Each suite's ``conftest.py``
  configures them (which flags, TLS, a network namespace, ``--broker`` nodes) in its
  own fixtures.
* Everything a test starts is a child process on a free 127.0.0.1 port, stopped by
  its PID at teardown (SIGTERM, then SIGKILL).
* Two pytest-xdist workers run the suite (``addopts`` in pyproject.toml), in groups made
  by ``pytest_collection_modifyitems`` below: every browser test in one group, so the
  browsers (which load both cores) run one test at a time beside the other suites, and
  every other module (the fuzzer's too) in a group of its own, so its module-scoped
  servers start once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.postgres import create_database, drop_database, require_url
from tests.support.ws_client import Clients, assert_clean

_ROOT = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """xdist groups (``--dist loadgroup``): see the module docstring."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        try:
            rel = item.path.resolve().relative_to(_ROOT)
        except ValueError:
            continue
        # One browser test at a time (each loads both cores); the tests whose media
        # adapts to a busy CPU are also ``exclusive`` (below).
        group = "browser" if rel.parts[0] == "browser" else rel.as_posix()
        item.add_marker(pytest.mark.xdist_group(group))


#: Where the two xdist workers of one run share their lock files.
_SHARE_DIR = Path(tempfile.gettempdir()) / "parley-tests"


@contextlib.contextmanager
def _machine(exclusive: bool) -> Iterator[None]:
    """Hold the machine shared (most tests) or alone (``exclusive``), writer first.

    An exclusive test takes the gate, so no new test starts on the other worker, then
    waits for the one running there to end; a shared test passes the gate and shares.
    """
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")
    _SHARE_DIR.mkdir(exist_ok=True)
    with (
        open(_SHARE_DIR / f"{run}.gate", "a+") as gate,
        open(_SHARE_DIR / f"{run}.share", "a+") as share,
    ):
        fcntl.flock(gate, fcntl.LOCK_EX)
        if exclusive:
            fcntl.flock(share, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(share, fcntl.LOCK_UN)
                fcntl.flock(gate, fcntl.LOCK_UN)
            return
        fcntl.flock(share, fcntl.LOCK_SH)
        fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(share, fcntl.LOCK_UN)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # outside pytest-timeout's clock
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Under xdist, a test marked ``exclusive`` (browsers whose media adapts to a busy
    CPU: smaller simulcast layers, fewer frames) runs with the other worker idle."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    with _machine(item.get_closest_marker("exclusive") is not None):
        yield


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """URL of an empty PostgreSQL database of this run, dropped at the end.

    Never the database PARLEY_TEST_POSTGRES_URL names: its schema may come from
    other code (see ``tests/support/postgres.py``).  Skips (locally) or fails
    (under CI) without that variable.
    """
    server = require_url()
    url = create_database(server)
    try:
        yield url
    finally:
        drop_database(server, url)


@pytest.fixture
def room(request: pytest.FixtureRequest) -> str:
    """A room name unique to this test (letters, digits, '-' only)."""
    base = re.sub(r"[^A-Za-z0-9-]+", "-", request.node.name.removeprefix("test_"))[:40]
    return f"{base.strip('-')}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    """WebSocket clients of this test, closed at teardown."""
    async with aiohttp.ClientSession() as session:
        c = Clients(session)
        yield c
        await c.close_all()
    # whatever happened in the test, no client was ever sent internal details
    for client in c.opened:
        for msg in client.received:
            if msg["type"] == "error":
                assert_clean(msg)
