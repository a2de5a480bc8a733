"""Worker processes for `tests/test_sql_processes.py`: `python -m tests._sql_workers <command> ...`.

- `refresh URL TABLE BASE_URL KEY LOCK_TIMEOUT`: print `ready`, wait for a line on stdin, then GET the fake's
  user info URL through `httpx.Client(auth=TikTokAuth(client, SQLTokenStore(URL, table=TABLE), KEY))` and
  print one JSON line `{"status": ..., "error": ...}`.
- `hold URL TABLE KEY`: take `SQLTokenStore(URL, table=TABLE).lock(KEY)`, print `locked`, sleep until killed.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import httpx

WORKER_SECRET = "SUPER-SECRET-client-secret-0xDEADBEEF"  # the same as tests.conftest.SECRET


def _refresh(url: str, table: str, base_url: str, key: str, lock_timeout: str) -> None:
    from tiktok_oauth import TikTokAuth, TikTokOAuth2Client
    from tiktok_oauth.stores.sql import SQLTokenStore
    from tiktok_oauth.testing import FakeTikTok

    fake = FakeTikTok(client_key="test-key", client_secret=WORKER_SECRET)  # only for its URLs
    store = SQLTokenStore(url, table=table, lock_timeout=float(lock_timeout))
    client = TikTokOAuth2Client("test-key", WORKER_SECRET, timeout=10.0, **fake.endpoints(base_url))
    print("ready", flush=True)
    sys.stdin.readline()
    result: dict[str, Any] = {"status": None, "error": None}
    try:
        with client, store, httpx.Client(auth=TikTokAuth(client, store, key), timeout=10.0) as http:
            result["status"] = http.get(fake.user_info_url(base_url)).status_code
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(result), flush=True)


def _hold(url: str, table: str, key: str) -> None:
    from tiktok_oauth.stores.sql import SQLTokenStore

    with SQLTokenStore(url, table=table) as store, store.lock(key):
        print("locked", flush=True)
        time.sleep(600)


def main(argv: list[str]) -> None:
    command, *args = argv
    if command == "refresh":
        _refresh(*args)
    elif command == "hold":
        _hold(*args)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
