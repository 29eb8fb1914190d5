#!/usr/bin/env python3
"""Chat search over a room of 1,000,000 messages: p95 of a one-word query, both stores.

Fills one room with ``--messages`` messages (plus a few small rooms) through bulk inserts
(SQLite: one ``executemany`` transaction, then the FTS5 indexer's batch over them all;
PostgreSQL: ``COPY``, the tsvector column computed by the database, the GIN index built
after the load), then times ``SqlStore.search`` (what the REST API calls; 20 results, as
its default page) for ``--queries`` one-word queries.  Words come from a Zipf-like
vocabulary of 5,000 words, so queries range from words in a third of all messages to words
in a handful.  Two ways of picking the word: ``as written`` (a random word of a random
message: the common words weigh as they occur) and ``any word`` (uniform over the
vocabulary: mostly rare words), and ``small room, word of others``: the "as written" word
searched in a room of 100 messages that has none of them (every match is elsewhere).

Baseline, in the same run and process: the first page of the room's history
(``SqlStore.history``, 50 messages), which the server serves for every join.  The ratio
search p95 / history p95 is printed with the absolute times.

    python bench/search.py                           # SQLite, and PostgreSQL if configured
    python bench/search.py --messages 100000 --stores sqlite
    PARLEY_TEST_POSTGRES_URL=postgresql+asyncpg://... python bench/search.py --stores postgres
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

from parley.core.search_query import query_words
from parley.store.sql import SqlStore

VOCAB = 5000
ROOM = "big-room"
#: A room of 100 messages sharing no word with the others: searched for the big room's
#: commonest words (the attacker's query: every match elsewhere must be skipped cheaply).
QUIET = "quiet-room"


def vocabulary(rng: random.Random) -> tuple[list[str], list[float]]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < VOCAB:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 9))))
    ordered = sorted(words)
    rng.shuffle(ordered)
    weights = [1.0 / (rank + 1) for rank in range(VOCAB)]  # Zipf, s = 1
    return ordered, weights


def messages(n: int, seed: int = 1) -> tuple[list[str], list[str]]:
    """``n`` message texts (3-12 words each) and the vocabulary."""
    rng = random.Random(seed)
    words, weights = vocabulary(rng)
    pool = rng.choices(words, weights, k=n * 8)
    texts = []
    at = 0
    for _ in range(n):
        k = rng.randint(3, 12)
        if at + k > len(pool):
            at = 0
        texts.append(" ".join(pool[at : at + k]))
        at += k
    return texts, words


def rows(texts: list[str]) -> list[tuple[object, ...]]:
    base = int(time.time() * 1000) - len(texts) * 1000
    out: list[tuple[object, ...]] = []
    for i, text in enumerate(texts):
        sender = f"p_{i % 40:016d}"
        out.append((ROOM, sender, f"Person {i % 40}", text, None, base + i * 1000, False))
    for j in range(2000):  # other rooms share the tables and the index
        out.append((f"room-{j % 20}", "p_x", "X", texts[j % len(texts)], None, base, False))
    for j in range(100):  # a small room whose words are its own
        out.append((QUIET, "p_q", "Q", f"quiet{j} words{j % 7}", None, base, False))
    return out


COLS = "room, sender, name, text, recipient, ts, system"


async def fill_sqlite(path: Path, data: list[tuple[object, ...]]) -> SqlStore:
    store = SqlStore(f"sqlite+aiosqlite:///{path}")
    await store.start()  # migrations: tables, FTS5 table and triggers
    await store.ensure_room(ROOM, 0)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")  # the load only
    with conn:
        conn.executemany(f"INSERT INTO messages ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)", data)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    conn.close()
    await store.index_pending()  # what the background indexer does, all at once
    return store


async def fill_postgres(url: str, schema: str, data: list[tuple[object, ...]]) -> SqlStore:
    import asyncpg

    store = SqlStore(
        url, engine_options={"connect_args": {"server_settings": {"search_path": schema}}}
    )
    await store.start()
    await store.ensure_room(ROOM, 0)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        # Building the GIN index once after the load is much quicker than row by row.
        await conn.execute("DROP INDEX ix_messages_search")
        await conn.copy_records_to_table(
            "messages", records=data, columns=[c.strip() for c in COLS.split(",")]
        )
        await conn.execute("SET maintenance_work_mem = '256MB'")
        await conn.execute("CREATE INDEX ix_messages_search ON messages USING gin (search)")
        await conn.execute("VACUUM ANALYZE messages")
    finally:
        await conn.close()
    return store


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def measure(
    store: SqlStore, texts: list[str], vocab: list[str], queries: int
) -> dict[str, list[float]]:
    rng = random.Random(7)
    as_written = [rng.choice(rng.choice(texts).split()) for _ in range(queries)]
    uniform = [rng.choice(vocab) for _ in range(queries)]
    for word in as_written[:20]:  # warm the caches, as a running server's are
        await store.search(ROOM, query_words(word), None, 20)
    timings: dict[str, list[float]] = {
        "history page": [],
        "search, word as written": [],
        "search, any word": [],
        "small room, word of others": [],
    }
    found: dict[str, int] = {"search, word as written": 0, "search, any word": 0}
    # Interleaved, so all see the same machine state.
    for a, b in zip(as_written, uniform, strict=True):
        t0 = time.perf_counter()
        await store.history(ROOM, None, 50, None)
        t1 = time.perf_counter()
        page, _ = await store.search(ROOM, query_words(a), None, 20)
        t2 = time.perf_counter()
        page2, _ = await store.search(ROOM, query_words(b), None, 20)
        t3 = time.perf_counter()
        timings["history page"].append(t1 - t0)
        timings["search, word as written"].append(t2 - t1)
        timings["search, any word"].append(t3 - t2)
        await store.search(QUIET, query_words(a), None, 20)
        timings["small room, word of others"].append(time.perf_counter() - t3)
        found["search, word as written"] += len(page)
        found["search, any word"] += len(page2)
    for key, total in found.items():
        print(f"  {key}: {total / queries:.1f} results per query on average")
    return timings


def report(name: str, timings: dict[str, list[float]], load_s: float, n: int) -> None:
    base = pct(timings["history page"], 95)
    print(f"\n{name}: {n:,} messages in the room, loaded in {load_s:.0f} s")
    print(f"  {'':26} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'p95 / history p95':>18}")
    for key, values in timings.items():
        p95 = pct(values, 95)
        print(
            f"  {key:26} {pct(values, 50) * 1000:8.2f} {p95 * 1000:8.2f} "
            f"{pct(values, 99) * 1000:8.2f} {p95 / base:18.2f}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument(
        "--dir", default=None, help="where the SQLite file goes (default: a temp dir)"
    )
    args = parser.parse_args()
    t = time.perf_counter()
    texts, vocab = messages(args.messages)
    data = rows(texts)
    print(f"generated {len(data):,} rows in {time.perf_counter() - t:.1f} s")
    cpu = cpu_model()
    print(f"CPU: {cpu}; {os.cpu_count()} logical CPUs; load averages {os.getloadavg()}")
    stores = args.stores.split(",")
    if "sqlite" in stores:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            t = time.perf_counter()
            store = await fill_sqlite(Path(tmp) / "bench.db", data)
            load = time.perf_counter() - t
            try:
                timings = await measure(store, texts, vocab, args.queries)
            finally:
                await store.close()
            report("SQLite (FTS5)", timings, load, args.messages)
    url = os.environ.get("PARLEY_TEST_POSTGRES_URL")
    if "postgres" in stores:
        if not url:
            print("\nPostgreSQL: skipped (set PARLEY_TEST_POSTGRES_URL)")
            return
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = create_async_engine(url)
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            t = time.perf_counter()
            store = await fill_postgres(url, schema, data)
            load = time.perf_counter() - t
            try:
                timings = await measure(store, texts, vocab, args.queries)
            finally:
                await store.close()
            report("PostgreSQL (tsvector + GIN)", timings, load, args.messages)
        finally:
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
