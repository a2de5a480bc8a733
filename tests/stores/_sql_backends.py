"""The SQL stores as contract backends (see `tests/stores/_harness.py`), and helpers for the SQL store tests.

Each backend gives every test a table of its own: a file database in `tmp_path` for SQLite, a table with
a unique name (dropped afterwards) on the session's PostgreSQL server. The sync backends hand the store
an engine of the test's (as an app would); the async ones let the store make its engine from the URL.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.stores._harness import AsyncFactory, SyncFactory
from tiktok_oauth.stores.sql import AsyncSQLTokenStore, SQLTokenStore

__all__ = [
    "async_postgres_backend",
    "async_sqlite_backend",
    "postgres_backend",
    "psycopg_url",
    "sqlite_backend",
    "unique_table",
]


def psycopg_url(url: str) -> str:
    """`postgresql://...` spelled with psycopg 3's driver, for engines the tests make themselves."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def unique_table(request: pytest.FixtureRequest, url: str) -> str:
    """A new table name on the PostgreSQL at `url`, dropped (if created) when the test ends."""
    name = f"tokens_{uuid.uuid4().hex[:12]}"

    def drop() -> None:
        engine = sa.create_engine(psycopg_url(url))
        try:
            with engine.begin() as connection:
                connection.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
        finally:
            engine.dispose()

    request.addfinalizer(drop)
    return name


def sqlite_backend(request: pytest.FixtureRequest) -> SyncFactory:
    path: Path = request.getfixturevalue("tmp_path") / "tokens.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    request.addfinalizer(engine.dispose)
    return lambda stack: SQLTokenStore(engine)


def async_sqlite_backend(request: pytest.FixtureRequest) -> AsyncFactory:
    path: Path = request.getfixturevalue("tmp_path") / "tokens.db"

    async def new(stack: contextlib.AsyncExitStack) -> AsyncSQLTokenStore:
        store = AsyncSQLTokenStore(f"sqlite:///{path}")
        stack.push_async_callback(store.aclose)
        return store

    return new


def postgres_backend(request: pytest.FixtureRequest) -> SyncFactory:
    url: str = request.getfixturevalue("postgres_url")
    table = unique_table(request, url)

    def new(stack: contextlib.ExitStack) -> SQLTokenStore:
        engine = sa.create_engine(psycopg_url(url))
        stack.callback(engine.dispose)
        return SQLTokenStore(engine, table=table)

    return new


def async_postgres_backend(request: pytest.FixtureRequest) -> AsyncFactory:
    url: str = request.getfixturevalue("postgres_url")
    table = unique_table(request, url)

    async def new(stack: contextlib.AsyncExitStack) -> AsyncSQLTokenStore:
        store = AsyncSQLTokenStore(url, table=table)
        stack.push_async_callback(store.aclose)
        return store

    return new
