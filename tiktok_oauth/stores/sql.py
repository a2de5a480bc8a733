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
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, Literal, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tiktok_oauth.errors import LockLostError, TokenStoreError
from tiktok_oauth.stores._codec import decode_token, encode_token
from tiktok_oauth.stores._sql_locks import (
    LOCK_NOT_AVAILABLE,
    AdvisoryLock,
    AsyncAdvisoryLock,
    HeldLocks,
    LockPlan,
    LockRequest,
    ahold,
    hold,
)
from tiktok_oauth.stores._sql_schema import ExpiringPager, KeyPager, Schema, expiry
from tiktok_oauth.token import TikTokToken

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncConnection

    from tiktok_oauth.stores import AsyncHeldLock, HeldLock

__all__ = ["AsyncSQLTokenStore", "SQLTokenStore"]

T = TypeVar("T")

DEFAULT_TABLE: Final = "tiktok_oauth_tokens"
#: Locks a store made from a PostgreSQL URL holds (or waits for) at once: its pool's `pool_size`.
DEFAULT_POOL_SIZE: Final = 20
#: The pool's connections beyond `pool_size`, for reads, writes and listings outside any lock.
_POOL_OVERFLOW: Final = 10
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


def _pool_size(url: URL, pool_size: int | None) -> tuple[URL, int]:
    """The URL without `?pool_size=N`, and the pool size: the keyword's, else the URL's, else 20."""
    given = url.query.get("pool_size")
    url = url.difference_update_query(["pool_size"])
    if pool_size is None and given is not None:
        text = given if isinstance(given, str) else given[-1]
        try:
            pool_size = int(text)
        except ValueError:
            raise ValueError(f"pool_size in the store URL must be a whole number, not {text!r}") from None
    if pool_size is None:
        pool_size = DEFAULT_POOL_SIZE
    if pool_size < 1:
        raise ValueError(f"pool_size must be at least 1, not {pool_size}")
    return url, pool_size


def _engine_options(url: URL, pool_size: int) -> dict[str, Any]:
    """Settings for an engine this store makes (and owns) from a URL."""
    options: dict[str, Any] = {
        "hide_parameters": True,  # SQLAlchemy's own log and errors never show a bound value
        "pool_pre_ping": True,  # a database restarted meanwhile costs one reconnect, not one error
    }
    if url.get_backend_name() == "postgresql":
        # One pooled connection per lock held or waited for (at most pool_size of them, see `_slots`),
        # and the overflow for everything done outside a lock.
        options.update(pool_size=pool_size, max_overflow=_POOL_OVERFLOW)
        if "connect_timeout" not in url.query:
            options["connect_args"] = {"connect_timeout": 10}
    return options


# Stores that own their engine, for `_after_fork`. A forked child must not use the parent's pooled
# sockets (both processes would talk on one session): SQLAlchemy's advice is `dispose(close=False)`.
_owning_stores: Final[weakref.WeakSet[_SQLStoreBase]] = weakref.WeakSet()


def _after_fork() -> None:
    for store in list(_owning_stores):
        store._forked()  # noqa: SLF001 - the stores' own hook


