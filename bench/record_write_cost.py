#!/usr/bin/env python3
"""What the meeting record's indexes cost each chat message: append_chat with and without.

Migration 0005 makes every stored message also update the search index (PostgreSQL: the
generated tsvector column and its GIN index; SQLite since 0008: nothing in the chat commit,
the background indexer copies new messages into the index's own file once a second) and
the (room, ts) retention index.  This times ``SqlStore.append_chat`` (a message stored and
committed, as the server awaits before acknowledging it) one at a time, on a fresh store
with the 0005 schema ("record") and on one where those triggers, tables, columns and
indexes were dropped again ("baseline": the schema before 0005), alternating ABBA over
``--rounds`` rounds in one process.

    python bench/record_write_cost.py --messages 3000 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text

from parley.store.sql import SqlStore

WORDS = "budget review agenda launch notes action item follow up thanks shared folder".split()

SQLITE_BASELINE = [
    "DROP TRIGGER messages_search_ad",
    "DROP TABLE search_deleted",
    "DROP INDEX ix_messages_room_ts",
]
POSTGRES_BASELINE = [
    "DROP INDEX ix_messages_search",
    "ALTER TABLE messages DROP COLUMN search",
    "DROP INDEX ix_messages_room_ts",
]


async def one_run(store: SqlStore, n: int) -> list[float]:
    rng = random.Random(3)
    out = []
    for i in range(n):
        msg = " ".join(rng.choices(WORDS, k=rng.randint(3, 12)))
        t = time.perf_counter()
        await store.append_chat("room", "p_1", "Ada", msg, None, 1_000 + i)
        out.append(time.perf_counter() - t)
        if i % 50 == 0:
            await asyncio.sleep(0)  # let the writer idle (checkpoints) as a server would
    return out


async def sqlite_store(tmp: Path, baseline: bool) -> SqlStore:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp / uuid.uuid4().hex}.db")
    await store.start()
    if baseline:
        await store.stop_indexer()  # its tables go
        async with store.engine.begin() as conn:
            for sql in SQLITE_BASELINE:
                await conn.execute(text(sql))
    return store


async def postgres_store(url: str, schema: str, baseline: bool) -> SqlStore:
    store = SqlStore(
        url, engine_options={"connect_args": {"server_settings": {"search_path": schema}}}
    )
    await store.start()
    if baseline:
        async with store.engine.begin() as conn:
            for sql in POSTGRES_BASELINE:
                await conn.execute(text(sql))
    return store


def summary(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.fmean(values) * 1e6, ordered[int(0.99 * (len(ordered) - 1))] * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    url = os.environ.get("PARLEY_TEST_POSTGRES_URL")
    print(f"load averages {os.getloadavg()}")
    parser_backends = args.stores.split(",")
    backends = [b for b in ("sqlite", "postgres") if b in parser_backends]
    if "postgres" in backends and not url:
        print("postgres: skipped (set PARLEY_TEST_POSTGRES_URL)")
        backends.remove("postgres")
    for backend in backends:
        results: dict[str, list[float]] = {"baseline": [], "record": []}
        order = ["baseline", "record", "record", "baseline"] * ((args.rounds + 1) // 2)
        for kind in order[: 2 * args.rounds]:
            if backend == "sqlite":
                with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
                    store = await sqlite_store(Path(tmp), kind == "baseline")
                    try:
                        results[kind] += await one_run(store, args.messages)
                    finally:
                        await store.close()
            else:
                assert url is not None
                from sqlalchemy.ext.asyncio import create_async_engine

                schema = f"bench_{uuid.uuid4().hex[:10]}"
                admin = create_async_engine(url)
                async with admin.begin() as conn:
                    await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
                try:
                    store = await postgres_store(url, schema, kind == "baseline")
                    try:
                        results[kind] += await one_run(store, args.messages)
                    finally:
                        await store.close()
                finally:
                    async with admin.begin() as conn:
                        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                    await admin.dispose()
        base_mean, base_p99 = summary(results["baseline"])
        mean, p99 = summary(results["record"])
        print(f"\n{backend}: {len(results['record']):,} appends each, one at a time")
        print(f"  baseline (schema before 0005): mean {base_mean:7.1f} us  p99 {base_p99:7.1f} us")
        print(f"  record   (0005: search index): mean {mean:7.1f} us  p99 {p99:7.1f} us")
        ratio = f"mean {mean / base_mean:7.2f}     p99 {p99 / base_p99:7.2f}"
        print(f"  ratio record / baseline:       {ratio}")


if __name__ == "__main__":
    asyncio.run(main())
