"""`SQLTokenStore` and `AsyncSQLTokenStore`: tokens in a table of your own database (extra `sql`).

Install the `sql` extra (`pip install 'tiktok-oauth[sql]'`: SQLAlchemy 2, psycopg 3, aiosqlite). The store is
SQLAlchemy 2 Core on a private `MetaData` (the table is described in `tiktok_oauth.stores._sql_schema`), so it
sits beside an app's own tables on the app's own engine, whatever ORM the app uses.

`lock(key)` excludes every process and machine on a PostgreSQL database (an advisory lock), every process
on the machine for a SQLite file (a file lock beside it), and only this process otherwise (SQLite in memory,
other dialects); `tiktok_oauth.stores._sql_locks` tells how.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Final, Literal, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tiktok_oauth.errors import TokenStoreError
from tiktok_oauth.stores._codec import decode_token, encode_token
from tiktok_oauth.stores._sql_locks import LOCK_NOT_AVAILABLE, LockPlan, LockRequest, ahold, hold
from tiktok_oauth.stores._sql_schema import ExpiringPager, KeyPager, Schema, expiry
from tiktok_oauth.token import TikTokToken

__all__ = ["AsyncSQLTokenStore", "SQLTokenStore"]

T = TypeVar("T")

DEFAULT_TABLE: Final = "tiktok_oauth_tokens"
# SQLSTATE classes whose server messages name objects or say what went wrong with the connection, never a
# value that was bound: connection exception, insufficient resources, operator intervention (shutdown),
# invalid authorization, invalid catalog name, syntax error or access rule violation, lock not available.
_SAFE_SQLSTATES: Final = ("08", "53", "57", "28", "3D", "42", LOCK_NOT_AVAILABLE)

#: What a database can throw at us: SQLAlchemy's errors (which wrap the drivers'), the drivers' own, lock files.
_DATABASE_ERRORS: Final = (sa.exc.SQLAlchemyError, sqlite3.Error, OSError)

Action = Literal["read", "write", "delete", "list", "lock", "create"]


# -- URLs and engines -----------------------------------------------------------------------------------


def _database_url(url: str | URL, *, is_async: bool) -> URL:
    """Map a plain `sqlite://` / `postgresql://` URL to the driver this store uses; keep an explicit one."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if "+" in parsed.drivername:
        return parsed
    if backend in {"postgresql", "postgres"}:
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and is_async:
        return parsed.set(drivername="sqlite+aiosqlite")
    return parsed


def _engine_options(url: URL) -> dict[str, Any]:
    """Settings for an engine this store makes (and owns) from a URL."""
    options: dict[str, Any] = {
        "hide_parameters": True,  # SQLAlchemy's own log and errors never show a bound value
        "pool_pre_ping": True,  # a database restarted meanwhile costs one reconnect, not one error
    }
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        options["connect_args"] = {"connect_timeout": 10}
    return options


def _dialect(engine: Engine | AsyncEngine) -> str:
    dialect = engine.dialect
    return f"{dialect.name}+{dialect.driver}"


# -- errors ---------------------------------------------------------------------------------------------


def _describe(exc: BaseException) -> tuple[str, bool]:
    """What to say about a database error, and whether its text can be shown (and it chained) safely.

    Server messages about data can quote a bound value (PostgreSQL: `invalid input syntax for type
    integer: "<the token>"`); those are named by class and SQLSTATE only.
    """
    original = getattr(exc, "orig", None) or exc
    name = type(original).__name__
    if isinstance(exc, sa.exc.StatementError) and not isinstance(exc, sa.exc.DBAPIError):
        return name, False  # raised while binding parameters
    first_line = str(original).strip().splitlines()[0] if str(original).strip() else ""
    if isinstance(original, sqlite3.Error | OSError):
        return f"{name}: {first_line}", True  # SQLite's messages name tables and columns, never values
    if original is exc:  # SQLAlchemy's own (pool timeout, closed connection...): no data in them
        return f"{name}: {first_line}" if first_line else name, True
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if sqlstate is None or str(sqlstate).startswith(_SAFE_SQLSTATES):
        shown = f"{name} {sqlstate}" if sqlstate else name
        return f"{shown}: {first_line}", True
    return f"{name} (SQLSTATE {sqlstate})", False


# -- what both stores share -----------------------------------------------------------------------------


