"""Where tokens live: the `TokenStore` protocols, `MemoryTokenStore` and `FileTokenStore`.

A store maps a string key to a `TikTokToken`. Implement `TokenStore` (or `AsyncTokenStore`, the same
methods as coroutines) without inheriting from anything; add `lock(key)` and `TikTokAuth` uses it to
refresh once across everyone sharing the store. `RedisTokenStore` lives in `tiktok_oauth.stores.redis`
so that this package never imports `redis`.

Note that `isinstance` against a `runtime_checkable` protocol only checks that the methods exist: a
sync store passes `isinstance(store, AsyncTokenStore)` too. Tell them apart with
`inspect.iscoroutinefunction(store.get)`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tiktok_oauth.stores._codec import copy_token, decode_token, encode_token
from tiktok_oauth.stores._locking import poll_lock
from tiktok_oauth.token import TikTokToken

if TYPE_CHECKING:
    from tiktok_oauth.stores.file import FileTokenStore

__all__ = [
    "AsyncLockingTokenStore",
    "AsyncTokenStore",
    "FileTokenStore",
    "LockingTokenStore",
    "MemoryTokenStore",
    "TokenStore",
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
class LockingTokenStore(TokenStore, Protocol):
    """A `TokenStore` whose `lock(key)` gives exclusive access to `key` to everyone sharing the store."""

    def lock(self, key: str) -> contextlib.AbstractContextManager[object]:
        """Return a context manager that holds the lock for `key` while inside it."""
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
    """An `AsyncTokenStore` whose `lock(key)` is an async context manager."""

    def lock(self, key: str) -> contextlib.AbstractAsyncContextManager[object]:
        """Return an async context manager that holds the lock for `key` while inside it."""
        ...


class MemoryTokenStore:
    """Tokens in a dict, for one process: the default store of `TikTokAuth`.

    It stores and returns copies, so mutating a token you passed in or got back never changes the
    stored one. `lock(key)` is a per-key `threading.Lock` (not reentrant), so several auth objects
    sharing one `MemoryTokenStore` refresh once; `alock(key)` waits for the same lock from asyncio
    code without blocking the event loop.

    Args:
        poll_interval: seconds `alock` sleeps between attempts while the lock is held elsewhere.
    """

    def __init__(self, *, poll_interval: float = 0.005) -> None:
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

    def _lock_for(self, key: str) -> threading.Lock:
        with self._mutex:
            return self._key_locks.setdefault(key, threading.Lock())

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the per-key lock for `key` (blocking this thread while another holds it)."""
        with self._lock_for(key):
            yield

    def alock(self, key: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the same per-key lock from asyncio code, polling instead of blocking the loop."""
        lock = self._lock_for(key)
        return poll_lock(lambda: lock.acquire(blocking=False), lock.release, poll_interval=self.poll_interval)

    def __repr__(self) -> str:
        with self._mutex:
            keys = sorted(self._tokens)
        return f"MemoryTokenStore(keys={keys!r})"


def __getattr__(name: str) -> Any:
    # FileTokenStore brings filelock: imported when first asked for, not with every store.
    if name == "FileTokenStore":
        from tiktok_oauth.stores.file import FileTokenStore  # noqa: PLC0415 - on first use

        return FileTokenStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
