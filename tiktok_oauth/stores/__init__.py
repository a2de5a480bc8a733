"""Where tokens live: the `TokenStore` protocols, `MemoryTokenStore` and `FileTokenStore`.

A store maps a string key to a `TikTokToken`. Implement `TokenStore` (or `AsyncTokenStore`, the same
methods as coroutines) without inheriting from anything; add `lock(key)` and `TikTokAuth` uses it to
refresh once across everyone sharing the store. `keys()` and `expiring(before)` are optional too
(`ListingTokenStore`, `AsyncListingTokenStore`): `refresh_due` and `tiktok-oauth token list` use them
when a store has them. `RedisTokenStore` lives in `tiktok_oauth.stores.redis` so that this package
never imports `redis`.

Note that `isinstance` against a `runtime_checkable` protocol only checks that the methods exist: a
sync store passes `isinstance(store, AsyncTokenStore)` too. Tell them apart with
`inspect.iscoroutinefunction(store.get)`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tiktok_oauth.errors import TokenStoreError
from tiktok_oauth.stores._codec import copy_token, decode_token, encode_token, expires_before
from tiktok_oauth.stores._locking import NEVER_LOST, poll_lock
from tiktok_oauth.token import TikTokToken

if TYPE_CHECKING:
    from tiktok_oauth.stores._url import from_url
    from tiktok_oauth.stores.file import FileTokenStore

__all__ = [
    "AsyncHeldLock",
    "AsyncListingTokenStore",
    "AsyncLockingTokenStore",
    "AsyncTokenStore",
    "AwaitableLockingTokenStore",
    "FileTokenStore",
    "HeldLock",
    "ListingTokenStore",
    "LockingTokenStore",
    "MemoryTokenStore",
    "TokenStore",
    "from_url",
]


@runtime_checkable
class TokenStore(Protocol):
    """A synchronous token store: any object with these three methods."""

    def get(self, key: str) -> TikTokToken | None:
        """Return the token stored under `key`, or None. Raise `TokenStoreError` if it cannot be read."""
        ...

    def set(self, key: str, token: TikTokToken) -> None:
        """Store `token` under `key`, replacing any previous one, atomically."""
        ...

    def delete(self, key: str) -> None:
        """Remove the token stored under `key`; no error when there is none."""
        ...


@runtime_checkable
class HeldLock(Protocol):
    """What a sync store's `lock(key)` (and `alock(key)`) gives while the lock is held."""

    def check(self) -> None:
        """Raise `LockLostError` if the lock has been lost (expired, its session ended); else nothing."""
        ...


@runtime_checkable
class AsyncHeldLock(Protocol):
    """What an async store's `lock(key)` gives while the lock is held."""

    async def check(self) -> None:
        """Raise `LockLostError` if the lock has been lost (expired, its session ended); else nothing."""
        ...


@runtime_checkable
class LockingTokenStore(TokenStore, Protocol):
    """A `TokenStore` whose `lock(key)` gives exclusive access to `key` to everyone sharing the store.

    The guarantee: while the context is entered, no one else sharing the store holds the lock for that
    key. A lock that can be lost while held (a Redis lock that expired, a PostgreSQL session that ended)
    is reported: `check()` of the held lock raises `LockLostError`, and so does the first `set` or
    `delete` of that key after the loss. `lock_timeout` is how long `lock` waits for another holder
    before `TokenStoreError` (for Redis, `lock_blocking_timeout` is that wait and `lock_timeout` the
    lock's expiry).
    """

    lock_timeout: float

    def lock(self, key: str) -> contextlib.AbstractContextManager[HeldLock]:
        """Return a context manager that holds the lock for `key` while inside it."""
        ...


@runtime_checkable
class AwaitableLockingTokenStore(LockingTokenStore, Protocol):
    """A sync `LockingTokenStore` whose lock can also be awaited from asyncio code without a thread."""

    def alock(self, key: str) -> contextlib.AbstractAsyncContextManager[HeldLock]:
        """Hold the same lock as `lock(key)`, waiting without blocking the event loop."""
        ...


@runtime_checkable
class ListingTokenStore(TokenStore, Protocol):
    """A `TokenStore` that can list what it holds. Optional: used where present.

    Neither method lists lock files, lock keys or other bookkeeping, and both may be called while
    a lock is held (by this store object or anyone else).
    """

    def keys(self) -> Iterable[str]:
        """The keys of the stored tokens, exactly as they were given to `set`, in no given order."""
        ...

    def expiring(self, before: float, *, refresh: bool = False) -> Iterable[str]:
        """The keys whose access token's `expires_at` is strictly less than the epoch time `before`.

        Tokens already expired are included; a token with no `expires_at` is never listed. With
        `refresh`, the keys whose refresh token's `refresh_expires_at` is (the users who must log in
        again soon); a token without one is never listed.
        """
        ...


@runtime_checkable
class AsyncTokenStore(Protocol):
    """An asynchronous token store: `TokenStore` with coroutine methods."""

    async def get(self, key: str) -> TikTokToken | None:
        """Return the token stored under `key`, or None. Raise `TokenStoreError` if it cannot be read."""
        ...

    async def set(self, key: str, token: TikTokToken) -> None:
        """Store `token` under `key`, replacing any previous one, atomically."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the token stored under `key`; no error when there is none."""
        ...


