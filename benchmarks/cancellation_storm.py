"""The cancellation storm of issue 8, in full: 200 async requests for 8 keys per round, 20 rounds.

The served fake's token endpoint answers after 0.5 s; each request is cancelled at a random moment in
0-1 s (`asyncio.wait_for`). Run for a shared `MemoryTokenStore`, and with one store object per request for
a sync `FileTokenStore`, a sync `RedisTokenStore` (a real redis-server) and the docs' sqlite store, all under
`httpx.AsyncClient`. Prints one row per store: stale refresh-token uses, deadlocks, leaked locks, refreshes.

    python benchmarks/cancellation_storm.py [--rounds 20] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests._redis import RedisServer, require_redis_server
from tests._storm import DocsSQLiteStore, storm
from tiktok_oauth import MemoryTokenStore
from tiktok_oauth.stores import FileTokenStore
from tiktok_oauth.stores.redis import RedisTokenStore
from tiktok_oauth.testing import FakeTikTok


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    print(
        "| store | requests | completed | cancelled | errors | refreshes | stale uses | deadlocks | leaked locks | s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp, RedisServer(require_redis_server()) as server:
        redis = server.client()
        shared = MemoryTokenStore()
        sqlite_path = str(Path(tmp) / "tokens.db")
        seed_sqlite = DocsSQLiteStore(sqlite_path)
        kinds = {
            "MemoryTokenStore (shared)": (lambda: shared, lambda: 0),
            "FileTokenStore (one per request)": (lambda: FileTokenStore(Path(tmp) / "files"), lambda: 0),
            "RedisTokenStore, sync (one per request)": (
                lambda: RedisTokenStore(redis),
                lambda: len(list(redis.scan_iter(match=RedisTokenStore(redis).lock_name("*")))),
            ),
            "docs' sqlite store (one per request)": (
                lambda: DocsSQLiteStore(sqlite_path),
                seed_sqlite.held_locks,
            ),
        }
        for name, (make, leaked) in kinds.items():
            fake = FakeTikTok("storm-key", "storm-secret")
            fake.token_delay = 0.5
            with fake.serve() as base:
                result = asyncio.run(
                    storm(fake, base, make, keys=8, requests=args.requests, rounds=args.rounds)
                )
            errors = sum(result.errors.values())
            print(
                f"| {name} | {result.requests} | {result.ok} | {result.cancelled} | {errors} | {result.refreshes} "
                f"| {result.stale_uses} | {result.deadlocks} | {leaked()} | {result.seconds:.1f} |"
            )
        redis.close()


if __name__ == "__main__":
    main()
