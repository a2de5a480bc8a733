"""Drive any token store, sync or async, through one synchronous interface for the contract tests.

A store kind is registered in `tests/stores/test_contract.py` as a *backend*: a function that takes the
pytest request (to reach fixtures such as `tmp_path` or `redis_server`) and returns a *factory*. The
factory makes a new store object on that backend each time it is called (every object it makes sees
the same tokens), and registers whatever it opened on the exit stack it is given, which is closed when
the harness is done with that object:

    def sqlite_backend(request):                         # sync: returns SyncFactory
        url = f"sqlite:///{request.getfixturevalue('tmp_path')}/tokens.db"
        def new(stack: contextlib.ExitStack):
            engine = sqlalchemy.create_engine(url)
            stack.callback(engine.dispose)
            return SQLTokenStore(engine)
        return new

    def async_sqlite_backend(request):                   # async: returns AsyncFactory
        url = ...
        async def new(stack: contextlib.AsyncExitStack):  # called inside the running loop
            engine = create_async_engine(url)
            stack.push_async_callback(engine.dispose)
            return AsyncSQLTokenStore(engine)
        return new

Each test starts from an empty store (a fresh directory, a flushed Redis, a new table...): that is the
backend's job. The async harness runs every operation in its own `asyncio.run` with new store objects
(so a store that binds to its loop is exercised across loops, as test suites use it).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any, Protocol, TypeVar

import pytest

from tiktok_oauth.stores import (
    AsyncListingTokenStore,
    AsyncLockingTokenStore,
    AsyncTokenStore,
    ListingTokenStore,
    LockingTokenStore,
    TokenStore,
)
from tiktok_oauth.token import TikTokToken

__all__ = [
    "HOLD",
    "AsyncBackend",
    "AsyncFactory",
    "AsyncHarness",
    "Harness",
    "SyncBackend",
    "SyncFactory",
    "SyncHarness",
]

T = TypeVar("T")

HOLD = 0.2  # seconds the first holder keeps a lock in the exclusion tests
#: How long the holder of another key waits for the second lock to be taken: generous, for a busy machine.
RACE_DEADLINE = 60.0


def hold_for(first_key: str, second_key: str) -> float:
    """Seconds the first holder keeps its lock unless the second is taken first: HOLD for the same key
    (the second must wait for the release, however late it comes), RACE_DEADLINE for another key (the
    second must be taken while the first is held; if it is not, the events show it)."""
    return HOLD if first_key == second_key else RACE_DEADLINE


SyncFactory = Callable[[contextlib.ExitStack], Any]
AsyncFactory = Callable[[contextlib.AsyncExitStack], Awaitable[Any]]
SyncBackend = Callable[[pytest.FixtureRequest], SyncFactory]
AsyncBackend = Callable[[pytest.FixtureRequest], AsyncFactory]


class Harness(Protocol):
    """A store seen synchronously, plus ways to race two holders of its lock."""

    def get(self, key: str) -> TikTokToken | None: ...
    def set(self, key: str, token: TikTokToken) -> None: ...
    def delete(self, key: str) -> None: ...
    def keys(self) -> list[str]: ...
    def expiring(self, before: float, *, refresh: bool = False) -> list[str]: ...
    def repr(self) -> str: ...
    def check_protocols(self) -> None: ...
    def lock_race(self, first_key: str, second_key: str) -> list[str]: ...
    def listed_while_locked(self, key: str, before: float) -> list[tuple[list[str], list[str]]]: ...


class SyncHarness:
    """A sync store: `factory` makes the store under test (once) and its peers (on demand)."""

    def __init__(self, factory: SyncFactory) -> None:
        self._factory = factory
        self._stack = contextlib.ExitStack()
        self.store = factory(self._stack)

    def close(self) -> None:
        self._stack.close()

    def peer(self) -> Any:
        """Another store object on the same backend (closed with the harness)."""
        return self._factory(self._stack)

    def get(self, key: str) -> TikTokToken | None:
        result: TikTokToken | None = self.store.get(key)
        return result

    def set(self, key: str, token: TikTokToken) -> None:
        self.store.set(key, token)

    def delete(self, key: str) -> None:
        self.store.delete(key)

    def keys(self) -> list[str]:
        return list(self.store.keys())

    def expiring(self, before: float, *, refresh: bool = False) -> list[str]:
        return list(self.store.expiring(before, refresh=True) if refresh else self.store.expiring(before))

    def repr(self) -> str:
        return repr(self.store)

    def check_protocols(self) -> None:
        assert isinstance(self.store, TokenStore)
        assert isinstance(self.store, LockingTokenStore)
        assert isinstance(self.store, ListingTokenStore)
        assert not inspect.iscoroutinefunction(self.store.get)

    def lock_race(self, first_key: str, second_key: str) -> list[str]:
        """A thread holds `first_key` while a peer store takes `second_key` (see `hold_for`)."""
        events: list[str] = []
        held, second_done = threading.Event(), threading.Event()

        def hold() -> None:
            with self.store.lock(first_key):
                events.append("first acquired")
                held.set()
                second_done.wait(hold_for(first_key, second_key))
                events.append("first released")

        thread = threading.Thread(target=hold)
        thread.start()
        assert held.wait(RACE_DEADLINE)
        with self.peer().lock(second_key):
            events.append("second acquired")
            second_done.set()
        thread.join()
        return events

    def listed_while_locked(self, key: str, before: float) -> list[tuple[list[str], list[str]]]:
        """`(keys(), expiring(before))` from the lock holder itself, then from a peer, inside `lock(key)`."""
        with self.store.lock(key):
            return [(list(s.keys()), list(s.expiring(before))) for s in (self.store, self.peer())]


async def _collect(items: AsyncIterable[str]) -> list[str]:
    return [item async for item in items]


class AsyncHarness:
    """An async store: every operation in its own `asyncio.run`, with store objects made inside it."""

    def __init__(self, factory: AsyncFactory) -> None:
        self._factory = factory

    def close(self) -> None:
        pass

    async def _with_stores(self, count: int, use: Callable[..., Awaitable[T]]) -> T:
        async with contextlib.AsyncExitStack() as stack:
            stores = [await self._factory(stack) for _ in range(count)]
            return await use(*stores)

    def run(self, use: Callable[[Any], Awaitable[T]]) -> T:
        """Run `await use(store)` on a new loop with a new store object."""
        return asyncio.run(self._with_stores(1, use))

    def get(self, key: str) -> TikTokToken | None:
        return self.run(lambda store: store.get(key))

    def set(self, key: str, token: TikTokToken) -> None:
        self.run(lambda store: store.set(key, token))

    def delete(self, key: str) -> None:
        self.run(lambda store: store.delete(key))

    def keys(self) -> list[str]:
        return self.run(lambda store: _collect(store.keys()))

    def expiring(self, before: float, *, refresh: bool = False) -> list[str]:
        if refresh:
            return self.run(lambda store: _collect(store.expiring(before, refresh=True)))
        return self.run(lambda store: _collect(store.expiring(before)))

    def repr(self) -> str:
        async def use(store: Any) -> str:
            return repr(store)

        return self.run(use)

    def check_protocols(self) -> None:
        async def use(store: Any) -> None:
            assert isinstance(store, AsyncTokenStore)
            assert isinstance(store, AsyncLockingTokenStore)
            assert isinstance(store, AsyncListingTokenStore)
            assert inspect.iscoroutinefunction(store.get)

        self.run(use)

    def lock_race(self, first_key: str, second_key: str) -> list[str]:
        events: list[str] = []

        async def race(first: Any, second: Any) -> list[str]:
            held, second_done = asyncio.Event(), asyncio.Event()

            async def hold() -> None:
                async with first.lock(first_key):
                    events.append("first acquired")
                    held.set()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(second_done.wait(), hold_for(first_key, second_key))
                    events.append("first released")

            task = asyncio.create_task(hold())
            await held.wait()
            async with second.lock(second_key):
                events.append("second acquired")
                second_done.set()
            await task
            return events

        return asyncio.run(self._with_stores(2, race))

    def listed_while_locked(self, key: str, before: float) -> list[tuple[list[str], list[str]]]:
        async def use(holder: Any, peer: Any) -> list[tuple[list[str], list[str]]]:
            async with holder.lock(key):
                return [
                    (await _collect(s.keys()), await _collect(s.expiring(before))) for s in (holder, peer)
                ]

        return asyncio.run(self._with_stores(2, use))
