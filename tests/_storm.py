"""The cancellation storm (issue 8): many async requests for a few keys, each cancelled at a random moment.

Shared by `tests/test_auth_hardening.py` (a few rounds) and `benchmarks/cancellation_storm.py` (the full
20 rounds of 200 requests). Each request gets its own store object from `make_store` (as a web app that
builds one per request does) and its own `TikTokAuth`; the token endpoint answers after `token_delay`, so
many cancellations land while a refresh is in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tiktok_oauth import AsyncTikTokOAuth2Client, TikTokAuth, TikTokToken
from tiktok_oauth.auth import _source
from tiktok_oauth.testing import FakeTikTok


class DocsSQLiteStore:
    """The sqlite store sample of docs/stores.md, as a user would write it (its lock is a row)."""

    def __init__(self, path: str) -> None:
        self.path = path
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS tokens (key TEXT PRIMARY KEY, token TEXT NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS locks (key TEXT PRIMARY KEY)")

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    def get(self, key: str) -> TikTokToken | None:
        with self._db() as db:
            row = db.execute("SELECT token FROM tokens WHERE key = ?", (key,)).fetchone()
        return None if row is None else TikTokToken.from_json(row[0])

    def set(self, key: str, token: TikTokToken) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO tokens VALUES (?, ?)", (key, token.to_json()))

    def delete(self, key: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM tokens WHERE key = ?", (key,))

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        while True:
            with self._db() as db, contextlib.suppress(sqlite3.IntegrityError):
                db.execute("INSERT INTO locks VALUES (?)", (key,))
                break
            time.sleep(0.05)
        try:
            yield
        finally:
            with self._db() as db:
                db.execute("DELETE FROM locks WHERE key = ?", (key,))

    def held_locks(self) -> int:
        with self._db() as db:
            return int(db.execute("SELECT COUNT(*) FROM locks").fetchone()[0])


@dataclass
class StormResult:
    rounds: int = 0
    requests: int = 0
    ok: int = 0
    cancelled: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    refreshes: int = 0
    stale_uses: int = 0
    deadlocks: int = 0
    seconds: float = 0.0


async def storm(  # noqa: C901 - one scenario, read top to bottom
    fake: FakeTikTok,
    base_url: str,
    make_store: Callable[[], Any],
    *,
    keys: int = 8,
    requests: int = 200,
    rounds: int = 20,
    seed: int = 8,
    deadlock_after: float = 30.0,
) -> StormResult:
    """Run the storm; afterwards every key must still be refreshable (checked here)."""
    rng = random.Random(seed)
    result = StormResult()
    names = [f"user-{i}" for i in range(keys)]
    started = time.monotonic()
    async with AsyncTikTokOAuth2Client(
        fake.client_key, fake.client_secret, **fake.endpoints(base_url)
    ) as client:
        seed_store = make_store()
        for name in names:
            seed_store.set(name, TikTokToken(fake.issue_token(open_id=name)))
        url = fake.user_info_url(base_url)
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(rounds):
                for name in names:  # every token is due: each round starts a refresh per key
                    token = seed_store.get(name)
                    assert token is not None
                    token["expires_at"] = int(time.time())
                    seed_store.set(name, token)

                async def one(i: int) -> str:
                    auth = TikTokAuth(client, make_store(), names[i % keys])
                    response = await asyncio.wait_for(
                        http.get(url, params={"fields": "open_id"}, auth=auth), rng.uniform(0, 1)
                    )
                    return "ok" if response.status_code == 200 else f"HTTP {response.status_code}"

                try:
                    outcomes = await asyncio.wait_for(
                        asyncio.gather(*(one(i) for i in range(requests)), return_exceptions=True),
                        deadlock_after,
                    )
                except TimeoutError:
                    result.deadlocks += 1
                    break
                for outcome in outcomes:
                    if outcome == "ok":
                        result.ok += 1
                    elif isinstance(outcome, TimeoutError | asyncio.CancelledError):
                        result.cancelled += 1
                    else:
                        name = outcome if isinstance(outcome, str) else type(outcome).__name__
                        result.errors[name] = result.errors.get(name, 0) + 1
                result.rounds += 1
                result.requests += requests
                while _source._finishing:  # noqa: ASYNC110 - a set the library fills; refreshes whose callers were cancelled complete in the background
                    await asyncio.sleep(0.05)
            # Every key is still refreshable: its stored refresh token is the live one.
            for name in names:
                token = seed_store.get(name)
                assert token is not None
                seed_store.set(name, await client.refresh_token(token))
    result.refreshes = fake.grant_count("refresh_token")
    result.stale_uses = fake.stale_refresh_token_uses
    result.seconds = time.monotonic() - started
    return result
