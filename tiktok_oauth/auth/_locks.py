"""In-process locks, wait limits, and the thread that holds a sync store's lock for async code.

`locks` has one lock per (store, key), shared by every `TikTokAuth` and keeper on that store. Locks live as
long as their store (and, for asyncio locks, their event loop); for a store that cannot be weakly referenced,
as long as some object that uses it. A forked child gets a fresh table: a lock held by a parent's thread
would never be released there.

`StoreSection` is where a refresh's store I/O happens in async code: under the store's lock, with `get` /
`set` / `delete` as coroutines. For a sync store it runs the lock's entry, every call and the lock's exit on
one dedicated thread, so thread-affine locks (redis-py's `Lock`, `RLock`) work, the event loop never blocks,
and waiters never fill the default executor that the holder needs.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from tiktok_oauth.errors import TokenStoreError

if TYPE_CHECKING:
    import asyncio
    import queue

DEFAULT_WAIT_LIMIT: Final = 30.0
#: Extra seconds our own wait allows beyond the store's limit, so the store's own error is the one raised.
_MARGIN: Final = 1.0


def wait_limit(store: object) -> float:
    """How long a caller waits for `store`'s lock: `lock_blocking_timeout` (Redis), else `lock_timeout`."""
    for name in ("lock_blocking_timeout", "lock_timeout"):
        value = getattr(store, name, None)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
    return DEFAULT_WAIT_LIMIT


def timed_out(key: str, limit: float) -> TokenStoreError:
    return TokenStoreError(f"timed out after {limit:g} s waiting for another caller's refresh of key {key!r}")


