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
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple

from tiktok_oauth import _clock
from tiktok_oauth.auth import StoreSection, TokenSource
from tiktok_oauth.client import AsyncTikTokOAuth2Client, TikTokOAuth2Client
from tiktok_oauth.errors import (
    NothingStoredError,
    RateLimitedError,
    ReauthorizationRequiredError,
    TokenStoreError,
)
from tiktok_oauth.events import OnEvent, TokenEvent, emit
from tiktok_oauth.token import TikTokToken

__all__ = ["RefreshReport", "arefresh_due", "refresh_due"]

logger = logging.getLogger("tiktok_oauth")

KeyOutcome = Literal["refreshed", "fresh", "reauthorization_required", "failed"]
Progress = Callable[[str, KeyOutcome], object]
#: What became of one key: its outcome (None: skipped, the key holds nothing) and the error behind it.
KeyResult = tuple[KeyOutcome | None, Exception | None]

#: Times one key is tried again after a 429 within a run (each after the shared back-off).
MAX_RATE_LIMITED: Final = 8
#: The back-off after a 429 that names no `Retry-After`.
DEFAULT_BACKOFF: Final = 1.0
#: Seconds between attempts to write a refreshed token the store refused (a database down for a moment):
#: TikTok has rotated the refresh token, so the new token is all there is. About 30 s in all.
WRITE_RETRIES: Final = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
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


class _Sleep(NamedTuple):
    """Wait this long before the next step (the shared back-off, or a write retry's delay)."""

    seconds: float


#: Read the stored token without the lock; send back the token, None, or the exception the read raised.
_READ: Final = "read"
#: `TokenSource.renew` (under the lock); send back its outcome, or the exception it raised.
_RENEW: Final = "renew"

_Step = _Sleep | Literal["read", "renew"]
_Answer = TikTokToken | str | Exception | None


class _Key:
    """The decision for one key, shared by both pools: try, classify, maybe retry after the back-off.

    `steps()` is the whole per-key conversation without I/O; `_visit` and `_avisit` only perform its steps.
    """

    def __init__(self, source: TokenSource, backoff: _Backoff) -> None:
        self.source = source
        self.backoff = backoff
        self.rate_limited = 0
        self.write_retries = 0

    def pause(self) -> float:
        """Seconds to wait before the next attempt: the shared back-off, or this key's write retry."""
        own = WRITE_RETRIES[self.write_retries - 1] if self.write_retries else 0.0
        return max(self.backoff.remaining(), own)

    def glance(self, stored: TikTokToken | None) -> tuple[bool, KeyOutcome | None]:
        """(done, outcome) from a read without the lock: a key not due is fresh without taking a lock."""
        if stored is None:
            return True, None  # the key holds nothing (deleted meanwhile): skipped
        if stored.needs_login:
            return True, "reauthorization_required"  # marked: no request until a new login replaces it
        if not stored.is_expired(self.source.leeway):
            return True, "fresh"
        return False, None  # due: renew under the lock, which reads it again

    def steps(self) -> Generator[_Step, _Answer, KeyResult]:
        """Read, glance, then renew (after each pause) until the outcome is final; return it."""
        stored = yield _READ
        if isinstance(stored, Exception):
            return "failed", stored  # an unreadable token is that key's failure
        try:
            done, outcome = self.glance(stored)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - as unreadable as a read that failed
            return "failed", exc
        if done:
            return outcome, None
        while True:
            yield _Sleep(self.pause())  # even 0: the async pool lets other workers run
            renewed = yield _RENEW
            if isinstance(renewed, Exception):
                outcome, error, retry = self.outcome(renewed, None)
            else:  # the outcome `TokenSource.renew` returned
                outcome, error, retry = self.outcome(None, renewed)
            if not retry:
                return outcome, error

    def outcome(
        self, error: Exception | None, renewed: str | None
    ) -> tuple[KeyOutcome | None, Exception | None, bool]:
        """(outcome, error, retry): None as outcome means skipped (the key was deleted meanwhile)."""
        if error is None:
            return renewed, None, False  # type: ignore[return-value]
        if self.source.unsaved is not None:  # refreshed, but the store refused the new token
            if self.write_retries < len(WRITE_RETRIES):
                self.write_retries += 1
                emit(self.source.on_event, [TokenEvent.of("write_retried", self.source.key, error=error)])
                logger.warning(
                    "key %r: the refreshed token could not be written (%s); retrying", self.source.key, error
                )
                return None, None, True
            failure = TokenStoreError(
                f"key {self.source.key!r} was refreshed but its new token could not be written "
                f"after {len(WRITE_RETRIES)} retries: {error}"
            )
            return "failed", failure, False
        if isinstance(error, RateLimitedError) and self.rate_limited < MAX_RATE_LIMITED:
            self.rate_limited += 1
            self.backoff.hit(error)
            return None, None, True
        if isinstance(error, NothingStoredError):
            return None, None, False  # the key holds nothing (deleted meanwhile): skipped
        if isinstance(error, ReauthorizationRequiredError):
            return "reauthorization_required", error, False
        return "failed", error, False


