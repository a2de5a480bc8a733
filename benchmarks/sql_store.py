"""The SQL stores over many tokens: `keys()`, `expiring(before)` and single operations, beside raw SQLAlchemy.

    python benchmarks/sql_store.py [N]        # N tokens (default 100,000)

SQLite: a file in a temporary directory (pysqlite, and aiosqlite for the async store). PostgreSQL: a real
server started for the run (`initdb` + `pg_ctl` from `tests/_postgres.py`), psycopg 3 sync and async. The
raw contenders are SQLAlchemy Core doing the same in one statement: `SELECT key FROM t` and
`SELECT key FROM t WHERE expires_at < :before`, all rows fetched at once. `expiring` is asked for the 10% of
tokens that expire soonest. Each listing figure is the best of 3 runs; single operations are the median
of 200. The rows are written once, outside the timed region, then `ANALYZE`d (PostgreSQL). The `EXPLAIN`
output of the store's first `expiring` page is printed after the table.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._timing import machine
from tests._postgres import PostgresServer, find_postgres_bin
from tiktok_oauth.stores.sql import AsyncSQLTokenStore, SQLTokenStore
from tiktok_oauth.token import TikTokToken

REPEAT = 3
SINGLE = 200
BASE = 2_000_000_000


def token_for(n: int) -> TikTokToken:
    return TikTokToken(
        access_token=f"act.{n:08d}.{'x' * 60}",
        refresh_token=f"rft.{n:08d}.{'y' * 60}",
        open_id=f"open-{n:08d}",
        scope="user.info.basic,video.list",
        expires_at=BASE + n,
        refresh_expires_at=BASE + 31_536_000 + n,
        token_type="Bearer",
    )


def fill(store: SQLTokenStore, n: int) -> None:
    """What `set` writes for N tokens, inserted in batches."""
    store.create_table()
    batch: list[dict[str, Any]] = []
    with store.engine.begin() as connection:
        for i in range(n):
            token = token_for(i)
            batch.append(store._row(token.open_id or "", token))  # noqa: SLF001 - exactly what set() writes
            if len(batch) == 5000:
                connection.execute(sa.insert(store.table), batch)
                batch = []
        if batch:
            connection.execute(sa.insert(store.table), batch)
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text(f'VACUUM ANALYZE "{store.table_name}"'))


def best(run: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(REPEAT):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


async def abest(run: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(REPEAT):
        start = time.perf_counter()
        result = await run()
        times.append(time.perf_counter() - start)
    return min(times), result


def row(what: str, ours: tuple[float, Any], raw: tuple[float, Any], count: int) -> str:
    assert len(ours[1]) == count, (what, len(ours[1]), count)
    assert len(raw[1]) == count, (what, len(raw[1]), count)
    return f"| {what} | {count:,} | {ours[0] * 1000:,.1f} ms | {raw[0] * 1000:,.1f} ms | {ours[0] / raw[0]:.2f}x |"


def single(run: Callable[[], Any]) -> float:
    """Median microseconds of one call."""
    times = []
    for _ in range(SINGLE):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def sync_rows(label: str, store: SQLTokenStore, n: int) -> list[str]:
    table = store.table
    before, due = BASE + n // 10, n // 10

    def raw_keys() -> list[str]:
        with store.engine.connect() as connection:
            return list(connection.execute(sa.select(table.c.key)).scalars())

    def raw_expiring() -> list[str]:
        with store.engine.connect() as connection:
            return list(
                connection.execute(sa.select(table.c.key).where(table.c.expires_at < before)).scalars()
            )

    return [
        row(f"{label} `keys()`", best(lambda: list(store.keys())), best(raw_keys), n),
        row(
            f"{label} `expiring(before)`", best(lambda: list(store.expiring(before))), best(raw_expiring), due
        ),
    ]


def single_rows(label: str, store: SQLTokenStore) -> list[str]:
    token = token_for(7)

    def locked() -> None:
        with store.lock("bench-lock"):
            pass

    return [
        f"| {label} `get` | {single(lambda: store.get('open-00000007')):,.0f} µs |",
        f"| {label} `set` | {single(lambda: store.set('bench-set', token)):,.0f} µs |",
        f"| {label} `lock` + release | {single(locked):,.0f} µs |",
    ]


def async_rows(label: str, url: str, table: str, n: int) -> list[str]:
    before, due = BASE + n // 10, n // 10

    async def timed() -> list[str]:
        store = AsyncSQLTokenStore(url, table=table)
        raw_engine = create_async_engine(store.engine.url)
        columns = store.table.c
        try:

            async def ours_keys() -> list[str]:
                return [key async for key in store.keys()]  # noqa: SIM118 - a store, not a dict

            async def ours_expiring() -> list[str]:
                return [key async for key in store.expiring(before)]

            async def raw_keys() -> list[str]:
                async with raw_engine.connect() as connection:
                    return list((await connection.execute(sa.select(columns.key))).scalars())

            async def raw_expiring() -> list[str]:
                query = sa.select(columns.key).where(columns.expires_at < before)
                async with raw_engine.connect() as connection:
                    return list((await connection.execute(query)).scalars())

            return [
                row(f"{label} async `keys()`", await abest(ours_keys), await abest(raw_keys), n),
                row(
                    f"{label} async `expiring(before)`",
                    await abest(ours_expiring),
                    await abest(raw_expiring),
                    due,
                ),
            ]
        finally:
            await store.aclose()
            await raw_engine.dispose()

    return asyncio.run(timed())


def explain(store: SQLTokenStore, n: int) -> str:
    """The database's plan for the store's first `expiring` page."""
    statement = store._schema.expiring_page(BASE + n // 10, None)  # noqa: SLF001 - the store's own query
    compiled = statement.compile(dialect=store.engine.dialect)
    if store.engine.dialect.name == "postgresql":
        sql, parameters = f"EXPLAIN (ANALYZE, COSTS OFF) {compiled}", compiled.params
    else:
        positions = compiled.positiontup or []
        sql, parameters = f"EXPLAIN QUERY PLAN {compiled}", tuple(compiled.params[name] for name in positions)
    with store.engine.connect() as connection:
        lines = [
            " ".join(str(value) for value in line) for line in connection.exec_driver_sql(sql, parameters)
        ]
    return "\n".join(lines)


def run(label: str, url: str, n: int) -> tuple[list[str], list[str], str]:
    with SQLTokenStore(url) as store:
        fill(store, n)
        listing = sync_rows(label, store, n) + async_rows(label, url, store.table_name, n)
        singles = single_rows(label, store)
        plan = explain(store, n)
    return listing, singles, plan


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    info = machine()
    print(f"{n:,} tokens; best of {REPEAT}; {info['cpu']}, {info['cores']} cores, load {info['load']}")
    results = []
    with tempfile.TemporaryDirectory(prefix="tiktok-oauth-bench-") as directory:
        results.append(run("SQLite", f"sqlite:///{directory}/tokens.db", n))
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        print("(PostgreSQL not installed: its rows are missing)")
    else:
        with PostgresServer(bin_dir) as server:
            results.append(run("PostgreSQL", server.url, n))
    print()
    print("| operation | keys returned | tiktok-oauth | raw SQLAlchemy | ratio |")
    print("|---|---|---|---|---|")
    for listing, _, _ in results:
        print("\n".join(listing))
    print()
    print("| single operation | median |")
    print("|---|---|")
    for _, singles, _ in results:
        print("\n".join(singles))
    for (_, _, plan), label in zip(results, ("SQLite", "PostgreSQL"), strict=False):
        print(f"\n{label}: the plan of the store's first `expiring` page ({n // 10:,} due, pages of 1,000)")
        print(plan)


if __name__ == "__main__":
    main()
