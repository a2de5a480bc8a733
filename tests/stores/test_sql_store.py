"""`SQLTokenStore` / `AsyncSQLTokenStore` on a real SQLite file and a real PostgreSQL server.

The store contract (round trip, upsert, odd keys, listing, lock exclusion) runs in `test_contract.py`; these
are the SQL store's own promises: its table and columns, create-on-first-use, engines and URLs, locks between
engines and their timeouts, paging, and errors that name the table and key but never show the token.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.stores._sql_backends import psycopg_url, unique_table
from tests.stores._tokens import make_token
from tiktok_oauth.errors import TokenStoreError
from tiktok_oauth.stores._sql_schema import PAGE
from tiktok_oauth.stores.sql import AsyncSQLTokenStore, SQLTokenStore
from tiktok_oauth.token import TikTokToken


@dataclass
class Database:
    """A database for one test: its URL (as a user writes it), a table name of its own, engines on it."""

    kind: str
    url: str
    table: str
    engines: list[sa.Engine]

    def engine(self, **kwargs: Any) -> sa.Engine:
        """A new sync engine on the database (disposed after the test)."""
        engine = sa.create_engine(psycopg_url(self.url), **kwargs)
        self.engines.append(engine)
        return engine

    def store(self, **kwargs: Any) -> SQLTokenStore:
        """A store on a new engine of the test's."""
        return SQLTokenStore(self.engine(), table=self.table, **kwargs)

    def rows(self) -> list[Any]:
        with self.engine().connect() as connection:
            query = sa.text(f'SELECT * FROM "{self.table}" ORDER BY key')  # noqa: S608
            return list(connection.execute(query).mappings())


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = Database("sqlite", f"sqlite:///{tmp_path}/tokens.db", "tiktok_oauth_tokens", [])
    else:
        url: str = request.getfixturevalue("postgres_url")
        database = Database("postgres", url, unique_table(request, url), [])
    try:
        yield database
    finally:
        for engine in database.engines:
            engine.dispose()


def expiring_at(expires_at: float | None, n: int = 1) -> TikTokToken:
    token = make_token(n)
    del token["expires_in"]
    token["expires_at"] = expires_at
    return token


# -- the table ------------------------------------------------------------------------------------------


def test_the_table_and_its_indexes_are_created_on_first_use(db: Database, token: TikTokToken) -> None:
    store = db.store()
    inspector = sa.inspect(db.engine())
    assert not inspector.has_table(db.table)
    store.set("alice", token)
    inspector = sa.inspect(db.engine())
    indexes = {index["name"]: index["column_names"] for index in inspector.get_indexes(db.table)}
    assert indexes == {
        f"ix_{db.table}_expires_at": ["expires_at", "key"],
        f"ix_{db.table}_refresh_expires_at": ["refresh_expires_at"],
    }
    assert inspector.get_pk_constraint(db.table)["constrained_columns"] == ["key"]


def test_create_table_creates_it_up_front_and_again_is_harmless(db: Database) -> None:
    store = db.store()
    store.create_table()
    store.create_table()
    assert sa.inspect(db.engine()).has_table(db.table)
    assert db.rows() == []


def test_a_row_holds_the_key_as_given_the_token_json_and_its_expiries(
    db: Database, token: TikTokToken
) -> None:
    store = db.store()
    store.set("open-id-1", token)
    store.set("no-expiry", expiring_at(None, 2))
    [row_1, row_2] = db.rows()
    assert row_2["key"] == "open-id-1"  # so an app can join it with its users' open_id
    assert TikTokToken.from_json(row_2["token"]) == token
    assert (row_2["expires_at"], row_2["refresh_expires_at"]) == (token.expires_at, token.refresh_expires_at)
    assert row_2["updated_at"] > 1_700_000_000
    assert row_1["key"] == "no-expiry"
    assert row_1["expires_at"] is None


def test_a_key_holding_nul_is_stored_encoded_and_listed_as_given(db: Database) -> None:
    store = db.store()
    store.set("nul\x00byte", make_token(1))
    store.set("\x1bescape", make_token(2))
    assert sorted(store.keys()) == ["\x1bescape", "nul\x00byte"]
    assert store.get("nul\x00byte") == make_token(1)
    assert all("\x00" not in row["key"] for row in db.rows())


def test_set_replaces_the_row_and_its_expiry(db: Database) -> None:
    store = db.store()
    store.set("alice", expiring_at(1_000))
    store.set("alice", expiring_at(5_000))
    assert [(row["key"], row["expires_at"]) for row in db.rows()] == [("alice", 5_000)]


