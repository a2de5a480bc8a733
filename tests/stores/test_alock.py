"""`lock`/`alock(key)` of the sync stores (memory, file): asyncio code waits without blocking the loop,
every wait ends after `lock_timeout`, and a lock may be left on another thread than it was entered on."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path

import pytest

from tiktok_oauth.errors import TokenStoreError
from tiktok_oauth.stores import FileTokenStore, MemoryTokenStore

Store = MemoryTokenStore | FileTokenStore


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryTokenStore(poll_interval=0.005, lock_timeout=0.3)
    return FileTokenStore(tmp_path, poll_interval=0.005, lock_timeout=0.3)


def test_the_wait_limit_is_a_public_constructor_argument(tmp_path: Path) -> None:
    assert MemoryTokenStore().lock_timeout == 30.0
    assert MemoryTokenStore(lock_timeout=2.5).lock_timeout == 2.5
    assert FileTokenStore(tmp_path, lock_timeout=2.5).lock_timeout == 2.5


def test_lock_and_alock_raise_token_store_error_after_lock_timeout(store: Store) -> None:
    async def wait_async() -> None:
        async with store.alock("default"):
            pytest.fail("acquired a lock that another thread holds")

    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.lock("default"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(5)
        with pytest.raises(TokenStoreError, match=r"timed out after 0\.3 s"), store.lock("default"):
            pytest.fail("acquired a lock that another thread holds")
        with pytest.raises(TokenStoreError, match=r"timed out after 0\.3 s"):
            asyncio.run(wait_async())
    finally:
        release.set()
        thread.join()
    with store.lock("default"):  # free again
        pass


def test_a_lock_entered_on_one_thread_can_be_left_on_another(store: Store) -> None:
    # What `asyncio.to_thread` does to a sync store's lock under httpx.AsyncClient.
    manager = store.lock("default")
    entering = threading.Thread(target=manager.__enter__)
    entering.start()
    entering.join()
    leaving = threading.Thread(target=manager.__exit__, args=(None, None, None))
    leaving.start()
    leaving.join()
    with store.lock("default"):  # released for real
        pass


def test_alock_excludes_another_task_on_the_same_loop(store: Store) -> None:
    events: list[str] = []

    async def holder(name: str) -> None:
        async with store.alock("default"):
            events.append(f"{name} in")
            await asyncio.sleep(0.05)
            events.append(f"{name} out")

    async def main() -> None:
        await asyncio.gather(holder("a"), holder("b"))

    asyncio.run(main())
    assert events in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])


def test_alock_waits_for_a_thread_holding_lock_without_blocking_the_loop(store: Store) -> None:
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.lock("default"):
            held.set()
            release.wait(5)

    async def main() -> tuple[float, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        loop = asyncio.get_running_loop()
        started = loop.time()
        loop.call_later(0.2, release.set)
        async with store.alock("default"):
            waited = loop.time() - started
        ticking.cancel()
        return waited, ticks

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(5)
    waited, ticks = asyncio.run(main())
    thread.join()
    assert waited >= 0.2
    assert ticks >= 10


def test_alock_is_released_when_the_body_raises(store: Store) -> None:
    async def main() -> None:
        with contextlib.suppress(RuntimeError):
            async with store.alock("default"):
                raise RuntimeError

    asyncio.run(main())
    with store.lock("default"):  # would hang if alock had leaked the lock
        pass


def test_cancelling_a_waiting_alock_does_not_leave_the_lock_held(store: Store) -> None:
    async def main() -> None:
        async with store.alock("default"):
            waiter = asyncio.create_task(store.alock("default").__aenter__())
            await asyncio.sleep(0.02)
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
        async with store.alock("default"):
            pass

    started = time.monotonic()
    asyncio.run(asyncio.wait_for(main(), 5))
    assert time.monotonic() - started < 5
