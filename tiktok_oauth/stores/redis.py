"""`RedisTokenStore` and `AsyncRedisTokenStore`: tokens in Redis, with a lock that expires (extra `redis`).

Install the `redis` extra (`pip install -e '.[redis]'` from a checkout). Give the client socket
timeouts (`redis.Redis(..., socket_timeout=5, socket_connect_timeout=5)`) so that a Redis that stops
answering raises `TokenStoreError` instead of hanging; every `RedisError` becomes a `TokenStoreError`.
Where each thing lives in Redis is described in `tiktok_oauth.stores._redis_layout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tiktok_oauth.errors import LockLostError, TokenStoreError
from tiktok_oauth.stores._codec import access_expiry, decode_token, encode_token, expires_before
from tiktok_oauth.stores._redis_layout import (
    DELETE_SCRIPT,
    PAGE,
    SET_SCRIPT,
    ExpiryPager,
    Layout,
    index_score,
)
from tiktok_oauth.token import TikTokToken

if TYPE_CHECKING:
    import redis
    import redis.asyncio

    from tiktok_oauth.stores import AsyncHeldLock, HeldLock

__all__ = ["AsyncRedisTokenStore", "RedisTokenStore"]

logger = logging.getLogger("tiktok_oauth")


def _is_async_client(client: object) -> bool:
    # redis.asyncio's command methods are plain functions returning awaitables; this one is async.
    return inspect.iscoroutinefunction(getattr(client, "execute_command", None))


def _failure(action: str, name: str, exc: Exception) -> TokenStoreError:
    detail = type(exc).__name__
    # Connection and timeout messages say where and why; other replies are not echoed (they could
    # quote stored data).
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        detail = f"{detail}: {exc}"
    return TokenStoreError(f"Redis {action} of {name!r} failed ({detail})")


@dataclass
class _Held:
    """A lock this store object holds: its owner token, and what its keeper found."""

    token: bytes
    lost: bool = False
    stop: threading.Event = field(default_factory=threading.Event)


class _RedisStoreBase:
    """What the sync and async stores share: names, settings, write arguments, decoding."""

    def __init__(
        self,
        redis_client: Any,
        prefix: str = "tiktok-oauth:",
        *,
        lock_timeout: float = 30.0,
        lock_blocking_timeout: float = 60.0,
    ) -> None:
        self.client = redis_client
        self._layout = Layout(prefix)
        self.prefix = prefix
        self.lock_timeout = lock_timeout
        self.lock_blocking_timeout = lock_blocking_timeout
        self._held: dict[str, _Held] = {}
        self._scripts: dict[str, Any] = {}

    def key_name(self, key: str) -> str:
        """The Redis key that holds the token for `key`: `prefix + key`."""
        return self._layout.value(key)

    def lock_name(self, key: str) -> str:
        """The Redis key of the lock for `key`: the prefix with its last character swapped, `lock:`, key.

        For the default prefix, `tiktok-oauth#lock:<key>`: outside `prefix*`, so no token key can
        ever be a lock key.
        """
        return self._layout.lock(key)

    @property
    def index_name(self) -> str:
        """The sorted set of access-token expiries (`tiktok-oauth#expiries` for the default prefix)."""
        return self._layout.index

    def _script(self, source: str) -> Any:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self.client.register_script(source)
        return script

    def _set_call(self, key: str, token: TikTokToken) -> tuple[list[str], list[Any]]:
        name = self.key_name(key)
        where = f"Redis key {name!r}"
        data = encode_token(token, where)
        expiry = access_expiry(decode_token(data, where))  # of what is stored, exactly
        held = self._held.get(key)
        keys = [name, self.index_name, self.lock_name(key)]
        return keys, [held.token if held else b"", data, index_score(expiry), key]

    def _delete_call(self, key: str) -> tuple[list[str], list[Any]]:
        held = self._held.get(key)
        return [self.key_name(key), self.index_name, self.lock_name(key)], [held.token if held else b"", key]

    def _refused(self, key: str) -> LockLostError:
        return LockLostError(
            f"the Redis lock {self.lock_name(key)!r} was lost (it expired or was taken) while this store "
            "held it: write refused, the stored token is unchanged"
        )

    def _lost(self, key: str, held: _Held) -> LockLostError:
        self._note_lost(key, held)
        return LockLostError(
            f"the Redis lock {self.lock_name(key)!r} was lost (it expired or was taken) while this store held it"
        )

    def _decode(self, raw: bytes | str | None, name: str) -> TikTokToken | None:
        return None if raw is None else decode_token(raw, f"Redis key {name!r}")

    def _new_lock(self, key: str) -> Any:
        # thread_local=False: the owner token lives on the lock object, so a lock entered on one
        # thread can be left on another (asyncio.to_thread runs each step on any worker thread).
        return self.client.lock(
            self.lock_name(key),
            timeout=self.lock_timeout,
            blocking_timeout=self.lock_blocking_timeout,
            thread_local=False,
        )

    def _extend_every(self) -> float | None:
        return None if self.lock_timeout is None else self.lock_timeout / 3

    def _timed_out(self, key: str) -> TokenStoreError:
        return TokenStoreError(
            f"timed out after {self.lock_blocking_timeout} s waiting for the Redis lock "
            f"{self.lock_name(key)!r}"
        )

    def _note_lost(self, key: str, held: _Held) -> None:
        if not held.lost:
            held.lost = True
            logger.warning(
                "the Redis lock %r was lost while held: writes under it are refused", self.lock_name(key)
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r})"


def _warn_release_failed(name: str, exc: Exception) -> None:
    warnings.warn(
        f"could not release the Redis lock {name!r} ({type(exc).__name__}); "
        "it expires on its own after lock_timeout",
        RuntimeWarning,
        stacklevel=4,
    )


class _RedisHeld:
    """A held Redis lock, as `lock(key)` gives it: what `check()` needs, and its verdict."""

    __slots__ = ("_held", "_key", "_lock", "_store")

    def __init__(self, store: _RedisStoreBase, key: str, lock: Any, held: _Held) -> None:
        self._store, self._key, self._lock, self._held = store, key, lock, held

    def _failed(self, exc: RedisError) -> TokenStoreError:
        return _failure("lock check", self._store.lock_name(self._key), exc)

    def _judge(self, owned: bool) -> None:
        if self._held.lost or not owned:
            raise self._store._lost(self._key, self._held)  # noqa: SLF001 - the store's own helper


class _HeldRedisLock(_RedisHeld):
    """What `RedisTokenStore.lock(key)` gives: `check()` asks Redis whether the lock is still ours."""

    __slots__ = ()

    def check(self) -> None:
        """Raise `LockLostError` if the lock expired or was taken (redis-py's `Lock.owned()`)."""
        try:
            owned = bool(self._lock.owned())
        except RedisError as exc:
            raise self._failed(exc) from exc
        self._judge(owned)


class _AsyncHeldRedisLock(_RedisHeld):
    """What `AsyncRedisTokenStore.lock(key)` gives: `await check()` asks Redis whether it is still ours."""

    __slots__ = ()

    async def check(self) -> None:
        """Raise `LockLostError` if the lock expired or was taken (redis.asyncio's `Lock.owned()`)."""
        try:
            owned = bool(await self._lock.owned())
        except RedisError as exc:
            raise self._failed(exc) from exc
        self._judge(owned)


class RedisTokenStore(_RedisStoreBase):
    """Tokens in Redis through a sync `redis.Redis`; each token is one key holding its JSON.

    Keys are `prefix + key`; beside them a sorted set (`index_name`) holds each access token's
    expiry, written in the same atomic step (a Lua script) as the value, so `expiring(before)` is a
    range query, not a read of every token. `keys()` walks `prefix*` with `SCAN` (never `KEYS`).
    Nothing else may live under `prefix`, and two stores' prefixes must not start one another.

    `lock(key)` is redis-py's `Lock` on `lock_name(key)`: it expires after `lock_timeout` seconds,
    so a holder that died cannot wedge everyone, and while it is held a daemon thread extends it
    every `lock_timeout / 3` seconds, so a slow refresh keeps it. Waiting longer than
    `lock_blocking_timeout` seconds raises `TokenStoreError`. It may be left on another thread than
    it was entered on. While this store object holds `lock(key)`, `set(key, ...)` and `delete(key)`
    check in the same atomic step that the lock is still theirs: if it was lost all the same (Redis
    stalled past the expiry, someone deleted it), they raise `LockLostError` and change nothing. The
    held lock's `check()` (`with store.lock(key) as held: held.check()`) asks Redis whether the lock is
    still this holder's (redis-py's `Lock.owned()`) and raises `LockLostError` if not.
    Any `RedisError` becomes `TokenStoreError`.

    Given a `redis.asyncio.Redis` client, `RedisTokenStore(...)` returns an `AsyncRedisTokenStore`
    (type checkers do not know that: construct `AsyncRedisTokenStore` directly in typed code).

    Args:
        redis_client: a `redis.Redis` (set its `socket_timeout`, so a dead server cannot hang you).
        prefix: prepended to every key (not empty).
        lock_timeout: seconds after which a lock expires unless its (living) holder extends it.
        lock_blocking_timeout: seconds `lock` waits before raising `TokenStoreError`: the wait limit.
    """

    def __new__(cls, redis_client: Any = None, *args: Any, **kwargs: Any) -> Self:
        if cls is RedisTokenStore and _is_async_client(redis_client):
            return AsyncRedisTokenStore(redis_client, *args, **kwargs)  # type: ignore[return-value]
        return super().__new__(cls)

    client: redis.Redis

    def __init__(
        self,
        redis_client: Any,
        prefix: str = "tiktok-oauth:",
        *,
        lock_timeout: float = 30.0,
        lock_blocking_timeout: float = 60.0,
    ) -> None:
        super().__init__(
            redis_client, prefix, lock_timeout=lock_timeout, lock_blocking_timeout=lock_blocking_timeout
        )
        self._mutex = threading.Lock()

    def get(self, key: str) -> TikTokToken | None:
        """Return the token stored under `key`, or None."""
        name = self.key_name(key)
        try:
            raw = self.client.get(name)
        except RedisError as exc:
            raise _failure("GET", name, exc) from exc
        return self._decode(raw, name)

    def set(self, key: str, token: TikTokToken) -> None:
        """Store `token` under `key` and index its expiry, in one atomic step (refused if our lock was lost)."""
        with self._mutex:
            keys, args = self._set_call(key, token)
        try:
            written = self._script(SET_SCRIPT)(keys=keys, args=args)
        except RedisError as exc:
            raise _failure("SET", keys[0], exc) from exc
        if not written:
            raise self._refused(key)

    def delete(self, key: str) -> None:
        """Remove the token stored under `key` and its index entry, if any (refused if our lock was lost)."""
        with self._mutex:
            keys, args = self._delete_call(key)
        try:
            deleted = self._script(DELETE_SCRIPT)(keys=keys, args=args)
        except RedisError as exc:
            raise _failure("DEL", keys[0], exc) from exc
        if not deleted:
            raise self._refused(key)

    def keys(self) -> Iterator[str]:
        """The stored keys, from `SCAN` over `prefix*` (each listed once)."""
        seen: set[str] = set()  # SCAN may return a key twice while Redis resizes its table
        try:
            for name in self.client.scan_iter(match=self._layout.scan_pattern, count=PAGE):
                key = self._layout.key_of(name)
                if key is not None and key not in seen:
                    seen.add(key)
                    yield key
        except RedisError as exc:
            raise _failure("SCAN", self._layout.scan_pattern, exc) from exc

    def expiring(self, before: float, *, refresh: bool = False) -> Iterator[str]:
        """The keys whose access token expires strictly before `before`, from the expiry index. With
        `refresh`, those whose refresh token does: Redis keeps no index of those, so each token is read."""
        if refresh:
            for key in self.keys():
                token = self.get(key)
                if token is not None and expires_before(token, before, refresh=True):
                    yield key
            return
        pager = ExpiryPager(before)
        while (query := pager.query()) is not None:
            low, high, count = query
            try:
                rows: Any = self.client.zrangebyscore(
                    self.index_name, low, high, start=0, num=count, withscores=True
                )
            except RedisError as exc:
                raise _failure("ZRANGEBYSCORE", self.index_name, exc) from exc
            yield from pager.feed(rows)

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[HeldLock]:
        """Hold the Redis lock for `key`, extended while held (see the class docstring)."""
        lock = self._new_lock(key)
        try:
            acquired = lock.acquire()
        except RedisError as exc:
            raise _failure("lock", self.lock_name(key), exc) from exc
        if not acquired:
            raise self._timed_out(key)
        held = _Held(lock.local.token)
        with self._mutex:
            self._held[key] = held
        keeper = None
        interval = self._extend_every()
        if interval is not None:
            keeper = threading.Thread(
                target=self._keep_extending,
                args=(key, lock, held, interval),
                daemon=True,
                name="tiktok-oauth-redis-lock",
            )
            keeper.start()
        try:
            yield _HeldRedisLock(self, key, lock, held)
        finally:
            held.stop.set()
            if keeper is not None:
                keeper.join()
            with self._mutex:
                if self._held.get(key) is held:
                    del self._held[key]
            self._release(key, lock, held)

    def _keep_extending(self, key: str, lock: Any, held: _Held, interval: float) -> None:
        while not held.stop.wait(interval):
            try:
                lock.reacquire()
            except LockError:  # no longer ours (unless released meanwhile)
                if not held.stop.is_set():
                    self._note_lost(key, held)
                return
            except RedisError:  # a hiccup: the next try, or the write's own check, decides
                continue

    def _release(self, key: str, lock: Any, held: _Held) -> None:
        try:
            lock.release()
        except LockError:
            self._note_lost(key, held)
        except RedisError as exc:
            _warn_release_failed(self.lock_name(key), exc)


class AsyncRedisTokenStore(_RedisStoreBase):
    """`RedisTokenStore` for a `redis.asyncio.Redis` client: the same methods as coroutines.

    `keys()` and `expiring(before)` are async iterators (`async for`). `lock(key)` is an async
    context manager around redis.asyncio's `Lock`, which waits with `asyncio.sleep`, never blocking
    the event loop; an asyncio task extends it every `lock_timeout / 3` seconds while it is held,
    and writes under a lost lock are refused, as in `RedisTokenStore`; the held lock's `check()` is a
    coroutine.
    """

    client: redis.asyncio.Redis

    async def get(self, key: str) -> TikTokToken | None:
        """Return the token stored under `key`, or None."""
        name = self.key_name(key)
        try:
            raw = await self.client.get(name)
        except RedisError as exc:
            raise _failure("GET", name, exc) from exc
        return self._decode(raw, name)

    async def set(self, key: str, token: TikTokToken) -> None:
        """Store `token` under `key` and index its expiry, in one atomic step (refused if our lock was lost)."""
        keys, args = self._set_call(key, token)
        try:
            written = await self._script(SET_SCRIPT)(keys=keys, args=args)
        except RedisError as exc:
            raise _failure("SET", keys[0], exc) from exc
        if not written:
            raise self._refused(key)

    async def delete(self, key: str) -> None:
        """Remove the token stored under `key` and its index entry, if any (refused if our lock was lost)."""
        keys, args = self._delete_call(key)
        try:
            deleted = await self._script(DELETE_SCRIPT)(keys=keys, args=args)
        except RedisError as exc:
            raise _failure("DEL", keys[0], exc) from exc
        if not deleted:
            raise self._refused(key)

    async def keys(self) -> AsyncIterator[str]:
        """The stored keys, from `SCAN` over `prefix*` (each listed once)."""
        seen: set[str] = set()
        try:
            async for name in self.client.scan_iter(match=self._layout.scan_pattern, count=PAGE):
                key = self._layout.key_of(name)
                if key is not None and key not in seen:
                    seen.add(key)
                    yield key
        except RedisError as exc:
            raise _failure("SCAN", self._layout.scan_pattern, exc) from exc

    async def expiring(self, before: float, *, refresh: bool = False) -> AsyncIterator[str]:
        """The keys whose access token expires strictly before `before`, from the expiry index. With
        `refresh`, those whose refresh token does (each token read: there is no index of those)."""
        if refresh:
            async for key in self.keys():
                token = await self.get(key)
                if token is not None and expires_before(token, before, refresh=True):
                    yield key
            return
        pager = ExpiryPager(before)
        while (query := pager.query()) is not None:
            low, high, count = query
            try:
                rows: Any = await self.client.zrangebyscore(
                    self.index_name, low, high, start=0, num=count, withscores=True
                )
            except RedisError as exc:
                raise _failure("ZRANGEBYSCORE", self.index_name, exc) from exc
            for key in pager.feed(rows):
                yield key

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[AsyncHeldLock]:
        """Hold the Redis lock for `key`, waiting without blocking the event loop, extended while held."""
        lock = self._new_lock(key)
        try:
            acquired = await lock.acquire()
        except RedisError as exc:
            raise _failure("lock", self.lock_name(key), exc) from exc
        if not acquired:
            raise self._timed_out(key)
        held = _Held(lock.local.token)
        self._held[key] = held
        interval = self._extend_every()
        keeper = (
            None if interval is None else asyncio.create_task(self._keep_extending(key, lock, held, interval))
        )
        try:
            yield _AsyncHeldRedisLock(self, key, lock, held)
        finally:
            # Not awaited: awaiting it here could swallow a cancellation of this very task.
            held.stop.set()
            if keeper is not None:
                keeper.cancel()
            if self._held.get(key) is held:
                del self._held[key]
            await self._release(key, lock, held)

    async def _keep_extending(self, key: str, lock: Any, held: _Held, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await lock.reacquire()
            except LockError:
                if not held.stop.is_set():
                    self._note_lost(key, held)
                return
            except RedisError:
                continue

    async def _release(self, key: str, lock: Any, held: _Held) -> None:
        try:
            await lock.release()
        except LockError:
            self._note_lost(key, held)
        except RedisError as exc:
            _warn_release_failed(self.lock_name(key), exc)