def test_the_table_can_be_joined_with_an_app_table(db: Database) -> None:
    store = db.store()
    store.set("open-1", expiring_at(1_000, 1))
    store.set("open-2", expiring_at(9_000, 2))
    users = sa.Table(
        f"{db.table}_users", sa.MetaData(), sa.Column("open_id", sa.Text), sa.Column("name", sa.Text)
    )
    engine = db.engine()
    with engine.begin() as connection:
        users.create(connection)
        connection.execute(
            sa.insert(users), [{"open_id": "open-1", "name": "Ann"}, {"open_id": "open-2", "name": "Bo"}]
        )
    query = (
        sa.select(users.c.name)
        .join(store.table, store.table.c.key == users.c.open_id)
        .where(store.table.c.expires_at < 5_000)
    )
    try:
        with engine.connect() as connection:
            assert connection.execute(query).scalars().all() == ["Ann"]
    finally:
        with engine.begin() as connection:
            users.drop(connection)


def test_a_table_of_that_name_without_our_columns_is_refused(db: Database) -> None:
    with db.engine().begin() as connection:
        connection.execute(sa.text(f'CREATE TABLE "{db.table}" (key TEXT PRIMARY KEY, value TEXT)'))
    store = db.store()
    with pytest.raises(TokenStoreError, match=rf"table '{db.table}' exists but has no column 'token'"):
        store.get("alice")


def test_listing_pages_through_more_rows_than_a_page_with_equal_expiries(db: Database) -> None:
    store = db.store()
    rows = [
        {
            "key": f"k{n:05}",
            "token": make_token(n).to_json(),
            "expires_at": 1_000.0 + n % 3,
            "updated_at": 0.0,
        }
        for n in range(2 * PAGE + 7)
    ]
    store.create_table()
    with db.engine().begin() as connection:
        connection.execute(sa.insert(store.table), rows)
    everything = [row["key"] for row in rows]
    assert sorted(store.keys()) == everything
    listed = list(store.expiring(1_002))
    assert sorted(listed) == sorted(row["key"] for row in rows if row["expires_at"] < 1_002)
    assert len(listed) == len(set(listed))


def test_writing_while_listing_neither_waits_nor_fails(db: Database) -> None:
    store = db.store(lock_timeout=5)
    for n in range(3):
        store.set(f"k{n}", expiring_at(1_000 + n, n))
    with db.engine().begin() as connection:
        connection.execute(
            sa.insert(store.table),
            [{"key": f"m{n:05}", "token": make_token(n).to_json(), "expires_at": 2_000.0, "updated_at": 0.0}
             for n in range(PAGE + 1)],
        )  # fmt: skip
    seen = []
    for key in store.expiring(3_000):  # as refresh_due does: a write for each listed key
        seen.append(key)
        store.set(key, expiring_at(9_000, len(seen)))
    assert len(seen) == PAGE + 4
    assert list(store.expiring(3_000)) == []


# -- engines and URLs -----------------------------------------------------------------------------------


def test_a_store_made_from_a_url_does_not_connect_until_used() -> None:
    store = SQLTokenStore("postgresql://user:pw@127.0.0.1:1/nowhere")  # nothing listens on port 1
    try:
        with pytest.raises(
            TokenStoreError, match=r"SQL read of key 'alice' in table 'tiktok_oauth_tokens' failed"
        ):
            store.get("alice")
    finally:
        store.close()


def test_urls_map_to_psycopg_and_aiosqlite(tmp_path: Path) -> None:
    made = [
        SQLTokenStore("postgresql://u@127.0.0.1:1/db"),
        SQLTokenStore("postgres://u@127.0.0.1:1/db"),
        SQLTokenStore(f"sqlite:///{tmp_path}/a.db"),
        SQLTokenStore("sqlite+pysqlite:///:memory:"),
    ]
    try:
        assert [store.engine.dialect.driver for store in made] == [
            "psycopg",
            "psycopg",
            "pysqlite",
            "pysqlite",
        ]
        assert [store.lock_kind for store in made] == ["advisory", "advisory", "file", "process"]
    finally:
        for store in made:
            store.close()

    async def drivers() -> list[str]:
        stores = [
            AsyncSQLTokenStore("postgresql://u@127.0.0.1:1/db"),
            AsyncSQLTokenStore(f"sqlite:///{tmp_path}/a.db"),
        ]
        for store in stores:
            await store.aclose()
        return [f"{store.engine.dialect.driver} async={store.engine.dialect.is_async}" for store in stores]

    assert asyncio.run(drivers()) == ["psycopg async=True", "aiosqlite async=True"]


