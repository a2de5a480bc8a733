"""The SQL stores' `lock(key)`: a PostgreSQL advisory lock, a file lock beside a SQLite file, or an in-process lock.

- PostgreSQL: a session advisory lock, `pg_advisory_lock(hashtextextended('<table>:<key>', 0))`, taken on a
  connection of its own, held idle (outside any transaction) until the lock is left, then unlocked and given
  back to the pool. The wait is bounded by the server (`SET LOCAL lock_timeout`), so a free lock is taken the
  moment it is released. A connection whose state is in doubt (an error or a cancellation while locking or
  unlocking) is closed, never pooled: its session ends, and with it any lock it held. A holder that dies
  ends its session too. The held lock (`AdvisoryLock`) is also where the store reads and writes the held
  key: on the lock's own session, so a holder never waits for a second pooled connection, and every write
  is fenced (it runs only after the session is seen to hold the lock, in the same transaction). A session
  that ended (`pg_terminate_backend`, `idle_session_timeout`, a restart) makes `check()` and every later
  write raise `LockLostError`. An optional semaphore (`LockRequest.slots`) bounds how many locks a store
  holds or waits for at once, so its pool always has a connection for each.
- SQLite file: a `filelock.FileLock` on `<database>-tiktok-oauth-locks/<hash>.lock`; the kernel releases a
  dead holder's lock. A new lock object per use, so threads and tasks of one process exclude each other too.
- Anything else (SQLite in memory, other dialects): a `threading.Lock` per (database, table, key).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Generic, Literal, TypeVar
from urllib.parse import unquote, urlsplit

import filelock
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tiktok_oauth.errors import LockLostError, TokenStoreError
from tiktok_oauth.stores._locking import ASYNC_NEVER_LOST, NEVER_LOST, AsyncNeverLost, NeverLost, poll_lock
from tiktok_oauth.stores._sql_schema import stored_key

__all__ = ["AdvisoryLock", "AsyncAdvisoryLock", "HeldLocks", "LockPlan", "LockRequest", "ahold", "hold"]

T = TypeVar("T")
L = TypeVar("L", "AdvisoryLock", "AsyncAdvisoryLock")

#: Seconds between attempts while another holder has a file or in-process lock.
POLL_INTERVAL: Final = 0.01
#: PostgreSQL's `lock_timeout` is an int of milliseconds.
_MAX_PG_MILLISECONDS: Final = 2_147_483_647
LOCK_NOT_AVAILABLE: Final = "55P03"
#: What locking can raise besides our own errors: the database's, and the lock files'.
_ERRORS: Final = (sa.exc.SQLAlchemyError, OSError)


@dataclass(frozen=True)
class LockRequest:
    """One `lock(key)` call: the key, the wait limit, and how the store words its errors."""

    key: str
    timeout: float
    failed: Callable[[BaseException], TokenStoreError]
    timed_out: Callable[[], TokenStoreError]
    #: The error for a lock found lost (given the database error that showed it, if any), and whether
    #: that error's text may be chained (see the store's `_describe`).
    lost: Callable[[BaseException | None], tuple[LockLostError, bool]]
    #: At most this many advisory locks held or waited for at once by the store (None: no bound).
    slots: threading.Semaphore | None = None

    @contextlib.contextmanager
    def wrapping(self) -> Iterator[None]:
        """Turn a database or file error into the store's `TokenStoreError`."""
        try:
            yield
        except _ERRORS as exc:
            raise self.failed(exc) from exc


# -- where a store's locks live ---------------------------------------------------------------------


def _sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL's database, or None for an in-memory one."""
    database = url.database or ""
    if str(url.query.get("uri", "")).lower() in {"true", "1"} and database.startswith("file:"):
        parts = urlsplit(database)
        if "mode=memory" in parts.query:
            return None
        database = unquote(parts.path)
    if database in {"", ":memory:"}:
        return None
    return Path(database).absolute()


