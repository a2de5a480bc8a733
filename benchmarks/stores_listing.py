"""`keys()` and `expiring(before)` over many stored tokens, beside the raw call doing the same.

    python benchmarks/stores_listing.py [N]        # N tokens (default 100,000)

Redis (sync and async): a real redis-server on a loopback port (from `tests/_redis.py`), compared with
redis-py's own `scan_iter(match=prefix*)` and `zrangebyscore(index, -inf, (before)`. The file store:
N token files in a temporary directory, compared with `os.scandir` (keys) and reading and parsing every
file (expiring). The memory store, compared with listing a dict's keys and filtering its values.
`expiring` is asked for the 10% of tokens that expire soonest. Each figure is the best
of 3 runs; the tokens are written once, outside the timed region.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._timing import machine
from tests._redis import RedisServer
from tiktok_oauth.stores import FileTokenStore, MemoryTokenStore
from tiktok_oauth.stores.file import KEY_FIELD, file_stem
from tiktok_oauth.stores.redis import AsyncRedisTokenStore, RedisTokenStore
from tiktok_oauth.token import TikTokToken

REPEAT = 3
BASE = 2_000_000_000


def token_for(n: int) -> TikTokToken:
    return TikTokToken(
        access_token=f"act.{n:08d}.{'x' * 60}",
        refresh_token=f"rft.{n:08d}.{'y' * 60}",
        open_id=f"open-{n:08d}",
        scope="user.info.basic,video.list",
        expires_at=BASE + n,
        refresh_expires_at=BASE + 31_536_000 + n,
        token_type="Bearer",
    )


def best(run: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds of the fastest of REPEAT runs, and what the last run returned."""
    times, result = [], None
    for _ in range(REPEAT):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def row(what: str, ours: tuple[float, Any], raw: tuple[float, Any], count: int) -> str:
    assert len(ours[1]) == count, (what, len(ours[1]), count)
    assert len(raw[1]) == count, (what, len(raw[1]), count)
    return f"| {what} | {count:,} | {ours[0] * 1000:,.1f} ms | {raw[0] * 1000:,.1f} ms | {ours[0] / raw[0]:.2f}x |"


def redis_rows(server: RedisServer, n: int) -> list[str]:
    client = server.client(socket_timeout=30)
    client.flushdb()
    store = RedisTokenStore(client)
    pipe = client.pipeline(transaction=False)
    for i in range(n):  # what `set` writes, pipelined so that filling takes seconds, not minutes
        pipe.set(store.key_name(f"open-{i:08d}"), token_for(i).to_json())
        pipe.zadd(store.index_name, {f"open-{i:08d}": BASE + i})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    before, due = BASE + n // 10, n // 10
    rows = [
        row(
            "Redis `keys()`",
            best(lambda: list(store.keys())),
            best(lambda: list(client.scan_iter(match="tiktok-oauth:*", count=1000))),
            n,
        ),
        row(
            "Redis `expiring(before)`",
            best(lambda: list(store.expiring(before))),
            best(lambda: client.zrangebyscore(store.index_name, "-inf", f"({before}")),
            due,
        ),
    ]

    async def timed_async() -> list[str]:
        aclient = server.async_client(socket_timeout=30)
        try:
            astore = AsyncRedisTokenStore(aclient)

            async def abest(make: Callable[[], Any]) -> tuple[float, Any]:
                times, result = [], None
                for _ in range(REPEAT):
                    start = time.perf_counter()
                    result = await make()
                    times.append(time.perf_counter() - start)
                return min(times), result

            async def ours_keys() -> list[str]:
                listing = astore.keys()
                return [k async for k in listing]

            async def raw_keys() -> list[Any]:
                return [k async for k in aclient.scan_iter(match="tiktok-oauth:*", count=1000)]

            async def ours_expiring() -> list[str]:
                return [k async for k in astore.expiring(before)]

            async def raw_expiring() -> Any:
                return await aclient.zrangebyscore(astore.index_name, "-inf", f"({before}")

            return [
                row("Redis async `keys()`", await abest(ours_keys), await abest(raw_keys), n),
                row(
                    "Redis async `expiring(before)`",
                    await abest(ours_expiring),
                    await abest(raw_expiring),
                    due,
                ),
            ]
        finally:
            await aclient.aclose()

    rows += asyncio.run(timed_async())
    client.flushdb()
    client.close()
    return rows


def file_rows(n: int) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="tiktok-oauth-bench-") as directory:
        path = Path(directory)
        store = FileTokenStore(path)
        for i in range(n):  # what `set` writes, without an fsync per file
            key = f"open-{i:08d}" if i % 2 else f"user {i:08d}@example.com"  # half spelled by the name
            stored = {**token_for(i), KEY_FIELD: key}
            (path / f"{file_stem(key)}.json").write_text(
                json.dumps(stored, sort_keys=True, separators=(",", ":"))
            )
        with store.lock("a lock file, never listed"):
            pass
        before, due = BASE + n // 10, n // 10

        def raw_names() -> list[str]:
            with os.scandir(path) as entries:
                return [e.name for e in entries if e.name.endswith(".json")]

        def raw_expiring() -> list[str]:
            found = []
            for name in raw_names():
                token = json.loads((path / name).read_bytes())
                if token["expires_at"] < before:
                    found.append(token[KEY_FIELD])
            return found

        return [
            row(
                "File `keys()` (half the names spell their key)",
                best(lambda: list(store.keys())),
                best(raw_names),
                n,
            ),
            row(
                "File `expiring(before)` (reads every file)",
                best(lambda: list(store.expiring(before))),
                best(raw_expiring),
                due,
            ),
        ]


def memory_rows(n: int) -> list[str]:
    store = MemoryTokenStore()
    for i in range(n):
        store.set(f"open-{i:08d}", token_for(i))
    tokens = {f"open-{i:08d}": token_for(i) for i in range(n)}
    before, due = BASE + n // 10, n // 10
    return [
        row(
            "Memory `keys()` (vs a dict's keys)",
            best(lambda: list(store.keys())),
            best(lambda: list(tokens)),
            n,
        ),
        row(
            "Memory `expiring(before)` (vs filtering a dict)",
            best(lambda: list(store.expiring(before))),
            best(lambda: [key for key, token in tokens.items() if token["expires_at"] < before]),
            due,
        ),
    ]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(
        f"{n:,} tokens; best of {REPEAT}; {machine()['cpu']}, {machine()['cores']} cores, load {machine()['load']}"
    )
    print()
    print("| operation | keys returned | tiktok-oauth | raw call | ratio |")
    print("|---|---|---|---|---|")
    with RedisServer() as server:
        for line in redis_rows(server, n):
            print(line, flush=True)
    for line in [*file_rows(n), *memory_rows(n)]:
        print(line, flush=True)


if __name__ == "__main__":
    main()