class _SQLStoreBase:
    """The sync and async stores' shared decisions: names, rows, error messages, lock plans."""

    engine: Any

    def _setup(self, table: str, lock_timeout: float) -> None:
        if not table:
            raise ValueError("the table name must not be empty")
        self.lock_timeout = lock_timeout
        self._schema = Schema(table, self.engine.dialect.name)
        self._plan = LockPlan.of(self.engine.url, table)
        self._ready = False

    @property
    def table(self) -> sa.Table:
        """The SQLAlchemy `Table` (for queries that join it with your own tables)."""
        return self._schema.table

    @property
    def table_name(self) -> str:
        """The table's name."""
        return self._schema.name

    @property
    def lock_kind(self) -> str:
        """How `lock(key)` excludes: `"advisory"` (PostgreSQL), `"file"` (SQLite file), or `"process"`."""
        return self._plan.kind

    def _where(self, key: str | None) -> str:
        table = f"table {self._schema.name!r}"
        return table if key is None else f"key {key!r} in {table}"

    def _failure(self, action: Action, key: str | None, exc: BaseException) -> tuple[TokenStoreError, bool]:
        detail, safe = _describe(exc)
        return TokenStoreError(f"SQL {action} of {self._where(key)} failed ({detail})"), safe

    def _timed_out(self, key: str) -> TokenStoreError:
        return TokenStoreError(
            f"timed out after {self.lock_timeout} s waiting for the lock of {self._where(key)}"
        )

    def _lock_request(self, key: str) -> LockRequest:
        return LockRequest(
            key,
            self.lock_timeout,
            failed=lambda exc: self._failure("lock", key, exc)[0],
            timed_out=lambda: self._timed_out(key),
        )

    def _row(self, key: str, token: TikTokToken) -> dict[str, Any]:
        where = self._where(key)
        data = encode_token(token, where).decode()
        stored = decode_token(data, where)  # the expiries of what is stored, exactly
        return self._schema.row(
            key, data, expiry(stored, "expires_at"), expiry(stored, "refresh_expires_at"), time.time()
        )

    def _token(self, key: str, row: Any) -> TikTokToken | None:
        if row is None:
            return None
        value = row[0]
        if not isinstance(value, str | bytes):
            raise TokenStoreError(f"corrupt token in {self._where(key)}: not text")
        return decode_token(value, self._where(key))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(table={self._schema.name!r}, dialect={_dialect(self.engine)!r})"