@dataclass(frozen=True)
class LockPlan:
    """How `lock(key)` works for one store: the kind of lock and where it lives."""

    kind: Literal["advisory", "file", "process"]
    table: str
    database: str  # the URL without its password: the in-process locks' namespace
    directory: Path | None = None  # the lock files' directory, for SQLite files

    @classmethod
    def of(cls, url: URL, table: str) -> LockPlan:
        database = url.render_as_string(hide_password=True)
        backend = url.get_backend_name()
        if backend == "postgresql":
            return cls("advisory", table, database)
        if backend == "sqlite" and (path := _sqlite_file(url)) is not None:
            return cls("file", table, database, path.with_name(f"{path.name}-tiktok-oauth-locks"))
        return cls("process", table, database)

    def advisory_name(self, key: str) -> str:
        """The text hashed into the advisory lock's 64-bit id: table and key (no NUL: PostgreSQL text)."""
        return f"{self.table}:{stored_key(key)}"

    def file_lock(self, key: str) -> filelock.BaseFileLock:
        """A new lock object (its own descriptor) on the key's lock file."""
        assert self.directory is not None
        self.directory.mkdir(mode=0o700, exist_ok=True)
        digest = hashlib.sha256(f"{self.table}\n{key}".encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return filelock.FileLock(self.directory / f"{digest}.lock", mode=0o600, thread_local=False)

    def process_name(self, key: str) -> tuple[str, str, str]:
        return (self.database, self.table, key)


# -- in-process locks ---------------------------------------------------------------------------------


@dataclass
class _ProcessLock:
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0


class _ProcessLocks:
    """One `threading.Lock` per (database, table, key) in this process, dropped when nobody uses it."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str, str], _ProcessLock] = {}

    @contextlib.contextmanager
    def use(self, name: tuple[str, str, str]) -> Iterator[threading.Lock]:
        with self._guard:
            entry = self._locks.setdefault(name, _ProcessLock())
            entry.users += 1
        try:
            yield entry.lock
        finally:
            with self._guard:
                entry.users -= 1
                if entry.users == 0:
                    del self._locks[name]


_process_locks: Final = _ProcessLocks()
os.register_at_fork(after_in_child=_process_locks.reset)  # a parent thread's lock is never released there


# -- PostgreSQL advisory locks: the statements ----------------------------------------------------------


def _advisory(function: str, name: str) -> sa.Select[Any]:
    return sa.select(getattr(sa.func, function)(sa.func.hashtextextended(name, 0)))


def _lock_wait(seconds: float) -> sa.Select[Any]:
    """`SET LOCAL lock_timeout`: how long the next `pg_advisory_lock` of this transaction may wait."""
    milliseconds = min(_MAX_PG_MILLISECONDS, max(1, math.ceil(seconds * 1000)))
    return sa.select(sa.func.set_config("lock_timeout", str(milliseconds), True))  # noqa: FBT003


def _is_lock_timeout(exc: sa.exc.OperationalError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE


#: Does this session hold the advisory lock on `:name`? `pg_locks` shows a 64-bit lock id as two oids.
_STILL_HELD: Final = sa.text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    " AND granted AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(:name, 0))"
)


class HeldLocks(Generic[L]):
    """The advisory locks one store object holds, by key: where `get` / `set` / `delete` of a held key run.

    A lock is exclusive, so a second entry for a key means the first one's session ended and someone took
    the lock since: the first is marked lost (its holder's writes must not go through the new session).
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every lock (in a forked child, which holds none of its parent's)."""
        self._guard = threading.Lock()
        self._by_key: dict[str, L] = {}

    def get(self, key: str) -> L | None:
        with self._guard:
            return self._by_key.get(key)

    @contextlib.contextmanager
    def holding(self, key: str, held: L) -> Iterator[L]:
        with self._guard:
            previous = self._by_key.get(key)
            if previous is not None:
                previous.lost = True
            self._by_key[key] = held
        try:
            yield held
        finally:
            with self._guard:
                if self._by_key.get(key) is held:
                    del self._by_key[key]


# -- sync ---------------------------------------------------------------------------------------------


def _discard(connection: Connection) -> None:
    """Close a connection for good (never back to the pool): its session, and any lock of it, ends."""
    with contextlib.suppress(Exception):
        connection.invalidate()
    with contextlib.suppress(Exception):
        connection.close()


def _take_advisory(connection: Connection, name: str, timeout: float) -> bool:
    if timeout <= 0:
        acquired = bool(connection.execute(_advisory("pg_try_advisory_lock", name)).scalar())
        connection.commit()
        return acquired
    connection.execute(_lock_wait(timeout))
    try:
        connection.execute(_advisory("pg_advisory_lock", name))
    except sa.exc.OperationalError as exc:
        if not _is_lock_timeout(exc):
            raise
        connection.rollback()
        return False
    connection.commit()  # ends the transaction (and its lock_timeout); the session's lock stays
    return True


def _release_advisory(connection: Connection, name: str) -> None:
    try:
        released = connection.execute(_advisory("pg_advisory_unlock", name)).scalar()
        connection.commit()
    except BaseException as exc:
        _discard(connection)  # the session ends, and the lock with it
        if not isinstance(exc, Exception):
            raise
        return
    if released:
        connection.close()
    else:
        _discard(connection)


def _gone(connection: Connection | AsyncConnection) -> bool:
    """Has SQLAlchemy seen this connection's session end (a disconnect)? Then it must never be used again."""
    return connection.invalidated


class AdvisoryLock:
    """A held PostgreSQL advisory lock (`HeldLock`): its session, checked, and the held key's I/O run on it.

    `check()` asks the server whether this session still holds the lock. `run(work, fenced=True)` runs
    `work(connection)` in one transaction on the lock's session after that same question, so a write
    lands only while the lock is held: if the session ends before the commit, nothing is written. Once
    the session is found ended, both raise `LockLostError` for good; SQLAlchemy reconnecting the
    connection is no way back (a new session holds no lock). Calls from several threads take turns.
    """

    def __init__(self, connection: Connection, name: str, request: LockRequest) -> None:
        self._connection = connection
        self._name = name
        self._request = request
        self._mutex = threading.Lock()
        self.lost = False

    def check(self) -> None:
        """Raise `LockLostError` if this lock's session no longer holds it (the session ended)."""
        self.run(_nothing, fenced=True)

    def run(self, work: Callable[[Connection], T], *, fenced: bool) -> T:
        """`work(connection)` in one transaction on the lock's session; fenced: only while the lock is held."""
        with self._mutex:
            if self.lost:
                raise self._request.lost(None)[0]
            try:
                if fenced:
                    self._fence()
                result = work(self._connection)
                self._connection.commit()
            except LockLostError:
                raise
            except sa.exc.SQLAlchemyError as exc:
                if self._survived():
                    raise  # an error of the statement's own: the store words it
                self.lost = True
                error, safe = self._request.lost(exc)
                if safe:
                    raise error from exc
            except BaseException:
                # Interrupted mid-transaction: the session's state is in doubt, so it is never used
                # again under this lock (left, the connection is closed and the lock ends with it).
                self.lost = True
                raise
            else:
                return result
        raise error  # outside the handler: no trace of a message that could quote the token

    def _holds(self) -> bool:
        return bool(self._connection.execute(_STILL_HELD, {"name": self._name}).scalar())

    def _fence(self) -> None:
        """In the transaction about to write: `LockLostError` (rolled back) unless this session holds the lock."""
        if not self._holds():
            self._connection.rollback()
            self.lost = True
            raise self._request.lost(None)[0]

    def _survived(self) -> bool:
        """After an error: is the session the same one, and does it still hold the lock?"""
        if _gone(self._connection):
            return False  # its session is gone; using it again would open another, lockless
        try:
            self._connection.rollback()
            if _gone(self._connection):
                return False
            held = self._holds()
            self._connection.commit()
        except Exception:  # noqa: BLE001 - any failure here means the session is in doubt
            return False
        return held

    def release(self) -> None:
        """Unlock and give the connection back to the pool; a lost lock's connection is closed instead."""
        with self._mutex:
            if self.lost or _gone(self._connection):
                _discard(self._connection)
            else:
                _release_advisory(self._connection, self._name)


def _nothing(_connection: object) -> None:
    return None


@contextlib.contextmanager
def _slot(request: LockRequest) -> Iterator[float]:
    """Take one of the store's lock slots (if it bounds them); give what is left of the wait limit."""
    if request.slots is None:
        yield request.timeout
        return
    started = time.monotonic()
    if not request.slots.acquire(timeout=max(request.timeout, 0)):
        raise request.timed_out()
    try:
        yield max(0.0, request.timeout - (time.monotonic() - started))
    finally:
        request.slots.release()


@contextlib.contextmanager
def _hold_advisory(engine: Engine, name: str, request: LockRequest) -> Iterator[AdvisoryLock]:
    with _slot(request) as wait:
        with request.wrapping():
            connection = engine.connect()
        try:
            with request.wrapping():
                acquired = _take_advisory(connection, name, wait)
        except BaseException:
            _discard(connection)  # interrupted mid-wait: the server may have granted it already
            raise
        if not acquired:
            connection.close()
            raise request.timed_out()
        held = AdvisoryLock(connection, name, request)
        try:
            yield held
        finally:
            held.release()


@contextlib.contextmanager
def _hold_file(plan: LockPlan, request: LockRequest) -> Iterator[NeverLost]:
    with request.wrapping():
        lock = plan.file_lock(request.key)
        try:
            lock.acquire(timeout=max(request.timeout, 0), poll_interval=POLL_INTERVAL)
        except filelock.Timeout:
            raise request.timed_out() from None
    try:
        yield NEVER_LOST  # the kernel keeps a file lock as long as its holder lives
    finally:
        lock.release()


@contextlib.contextmanager
def _hold_in_process(plan: LockPlan, request: LockRequest) -> Iterator[NeverLost]:
    with _process_locks.use(plan.process_name(request.key)) as lock:
        if not lock.acquire(timeout=max(request.timeout, 0)):
            raise request.timed_out()
        try:
            yield NEVER_LOST
        finally:
            lock.release()


def hold(
    plan: LockPlan, engine: Engine, request: LockRequest
) -> contextlib.AbstractContextManager[AdvisoryLock | NeverLost]:
    """The sync store's `lock(key)`: a context manager holding the lock that `plan` names."""
    if plan.kind == "advisory":
        return _hold_advisory(engine, plan.advisory_name(request.key), request)
    if plan.kind == "file":
        return _hold_file(plan, request)
    return _hold_in_process(plan, request)


# -- async --------------------------------------------------------------------------------------------


async def _adiscard(connection: AsyncConnection) -> None:
    with contextlib.suppress(Exception):
        await connection.invalidate()
    with contextlib.suppress(Exception):
        await connection.close()


async def _atake_advisory(connection: AsyncConnection, name: str, wait: float) -> bool:
    if wait <= 0:
        acquired = bool((await connection.execute(_advisory("pg_try_advisory_lock", name))).scalar())
        await connection.commit()
        return acquired
    await connection.execute(_lock_wait(wait))
    try:
        await connection.execute(_advisory("pg_advisory_lock", name))
    except sa.exc.OperationalError as exc:
        if not _is_lock_timeout(exc):
            raise
        await connection.rollback()
        return False
    await connection.commit()
    return True


async def _arelease_advisory(connection: AsyncConnection, name: str) -> None:
    try:
        released = (await connection.execute(_advisory("pg_advisory_unlock", name))).scalar()
        await connection.commit()
    except BaseException as exc:
        await _adiscard(connection)
        if not isinstance(exc, Exception):
            raise
        return
    if released:
        await connection.close()
    else:
        await _adiscard(connection)


class AsyncAdvisoryLock:
    """`AdvisoryLock` for an `AsyncEngine` (`AsyncHeldLock`): `check()` and `run()` are coroutines."""

    def __init__(self, connection: AsyncConnection, name: str, request: LockRequest) -> None:
        self._connection = connection
        self._name = name
        self._request = request
        self._mutex = asyncio.Lock()
        self.lost = False

    async def check(self) -> None:
        """Raise `LockLostError` if this lock's session no longer holds it (the session ended)."""
        await self.run(_anothing, fenced=True)

    async def run(self, work: Callable[[AsyncConnection], Awaitable[T]], *, fenced: bool) -> T:
        """`await work(connection)` in one transaction on the lock's session (see `AdvisoryLock.run`)."""
        async with self._mutex:
            if self.lost:
                raise self._request.lost(None)[0]
            try:
                if fenced:
                    await self._fence()
                result = await work(self._connection)
                await self._connection.commit()
            except LockLostError:
                raise
            except sa.exc.SQLAlchemyError as exc:
                if await self._survived():
                    raise
                self.lost = True
                error, safe = self._request.lost(exc)
                if safe:
                    raise error from exc
            except BaseException:  # cancelled mid-statement, too: see `AdvisoryLock.run`
                self.lost = True
                raise
            else:
                return result
        raise error  # outside the handler: no trace of a message that could quote the token

    async def _holds(self) -> bool:
        return bool((await self._connection.execute(_STILL_HELD, {"name": self._name})).scalar())

    async def _fence(self) -> None:
        if not await self._holds():
            await self._connection.rollback()
            self.lost = True
            raise self._request.lost(None)[0]

    async def _survived(self) -> bool:
        if _gone(self._connection):
            return False
        try:
            await self._connection.rollback()
            if _gone(self._connection):
                return False
            held = await self._holds()
            await self._connection.commit()
        except Exception:  # noqa: BLE001 - any failure here means the session is in doubt
            return False
        return held

    async def release(self) -> None:
        """Unlock and give the connection back to the pool; a lost lock's connection is closed instead."""
        if self.lost or _gone(self._connection):
            await _adiscard(self._connection)
        else:
            await _arelease_advisory(self._connection, self._name)


async def _anothing(_connection: object) -> None:
    return None


@contextlib.asynccontextmanager
async def _aslot(request: LockRequest) -> AsyncIterator[float]:
    """`_slot` without blocking the loop: polls the semaphore (it is shared by every loop of the process)."""
    slots = request.slots
    if slots is None:
        yield request.timeout
        return
    started = time.monotonic()
    async with poll_lock(
        lambda: slots.acquire(blocking=False),
        slots.release,
        poll_interval=POLL_INTERVAL,
        give_up_after=max(request.timeout, 0),
        on_timeout=request.timed_out,
    ):
        yield max(0.0, request.timeout - (time.monotonic() - started))


@contextlib.asynccontextmanager
async def _ahold_advisory(
    engine: AsyncEngine, name: str, request: LockRequest
) -> AsyncIterator[AsyncAdvisoryLock]:
    async with _aslot(request) as wait:
        connection = engine.connect()
        with request.wrapping():
            await connection.start()
        try:
            with request.wrapping():
                acquired = await _atake_advisory(connection, name, wait)
        except BaseException:
            await _adiscard(connection)  # cancelled mid-wait too: the server may have granted it already
            raise
        if not acquired:
            await connection.close()
            raise request.timed_out()
        held = AsyncAdvisoryLock(connection, name, request)
        try:
            yield held
        finally:
            await held.release()


def _file_attempt(lock: filelock.BaseFileLock, request: LockRequest) -> Callable[[], bool]:
    def attempt() -> bool:
        with request.wrapping():
            try:
                lock.acquire(blocking=False)
            except filelock.Timeout:
                return False
        return True

    return attempt


@contextlib.asynccontextmanager
async def _ahold_polled(
    try_acquire: Callable[[], bool], release: Callable[[], None], request: LockRequest
) -> AsyncIterator[AsyncNeverLost]:
    async with poll_lock(
        try_acquire,
        release,
        poll_interval=POLL_INTERVAL,
        give_up_after=max(request.timeout, 0),
        on_timeout=request.timed_out,
    ):
        yield ASYNC_NEVER_LOST


@contextlib.asynccontextmanager
async def _ahold_in_process(plan: LockPlan, request: LockRequest) -> AsyncIterator[AsyncNeverLost]:
    with _process_locks.use(plan.process_name(request.key)) as lock:
        async with _ahold_polled(lambda: lock.acquire(blocking=False), lock.release, request) as held:
            yield held


def ahold(
    plan: LockPlan, engine: AsyncEngine, request: LockRequest
) -> contextlib.AbstractAsyncContextManager[AsyncAdvisoryLock | AsyncNeverLost]:
    """The async store's `lock(key)`: an async context manager that waits without blocking the loop."""
    if plan.kind == "advisory":
        return _ahold_advisory(engine, plan.advisory_name(request.key), request)
    if plan.kind == "file":
        with request.wrapping():
            lock = plan.file_lock(request.key)
        return _ahold_polled(_file_attempt(lock, request), lock.release, request)
    return _ahold_in_process(plan, request)
