"""The keeper (`refresh_due`): throughput, division of work, memory, rate limits, and TikTokAuth per request.

    python benchmarks/keeper.py [--quick] [--only throughput|division|memory|rate_limits|per_request ...]

- throughput: N due tokens (10,000; --quick 1,000) in a MemoryTokenStore, refreshed by `refresh_due` at
  concurrency 32 from the fake served on loopback in this process, against a bare loop of httpx posting the
  same refresh forms from 32 threads to a fake of its own. Goal: keeper/bare refreshes per second >= 0.8.
- division: the token endpoint answering in 100 ms (`fake.token_delay`), 2,000 due tokens in one shared
  store, concurrency 8 each: 4 keeper processes against one; once on one Redis (a real redis-server on a
  loopback port), once on one PostgreSQL (`SQLTokenStore`; a real server, initdb + pg_ctl on a loopback
  port, as `tests/_postgres.py` starts it). Goal: <= 0.4x the time, exactly 2,000 refreshes, 0 stale
  refresh-token uses.
- memory: tracemalloc's peak while `refresh_due` runs over 1,000 and 100,000 stored tokens, 1% due, through
  `expiring()` and walking every key (`keys=` a generator). Goal: <= 2x. The store's own memory is not counted
  (tracing starts once it is filled); the fake is served from another process. Medians of 5 runs.
- rate_limits: every 10th token request answered 429 with `Retry-After: 1` (1,000 due tokens, concurrency
  32): every due token refreshed, none failed for a 429; the run's time.
- per_request: a `TikTokAuth` made per request (construct + a request with a fresh stored token) against one
  reused, for the memory, file, SQLite and Redis stores (µs per request, the fake's in-process transport).

The figures print as Markdown; nothing here is asserted (the tests check behaviour).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._timing import machine, time_interleaved
from tests._redis import RedisServer, require_redis_server
from tests._workers import WORKER_SECRET
from tiktok_oauth import (
    FileTokenStore,
    MemoryTokenStore,
    TikTokAuth,
    TikTokOAuth2Client,
    TikTokToken,
    _clock,
    refresh_due,
)
from tiktok_oauth.stores.redis import RedisTokenStore
from tiktok_oauth.testing import FakeResponse, FakeTikTok

ROOT = Path(__file__).resolve().parent.parent
KEY = "test-key"


def _fake(**settings: Any) -> FakeTikTok:
    fake = FakeTikTok(client_key=KEY, client_secret=WORKER_SECRET)
    for name, value in settings.items():
        setattr(fake, name, value)
    return fake


def _due(fake: FakeTikTok, key: str) -> TikTokToken:
    token = TikTokToken(fake.issue_token(open_id=key))
    token["expires_at"] = int(_clock.now()) + 60
    return token


def _fill(fake: FakeTikTok, store: Any, n: int) -> None:
    for i in range(n):
        store.set(f"user-{i:06d}", _due(fake, f"user-{i:06d}"))


# -- throughput -----------------------------------------------------------------------------------------


def _keeper_run(n: int, concurrency: int) -> tuple[float, int]:
    fake, store = _fake(), MemoryTokenStore()
    _fill(fake, store, n)
    with fake.serve() as base, TikTokOAuth2Client(KEY, WORKER_SECRET, **fake.endpoints(base)) as client:
        report = refresh_due(client, store, within=3600, concurrency=concurrency)
    assert len(report.refreshed) == n, str(report)
    return report.elapsed, fake.grant_count("refresh_token")


def _bare_run(n: int, concurrency: int) -> tuple[float, int]:
    fake = _fake()
    tokens = [_due(fake, f"user-{i:06d}").refresh_token for i in range(n)]
    with fake.serve() as base, httpx.Client() as http:
        url = fake.endpoints(base)["token_url"]

        def post(refresh_token: str | None) -> None:
            form = {
                "client_key": KEY,
                "client_secret": WORKER_SECRET,
                "grant_type": "refresh_token",
                "refresh_token": refresh_token or "",
            }
            answer = http.post(url, data=form)
            assert answer.status_code == 200
            assert "access_token" in answer.json()

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(post, tokens))
        elapsed = time.monotonic() - started
    return elapsed, fake.grant_count("refresh_token")


def throughput(quick: bool) -> list[str]:
    n, concurrency = (1_000 if quick else 10_000), 32
    rows = []
    for _ in range(1 if quick else 2):  # interleaved, so drift in the machine's load hits both
        bare, bare_count = _bare_run(n, concurrency)
        keeper, keeper_count = _keeper_run(n, concurrency)
        assert bare_count == keeper_count == n
        rows.append((bare, keeper))
    bare, keeper = min(r[0] for r in rows), min(r[1] for r in rows)
    ratio = bare / keeper
    return [
        f"Throughput: {n:,} due tokens, concurrency {concurrency}, the fake served on loopback (best of {len(rows)}).",
        "",
        "| contender | time | refreshes/s |",
        "| --- | ---: | ---: |",
        f"| bare httpx loop (32 threads, same forms) | {bare:.2f} s | {n / bare:,.0f} |",
        f"| `refresh_due` (MemoryTokenStore) | {keeper:.2f} s | {n / keeper:,.0f} |",
        "",
        f"Ratio keeper/bare: **{ratio:.2f}** (goal >= 0.8: {'met' if ratio >= 0.8 else 'not met'}).",
    ]


# -- division of work -----------------------------------------------------------------------------------


@dataclass
class _Shared:
    """A store several keeper processes share: `fresh(run)` empties it and gives (a store to fill, the
    worker's arguments: STORE_URL LOCK_TIMEOUT [TABLE], see `tests/_keeper_worker.py`)."""

    label: str
    fresh: Callable[[str], tuple[Any, list[str]]]


@contextlib.contextmanager
def _redis() -> Iterator[_Shared]:
    with RedisServer(require_redis_server()) as server:
        client = server.client()

        def fresh(run: str) -> tuple[Any, list[str]]:
            client.flushdb()
            return RedisTokenStore(client), [f"redis://127.0.0.1:{server.port}", "30"]

        try:
            yield _Shared("Redis", fresh)
        finally:
            client.close()


@contextlib.contextmanager
def _postgres() -> Iterator[_Shared]:
    import sqlalchemy as sa

    from tests._postgres import PostgresServer, require_postgres
    from tiktok_oauth.stores.sql import SQLTokenStore

    with PostgresServer(require_postgres()) as server:
        engine = sa.create_engine(server.url.replace("postgresql://", "postgresql+psycopg://", 1))

        def fresh(run: str) -> tuple[Any, list[str]]:
            table = f"keeper_bench_{run}"
            with engine.begin() as connection:
                connection.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))
            return SQLTokenStore(engine, table=table), [server.url, "30", table]

        try:
            yield _Shared("PostgreSQL", fresh)
        finally:
            engine.dispose()


