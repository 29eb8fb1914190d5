"""``--durability``: what an acknowledged chat message survives.

``normal`` (the default): SQLite ``synchronous=NORMAL`` in WAL mode, a commit survives the
process being killed but not a power loss.  ``full``: ``synchronous=FULL``, every commit is
on disk before the ``ack``.  The setting must reach every SQLite connection the store
writes with (the engine's and the chat writer's own), on the same path ``parley serve``
takes: ``open_store(settings.effective_database_url)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from parley.cli import build_parser, settings_from
from parley.config import Settings
from parley.store import SqlStore, open_store

SQLITE_SYNCHRONOUS = {"normal": 1, "full": 2}  # PRAGMA synchronous answers a number


async def opened(settings: Settings) -> SqlStore:
    store = open_store(settings.effective_database_url)
    assert isinstance(store, SqlStore)
    await store.start()
    return store


@pytest.mark.parametrize("durability", ["normal", "full"])
async def test_sqlite_synchronous_follows_durability(tmp_path: Path, durability: str) -> None:
    store = await opened(Settings(data_dir=tmp_path, durability=durability))
    try:
        assert store.durability == durability
        async with store.engine.connect() as conn:
            value = (await conn.execute(text("PRAGMA synchronous"))).scalar_one()
        assert value == SQLITE_SYNCHRONOUS[durability]
        # the chat writer's own connection (group commit) too: that is where acks wait
        ack = await store.append_chat("r", "p_1", "Ada", "hello", None, 1)
        assert ack.id >= 1
        writer = store._sqlite_writer
        assert writer is not None and writer._conn is not None
        assert (
            writer._conn.execute("PRAGMA synchronous").fetchone()[0]
            == (SQLITE_SYNCHRONOUS[durability])
        )
    finally:
        await store.close()


async def test_unknown_durability_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="durability"):
        SqlStore(f"sqlite+aiosqlite:///{tmp_path}/x.db?durability=sometimes")


@pytest.mark.postgres
async def test_postgres_full_durability_forces_synchronous_commit_on(
    postgres_database: str,
) -> None:
    url = postgres_database
    # A database (or role) configured with synchronous_commit=off, as an operator may:
    off: dict[str, Any] = {"connect_args": {"server_settings": {"synchronous_commit": "off"}}}
    for durability, expected in (("normal", "off"), ("full", "on")):
        store = SqlStore(
            f"{url}?durability={durability}"
            if "?" not in url
            else f"{url}&durability={durability}",
            engine_options=off,
        )
        await store.start()
        try:
            async with store.engine.connect() as conn:
                value = (await conn.execute(text("SHOW synchronous_commit"))).scalar_one()
            assert value == expected, durability
        finally:
            await store.close()


def parsed(argv: list[str]) -> Settings:
    return settings_from(build_parser().parse_args(["serve", *argv]))


def test_durability_flag_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("PARLEY_")]:
        monkeypatch.delenv(var)
    assert parsed([]).durability == "normal"
    assert parsed(["--durability", "full"]).durability == "full"
    monkeypatch.setenv("PARLEY_DURABILITY", "full")
    assert parsed([]).durability == "full"
    assert parsed(["--durability", "normal"]).durability == "normal"  # a flag wins
    assert "durability=full" in parsed([]).effective_database_url
    monkeypatch.setenv("PARLEY_DURABILITY", "FULL")
    assert parsed([]).durability == "full"
    monkeypatch.setenv("PARLEY_DURABILITY", "paranoid")
    with pytest.raises(SystemExit) as info:
        parsed([])
    assert "PARLEY_DURABILITY" in str(info.value.code) and "full" in str(info.value.code)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--durability", "paranoid"])
