"""Waiting for a thread or file lock from asyncio code without blocking the event loop."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Final

__all__ = ["ASYNC_NEVER_LOST", "NEVER_LOST", "AsyncNeverLost", "NeverLost", "poll_lock"]


class NeverLost:
    """The held lock of a store whose lock cannot be lost while its holder lives (memory, file)."""

    __slots__ = ()

    def check(self) -> None:
        """Nothing to check: this lock lasts as long as its holder."""


#: What the `lock(key)` of a store whose lock cannot be lost while held gives (`HeldLock`).
NEVER_LOST: Final = NeverLost()


class AsyncNeverLost:
    """`NeverLost` for an async store (`AsyncHeldLock`: its `check()` is a coroutine)."""

    __slots__ = ()

    async def check(self) -> None:
        """Nothing to check: this lock lasts as long as its holder."""


#: What the async `lock(key)` of a store whose lock cannot be lost while held gives (`AsyncHeldLock`).
ASYNC_NEVER_LOST: Final = AsyncNeverLost()


@contextlib.asynccontextmanager
async def poll_lock(
    try_acquire: Callable[[], bool],
    release: Callable[[], None],
    *,
    poll_interval: float,
    give_up_after: float | None = None,
    on_timeout: Callable[[], BaseException] | None = None,
) -> AsyncIterator[NeverLost]:
    """Hold a lock taken by non-blocking attempts, sleeping `poll_interval` on the loop between them.

    This is filelock's `BaseAsyncFileLock.acquire` pattern: the loop keeps running other tasks while
    another thread or process holds the lock. After `give_up_after` seconds (None: wait forever) the
    exception built by `on_timeout` is raised.
    """
    import asyncio  # noqa: PLC0415 - not at import: asyncio costs about 13 ms, and only async callers need it

    deadline = None if give_up_after is None else time.monotonic() + give_up_after
    while not try_acquire():
        if deadline is not None and time.monotonic() >= deadline:
            raise on_timeout() if on_timeout is not None else TimeoutError
        await asyncio.sleep(poll_interval)
    # No await between acquiring and the try: a cancellation cannot leak the lock.
    try:
        yield NEVER_LOST
    finally:
        release()
