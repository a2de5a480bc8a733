"""`refresh_due` / `arefresh_due`: keep many stored tokens fresh, safely from as many machines as you like.

Each key goes through the same `TokenSource.renew` as `TikTokAuth` (the in-process lock, the store's lock,
the read again, the shielded refresh and write), so a keeper and live traffic, or two keepers, never refresh
one token twice: whoever comes second finds it fresh. Keepers visit keys in a randomised order (a bounded
shuffle), so several keepers on one store rarely want the same key at the same moment. Only the pool
differs between the two: threads with a bounded submit for `refresh_due`, worker tasks on a bounded queue
for `arefresh_due`.
"""

from __future__ import annotations

import inspect
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from tiktok_oauth import _clock
from tiktok_oauth.auth._source import TokenSource
from tiktok_oauth.client import AsyncTikTokOAuth2Client, TikTokOAuth2Client
from tiktok_oauth.errors import RateLimitedError, ReauthorizationRequiredError

__all__ = ["RefreshReport", "arefresh_due", "refresh_due"]

KeyOutcome = Literal["refreshed", "fresh", "reauthorization_required", "failed"]
Progress = Callable[[str, KeyOutcome], object]

#: Times one key is tried again after a 429 within a run (each after the shared back-off).
MAX_RATE_LIMITED: Final = 8
#: The back-off after a 429 that names no `Retry-After`.
DEFAULT_BACKOFF: Final = 1.0
_SHUFFLE: Final = 1024


@dataclass
class RefreshReport:
    """What one keeper run did, key by key (no token in it)."""

    refreshed: list[str] = field(default_factory=list)
    fresh: int = 0
    reauthorization_required: list[str] = field(default_factory=list)
    failed: dict[str, Exception] = field(default_factory=dict)
    elapsed: float = 0.0

    def __str__(self) -> str:
        return (
            f"{len(self.refreshed)} refreshed, {self.fresh} fresh, "
            f"{len(self.reauthorization_required)} need a new login, {len(self.failed)} failed "
            f"in {self.elapsed:.1f} s"
        )

    def _add(self, key: str, outcome: KeyOutcome | None, error: Exception | None) -> None:
        if outcome == "refreshed":
            self.refreshed.append(key)
        elif outcome == "fresh":
            self.fresh += 1
        elif outcome == "reauthorization_required":
            self.reauthorization_required.append(key)
        elif outcome == "failed":
            assert error is not None
            self.failed[key] = error


class _Backoff:
    """One "not before" moment shared by every worker: a 429 slows the whole run down."""

    def __init__(self) -> None:
        self.not_before = 0.0
        self._lock = threading.Lock()

    def hit(self, error: RateLimitedError) -> None:
        with self._lock:
            self.not_before = max(self.not_before, time.monotonic() + (error.retry_after or DEFAULT_BACKOFF))

    def remaining(self) -> float:
        return max(0.0, self.not_before - time.monotonic())


class _Key:
    """The decision for one key, shared by both pools: try, classify, maybe retry after the back-off."""

    def __init__(self, source: TokenSource, backoff: _Backoff) -> None:
        self.source = source
        self.backoff = backoff
        self.rate_limited = 0

    def outcome(
        self, error: Exception | None, renewed: str | None
    ) -> tuple[KeyOutcome | None, Exception | None, bool]:
        """(outcome, error, retry): None as outcome means skipped (the key was deleted meanwhile)."""
        if error is None:
            return renewed, None, False  # type: ignore[return-value]
        if isinstance(error, RateLimitedError) and self.rate_limited < MAX_RATE_LIMITED:
            self.rate_limited += 1
            self.backoff.hit(error)
            return None, None, True
        if isinstance(error, ReauthorizationRequiredError):
            if self.source.current[0] is None and "no token is stored" in str(error):
                return None, None, False  # deleted meanwhile: skipped
            return "reauthorization_required", error, False
        return "failed", error, False


def _sources(client: Any, store: Any, within: float) -> Callable[[str], TokenSource]:
    is_async_store = inspect.iscoroutinefunction(getattr(store, "get", None))

    def make(key: str) -> TokenSource:
        return TokenSource(
            client,
            store,
            key,
            leeway=within,
            recheck=0.0,
            client_credentials=False,
            is_async_store=is_async_store,
        )

    return make


def _candidates(store: Any, within: float, keys: Iterable[str] | None) -> Any:
    if keys is not None:
        return keys
    if hasattr(store, "expiring"):
        return store.expiring(_clock.now() + within)
    if hasattr(store, "keys"):
        return store.keys()
    raise TypeError("this store offers neither expiring() nor keys(): pass keys=")


