"""`FileTokenStore` locks between processes: exclusion, timeouts, and `alock` on a live loop."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.stores._processes import file_lock_held_by_another_process, release
from tiktok_oauth.errors import TokenStoreError
from tiktok_oauth.stores import FileTokenStore
from tiktok_oauth.stores import file as file_module
from tiktok_oauth.token import TikTokToken

INCREMENT = """
import sys
from tiktok_oauth.stores import FileTokenStore
from tiktok_oauth.token import TikTokToken
store = FileTokenStore(sys.argv[1], poll_interval=0.001)
for _ in range(int(sys.argv[2])):
    with store.lock("counter"):
        token = store.get("counter")
        store.set("counter", TikTokToken(access_token="act.counter", count=token["count"] + 1))
"""


@pytest.mark.slow
def test_lock_serialises_read_modify_write_across_processes(tmp_path: Path) -> None:
    FileTokenStore(tmp_path).set("counter", TikTokToken(access_token="act.counter", count=0))
    children = [subprocess.Popen([sys.executable, "-c", INCREMENT, str(tmp_path), "25"]) for _ in range(4)]
    for child in children:
        assert child.wait(timeout=60) == 0
    token = FileTokenStore(tmp_path).get("counter")
    assert token is not None
    assert token["count"] == 100


@pytest.mark.slow
def test_lock_raises_token_store_error_after_lock_timeout(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path, lock_timeout=0.2)
    with file_lock_held_by_another_process(tmp_path, "default") as holder:
        started = time.monotonic()
        with pytest.raises(TokenStoreError, match="timed out") as caught, store.lock("default"):
            pytest.fail("the lock was acquired while another process held it")
        assert 0.2 <= time.monotonic() - started < 2
        assert file_module.file_stem("default") in str(caught.value)
        release(holder)
        with store.lock("default"):
            pass


@pytest.mark.slow
def test_alock_waits_for_another_process_without_blocking_the_loop(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path, poll_interval=0.01)

    async def main(holder: subprocess.Popen[str]) -> tuple[float, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        loop = asyncio.get_running_loop()
        started = loop.time()
        loop.call_later(0.3, release, holder)
        async with store.alock("default"):
            waited = loop.time() - started
        ticking.cancel()
        return waited, ticks

    with file_lock_held_by_another_process(tmp_path, "default") as holder:
        waited, ticks = asyncio.run(main(holder))
    assert waited >= 0.3
    assert ticks >= 20  # the loop ran the ticker all along


@pytest.mark.slow
def test_alock_raises_token_store_error_after_lock_timeout(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path, lock_timeout=0.2, poll_interval=0.01)

    async def main() -> None:
        async with store.alock("default"):
            pytest.fail("the lock was acquired while another process held it")

    with (
        file_lock_held_by_another_process(tmp_path, "default"),
        pytest.raises(TokenStoreError, match="timed out"),
    ):
        asyncio.run(main())