@runtime_checkable
class AsyncLockingTokenStore(AsyncTokenStore, Protocol):
    """An `AsyncTokenStore` whose `lock(key)` is an async context manager (the guarantee of
    `LockingTokenStore`; its held lock's `check()` is a coroutine)."""

    lock_timeout: float

    def lock(self, key: str) -> contextlib.AbstractAsyncContextManager[AsyncHeldLock]:
        """Return an async context manager that holds the lock for `key` while inside it."""
        ...


@runtime_checkable
class AsyncListingTokenStore(AsyncTokenStore, Protocol):
    """An `AsyncTokenStore` whose `keys()` and `expiring(before)` are async iterables (`async for`)."""

    def keys(self) -> AsyncIterable[str]:
        """The keys of the stored tokens, exactly as they were given to `set`, in no given order."""
        ...

    def expiring(self, before: float, *, refresh: bool = False) -> AsyncIterable[str]:
        """The keys whose access (with `refresh`: refresh) token expires strictly before `before`."""
        ...


class MemoryTokenStore:
    """Tokens in a dict, for one process: the default store of `TikTokAuth`.

    It stores and returns copies, so mutating a token you passed in or got back never changes the
    stored one. `lock(key)` is a per-key `threading.Lock` (not reentrant; it may be released by
    another thread than the one that took it), so several auth objects sharing one
    `MemoryTokenStore` refresh once; `alock(key)` waits for the same lock from asyncio code without
    blocking the event loop. Both raise `TokenStoreError` after waiting `lock_timeout` seconds.
    `keys()` and `expiring(before)` list a snapshot of the stored tokens.

    Args:
        lock_timeout: seconds `lock` and `alock` wait for another holder before `TokenStoreError`.
        poll_interval: seconds `alock` sleeps between attempts while the lock is held elsewhere.
    """

    def __init__(self, *, lock_timeout: float = 30.0, poll_interval: float = 0.005) -> None:
        self.lock_timeout = lock_timeout
        self.poll_interval = poll_interval
        self._tokens: dict[str, TikTokToken] = {}
        self._key_locks: dict[str, threading.Lock] = {}
        self._mutex = threading.Lock()

    def get(self, key: str) -> TikTokToken | None:
        """Return a copy of the token stored under `key`, or None."""
        with self._mutex:
            token = self._tokens.get(key)
        return None if token is None else copy_token(token)

    def set(self, key: str, token: TikTokToken) -> None:
        """Store a copy of `token` under `key` (through JSON, so it holds what other stores would)."""
        stored = decode_token(encode_token(token, "memory"), "memory")
        with self._mutex:
            self._tokens[key] = stored

    def delete(self, key: str) -> None:
        """Remove the token stored under `key`, if any."""
        with self._mutex:
            self._tokens.pop(key, None)

    def keys(self) -> Iterator[str]:
        """The keys of the stored tokens (a snapshot taken when called)."""
        with self._mutex:
            keys = list(self._tokens)
        return iter(keys)

    def expiring(self, before: float, *, refresh: bool = False) -> Iterator[str]:
        """The keys whose access (with `refresh`: refresh) token expires strictly before `before` (a
        snapshot taken when called)."""
        with self._mutex:
            keys = [
                key for key, token in self._tokens.items() if expires_before(token, before, refresh=refresh)
            ]
        return iter(keys)

    def _lock_for(self, key: str) -> threading.Lock:
        with self._mutex:
            return self._key_locks.setdefault(key, threading.Lock())

    def _timed_out(self, key: str) -> TokenStoreError:
        return TokenStoreError(f"timed out after {self.lock_timeout} s waiting for the lock of {key!r}")

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[HeldLock]:
        """Hold the per-key lock for `key`, blocking this thread; `TokenStoreError` after `lock_timeout`."""
        lock = self._lock_for(key)
        if not lock.acquire(timeout=self.lock_timeout):
            raise self._timed_out(key)
        try:
            yield NEVER_LOST
        finally:
            lock.release()

    def alock(self, key: str) -> contextlib.AbstractAsyncContextManager[HeldLock]:
        """Hold the same per-key lock from asyncio code, polling instead of blocking the loop."""
        lock = self._lock_for(key)
        return poll_lock(
            lambda: lock.acquire(blocking=False),
            lock.release,
            poll_interval=self.poll_interval,
            give_up_after=self.lock_timeout,
            on_timeout=lambda: self._timed_out(key),
        )

    def __repr__(self) -> str:
        with self._mutex:
            keys = sorted(self._tokens)
        return f"MemoryTokenStore(keys={keys!r})"


def __getattr__(name: str) -> Any:
    # FileTokenStore brings filelock: imported when first asked for, not with every store.
    if name == "FileTokenStore":
        from tiktok_oauth.stores.file import FileTokenStore  # noqa: PLC0415 - on first use

        return FileTokenStore
    if name == "from_url":
        from tiktok_oauth.stores._url import from_url  # noqa: PLC0415 - on first use

        return from_url
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