SHARED_STORES: dict[str, Callable[[], contextlib.AbstractContextManager[_Shared]]] = {
    "redis": _redis,
    "postgres": _postgres,
}


def _keepers(shared: _Shared, n: int, processes: int, delay: float) -> tuple[float, int, int, list[int]]:
    store, (url, *rest) = shared.fresh(f"{processes}_keepers")
    fake = _fake(token_delay=delay)
    _fill(fake, store, n)
    with fake.serve() as base:
        workers = [
            subprocess.Popen(  # noqa: S603 - our own worker module
                [sys.executable, "-m", "tests._keeper_worker", url, base, "8", *rest],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(processes)
        ]
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        started = time.monotonic()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outs = [worker.communicate(timeout=600)[0] for worker in workers]
        elapsed = time.monotonic() - started
    summaries = [json.loads(out.strip().splitlines()[-1])["summary"] for out in outs]
    assert all(not s["failed"] and not s["reauthorization_required"] for s in summaries), summaries
    return (
        elapsed,
        fake.grant_count("refresh_token"),
        fake.stale_refresh_token_uses,
        [s["refreshed"] for s in summaries],
    )


def division(quick: bool) -> list[str]:
    n = 400 if quick else 2_000
    lines = []
    for make in SHARED_STORES.values():
        with make() as shared:
            one = _keepers(shared, n, 1, 0.1)
            four = _keepers(shared, n, 4, 0.1)
        ratio = four[0] / one[0]
        met = ratio <= 0.4 and four[1] == n and four[2] == 0
        lines += [
            (
                f"Division of work: {n:,} due tokens in one {shared.label}, token endpoint answering in 100 ms, "
                "concurrency 8 per keeper process."
            ),
            "",
            "| keepers | time | refreshes | stale refresh-token uses | refreshed by each |",
            "| ---: | ---: | ---: | ---: | --- |",
            f"| 1 | {one[0]:.2f} s | {one[1]:,} | {one[2]} | {one[3]} |",
            f"| 4 | {four[0]:.2f} s | {four[1]:,} | {four[2]} | {four[3]} |",
            "",
            (
                f"{shared.label}: 4 keepers take **{ratio:.2f}x** the time of one (goal <= 0.4x with exactly "
                f"{n:,} refreshes and 0 stale uses: {'met' if met else 'not met'})."
            ),
            "",
        ]
    return lines[:-1]


# -- memory ---------------------------------------------------------------------------------------------


def _filler(n: int) -> TikTokToken:
    return TikTokToken(
        access_token=f"act.{n:08d}.{'x' * 60}",
        refresh_token=f"rft.{n:08d}.{'y' * 60}",
        open_id=f"user-{n:06d}",
        scope="user.info.basic",
        expires_at=int(_clock.now()) + 86_000,
        refresh_expires_at=int(_clock.now()) + 31_536_000,
        token_type="Bearer",
    )


def serve_fake(port: int, stored: int) -> None:
    """The fake for the memory run, in a process of its own: fill Redis (1% due), serve, report the grants."""
    import redis

    fake = _fake()
    redis_client = redis.Redis(host="127.0.0.1", port=port)
    redis_client.flushdb()
    store = RedisTokenStore(redis_client)
    pipe = redis_client.pipeline(transaction=False)
    for i in range(stored):
        key = f"user-{i:06d}"
        token = _due(fake, key) if i % 100 == 0 else _filler(i)
        pipe.set(store.key_name(key), token.to_json())  # what `set` writes, pipelined
        pipe.zadd(store.index_name, {key: token.expires_at})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    redis_client.close()
    with fake.serve() as base:
        print(base, flush=True)
        sys.stdin.readline()
    print(fake.grant_count("refresh_token"), flush=True)


def _peak(server: RedisServer, stored: int, *, walk: bool) -> tuple[int, int]:
    """tracemalloc's peak in this process while `refresh_due` runs; the tokens live in Redis, the fake elsewhere."""
    fake_process = subprocess.Popen(  # noqa: S603 - this very script
        [sys.executable, __file__, "--serve-fake", str(server.port), str(stored)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake_process.stdout is not None
    base = fake_process.stdout.readline().strip()
    redis_client = server.client()
    store = RedisTokenStore(redis_client)
    endpoints = _fake().endpoints(base)
    with TikTokOAuth2Client(KEY, WORKER_SECRET, **endpoints) as client:
        keys = (f"user-{i:06d}" for i in range(stored)) if walk else None
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        report = refresh_due(client, store, within=3600, concurrency=8, keys=keys)
        peak = tracemalloc.get_traced_memory()[1] - baseline
        tracemalloc.stop()
    redis_client.close()
    out, _ = fake_process.communicate("done\n", timeout=60)
    assert int(out.split()[-1]) == len(report.refreshed) == stored // 100, str(report)
    return peak, len(report.refreshed)


def memory(quick: bool) -> list[str]:
    sizes = (1_000, 10_000) if quick else (1_000, 100_000)
    lines = [
        (
            "Memory: tracemalloc's peak above the baseline while `refresh_due` runs, 1% of the stored tokens "
            "due; the tokens in Redis, the fake served from another process."
        ),
        "",
        "| keys from | stored | due | peak: median (each run) | vs smallest |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    verdicts = []
    repeat = 1 if quick else 5  # a peak moves a lot from run to run (in-flight buffers overlap or not)
    for walk in (False, True):
        with RedisServer(require_redis_server()) as server:
            _peak(server, sizes[0], walk=walk)  # a first run pays one-time costs (lazy imports): not counted
            runs = {size: [_peak(server, size, walk=walk) for _ in range(repeat)] for size in sizes}
        peaks = {size: statistics.median(peak for peak, _ in results) for size, results in runs.items()}
        first = peaks[sizes[0]]
        label = "every key (`keys=` a generator)" if walk else "`expiring()`"
        for size, results in runs.items():
            spread = ", ".join(f"{peak / 1024:,.0f}" for peak, _ in results)
            lines.append(
                f"| {label} | {size:,} | {results[0][1]:,} | {peaks[size] / 1024:,.0f} KiB ({spread}) "
                f"| {peaks[size] / first:.2f}x |"
            )
        verdicts.append(f"{label}: {peaks[sizes[-1]] / first:.2f}x")
    lines += ["", f"Largest vs smallest (medians of {repeat}): {'; '.join(verdicts)} (goal <= 2x)."]
    return lines


# -- rate limits ----------------------------------------------------------------------------------------


def rate_limits(quick: bool) -> list[str]:
    n, concurrency = (300 if quick else 1_000), 32
    fake, store = _fake(), MemoryTokenStore()
    _fill(fake, store, n)
    original = fake.handle
    counter = itertools.count(1)
    guard = threading.Lock()
    limited = [0]
    refusal = FakeResponse(
        429,
        {"content-type": "application/json", "retry-after": "1"},
        b'{"error": "rate_limit_exceeded", "error_description": "Too many requests.", "log_id": "bench"}',
    )

    def handle(method: str, url: str, headers: Mapping[str, str], body: bytes) -> FakeResponse | None:
        if "/v2/oauth/token/" in url:
            with guard:
                tenth = next(counter) % 10 == 0
                limited[0] += tenth
            if tenth:
                return refusal
        return original(method, url, headers, body)

    fake.handle = handle  # type: ignore[method-assign]
    with fake.serve() as base, TikTokOAuth2Client(KEY, WORKER_SECRET, **fake.endpoints(base)) as client:
        report = refresh_due(client, store, within=3600, concurrency=concurrency)
    met = len(report.refreshed) == n and not report.failed
    return [
        (
            f"Rate limits: {n:,} due tokens, concurrency {concurrency}, every 10th token request answered 429 "
            "with `Retry-After: 1`."
        ),
        "",
        (
            f"{len(report.refreshed):,} refreshed, {len(report.failed)} failed, {limited[0]} answers were 429, "
            f"in **{report.elapsed:.2f} s** ({'met' if met else 'not met'}: every due token refreshed, none failed)."
        ),
    ]


# -- TikTokAuth per request -----------------------------------------------------------------------------


def _stores(directory: Path, server: RedisServer) -> Iterator[tuple[str, Any, Callable[[], None]]]:
    yield "memory", MemoryTokenStore(), lambda: None
    yield "file", FileTokenStore(directory / "files"), lambda: None
    from tiktok_oauth.stores.sql import SQLTokenStore

    sql = SQLTokenStore(f"sqlite:///{directory / 'tokens.db'}")
    yield "SQLite", sql, sql.close
    redis_client = server.client()
    yield "Redis", RedisTokenStore(redis_client), redis_client.close


def per_request(quick: bool) -> list[str]:
    number, repeat = (100, 3) if quick else (1_000, 5)
    fake = _fake()
    http = httpx.Client(transport=fake.transport())
    client = TikTokOAuth2Client(KEY, WORKER_SECRET, http_client=http)
    url = fake.user_info_url()
    lines = [
        (
            "TikTokAuth made per request (construct + one request, the token fresh in the store) against one reused; "
            "the fake's in-process transport."
        ),
        "",
        "| store | reused µs/request | per request µs/request | extra per request |",
        "| --- | ---: | ---: | ---: |",
    ]
    with (
        RedisServer(require_redis_server()) as server,
        tempfile.TemporaryDirectory(prefix="tiktok-oauth-bench-") as tmp,
    ):
        for name, store, close in _stores(Path(tmp), server):
            token = TikTokToken(fake.issue_token(open_id="alice"))
            store.set("alice", token)
            reused = TikTokAuth(client, store, "alice")

            def reuse(count: int, auth: TikTokAuth = reused) -> Callable[[], None]:
                return lambda: [http.get(url, auth=auth) for _ in range(count)] and None

            def fresh(count: int, store: Any = store) -> Callable[[], None]:
                return lambda: (
                    [http.get(url, auth=TikTokAuth(client, store, "alice")) for _ in range(count)] and None
                )

            timings = time_interleaved([("reused", reuse), ("per request", fresh)], number, repeat)
            a, b = timings[0].best_us, timings[1].best_us
            lines.append(f"| {name} | {a:,.0f} | {b:,.0f} | {b - a:+,.0f} µs ({b / a:.2f}x) |")
            close()
    client.close()
    http.close()
    return lines


SECTIONS: dict[str, Callable[[bool], list[str]]] = {
    "throughput": throughput,
    "division": division,
    "memory": memory,
    "rate_limits": rate_limits,
    "per_request": per_request,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, figures not to quote")
    parser.add_argument("--only", nargs="+", choices=sorted(SECTIONS), help="run only these sections")
    parser.add_argument(
        "--serve-fake", nargs=2, type=int, metavar=("REDIS_PORT", "STORED"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_fake:
        serve_fake(*args.serve_fake)
        return
    print(f"Machine: {machine()}\n", flush=True)
    for name in args.only or SECTIONS:
        started = time.monotonic()
        for line in SECTIONS[name](args.quick):
            print(line)
        print(f"\n({name}: {time.monotonic() - started:.0f} s)\n", flush=True)


if __name__ == "__main__":
    main()