class LockTable:
    """One `threading.Lock` and one `asyncio.Lock` per event loop, for each (store, key)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._guard = threading.Lock()
        self._by_store: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], Any]] = (
            weakref.WeakKeyDictionary()
        )
        # Stores that cannot be weakly referenced: held (so their id is not recycled) while any user lives.
        self._by_id: dict[int, tuple[object, dict[tuple[str, str], Any], int]] = {}

    def register(self, store: object, user: object) -> None:
        """Note that `user` (an auth object, a keeper) uses `store`, for stores without weak references."""
        try:
            weakref.ref(store)
            hash(store)
        except TypeError:
            with self._guard:
                held, table, users = self._by_id.get(id(store), (store, {}, 0))
                self._by_id[id(store)] = (held, table, users + 1)
            weakref.finalize(user, self._unregister, id(store))

    def _unregister(self, store_id: int) -> None:
        with self._guard:
            entry = self._by_id.get(store_id)
            if entry is None:
                return
            held, table, users = entry
            if users <= 1:
                del self._by_id[store_id]
            else:
                self._by_id[store_id] = (held, table, users - 1)

    def _table(self, store: object) -> dict[tuple[str, str], Any]:
        entry = self._by_id.get(id(store))
        if entry is not None and entry[0] is store:
            return entry[1]
        try:
            return self._by_store.setdefault(store, {})
        except TypeError:  # not weakly referenceable and not registered: a table for this call only
            return {}

    def thread_lock(self, store: object, key: str) -> threading.Lock:
        with self._guard:
            lock: threading.Lock = self._table(store).setdefault(("thread", key), threading.Lock())
            return lock

    def async_lock(self, store: object, key: str, loop: asyncio.AbstractEventLoop) -> asyncio.Lock:
        import asyncio  # noqa: PLC0415 - only async callers get here, with asyncio loaded

        with self._guard:
            per_loop = self._table(store).setdefault(("async", key), weakref.WeakKeyDictionary())
            lock: asyncio.Lock = per_loop.setdefault(loop, asyncio.Lock())
            return lock


locks: Final = LockTable()
os.register_at_fork(after_in_child=locks.reset)


@contextlib.contextmanager
def holding(lock: threading.Lock, key: str, limit: float) -> Any:
    """Hold an in-process lock, waiting at most `limit` seconds (then `TokenStoreError`)."""
    if not lock.acquire(timeout=limit):
        raise timed_out(key, limit)
    try:
        yield
    finally:
        lock.release()


@contextlib.asynccontextmanager
async def aholding(lock: asyncio.Lock, key: str, limit: float) -> Any:
    """Hold an asyncio lock, waiting at most `limit` seconds (then `TokenStoreError`)."""
    import asyncio  # noqa: PLC0415

    try:
        async with asyncio.timeout(limit):
            await lock.acquire()
    except TimeoutError:
        raise timed_out(key, limit) from None
    try:
        yield
    finally:
        lock.release()


class StoreSection:
    """A critical section over a store, for async code: `async with section:` holds the store's lock.

    Its `get`, `set` and `delete` are coroutines whatever the store's kind. An async store is awaited
    directly (under its async `lock`); a sync store with `alock` is locked by polling and called in the
    default executor; any other sync store runs the lock and the calls on a thread of its own (`_Holder`).
    """

    def __init__(self, store: Any, key: str, *, is_async: bool, use_lock: bool = True) -> None:
        self._store = store
        self._key = key
        self._async = is_async
        self._lock = getattr(store, "lock", None) if use_lock else None
        self._alock = getattr(store, "alock", None) if use_lock else None
        self._holder: _Holder | None = None
        self._cm: contextlib.AbstractAsyncContextManager[Any] | None = None

    async def __aenter__(self) -> Self:
        if self._async:
            self._cm = self._lock(self._key) if self._lock is not None else contextlib.nullcontext()
        elif self._alock is not None:
            self._cm = self._alock(self._key)
        else:
            self._holder = _Holder(self._store, self._key, self._lock)
            await self._holder.enter()
            return self
        await self._cm.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._holder is not None:
            await self._holder.exit()
        elif self._cm is not None:
            await self._cm.__aexit__(exc_type, exc, tb)

    async def call(self, name: str, *args: Any) -> Any:
        method = getattr(self._store, name)
        if self._async:
            return await method(*args)
        if self._holder is not None:
            return await self._holder.run(method, *args)
        import asyncio  # noqa: PLC0415

        return await asyncio.to_thread(method, *args)


class _Holder:
    """A thread that enters a sync store's lock, runs the calls it is given, then leaves the lock.

    A caller cancelled (or timed out) while the thread still waits for the lock abandons it: the thread
    then leaves the lock the moment it gets it, so no lock outlives its caller.
    """

    def __init__(self, store: Any, key: str, lock: Callable[[str], Any] | None) -> None:
        import asyncio  # noqa: PLC0415

        self._loop = asyncio.get_running_loop()
        self._key = key
        self._limit = wait_limit(store) + _MARGIN
        self._cm: contextlib.AbstractContextManager[Any] = (
            lock(key) if lock is not None else contextlib.nullcontext()
        )
        import queue  # noqa: PLC0415 - only for a sync store under asyncio

        self._calls: queue.SimpleQueue[tuple[asyncio.Future[Any], Callable[..., Any], tuple[Any, ...]] | None]
        self._calls = queue.SimpleQueue()
        self._entered: asyncio.Future[None] = self._loop.create_future()
        self._exited: asyncio.Future[None] = self._loop.create_future()
        self._state = threading.Lock()
        self._abandoned = False
        self._holding = False

    def _resolve(
        self, future: asyncio.Future[Any], result: Any = None, error: BaseException | None = None
    ) -> None:
        def settle() -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(settle)

    def _serve(self) -> None:
        try:
            self._cm.__enter__()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            self._resolve(self._entered, error=exc)
            self._resolve(self._exited)
            return
        exit_error: BaseException | None = None
        try:
            with self._state:
                abandoned = self._abandoned
                self._holding = not abandoned
            if not abandoned:
                self._resolve(self._entered)
                while (item := self._calls.get()) is not None:
                    future, function, args = item
                    try:
                        self._resolve(future, function(*args))
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        self._resolve(future, error=exc)
        finally:
            try:
                self._cm.__exit__(None, None, None)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                exit_error = exc
            self._resolve(self._exited, error=exit_error)

    async def enter(self) -> None:
        import asyncio  # noqa: PLC0415

        threading.Thread(target=self._serve, name=f"tiktok-oauth lock {self._key!r}", daemon=True).start()
        try:
            async with asyncio.timeout(self._limit):
                await asyncio.shield(self._entered)
        except BaseException as exc:
            self._abandon()
            if isinstance(exc, TimeoutError):
                raise timed_out(self._key, self._limit) from None
            raise

    def _abandon(self) -> None:
        with self._state:
            self._abandoned = True
            holding = self._holding
        if holding:
            self._calls.put(None)
        self._entered.cancel()

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        future: asyncio.Future[Any] = self._loop.create_future()
        self._calls.put((future, function, args))
        return await future

    async def exit(self) -> None:
        import asyncio  # noqa: PLC0415

        self._calls.put(None)
        await asyncio.shield(self._exited)
