"""A fresh PostgreSQL database for this test run.

``PARLEY_TEST_POSTGRES_URL`` names a server and a role (``.ci/postgres.sh`` makes
both, the role with CREATEDB).  Tests that start servers on it never use that
database itself: its public schema may hold tables from another checkout (another
branch's migrations, a run of older code), and a server that finds the schema at a
revision it knows does not look further.  So each run gets a database of its own,
created empty and dropped at the end; the servers migrate it as in production.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid

from tests.support.processes import ci

POSTGRES_ENV = "PARLEY_TEST_POSTGRES_URL"


def server_url() -> str | None:
    """PARLEY_TEST_POSTGRES_URL, or None (the caller skips, or fails under CI)."""
    return os.environ.get(POSTGRES_ENV) or None


def require_url() -> str:
    """PARLEY_TEST_POSTGRES_URL; skips locally when unset, fails when CI is set."""
    import pytest

    url = server_url()
    if url is None:
        if ci():
            pytest.fail(f"CI is set but {POSTGRES_ENV} is not: PostgreSQL tests need it")
        pytest.skip(f'{POSTGRES_ENV} not set (eval "$(bash .ci/postgres.sh)")')
    return url


def _dsn(url: str, database: str | None = None) -> str:
    base, _, _ = url.partition("?")
    dsn = base.replace("postgresql+asyncpg://", "postgresql://", 1)
    if database is not None:
        dsn = dsn.rsplit("/", 1)[0] + "/" + database
    return dsn


async def _execute(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_dsn(url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _admin(url: str, statement: str) -> None:
    """Run one statement on its own loop in its own thread: session fixtures may be set
    up while a test's event loop is running in this one (asyncio.run() refuses that)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _execute(url, statement)).result(timeout=60)


def create_database(url: str) -> str:
    """Create an empty database on the server of ``url``; returns its URL."""
    name = f"parley_t_{uuid.uuid4().hex[:12]}"
    try:
        _admin(url, f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - said in one line, with the remedy
        raise RuntimeError(
            f"cannot create a test database on {POSTGRES_ENV} ({exc}); the role needs "
            "CREATEDB: re-run .ci/postgres.sh, or ALTER ROLE ... CREATEDB"
        ) from exc
    base, sep, query = url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + sep + query


def drop_database(url: str, database_url: str) -> None:
    name = database_url.partition("?")[0].rsplit("/", 1)[1]
    # FORCE: a node killed by a test may leave a connection behind for a moment.
    _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def dsn(database_url: str) -> str:
    """The asyncpg DSN of a SQLAlchemy ``postgresql+asyncpg://`` URL."""
    return _dsn(database_url)