os.register_at_fork(after_in_child=_after_fork)


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
    _held: HeldLocks[Any]

    def _setup(self, table: str, lock_timeout: float, pool_size: int | None) -> None:
        """`pool_size`: the owned engine's, which bounds the locks held at once (None: an engine given)."""
        if not table:
            raise ValueError("the table name must not be empty")
        self.lock_timeout = lock_timeout
        self.pool_size = pool_size
        self._schema = Schema(table, self.engine.dialect.name)
        self._plan = LockPlan.of(self.engine.url, table)
        self._ready = False
        self._slots = self._new_slots()
        if pool_size is not None:
            _owning_stores.add(self)

    def _new_slots(self) -> threading.Semaphore | None:
        # A store that sized its pool holds at most pool_size advisory locks at once, each on a pooled
        # connection; more wait their turn here (within lock_timeout) instead of for the pool.
        if self.pool_size is None or self._plan.kind != "advisory":
            return None
        return threading.BoundedSemaphore(self.pool_size)

    def _forked(self) -> None:
        """In a forked child: a pool of its own, and none of the parent's locks."""
        self._sync_engine().dispose(close=False)
        self._slots = self._new_slots()
        self._held.reset()

    def _sync_engine(self) -> Engine:
        raise NotImplementedError

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

    def _lost(self, key: str, exc: BaseException | None) -> tuple[LockLostError, bool]:
        detail, safe = _describe(exc) if exc is not None else ("", True)
        return LockLostError(
            f"the PostgreSQL session holding the lock of {self._where(key)} ended: the lock was lost, "
            f"nothing is written under it{f' ({detail})' if detail else ''}"
        ), safe

    def _lock_request(self, key: str) -> LockRequest:
        return LockRequest(
            key,
            self.lock_timeout,
            failed=lambda exc: self._failure("lock", key, exc)[0],
            timed_out=lambda: self._timed_out(key),
            lost=lambda exc: self._lost(key, exc),
            slots=self._slots,
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
    `lock(key)` is described in the module docstring. Waiting longer than `lock_timeout` seconds raises
    `TokenStoreError`. On PostgreSQL it holds one pooled connection of the engine while held, and
    `get` / `set` / `delete` of that key run on it: a holder never waits for another connection.
    A store made from a PostgreSQL URL sizes its pool to `pool_size` (plus 10 for work outside locks)
    and holds at most `pool_size` locks at once: more callers wait their turn, within `lock_timeout`.

    The held lock (`with store.lock(key) as held:`) has `check()`, which raises `LockLostError` when
    the lock's PostgreSQL session has ended (`pg_terminate_backend`, `idle_session_timeout`, a server
    restart): someone else may hold the lock now. Every `set` / `delete` of the key under the lock is
    fenced: it runs on the lock's session, in a transaction that first checks the lock is held, and
    raises `LockLostError` (writing nothing) once the session has ended. SQLite's file locks and the
    in-process locks cannot be lost while their holder lives; their `check()` does nothing.

    A store made from a URL resets its pool in a forked child (`os.fork`, multiprocessing's fork):
    parent and child never share a pooled connection.

    Every database error becomes a `TokenStoreError` naming the table and the key, never the token.
    SQLAlchemy's SQL log (`echo=True`) and error texts show the token's JSON as `'<token JSON>'`; its
    debug log (`echo="debug"`) prints result rows, tokens included: never turn that on in production.

    Args:
        engine_or_url: a `sqlalchemy.Engine`, or a database URL (`str` or `sqlalchemy.URL`).
        table: the table's name (in the connection's default schema).
        lock_timeout: seconds `lock` waits for another holder before raising `TokenStoreError`.
        pool_size: for a store made from a PostgreSQL URL, the locks it holds at once and its pool's
            `pool_size` (default: the URL's `?pool_size=N`, else 20). Not for an engine you give.
    """

    engine: Engine

    def __init__(
        self,
        engine_or_url: Engine | str | URL,
        *,
        table: str = DEFAULT_TABLE,
        lock_timeout: float = 30.0,
        pool_size: int | None = None,
    ) -> None:
        if isinstance(engine_or_url, AsyncEngine):
            raise TypeError("SQLTokenStore takes a sync Engine: use AsyncSQLTokenStore for an AsyncEngine")
        if isinstance(engine_or_url, Engine):
            if pool_size is not None:
                raise ValueError("pool_size is for a store made from a URL: size your own engine's pool")
            self.engine = engine_or_url
            self._close: Callable[[], None] | None = None
        else:
            url, pool_size = _pool_size(_database_url(engine_or_url, is_async=False), pool_size)
            self.engine = sa.create_engine(url, **_engine_options(url, pool_size))
            # Pooled connections are closed when the store is dropped, even if nobody calls close().
            self._close = weakref.finalize(self, self.engine.dispose)
        self._ready_lock = threading.Lock()
        self._held: HeldLocks[AdvisoryLock] = HeldLocks()
        self._setup(table, lock_timeout, pool_size)

    def _sync_engine(self) -> Engine:
        return self.engine

    def _forked(self) -> None:
        self._ready_lock = threading.Lock()  # a parent thread may have held it at the fork
        super()._forked()

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

    def _on(self, key: str, work: Callable[[Connection], T], *, fenced: bool) -> Callable[[], T]:
        """`work` on the held lock's session when this store holds `key`'s advisory lock, else pooled.

        A read (`fenced=False`) under a lock found lost goes to the pool: only writes need the lock.
        """
        held = self._held.get(key)

        def pooled() -> T:
            with self.engine.begin() as connection:
                return work(connection)

        if held is None:
            return pooled

        def on_the_lock() -> T:
            try:
                return held.run(work, fenced=fenced)
            except LockLostError:
                if fenced:
                    raise
            return pooled()

        return on_the_lock

    def get(self, key: str) -> TikTokToken | None:
        """Return the token stored under `key`, or None."""

        def read(connection: Connection) -> Any:
            return connection.execute(self._schema.select_token(key)).first()

        return self._token(key, self._run("read", key, self._on(key, read, fenced=False)))

    def set(self, key: str, token: TikTokToken) -> None:
        """Store `token` under `key`, replacing any previous one, in one transaction.

        Under this store's lock of `key`, `LockLostError` (nothing written) if that lock was lost.
        """
        row = self._row(key, token)

        def write(connection: Connection) -> None:
            upsert = self._schema.upsert(row)
            if upsert is not None:
                connection.execute(upsert)
            elif connection.execute(self._schema.update(row)).rowcount == 0:
                connection.execute(self._schema.insert(row))

        self._run("write", key, self._on(key, write, fenced=True))

    def delete(self, key: str) -> None:
        """Remove the token stored under `key`, if any (`LockLostError` under a lost lock of `key`)."""

        def delete(connection: Connection) -> None:
            connection.execute(self._schema.delete(key))

        self._run("delete", key, self._on(key, delete, fenced=True))

    def keys(self) -> Iterator[str]:
        """The stored keys, exactly as given to `set`, read in pages in key order."""
        pager = KeyPager(self._schema)
        while (query := pager.query()) is not None:
            yield from pager.feed(self._run("list", None, functools.partial(self._fetch, query)))

    def expiring(self, before: float, *, refresh: bool = False) -> Iterator[str]:
        """The keys whose access (with `refresh`: refresh) token expires strictly before `before`: indexed
        pages, soonest first."""
        pager = ExpiringPager(self._schema, before, refresh=refresh)
        while (query := pager.query()) is not None:
            yield from pager.feed(self._run("list", None, functools.partial(self._fetch, query)))

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[HeldLock]:
        """Hold the lock for `key` (see the class docstring); `TokenStoreError` after `lock_timeout`."""
        if self._plan.kind == "advisory" and not self._ready:
            self._run("create", None, lambda: None)  # not under the lock: it takes a connection of its own
        with hold(self._plan, self.engine, self._lock_request(key)) as held:
            if not isinstance(held, AdvisoryLock):
                yield held
                return
            with self._held.holding(key, held):
                yield held


class AsyncSQLTokenStore(_SQLStoreBase):
    """`SQLTokenStore` for a SQLAlchemy `AsyncEngine`: the same table, methods as coroutines.

    A URL maps to `sqlite+aiosqlite` or `postgresql+psycopg` (psycopg 3's async driver); `aclose()`
    (or `async with`) disposes of an engine the store made. `keys()` and `expiring(before)` are async
    iterators; `lock(key)` is an async context manager that waits without blocking the event loop
    (PostgreSQL: on its own connection, where the held key's `get` / `set` / `delete` run too, fenced;
    file and in-process locks: by polling). `pool_size`, lost locks and forks: as in `SQLTokenStore`.

    An `AsyncEngine`'s pooled connections belong to the event loop that opened them: use a store within
    one loop, or give it an engine made with `poolclass=sqlalchemy.pool.NullPool` to share it across loops.

    Args:
        async_engine_or_url: a `sqlalchemy.ext.asyncio.AsyncEngine`, or a database URL.
        table: the table's name (in the connection's default schema).
        lock_timeout: seconds `lock` waits for another holder before raising `TokenStoreError`.
        pool_size: as for `SQLTokenStore` (a store made from a PostgreSQL URL: default `?pool_size=N`, else 20).
    """

    engine: AsyncEngine

    def __init__(
        self,
        async_engine_or_url: AsyncEngine | str | URL,
        *,
        table: str = DEFAULT_TABLE,
        lock_timeout: float = 30.0,
        pool_size: int | None = None,
    ) -> None:
        if isinstance(async_engine_or_url, Engine):
            raise TypeError("AsyncSQLTokenStore takes an AsyncEngine: use SQLTokenStore for a sync Engine")
        self._owns_engine = not isinstance(async_engine_or_url, AsyncEngine)
        if isinstance(async_engine_or_url, AsyncEngine):
            if pool_size is not None:
                raise ValueError("pool_size is for a store made from a URL: size your own engine's pool")
            self.engine = async_engine_or_url
        else:
            url, pool_size = _pool_size(_database_url(async_engine_or_url, is_async=True), pool_size)
            self.engine = create_async_engine(url, **_engine_options(url, pool_size))
        self._held: HeldLocks[AsyncAdvisoryLock] = HeldLocks()
        self._setup(table, lock_timeout, pool_size)

    def _sync_engine(self) -> Engine:
        return self.engine.sync_engine

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

    def _on(
        self, key: str, work: Callable[[AsyncConnection], Awaitable[T]], *, fenced: bool
    ) -> Callable[[], Awaitable[T]]:
        """`work` on the held lock's session when this store holds `key`'s advisory lock, else pooled.

        A read (`fenced=False`) under a lock found lost goes to the pool: only writes need the lock.
        """
        held = self._held.get(key)

        async def pooled() -> T:
            async with self.engine.begin() as connection:
                return await work(connection)

        if held is None:
            return pooled

        async def on_the_lock() -> T:
            try:
                return await held.run(work, fenced=fenced)
            except LockLostError:
                if fenced:
                    raise
            return await pooled()

        return on_the_lock

    async def get(self, key: str) -> TikTokToken | None:
        """Return the token stored under `key`, or None."""

        async def read(connection: AsyncConnection) -> Any:
            return (await connection.execute(self._schema.select_token(key))).first()

        return self._token(key, await self._run("read", key, self._on(key, read, fenced=False)))

    async def set(self, key: str, token: TikTokToken) -> None:
        """Store `token` under `key`, replacing any previous one, in one transaction.

        Under this store's lock of `key`, `LockLostError` (nothing written) if that lock was lost.
        """
        row = self._row(key, token)

        async def write(connection: AsyncConnection) -> None:
            upsert = self._schema.upsert(row)
            if upsert is not None:
                await connection.execute(upsert)
            elif (await connection.execute(self._schema.update(row))).rowcount == 0:
                await connection.execute(self._schema.insert(row))

        await self._run("write", key, self._on(key, write, fenced=True))

    async def delete(self, key: str) -> None:
        """Remove the token stored under `key`, if any (`LockLostError` under a lost lock of `key`)."""

        async def delete(connection: AsyncConnection) -> None:
            await connection.execute(self._schema.delete(key))

        await self._run("delete", key, self._on(key, delete, fenced=True))

    async def keys(self) -> AsyncIterator[str]:
        """The stored keys, exactly as given to `set`, read in pages in key order."""
        pager = KeyPager(self._schema)
        while (query := pager.query()) is not None:
            for key in pager.feed(await self._run("list", None, functools.partial(self._fetch, query))):
                yield key

    async def expiring(self, before: float, *, refresh: bool = False) -> AsyncIterator[str]:
        """The keys whose access (with `refresh`: refresh) token expires strictly before `before`: indexed
        pages, soonest first."""
        pager = ExpiringPager(self._schema, before, refresh=refresh)
        while (query := pager.query()) is not None:
            for key in pager.feed(await self._run("list", None, functools.partial(self._fetch, query))):
                yield key

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[AsyncHeldLock]:
        """Hold the lock for `key` without blocking the loop; `TokenStoreError` after `lock_timeout`.

        The held lock's `await check()` and the writes under it behave as in `SQLTokenStore`.
        """
        if self._plan.kind == "advisory" and not self._ready:
            await self.create_table()  # not under the lock: it takes a connection of its own
        async with ahold(self._plan, self.engine, self._lock_request(key)) as held:
            if not isinstance(held, AsyncAdvisoryLock):
                yield held
                return
            with self._held.holding(key, held):
                yield held