def _shuffled(keys: Iterable[str], rng: random.Random) -> Iterator[str]:
    buffer: list[str] = []
    for key in keys:
        buffer.append(key)
        if len(buffer) >= _SHUFFLE:
            yield buffer.pop(rng.randrange(len(buffer)))
    rng.shuffle(buffer)
    yield from buffer


async def _ashuffled(keys: Any, rng: random.Random) -> AsyncIterator[str]:
    if not hasattr(keys, "__aiter__"):
        for key in _shuffled(keys, rng):
            yield key
        return
    buffer: list[str] = []
    async for key in keys:
        buffer.append(key)
        if len(buffer) >= _SHUFFLE:
            yield buffer.pop(rng.randrange(len(buffer)))
    rng.shuffle(buffer)
    for key in buffer:
        yield key


def refresh_due(
    client: TikTokOAuth2Client,
    store: Any,
    *,
    within: float = 3600.0,
    keys: Iterable[str] | None = None,
    concurrency: int = 8,
    progress: Progress | None = None,
) -> RefreshReport:
    """Refresh every token whose access token expires within `within` seconds, `concurrency` at a time.

    Keys come from `keys`, else `store.expiring(now + within)`, else `store.keys()`, streamed. Each is
    refreshed under the store's lock after a read again (a token someone else refreshed counts as fresh).
    A 429 pauses every worker (one shared back-off) and the key is tried again; any other failure is that
    key's outcome, with its stored token untouched. Nothing is deleted.
    """
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait  # noqa: PLC0415

    if not isinstance(client, TikTokOAuth2Client):
        raise TypeError(
            "refresh_due needs a TikTokOAuth2Client; use arefresh_due with an AsyncTikTokOAuth2Client"
        )
    started = time.monotonic()
    report, backoff, make = RefreshReport(), _Backoff(), _sources(client, store, within)
    lock = threading.Lock()

    def run(key: str) -> None:
        decision = _Key(make(key), backoff)
        while True:
            time.sleep(backoff.remaining())
            error: Exception | None = None
            renewed: str | None = None
            try:
                renewed = decision.source.renew()[0]
            except Exception as exc:  # noqa: BLE001 - classified below, per key
                error = exc
            outcome, error, retry = decision.outcome(error, renewed)
            if not retry:
                break
        with lock:
            report._add(key, outcome, error)  # noqa: SLF001
        if outcome is not None and progress is not None:
            progress(key, outcome)

    pending: set[Future[None]] = set()
    with ThreadPoolExecutor(
        max_workers=max(1, concurrency), thread_name_prefix="tiktok-oauth keeper"
    ) as pool:
        for key in _shuffled(_candidates(store, within, keys), random.Random()):  # noqa: S311 - an order, not a secret
            if len(pending) >= 2 * concurrency:
                _, pending = wait(pending, return_when=FIRST_COMPLETED)
            pending.add(pool.submit(run, key))
        for future in pending:
            future.result()
    report.elapsed = time.monotonic() - started
    return report


async def arefresh_due(
    client: AsyncTikTokOAuth2Client,
    store: Any,
    *,
    within: float = 3600.0,
    keys: Iterable[str] | None = None,
    concurrency: int = 8,
    progress: Progress | None = None,
) -> RefreshReport:
    """`refresh_due` for an `AsyncTikTokOAuth2Client`: `concurrency` worker tasks on a bounded queue."""
    import asyncio  # noqa: PLC0415

    if not isinstance(client, AsyncTikTokOAuth2Client):
        raise TypeError(
            "arefresh_due needs an AsyncTikTokOAuth2Client; use refresh_due with a TikTokOAuth2Client"
        )
    started = time.monotonic()
    report, backoff, make = RefreshReport(), _Backoff(), _sources(client, store, within)
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=2 * max(1, concurrency))

    async def worker() -> None:
        while (key := await queue.get()) is not None:
            decision = _Key(make(key), backoff)
            while True:
                await asyncio.sleep(backoff.remaining())
                error: Exception | None = None
                renewed: str | None = None
                try:
                    renewed = (await decision.source.arenew())[0]
                except Exception as exc:  # noqa: BLE001 - classified below, per key
                    error = exc
                outcome, error, retry = decision.outcome(error, renewed)
                if not retry:
                    break
            report._add(key, outcome, error)  # noqa: SLF001
            if outcome is not None and progress is not None:
                progress(key, outcome)

    async with asyncio.TaskGroup() as group:
        workers = [group.create_task(worker()) for _ in range(max(1, concurrency))]
        async for key in _ashuffled(_candidates(store, within, keys), random.Random()):  # noqa: S311 - an order, not a secret
            await queue.put(key)
        for _ in workers:
            await queue.put(None)
    report.elapsed = time.monotonic() - started
    return report
