"""In-process locks, wait limits, and the thread that holds a sync store's lock for async code.

`locks` has one lock per (store, key), shared by every `TikTokAuth` and keeper on that store, while some
caller holds or waits for it: a key's entry is dropped when its last caller leaves, so a keeper that has
refreshed 100,000 keys holds no entry for them. A store's table lives as long as the store (for a store that
cannot be weakly referenced, as long as some object that uses it). A forked child gets a fresh table: a lock
held by a parent's thread would never be released there.

`StoreSection` is where a refresh's store I/O happens in async code: under the store's lock, with `get` /
`set` / `delete` as coroutines. For a sync store it runs the lock's entry, every call and the lock's exit on
one dedicated thread, so thread-affine locks (redis-py's `Lock`, `RLock`) work, the event loop never blocks,
and waiters never fill the default executor that the holder needs.
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import os
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
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


class _Entry:
    """One key's in-process lock and how many callers hold it or wait for it."""

    __slots__ = ("lock", "users")

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self.users = 0


class LockTable:
    """One `threading.Lock` and one `asyncio.Lock` per event loop, for each (store, key) in use.

    An entry exists only while some caller holds or waits for its lock: the use count is taken under the
    table's guard before waiting and dropped (the entry deleted at zero) after releasing, so every caller of
    one key meets the same lock however many keys a keeper has been through.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._guard = threading.Lock()
        # Ids of unreferenceable stores whose user died, not yet unregistered: see `_unregister`.
        self._released: collections.deque[int] = collections.deque()
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
                self._apply_released()
                held, table, users = self._by_id.get(id(store), (store, {}, 0))
                self._by_id[id(store)] = (held, table, users + 1)
            weakref.finalize(user, self._unregister, id(store))

    def _unregister(self, store_id: int) -> None:
        """A user of an unreferenceable store died: count it out, now or at the table's next use.

        This runs wherever the garbage collector frees the user, which may be inside this table's
        guard, in this very thread (an allocation under the guard starts a collection): waiting for
        the guard there would deadlock. So it only queues the id, and applies the queue when the
        guard is free this instant; whoever holds the guard applies it on their next use.
        """
        self._released.append(store_id)
        if self._guard.acquire(blocking=False):
            try:
                self._apply_released()
            finally:
                self._guard.release()

    def _apply_released(self) -> None:
        """Count out the queued users (the caller holds the guard); a store's entry goes with its last."""
        while self._released:
            store_id = self._released.popleft()
            entry = self._by_id.get(store_id)
            if entry is None:
                continue
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

    def entries(self, store: object) -> int:
        """How many keys of `store` have an entry (callers holding or waiting for their lock)."""
        with self._guard:
            return len(self._table(store))

    @contextlib.contextmanager
    def _use(self, store: object, key: str, loop: asyncio.AbstractEventLoop | None) -> Iterator[Any]:
        """The lock of (store, key) (per `loop` for asyncio), its entry kept while the caller is inside."""
        with self._guard:
            self._apply_released()
            table = self._table(store)
            slots: Any  # the table itself for thread locks; a per-loop weak dict for asyncio locks
            slot: object
            if loop is None:
                slots, slot = table, ("thread", key)
            else:
                slots, slot = table.get(("async", key)), loop
                if slots is None:
                    slots = table[("async", key)] = weakref.WeakKeyDictionary()
            entry = slots.get(slot)
            if entry is None:
                entry = slots[slot] = _Entry(threading.Lock() if loop is None else _asyncio_lock())
            entry.users += 1
        try:
            yield entry.lock
        finally:
            with self._guard:
                entry.users -= 1
                if entry.users == 0 and slots.get(slot) is entry:
                    del slots[slot]
                    if loop is not None and not slots and table.get(("async", key)) is slots:
                        del table[("async", key)]

    @contextlib.contextmanager
    def hold(self, store: object, key: str, limit: float) -> Iterator[threading.Lock]:
        """Hold the thread lock of (store, key), waiting at most `limit` seconds (then `TokenStoreError`)."""
        with self._use(store, key, None) as lock:
            if not lock.acquire(timeout=limit):
                raise timed_out(key, limit)
            try:
                yield lock
            finally:
                lock.release()

    @contextlib.asynccontextmanager
    async def ahold(
        self, store: object, key: str, loop: asyncio.AbstractEventLoop, limit: float
    ) -> AsyncIterator[asyncio.Lock]:
        """Hold the asyncio lock of (store, key) on `loop`, waiting at most `limit` seconds."""
        import asyncio  # noqa: PLC0415 - only async callers get here, with asyncio loaded

        with self._use(store, key, loop) as lock:
            try:
                async with asyncio.timeout(limit):
                    await lock.acquire()
            except TimeoutError:
                raise timed_out(key, limit) from None
            try:
                yield lock
            finally:
                lock.release()


def _asyncio_lock() -> asyncio.Lock:
    import asyncio  # noqa: PLC0415

    return asyncio.Lock()


locks: Final = LockTable()
os.register_at_fork(after_in_child=locks.reset)


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
        self._held: Any = None

    async def __aenter__(self) -> Self:
        if self._async:
            self._cm = self._lock(self._key) if self._lock is not None else contextlib.nullcontext()
        elif self._alock is not None:
            self._cm = self._alock(self._key)
        else:
            self._holder = _Holder(self._store, self._key, self._lock)
            self._held = await self._holder.enter()
            return self
        self._held = await self._cm.__aenter__()
        return self

    async def check(self) -> None:
        """Raise `LockLostError` if the store reports the held lock lost (`HeldLock.check`)."""
        check = getattr(self._held, "check", None)  # a user's store may yield anything, or nothing
        if check is None:
            return
        if self._async:
            result = check()
            if inspect.isawaitable(result):
                await result
        elif self._holder is not None:
            await self._holder.run(check)
        else:
            import asyncio  # noqa: PLC0415

            await asyncio.to_thread(check)

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
        self._entered: asyncio.Future[Any] = self._loop.create_future()
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
            held = self._cm.__enter__()
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
                self._resolve(self._entered, held)
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

    async def enter(self) -> Any:
        """Wait until the thread holds the lock; what the lock's `__enter__` gave."""
        import asyncio  # noqa: PLC0415

        threading.Thread(target=self._serve, name=f"tiktok-oauth lock {self._key!r}", daemon=True).start()
        try:
            async with asyncio.timeout(self._limit):
                return await asyncio.shield(self._entered)
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