class _Run:
    """One keeper run's shared state: the sources' settings, the back-off, the report and the progress."""

    def __init__(
        self, client: Any, store: Any, within: float, progress: Progress | None, on_event: OnEvent | None
    ) -> None:
        self.client, self.store, self.within, self.progress = client, store, within, progress
        self.on_event = on_event
        self.stop: threading.Event | None = None
        self.is_async_store = inspect.iscoroutinefunction(getattr(store, "get", None))
        self.backoff = _Backoff()
        self.report = RefreshReport()
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def key(self, key: str) -> _Key:
        source = TokenSource(
            self.client,
            self.store,
            key,
            leeway=self.within,
            recheck=0.0,
            client_credentials=False,
            is_async_store=self.is_async_store,
            on_event=self.on_event,
        )
        return _Key(source, self.backoff)

    def record(self, key: str, outcome: KeyOutcome | None, error: Exception | None) -> None:
        with self._lock:
            self.report._add(key, outcome, error)  # noqa: SLF001
        if outcome is not None and self.progress is not None:
            self.progress(key, outcome)

    def stopping(self) -> bool:
        """Whether `stop` was set: no new key is started (the ones under way finish)."""
        return self.stop is not None and self.stop.is_set()

    def finish(self) -> RefreshReport:
        self.report.elapsed = time.monotonic() - self.started
        return self.report


def _visit(run: _Run, key: str) -> None:
    if run.stopping():
        return
    decision = run.key(key)
    steps = decision.steps()
    answer: _Answer = None
    while True:
        try:
            step = steps.send(answer)
        except StopIteration as done:
            run.record(key, *done.value)
            return
        if isinstance(step, _Sleep):
            time.sleep(step.seconds)
            answer = None
            continue
        try:
            answer = run.store.get(key) if step == _READ else decision.source.renew()[0]
        except Exception as exc:  # noqa: BLE001 - classified by the decision, per key
            answer = exc


async def _avisit(run: _Run, key: str) -> None:
    if run.stopping():
        return
    import asyncio  # noqa: PLC0415

    decision = run.key(key)
    steps = decision.steps()
    answer: _Answer = None
    while True:
        try:
            step = steps.send(answer)
        except StopIteration as done:
            run.record(key, *done.value)
            return
        if isinstance(step, _Sleep):
            await asyncio.sleep(step.seconds)
            answer = None
            continue
        try:
            if step == _READ:
                section = StoreSection(run.store, key, is_async=run.is_async_store, use_lock=False)
                answer = await section.call("get", key)
            else:
                answer = (await decision.source.arenew())[0]
        except Exception as exc:  # noqa: BLE001 - classified by the decision, per key
            answer = exc


def _candidates(store: Any, within: float, keys: Iterable[str] | None) -> Any:
    if keys is not None:
        return keys
    if hasattr(store, "expiring"):
        return store.expiring(_clock.now() + within)
    if hasattr(store, "keys"):
        return store.keys()
    raise TypeError("this store offers neither expiring() nor keys(): pass keys=")


