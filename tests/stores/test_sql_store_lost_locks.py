"""A SQL store's held lock: `check()` and fenced writes when the PostgreSQL session holding the lock ends.

A session advisory lock lasts as long as its session. When the session ends under its holder
(`pg_terminate_backend`, `idle_session_timeout`, a restart), someone else can take the lock at once; the
first holder must find out before it sends a refresh (`check()`) and must never write under the lock
again (`set` / `delete` raise `LockLostError`, writing nothing). SQLite's file locks and the in-process
locks cannot be lost while their holder lives: their `check()` says nothing.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.stores._sql_backends import psycopg_url, unique_table
from tests.stores._tokens import make_token
from tiktok_oauth.errors import LockLostError
from tiktok_oauth.stores.sql import AsyncSQLTokenStore, SQLTokenStore

KEY = "alice"


@pytest.fixture
def table(request: pytest.FixtureRequest, postgres_url: str) -> str:
    return unique_table(request, postgres_url)


def _holder_query(table: str, key: str) -> tuple[sa.TextClause, dict[str, str]]:
    query = sa.text(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
        " AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(:name, 0)"
    )
    return query, {"name": f"{table}:{key}"}


def holder_pids(url: str, table: str, key: str = KEY) -> list[int]:
    """The backends holding the advisory lock of `key` in `table` (seen from a connection of our own)."""
    engine = sa.create_engine(psycopg_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            query, params = _holder_query(table, key)
            return [row[0] for row in connection.execute(query, params)]
    finally:
        engine.dispose()


def terminate_holder(url: str, table: str, key: str = KEY) -> None:
    """`pg_terminate_backend` the session holding the lock, and wait (5 s at most) until it is gone."""
    (pid,) = holder_pids(url, table, key)
    engine = sa.create_engine(psycopg_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            assert connection.execute(
                sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}
            ).scalar()
    finally:
        engine.dispose()
    assert holder_pids(url, table, key) == []


def test_a_lock_whose_session_was_terminated_fails_check_and_writes_and_another_takes_it(
    postgres_url: str, table: str
) -> None:
    with (
        SQLTokenStore(postgres_url, table=table) as store,
        SQLTokenStore(postgres_url, table=table, lock_timeout=10) as other,
    ):
        store.set(KEY, make_token(1))
        with store.lock(KEY) as held:
            held.check()  # held: nothing to say
            terminate_holder(postgres_url, table)
            with pytest.raises(LockLostError, match=r"session holding the lock of key 'alice'") as checked:
                held.check()
            with pytest.raises(LockLostError) as written:
                store.set(KEY, make_token(2))
            with pytest.raises(LockLostError):
                store.delete(KEY)
            with other.lock(KEY) as others:  # free for someone else at once
                others.check()
                other.set(KEY, make_token(3))
                with pytest.raises(LockLostError):  # the first holder still writes nothing
                    store.set(KEY, make_token(2))
                with pytest.raises(LockLostError):
                    held.check()
        assert store.get(KEY) == make_token(3)
        store.set(KEY, make_token(4))  # outside the lock the store works again
        assert other.get(KEY) == make_token(4)
    for error in (checked.value, written.value):
        assert "secret" not in str(error)
        assert "secret" not in repr(error.__cause__)


def test_the_first_write_after_the_session_ended_is_refused_without_a_check(
    postgres_url: str, table: str
) -> None:
    with SQLTokenStore(postgres_url, table=table) as store:
        store.set(KEY, make_token(1))
        with store.lock(KEY) as held:
            assert store.get(KEY) == make_token(1)  # read on the lock's own session
            terminate_holder(postgres_url, table)
            with pytest.raises(LockLostError):
                store.set(KEY, make_token(2))
            with pytest.raises(LockLostError):
                held.check()
            assert store.get(KEY) == make_token(1)  # a read needs no lock: it goes to the pool
        assert store.get(KEY) == make_token(1)
        with store.lock(KEY) as again:  # a new lock on a new session
            again.check()
            store.set(KEY, make_token(5))
        assert store.get(KEY) == make_token(5)


def test_a_lock_whose_session_hit_idle_session_timeout_is_reported_lost(
    postgres_url: str, table: str
) -> None:
    url = f"{postgres_url}?options=-c%20idle_session_timeout%3D300"
    with SQLTokenStore(url, table=table) as store:
        store.set(KEY, make_token(1))
        with store.lock(KEY) as held:
            deadline = time.monotonic() + 20
            while holder_pids(postgres_url, table):  # the server ends the idle lock session
                assert time.monotonic() < deadline, "idle_session_timeout never ended the lock's session"
                time.sleep(0.05)
            with pytest.raises(LockLostError):
                held.check()
            with pytest.raises(LockLostError):
                store.set(KEY, make_token(2))
        assert store.get(KEY) == make_token(1)


def test_an_async_lock_whose_session_was_terminated_fails_check_and_writes(
    postgres_url: str, table: str
) -> None:
    async def main() -> None:
        store = AsyncSQLTokenStore(postgres_url, table=table)
        other = AsyncSQLTokenStore(postgres_url, table=table, lock_timeout=10)
        try:
            await store.set(KEY, make_token(1))
            async with store.lock(KEY) as held:
                await held.check()
                await asyncio.to_thread(terminate_holder, postgres_url, table)
                with pytest.raises(LockLostError, match="session holding the lock"):
                    await held.check()
                with pytest.raises(LockLostError):
                    await store.set(KEY, make_token(2))
                with pytest.raises(LockLostError):
                    await store.delete(KEY)
                async with other.lock(KEY) as others:
                    await others.check()
                    await other.set(KEY, make_token(3))
                    with pytest.raises(LockLostError):
                        await store.set(KEY, make_token(2))
            assert await store.get(KEY) == make_token(3)
        finally:
            await store.aclose()
            await other.aclose()

    asyncio.run(main())


def test_a_held_lock_on_its_session_writes_and_checks_without_complaint(
    postgres_url: str, table: str
) -> None:
    with SQLTokenStore(postgres_url, table=table) as store, store.lock(KEY) as held:
        (pid,) = holder_pids(postgres_url, table)
        held.check()
        store.set(KEY, make_token(1))
        store.delete("bob")
        assert store.get(KEY) == make_token(1)
        held.check()
        assert holder_pids(postgres_url, table) == [pid]  # still the same session


@pytest.mark.parametrize("database", ["file", "memory"])
def test_sqlite_locks_cannot_be_lost_and_their_check_says_nothing(tmp_path: Path, database: str) -> None:
    url = f"sqlite:///{tmp_path}/tokens.db" if database == "file" else "sqlite://"
    with SQLTokenStore(url) as store, store.lock(KEY) as held:
        held.check()
        store.set(KEY, make_token(1))

    async def main() -> None:
        async with AsyncSQLTokenStore(url) as store, store.lock(KEY) as held:
            await held.check()

    asyncio.run(main())
