"""`RedisTokenStore` and `AsyncRedisTokenStore`: tokens in Redis, with a lock that expires (extra `redis`).

Install with `pip install tiktok-oauth[redis]`. Give the client socket timeouts
(`redis.Redis(..., socket_timeout=5, socket_connect_timeout=5)`) so that a Redis that stops answering
raises `TokenStoreError` instead of hanging; every `RedisError` becomes a `TokenStoreError`.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Self

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tiktok_oauth.errors import TokenStoreError
from tiktok_oauth.stores._codec import decode_token, encode_token
from tiktok_oauth.token import TikTokToken

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["AsyncRedisTokenStore", "RedisTokenStore"]


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


class _RedisStoreBase:
    """What the sync and async stores share: names, settings, decoding."""

    def __init__(
        self,
        redis_client: Any,
        prefix: str = "tiktok-oauth:",
        *,
        lock_timeout: float = 30.0,
        lock_blocking_timeout: float = 60.0,
    ) -> None:
        self.client = redis_client
        self.prefix = prefix
        self.lock_timeout = lock_timeout
        self.lock_blocking_timeout = lock_blocking_timeout

    def key_name(self, key: str) -> str:
        """The Redis key that holds the token for `key`: `prefix + key`."""
        return self.prefix + key

    def lock_name(self, key: str) -> str:
        """The Redis key of the lock for `key`: `prefix + "lock:" + key`."""
        return f"{self.prefix}lock:{key}"

    def _decode(self, raw: bytes | str | None, name: str) -> TikTokToken | None:
        return None if raw is None else decode_token(raw, f"Redis key {name!r}")

    def _timed_out(self, key: str) -> TokenStoreError:
        return TokenStoreError(
            f"timed out after {self.lock_blocking_timeout} s waiting for the Redis lock "
            f"{self.lock_name(key)!r}"
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


class RedisTokenStore(_RedisStoreBase):
    """Tokens in Redis through a sync `redis.Redis`; each token is one key holding its JSON.

    Keys are `prefix + key`; a write is a single `SET`, so a value is never half-written. `lock(key)`
    is redis-py's `Lock` on `prefix + "lock:" + key`: it expires after `lock_timeout` seconds, so a
    holder that died cannot wedge everyone, and waiting longer than `lock_blocking_timeout` seconds
    raises `TokenStoreError`. Any `RedisError` becomes `TokenStoreError`.

    Given a `redis.asyncio.Redis` client, `RedisTokenStore(...)` returns an `AsyncRedisTokenStore`
    (type checkers do not know that: construct `AsyncRedisTokenStore` directly in typed code).

    Args:
        redis_client: a `redis.Redis` (set its `socket_timeout`, so a dead server cannot hang you).
        prefix: prepended to every key.
        lock_timeout: seconds after which a lock expires even if its holder never releases it.
        lock_blocking_timeout: seconds `lock` waits before raising `TokenStoreError`.
    """

    def __new__(cls, redis_client: Any = None, *args: Any, **kwargs: Any) -> Self:
        if cls is RedisTokenStore and _is_async_client(redis_client):
            return AsyncRedisTokenStore(redis_client, *args, **kwargs)  # type: ignore[return-value]
        return super().__new__(cls)

    client: redis.Redis

    def get(self, key: str) -> TikTokToken | None:
        """Return the token stored under `key`, or None."""
        name = self.key_name(key)
        try:
            raw = self.client.get(name)
        except RedisError as exc:
            raise _failure("GET", name, exc) from exc
        return self._decode(raw, name)

    def set(self, key: str, token: TikTokToken) -> None:
        """Store `token` under `key` with one `SET`."""
        name = self.key_name(key)
        data = encode_token(token, f"Redis key {name!r}")
        try:
            self.client.set(name, data)
        except RedisError as exc:
            raise _failure("SET", name, exc) from exc

    def delete(self, key: str) -> None:
        """Remove the token stored under `key`, if any."""
        name = self.key_name(key)
        try:
            self.client.delete(name)
        except RedisError as exc:
            raise _failure("DEL", name, exc) from exc

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the Redis lock for `key` (see the class docstring for its timeouts)."""
        name = self.lock_name(key)
        lock = self.client.lock(name, timeout=self.lock_timeout, blocking_timeout=self.lock_blocking_timeout)
        try:
            acquired = lock.acquire()
        except RedisError as exc:
            raise _failure("lock", name, exc) from exc
        if not acquired:
            raise self._timed_out(key)
        try:
            yield
        finally:
            try:
                lock.release()
            except RedisError as exc:
                _warn_release_failed(name, exc)


class AsyncRedisTokenStore(_RedisStoreBase):
    """`RedisTokenStore` for a `redis.asyncio.Redis` client: the same methods as coroutines.

    `lock(key)` is an async context manager around redis.asyncio's `Lock`, which waits with
    `asyncio.sleep`, never blocking the event loop.
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
        """Store `token` under `key` with one `SET`."""
        name = self.key_name(key)
        data = encode_token(token, f"Redis key {name!r}")
        try:
            await self.client.set(name, data)
        except RedisError as exc:
            raise _failure("SET", name, exc) from exc

    async def delete(self, key: str) -> None:
        """Remove the token stored under `key`, if any."""
        name = self.key_name(key)
        try:
            await self.client.delete(name)
        except RedisError as exc:
            raise _failure("DEL", name, exc) from exc

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        """Hold the Redis lock for `key`, waiting without blocking the event loop."""
        name = self.lock_name(key)
        lock = self.client.lock(name, timeout=self.lock_timeout, blocking_timeout=self.lock_blocking_timeout)
        try:
            acquired = await lock.acquire()
        except RedisError as exc:
            raise _failure("lock", name, exc) from exc
        if not acquired:
            raise self._timed_out(key)
        try:
            yield
        finally:
            try:
                await lock.release()
            except RedisError as exc:
                _warn_release_failed(name, exc)
