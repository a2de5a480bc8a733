"""With 100,000 stored tokens, `expiring()` and `keys()` run indexed queries: the database's own plan says so.

The statements are the store's own, caught on their way to the driver (SQLAlchemy's `before_cursor_execute`)
while the store lists, and then run again under `EXPLAIN` (PostgreSQL, after `ANALYZE`) or
`EXPLAIN QUERY PLAN` (SQLite) with the same parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.stores._sql_backends import psycopg_url, unique_table
from tiktok_oauth.stores._sql_schema import PAGE
from tiktok_oauth.stores.sql import SQLTokenStore

ROWS = 100_000
BASE = 1_000_000_000.0

FILL = {
    "postgresql": (
        'INSERT INTO "{table}" (key, token, expires_at, updated_at) '
        "SELECT 'user-' || i, '{{\"access_token\": \"act.' || i || '\"}}', {base} + i, 0 "
        "FROM generate_series(1, {rows}) AS i"
    ),
    "sqlite": (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
        'INSERT INTO "{table}" (key, token, expires_at, updated_at) '
        "SELECT 'user-' || i, '{{\"access_token\": \"act.' || i || '\"}}', {base} + i, 0 FROM n"
    ),
}


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLTokenStore]:
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path}/tokens.db")
        table = "tiktok_oauth_tokens"
    else:
        url: str = request.getfixturevalue("postgres_url")
        engine = sa.create_engine(psycopg_url(url))
        table = unique_table(request, url)
    store = SQLTokenStore(engine, table=table)
    store.create_table()
    fill = FILL[engine.dialect.name].format(table=table, rows=ROWS, base=BASE)
    with engine.begin() as connection:
        connection.execute(sa.text(fill))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text(f'ANALYZE "{table}"'))
    try:
        yield store
    finally:
        engine.dispose()


def _statements_of(store: SQLTokenStore, listing: Iterator[str]) -> tuple[list[str], list[tuple[str, Any]]]:
    """Run `listing` to its end; return what it listed and the SELECTs the store sent meanwhile."""
    sent: list[tuple[str, Any]] = []

    def catch(connection: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and store.table_name in statement:
            sent.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", catch)
    try:
        listed = list(listing)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", catch)
    return listed, sent


def _plan(store: SQLTokenStore, statement: str, parameters: Any) -> str:
    explain = "EXPLAIN " if store.engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql(explain + statement, parameters).all()
    return "\n".join(" ".join(str(value) for value in row) for row in rows)


def test_expiring_reads_pages_off_the_expiry_index(store: SQLTokenStore) -> None:
    due = 2 * PAGE + 500  # three pages: the first query and two "after this row" queries
    listed, sent = _statements_of(store, store.expiring(BASE + due + 1))
    assert sorted(listed) == sorted(f"user-{i}" for i in range(1, due + 1))
    assert len(sent) == 3
    index = f"ix_{store.table_name}_expires_at"
    for statement, parameters in sent:
        plan = _plan(store, statement, parameters)
        assert index in plan, plan
        assert "Seq Scan" not in plan, plan
        assert f"SCAN {store.table_name}" not in plan.replace("SCAN TABLE", "SCAN"), plan


def test_keys_reads_pages_off_the_primary_key(store: SQLTokenStore) -> None:
    listed, sent = _statements_of(store, store.keys())
    assert len(listed) == ROWS
    assert len(sent) == ROWS // PAGE + 1  # the last page is empty
    for statement, parameters in sent[:2]:  # the first page, and one "after this key"
        plan = _plan(store, statement, parameters)
        assert "Seq Scan" not in plan, plan
        assert "pkey" in plan or "sqlite_autoindex" in plan, plan