def test_repr_shows_the_table_and_dialect_never_the_password() -> None:
    with SQLTokenStore("postgresql://user:hunter2@127.0.0.1:1/db", table="tokens") as store:
        assert repr(store) == "SQLTokenStore(table='tokens', dialect='postgresql+psycopg')"


def test_close_leaves_an_engine_it_was_given_alone(db: Database, token: TikTokToken) -> None:
    engine = db.engine()
    with SQLTokenStore(engine, table=db.table) as store:
        store.set("alice", token)
    assert SQLTokenStore(engine, table=db.table).get("alice") == token


def test_each_store_takes_its_own_kind_of_engine(tmp_path: Path) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = sa.create_engine(f"sqlite:///{tmp_path}/a.db")

    async def check() -> None:
        async_engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/a.db")
        try:
            with pytest.raises(TypeError, match="AsyncSQLTokenStore"):
                SQLTokenStore(async_engine)  # type: ignore[arg-type]
        finally:
            await async_engine.dispose()

    try:
        with pytest.raises(TypeError, match="SQLTokenStore for a sync Engine"):
            AsyncSQLTokenStore(engine)  # type: ignore[arg-type]
        asyncio.run(check())
    finally:
        engine.dispose()


# -- locks ----------------------------------------------------------------------------------------------


def test_a_lock_held_through_one_engine_times_out_a_store_on_another(db: Database) -> None:
    holder, waiter = db.store(), db.store(lock_timeout=0.3)
    with holder.lock("alice"), pytest.raises(TokenStoreError, match=r"timed out after 0.3 s .* key 'alice'"):  # noqa: SIM117
        with waiter.lock("alice"):
            pass
    with waiter.lock("alice"):  # released: free at once
        pass


def test_a_zero_lock_timeout_tries_once(db: Database) -> None:
    holder, waiter = db.store(), db.store(lock_timeout=0)
    with waiter.lock("alice"):
        pass
    with holder.lock("alice"), pytest.raises(TokenStoreError, match="timed out"):  # noqa: SIM117
        with waiter.lock("alice"):
            pass


def test_locks_of_two_tables_are_independent(db: Database) -> None:
    engine = db.engine()
    first = SQLTokenStore(engine, table=db.table, lock_timeout=0)
    second = SQLTokenStore(engine, table=f"{db.table}_other", lock_timeout=0)
    with first.lock("alice"), second.lock("alice"):
        pass


def test_reads_and_writes_inside_the_lock_do_not_wait_for_it(db: Database, token: TikTokToken) -> None:
    store = db.store(lock_timeout=2)
    with store.lock("alice"):
        store.set("alice", token)
        assert store.get("alice") == token
        store.delete("bob")
    assert store.get("alice") == token


def test_the_lock_is_released_when_its_body_raises(db: Database) -> None:
    store = db.store(lock_timeout=0)
    with pytest.raises(RuntimeError), store.lock("alice"):
        raise RuntimeError
    with store.lock("alice"):
        pass


def test_a_postgres_lock_is_an_advisory_lock_on_a_connection_of_its_own(postgres_url: str) -> None:
    engine = sa.create_engine(psycopg_url(postgres_url))
    store = SQLTokenStore(engine, table="advisory_probe")
    query = sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
    try:
        with engine.connect() as observer:
            before = observer.execute(query).scalar()
            with store.lock("alice"):
                assert observer.execute(query).scalar() == before + 1
            assert observer.execute(query).scalar() == before
    finally:
        engine.dispose()


def test_a_sqlite_file_lock_lives_beside_the_database(tmp_path: Path) -> None:
    with SQLTokenStore(f"sqlite:///{tmp_path}/tokens.db") as store, store.lock("alice"):
        [directory] = [path for path in tmp_path.iterdir() if path.is_dir()]
        assert directory.name == "tokens.db-tiktok-oauth-locks"
        assert directory.stat().st_mode & 0o777 == 0o700
        assert len(list(directory.glob("*.lock"))) == 1


def test_in_memory_sqlite_locks_exclude_threads_of_this_process() -> None:
    engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
    holder, waiter = SQLTokenStore(engine), SQLTokenStore(engine, lock_timeout=0.2)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.lock("alice"):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(5)
        with pytest.raises(TokenStoreError, match="timed out"), waiter.lock("alice"):
            pass
    finally:
        release.set()
        thread.join()
        engine.dispose()
    with waiter.lock("alice"):
        pass


