"""`python -m tests._keeper_worker REDIS_PORT BASE_URL CONCURRENCY LOCK_TIMEOUT`: one keeper process.

For `tests/test_keeper_processes.py`. It opens its own Redis connection and `RedisTokenStore`, prints
`ready`, waits for a line on stdin, then runs `refresh_due(client, store, within=3600)` against the fake
at BASE_URL, printing one JSON line per key (`{"key": ..., "outcome": ...}`) as it goes and a last line
`{"summary": {...}}` (counts, keys, and error class names: never a token).
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from tests._workers import WORKER_SECRET


def main(argv: list[str]) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from tiktok_oauth import TikTokOAuth2Client, refresh_due
    from tiktok_oauth.stores.redis import RedisTokenStore
    from tiktok_oauth.testing import FakeTikTok

    port, base_url, concurrency, lock_timeout = argv
    redis_client = redis.Redis(
        host="127.0.0.1", port=int(port), socket_timeout=5.0, retry=Retry(NoBackoff(), 0)
    )
    store = RedisTokenStore(redis_client, lock_timeout=float(lock_timeout), lock_blocking_timeout=30.0)
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
        redis_client.close()
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