class SQLTokenStore(_SQLStoreBase):
    """Tokens in one table of a SQL database, through a sync SQLAlchemy `Engine`: a row per key.

    Give it your app's engine (it stays yours: the store never disposes it) or a URL: `sqlite:///tokens.db`
    (pysqlite), `postgresql://...` (psycopg 3); a store made from a URL owns its engine (`close()`, or
    `with SQLTokenStore(url) as store:`), made with `hide_parameters=True` and `pool_pre_ping=True`.
    Nothing connects until the first operation, which creates the table and its indexes when missing
    (`create_table()` does it up front); a table of that name without our columns is refused.

    `expiring(before)` and `keys()` read indexed pages of 1,000 rows, each in its own short transaction.
    `lock(key)` is described in the module docstring; on PostgreSQL it holds one pooled connection of
    the engine while held, so `get` / `set` inside it use another (size the pool for twice the number
    of concurrent refreshes). Waiting longer than `lock_timeout` seconds raises `TokenStoreError`.

    Every database error becomes a `TokenStoreError` naming the table and the key, never the token.
    SQLAlchemy's SQL log (`echo=True`) and error texts show the token's JSON as `'<token JSON>'`; its
    debug log (`echo="debug"`) prints result rows, tokens included: never turn that on in production.

    Args:
        engine_or_url: a `sqlalchemy.Engine`, or a database URL (`str` or `sqlalchemy.URL`).
        table: the table's name (in the connection's default schema).
        lock_timeout: seconds `lock` waits for another holder before raising `TokenStoreError`.
    """

    engine: Engine

    def __init__(
        self, engine_or_url: Engine | str | URL, *, table: str = DEFAULT_TABLE, lock_timeout: float = 30.0
    ) -> None:
        if isinstance(engine_or_url, AsyncEngine):
            raise TypeError("SQLTokenStore takes a sync Engine: use AsyncSQLTokenStore for an AsyncEngine")
        if isinstance(engine_or_url, Engine):
            self.engine = engine_or_url
            self._close: Callable[[], None] | None = None
        else:
            url = _database_url(engine_or_url, is_async=False)
            self.engine = sa.create_engine(url, **_engine_options(url))
            # Pooled connections are closed when the store is dropped, even if nobody calls close().
            self._close = weakref.finalize(self, self.engine.dispose)
        self._ready_lock = threading.Lock()
        self._setup(table, lock_timeout)

    def close(self) -> None:
        """Dispose of the engine if the store made it from a URL (an engine you gave is left alone)."""
        if self._close is not None:
            self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------------

    def _run(self, action: Action, key: str | None, function: Callable[[], T]) -> T:
        """Call `function` (on a table that exists), turning database errors into `TokenStoreError`."""
        try:
            if not self._ready:
                self._prepare()
            return function()
        except _DATABASE_ERRORS as exc:
            error, safe = self._failure(action, key, exc)
            if safe:
                raise error from exc
        raise error  # outside the handler: no trace of a message that could quote the token

    def _prepare(self) -> None:
        with self._ready_lock:
            if self._ready:
                return
            try:
                with self.engine.begin() as connection:
                    self._schema.create(connection)
            except sa.exc.SQLAlchemyError:
                with self.engine.connect() as connection:  # someone else may have created it just now
                    if not self._schema.exists(connection):
                        raise
            with self.engine.connect() as connection:
                self._schema.check(connection)
            self._ready = True

    def _fetch(self, statement: sa.Executable) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(statement).all())

    # -- the store ---------------------------------------------------------------------------------

    def create_table(self) -> None:
        """Create the table and its indexes if they do not exist yet (else check the table's columns)."""
        self._ready = False
        self._run("create", None, lambda: None)

    def get(self, key: str) -> TikTokToken | None:
        """Return the token stored under `key`, or None."""

        def read() -> Any:
            with self.engine.connect() as connection:
                return connection.execute(self._schema.select_token(key)).first()

        return self._token(key, self._run("read", key, read))

    def set(self, key: str, token: TikTokToken) -> None:
        """Store `token` under `key`, replacing any previous one, in one transaction."""
        row = self._row(key, token)

        def write() -> None:
            upsert = self._schema.upsert(row)
            with self.engine.begin() as connection:
                if upsert is not None:
                    connection.execute(upsert)
                elif connection.execute(self._schema.update(row)).rowcount == 0:
                    connection.execute(self._schema.insert(row))

        self._run("write", key, write)

    def delete(self, key: str) -> None:
        """Remove the token stored under `key`, if any."""

        def delete() -> None:
            with self.engine.begin() as connection:
                connection.execute(self._schema.delete(key))

        self._run("delete", key, delete)

    def keys(self) -> Iterator[str]:
        """The stored keys, exactly as given to `set`, read in pages in key order."""
        pager = KeyPager(self._schema)
        while (query := pager.query()) is not None:
            yield from pager.feed(self._run("list", None, functools.partial(self._fetch, query)))

    def expiring(self, before: float) -> Iterator[str]:
        """The keys whose access token expires strictly before `before`: indexed pages, soonest first."""
        pager = ExpiringPager(self._schema, before)
        while (query := pager.query()) is not None:
            yield from pager.feed(self._run("list", None, functools.partial(self._fetch, query)))

    def lock(self, key: str) -> contextlib.AbstractContextManager[None]:
        """Hold the lock for `key` (see the module docstring); `TokenStoreError` after `lock_timeout`."""
        return hold(self._plan, self.engine, self._lock_request(key))