class _Shuffle:
    """A bounded shuffle buffer: keys go in as they stream, and come out in a random order."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._buffer: list[str] = []

    def add(self, key: str) -> str | None:
        """Buffer `key`; once the buffer is full, hand back a random one of those buffered."""
        self._buffer.append(key)
        if len(self._buffer) < _SHUFFLE:
            return None
        return self._buffer.pop(self._rng.randrange(len(self._buffer)))

    def rest(self) -> list[str]:
        """What is left once the keys have run out, shuffled."""
        self._rng.shuffle(self._buffer)
        return self._buffer


def _shuffled(keys: Iterable[str], rng: random.Random) -> Iterator[str]:
    shuffle = _Shuffle(rng)
    for key in keys:
        out = shuffle.add(key)
        if out is not None:
            yield out
    yield from shuffle.rest()


async def _ashuffled(keys: Any, rng: random.Random) -> AsyncIterator[str]:
    if not hasattr(keys, "__aiter__"):
        for key in _shuffled(keys, rng):
            yield key
        return
    shuffle = _Shuffle(rng)
    async for key in keys:
        out = shuffle.add(key)
        if out is not None:
            yield out
    for key in shuffle.rest():
        yield key


def refresh_due(
    client: TikTokOAuth2Client,
    store: Any,
    *,
    within: float = 3600.0,
    keys: Iterable[str] | None = None,
    concurrency: int = 8,
    progress: Progress | None = None,
    on_event: OnEvent | None = None,
    stop: threading.Event | None = None,
) -> RefreshReport:
    """Refresh every token whose access token expires within `within` seconds, `concurrency` at a time.

    Keys come from `keys`, else `store.expiring(now + within)`, else `store.keys()`, streamed. Each is
    refreshed under the store's lock after a read again (a token someone else refreshed counts as fresh).
    A 429 pauses every worker (one shared back-off) and the key is tried again; any other failure is that
    key's outcome, with its stored token untouched (a refused refresh token marks the key `needs_login`).
    Nothing is deleted. `on_event` gets a `TokenEvent` per refresh (outside the locks). Once `stop` (a
    `threading.Event`) is set, no new key is started; the refreshes under way finish and are written.
    """
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait  # noqa: PLC0415

    if not isinstance(client, TikTokOAuth2Client):
        raise TypeError(
            "refresh_due needs a TikTokOAuth2Client; use arefresh_due with an AsyncTikTokOAuth2Client"
        )
    run = _Run(client, store, within, progress, on_event)
    run.stop = stop
    if run.is_async_store:
        raise TypeError("refresh_due needs a sync store; use arefresh_due with an async store")
    candidates = _shuffled(_candidates(store, within, keys), random.Random())  # noqa: S311 - an order, not a secret
    pending: set[Future[None]] = set()
    with ThreadPoolExecutor(
        max_workers=max(1, concurrency), thread_name_prefix="tiktok-oauth keeper"
    ) as pool:
        for key in candidates:
            if run.stopping():
                break
            if len(pending) >= 2 * concurrency:  # a bounded submit: keys stay streamed
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()  # a progress callback's exception stops the run
            pending.add(pool.submit(_visit, run, key))
        for future in pending:
            future.result()
    return run.finish()


async def arefresh_due(
    client: AsyncTikTokOAuth2Client,
    store: Any,
    *,
    within: float = 3600.0,
    keys: Iterable[str] | None = None,
    concurrency: int = 8,
    progress: Progress | None = None,
    on_event: OnEvent | None = None,
    stop: threading.Event | None = None,
) -> RefreshReport:
    """`refresh_due` for an `AsyncTikTokOAuth2Client`: `concurrency` worker tasks on a bounded queue."""
    import asyncio  # noqa: PLC0415

    if not isinstance(client, AsyncTikTokOAuth2Client):
        raise TypeError(
            "arefresh_due needs an AsyncTikTokOAuth2Client; use refresh_due with a TikTokOAuth2Client"
        )
    run = _Run(client, store, within, progress, on_event)
    run.stop = stop
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=2 * max(1, concurrency))

    async def worker() -> None:
        while (key := await queue.get()) is not None:
            await _avisit(run, key)

    candidates = _ashuffled(_candidates(store, within, keys), random.Random())  # noqa: S311 - an order, not a secret
    try:
        async with asyncio.TaskGroup() as group:
            workers = [group.create_task(worker()) for _ in range(max(1, concurrency))]
            async for key in candidates:
                if run.stopping():
                    break
                await queue.put(key)
            for _ in workers:
                await queue.put(None)
    except ExceptionGroup as failed:  # a progress callback's (or the key listing's) exception stops the run
        raise failed.exceptions[0] from None
    return run.finish()
