"""Store fixtures: every test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``PARLEY_TEST_POSTGRES_URL`` (start one with
``eval "$(.ci/postgres.sh)"``). Without it the PostgreSQL cases are skipped,
except under CI (``CI`` set), where a missing database is an error: CI must not
go green by silently skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from parley.store.sql import SqlStore
from tests.support.processes import ci

POSTGRES_ENV = "PARLEY_TEST_POSTGRES_URL"


@dataclass
class StoreFactory:
    """Opens stores on one test database; closes them all at teardown."""

    url: str
    backend: str
    engine_options: dict[str, Any] = field(default_factory=dict)
    opened: list[SqlStore] = field(default_factory=list)

    async def open(self, **kwargs: Any) -> SqlStore:
        store = SqlStore(self.url, engine_options=self.engine_options, **kwargs)
        await store.start()
        self.opened.append(store)
        return store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    if request.param == "sqlite":
        # A nested, not yet existing directory: the store must create it.
        factory = StoreFactory(f"sqlite+aiosqlite:///{tmp_path}/db/parley.sqlite3", "sqlite")
        yield factory
        for store in factory.opened:
            await store.close()
        return

    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if ci():
            pytest.fail(f"{POSTGRES_ENV} is not set but CI is: PostgreSQL tests must run in CI")
        pytest.skip(f"{POSTGRES_ENV} not set (start one with .ci/postgres.sh)")
    # A fresh schema per test keeps tests independent (and lets runs overlap).
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        factory = StoreFactory(
            url,
            "postgres",
            {"connect_args": {"server_settings": {"search_path": schema}}},
        )
        yield factory
        for store in factory.opened:
            await store.close()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await admin.dispose()


@pytest.fixture
async def store(make_store: StoreFactory) -> SqlStore:
    return await make_store.open()
