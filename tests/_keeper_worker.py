"""`python -m tests._keeper_worker STORE_URL BASE_URL CONCURRENCY LOCK_TIMEOUT [TABLE]`: one keeper process.

For `tests/test_keeper_processes.py` and `benchmarks/keeper.py`. STORE_URL is `redis://127.0.0.1:<port>`
(a `RedisTokenStore` whose locks expire LOCK_TIMEOUT seconds after their holder stops extending them; waits
are bounded at 30 s) or `postgresql://...` (an `SQLTokenStore` on TABLE whose lock waits are bounded at
LOCK_TIMEOUT seconds, made from the URL with `pool_size=CONCURRENCY`: a lock slot per worker). The worker opens its own
connections, prints `ready`, waits for a line on stdin, then runs `refresh_due(client, store, within=3600)`
against the fake at BASE_URL, printing one JSON line per key (`{"key": ..., "outcome": ...}`) as it goes and
a last line `{"summary": {...}}` (counts, keys, and error class names: never a token).
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from tests._workers import WORKER_SECRET


def _store(
    url: str, concurrency: int, lock_timeout: float, table: str | None
) -> tuple[Any, Callable[[], None]]:
    """The store for STORE_URL, and how to close its connections."""
    if url.startswith("redis://"):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        from tiktok_oauth.stores.redis import RedisTokenStore

        port = urlsplit(url).port
        assert port is not None
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5.0, retry=Retry(NoBackoff(), 0))
        return RedisTokenStore(client, lock_timeout=lock_timeout, lock_blocking_timeout=30.0), client.close
    from tiktok_oauth.stores.sql import SQLTokenStore

    store = SQLTokenStore(
        url, table=table or "tiktok_oauth_tokens", lock_timeout=lock_timeout, pool_size=concurrency
    )
    return store, store.close


def main(argv: list[str]) -> None:
    from tiktok_oauth import TikTokOAuth2Client, refresh_due
    from tiktok_oauth.testing import FakeTikTok

    url, base_url, concurrency, lock_timeout, *table = argv
    store, close = _store(url, int(concurrency), float(lock_timeout), table[0] if table else None)
    endpoints = FakeTikTok(client_key="test-key", client_secret=WORKER_SECRET).endpoints(base_url)
    lock = threading.Lock()

    def say(line: dict[str, Any]) -> None:
        with lock:
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()

    print("ready", flush=True)
    sys.stdin.readline()
    try:
        with TikTokOAuth2Client("test-key", WORKER_SECRET, timeout=10.0, **endpoints) as client:
            report = refresh_due(
                client,
                store,
                within=3600,
                concurrency=int(concurrency),
                progress=lambda key, outcome: say({"key": key, "outcome": outcome}),
            )
    finally:
        close()
    say(
        {
            "summary": {
                "refreshed": len(report.refreshed),
                "fresh": report.fresh,
                "reauthorization_required": report.reauthorization_required,
                "failed": {key: type(error).__name__ for key, error in report.failed.items()},
                "elapsed": report.elapsed,
            }
        }
    )


if __name__ == "__main__":
    main(sys.argv[1:])