def test_an_async_lock_waits_without_blocking_the_loop_and_times_out(db: Database) -> None:
    async def scenario() -> list[str]:
        events: list[str] = []
        async with (
            AsyncSQLTokenStore(db.url, table=db.table) as holder,
            AsyncSQLTokenStore(db.url, table=db.table, lock_timeout=0.3) as waiter,
        ):
            async with holder.lock("alice"):
                ticker = asyncio.create_task(asyncio.sleep(0.1))
                with pytest.raises(TokenStoreError, match=r"timed out after 0\.3 s"):
                    async with waiter.lock("alice"):
                        pass
                events.append("ticker done" if ticker.done() else "loop was blocked")
            async with waiter.lock("alice"):
                events.append("free again")
        return events

    assert asyncio.run(scenario()) == ["ticker done", "free again"]


def test_a_cancelled_async_lock_wait_leaves_no_lock_behind(db: Database) -> None:
    async def scenario() -> None:
        async with (
            AsyncSQLTokenStore(db.url, table=db.table) as holder,
            AsyncSQLTokenStore(db.url, table=db.table, lock_timeout=0) as probe,
        ):

            async def wait_for_it() -> None:
                async with holder.lock("alice"):
                    pass

            sync_holder = db.store()
            with sync_holder.lock("alice"):
                task = asyncio.create_task(wait_for_it())
                await asyncio.sleep(0.2)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            async with probe.lock("alice"):  # nobody holds it
                pass

    asyncio.run(scenario())


# -- errors ---------------------------------------------------------------------------------------------


# Our columns, and a CHECK that fails every write: PostgreSQL's error details the failing row, token included.
WRONG_TABLE = (
    'CREATE TABLE "{table}" (key TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at FLOAT, '
    "refresh_expires_at FLOAT, updated_at FLOAT NOT NULL CHECK (updated_at < 0))"
)


def _all_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error)


def test_a_failed_write_names_the_table_and_key_never_the_token(db: Database) -> None:
    with db.engine().begin() as connection:
        connection.execute(sa.text(WRONG_TABLE.format(table=db.table)))
    store = db.store()
    with pytest.raises(
        TokenStoreError, match=rf"SQL write of key 'alice' in table '{db.table}' failed"
    ) as caught:
        store.set("alice", make_token(1))
    text = _all_text(caught.value)
    assert "secret" not in text
    assert "act.1" not in text
    assert store.get("alice") is None


def test_a_corrupt_row_is_token_store_error_naming_the_key(db: Database) -> None:
    store = db.store()
    store.set("alice", make_token(1))
    with db.engine().begin() as connection:
        connection.execute(sa.update(store.table).values(token='{"access_token": "act.1.secret-access"'))
    with pytest.raises(TokenStoreError, match=r"corrupt token in key 'alice'.*not JSON") as caught:
        store.get("alice")
    assert "secret" not in _all_text(caught.value)


def test_an_async_store_wraps_errors_too(db: Database) -> None:
    with db.engine().begin() as connection:
        connection.execute(sa.text(WRONG_TABLE.format(table=db.table)))

    async def scenario() -> None:
        async with AsyncSQLTokenStore(db.url, table=db.table) as store:
            with pytest.raises(
                TokenStoreError, match=rf"SQL write of key 'alice' in table '{db.table}'"
            ) as caught:
                await store.set("alice", make_token(1))
            assert "secret" not in _all_text(caught.value)
            assert await store.get("alice") is None

    asyncio.run(scenario())


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG], ids=["echo=True", "echo=debug"])
def test_sqlalchemys_sql_log_shows_no_token(
    db: Database, caplog: pytest.LogCaptureFixture, level: int
) -> None:
    caplog.set_level(
        level, logger="sqlalchemy.engine"
    )  # INFO: statements and parameters; DEBUG: every row too
    store = db.store()
    store.set("alice", make_token(1))
    assert store.get("alice") == make_token(1)
    assert "'<token JSON>'" in caplog.text
    if level == logging.DEBUG:
        assert "Row ('<token JSON>'," in caplog.text  # the fetched row, hidden
    assert "secret" not in caplog.text


def test_stores_racing_to_create_the_table_all_succeed(db: Database) -> None:
    stores = [db.store() for _ in range(6)]
    barrier = threading.Barrier(len(stores))

    def create_then_write(n: int) -> None:
        barrier.wait()
        stores[n].create_table()  # all at once, on a database without the table
        stores[n].set(f"user-{n}", make_token(n))

    with ThreadPoolExecutor(len(stores)) as pool:
        list(pool.map(create_then_write, range(len(stores))))  # re-raises any thread's error
    assert sorted(stores[0].keys()) == [f"user-{n}" for n in range(6)]