class AsyncSQLTokenStore(_SQLStoreBase):
    """`SQLTokenStore` for a SQLAlchemy `AsyncEngine`: the same table, methods as coroutines.

    A URL maps to `sqlite+aiosqlite` or `postgresql+psycopg` (psycopg 3's async driver); `aclose()`
    (or `async with`) disposes of an engine the store made. `keys()` and `expiring(before)` are async
    iterators; `lock(key)` is an async context manager that waits without blocking the event loop
    (PostgreSQL: on its own connection; file and in-process locks: by polling).

    An `AsyncEngine`'s pooled connections belong to the event loop that opened them: use a store within
    one loop, or give it an engine made with `poolclass=sqlalchemy.pool.NullPool` to share it across loops.

    Args:
        async_engine_or_url: a `sqlalchemy.ext.asyncio.AsyncEngine`, or a database URL.
        table: the table's name (in the connection's default schema).
        lock_timeout: seconds `lock` waits for another holder before raising `TokenStoreError`.
    """

    engine: AsyncEngine

    def __init__(
        self,
        async_engine_or_url: AsyncEngine | str | URL,
        *,
        table: str = DEFAULT_TABLE,
        lock_timeout: float = 30.0,
    ) -> None:
        if isinstance(async_engine_or_url, Engine):
            raise TypeError("AsyncSQLTokenStore takes an AsyncEngine: use SQLTokenStore for a sync Engine")
        self._owns_engine = not isinstance(async_engine_or_url, AsyncEngine)
        if isinstance(async_engine_or_url, AsyncEngine):
            self.engine = async_engine_or_url
        else:
            url = _database_url(async_engine_or_url, is_async=True)
            self.engine = create_async_engine(url, **_engine_options(url))
        self._setup(table, lock_timeout)

    async def aclose(self) -> None:
        """Dispose of the engine if the store made it from a URL (an engine you gave is left alone)."""
        if self._owns_engine:
            await self.engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- plumbing ----------------------------------------------------------------------------------

    async def _run(self, action: Action, key: str | None, function: Callable[[], Awaitable[T]]) -> T:
        try:
            if not self._ready:
                await self._prepare()
            return await function()
        except _DATABASE_ERRORS as exc:
            error, safe = self._failure(action, key, exc)
            if safe:
                raise error from exc
        raise error  # outside the handler: no trace of a message that could quote the token

    async def _prepare(self) -> None:
        try:
            async with self.engine.begin() as connection:
                await connection.run_sync(self._schema.create)
        except sa.exc.SQLAlchemyError:
            async with self.engine.connect() as connection:
                if not await connection.run_sync(self._schema.exists):
                    raise
        async with self.engine.connect() as connection:
            await connection.run_sync(self._schema.check)
        self._ready = True

    async def _fetch(self, statement: sa.Executable) -> list[Any]:
        async with self.engine.connect() as connection:
            return list((await connection.execute(statement)).all())

    # -- the store ---------------------------------------------------------------------------------

    async def create_table(self) -> None:
        """Create the table and its indexes if they do not exist yet (else check the table's columns)."""
        self._ready = False

        async def nothing() -> None:
            return None

        await self._run("create", None, nothing)

    async def get(self, key: str) -> TikTokToken | None:
        """Return the token stored under `key`, or None."""

        async def read() -> Any:
            async with self.engine.connect() as connection:
                return (await connection.execute(self._schema.select_token(key))).first()

        return self._token(key, await self._run("read", key, read))

    async def set(self, key: str, token: TikTokToken) -> None:
        """Store `token` under `key`, replacing any previous one, in one transaction."""
        row = self._row(key, token)

        async def write() -> None:
            upsert = self._schema.upsert(row)
            async with self.engine.begin() as connection:
                if upsert is not None:
                    await connection.execute(upsert)
                elif (await connection.execute(self._schema.update(row))).rowcount == 0:
                    await connection.execute(self._schema.insert(row))

        await self._run("write", key, write)

    async def delete(self, key: str) -> None:
        """Remove the token stored under `key`, if any."""

        async def delete() -> None:
            async with self.engine.begin() as connection:
                await connection.execute(self._schema.delete(key))

        await self._run("delete", key, delete)

    async def keys(self) -> AsyncIterator[str]:
        """The stored keys, exactly as given to `set`, read in pages in key order."""
        pager = KeyPager(self._schema)
        while (query := pager.query()) is not None:
            for key in pager.feed(await self._run("list", None, functools.partial(self._fetch, query))):
                yield key

    async def expiring(self, before: float) -> AsyncIterator[str]:
        """The keys whose access token expires strictly before `before`: indexed pages, soonest first."""
        pager = ExpiringPager(self._schema, before)
        while (query := pager.query()) is not None:
            for key in pager.feed(await self._run("list", None, functools.partial(self._fetch, query))):
                yield key

    def lock(self, key: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the lock for `key` without blocking the loop; `TokenStoreError` after `lock_timeout`."""
        return ahold(self._plan, self.engine, self._lock_request(key))
