"""The keeper at scale on one PostgreSQL: 2,000 due keys, 64 workers, one store made from a URL.

Every key is refreshed exactly once (no stale refresh token ever reaches TikTok), nothing fails, and the
store never opens more connections than its pool allows (`pool_size` + 10 overflow): 64 workers share 20
lock slots, the others waiting their turn. The figures are printed (`pytest -s`) for `docs/benchmarks.md`.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Self

import pytest
import sqlalchemy as sa

from tests.conftest import SECRET
from tests.stores._sql_backends import psycopg_url, unique_table
from tiktok_oauth import TikTokOAuth2Client, TikTokToken, refresh_due
from tiktok_oauth.stores.sql import SQLTokenStore
from tiktok_oauth.testing import FakeTikTok

pytestmark = pytest.mark.slow

KEYS = 2000
CONCURRENCY = 64
POOL_OVERFLOW = 10  # the store's own, beyond pool_size


class ConnectionCounter:
    """Samples, from a connection of its own, how many sessions the store's application has open."""

    def __init__(self, url: str, application: str) -> None:
        self._engine = sa.create_engine(psycopg_url(url), poolclass=sa.pool.NullPool)
        self._application = application
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
        with self._engine.connect() as connection:
            while not self._stop.wait(0.02):
                count = connection.execute(query, {"name": self._application}).scalar() or 0
                connection.rollback()  # a fresh snapshot of pg_stat_activity each time
                self.peak = max(self.peak, count)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._engine.dispose()


def test_the_keeper_refreshes_2000_due_keys_on_one_postgresql_exactly_once(
    request: pytest.FixtureRequest, postgres_url: str, fake: FakeTikTok
) -> None:
    table = unique_table(request, postgres_url)
    application = f"keeper-scale-{table}"
    with SQLTokenStore(f"{postgres_url}?application_name={application}", table=table) as store:
        started = time.monotonic()
        with ThreadPoolExecutor(8) as seeders:  # due within the keeper's hour: expiring in 10 minutes
            tokens = [TikTokToken(fake.issue_token(open_id=f"user-{n}", expires_in=600)) for n in range(KEYS)]
            list(seeders.map(lambda n: store.set(f"user-{n}", tokens[n]), range(KEYS)))
        seeded = time.monotonic() - started
        with (
            fake.serve() as base_url,
            TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(base_url)) as client,
            ConnectionCounter(postgres_url, application) as connections,
        ):
            started = time.monotonic()
            report = refresh_due(client, store, concurrency=CONCURRENCY)
            elapsed = time.monotonic() - started
        pool_size = store.pool_size
        assert pool_size is not None
        print(  # the figures for docs/benchmarks.md
            f"\nkeeper: {KEYS} keys, concurrency {CONCURRENCY}, pool_size {pool_size}: {report} "
            f"({elapsed:.1f} s wall, {KEYS / elapsed:.0f} keys/s; seeding {seeded:.1f} s); "
            f"peak connections {connections.peak}; pool {store.engine.pool.status()}"
        )
    assert report.failed == {}
    assert report.reauthorization_required == []
    assert sorted(report.refreshed) == sorted(f"user-{n}" for n in range(KEYS))
    assert fake.grant_count("refresh_token") == KEYS
    assert fake.stale_refresh_token_uses == 0
    assert 0 < connections.peak <= pool_size + POOL_OVERFLOW
