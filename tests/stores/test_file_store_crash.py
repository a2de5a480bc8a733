"""Kill a writer at random moments: every file left behind holds a whole token, old or new."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.stores._processes import wait_for_line
from tiktok_oauth.stores import FileTokenStore
from tiktok_oauth.token import TikTokToken

KILLS = 50

# Writes tokens in a tight loop; each carries its counter, an access token derived from it, and
# padding of a counter-dependent length, so a torn or mixed file cannot pass `check_whole`.
WRITER = """
import sys
from tiktok_oauth.stores import FileTokenStore
from tiktok_oauth.token import TikTokToken
store = FileTokenStore(sys.argv[1])
counter = int(sys.argv[2])
print("writing", flush=True)
while True:
    store.set("default", TikTokToken(
        access_token=f"act.{counter}", counter=counter, padding="x" * (counter % 5000),
        expires_at=2_000_000_000,
    ))
    counter += 1
"""


def check_whole(token: TikTokToken, first: int) -> int:
    counter = token["counter"]
    assert counter >= first
    assert token.access_token == f"act.{counter}"
    assert token["padding"] == "x" * (counter % 5000)
    return int(counter)


@pytest.mark.slow
def test_a_killed_writer_leaves_the_old_or_the_new_token_never_a_torn_one(tmp_path: Path) -> None:
    rng = random.Random(20240601)
    last_seen = -1
    fresh_rounds = 0  # rounds whose writer completed at least one write
    for round_number in range(KILLS):
        first = round_number * 1_000_000
        with subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(first)],
            stdout=subprocess.PIPE,
            text=True,
        ) as writer:
            wait_for_line(writer, "writing")
            time.sleep(rng.uniform(0, 0.05))
            writer.send_signal(signal.SIGKILL)
            assert writer.wait(timeout=10) == -signal.SIGKILL

        token = FileTokenStore(tmp_path).get("default")  # a fresh store: no cache
        if token is None:  # killed before this round's, or any earlier, first write landed
            assert last_seen == -1
            continue
        if token["counter"] < first:  # killed before the first write of this round landed
            assert token["counter"] == last_seen
        else:
            last_seen = check_whole(token, first)
            fresh_rounds += 1
    print(f"{fresh_rounds} of {KILLS} kills interrupted a writer after some writes", file=sys.stderr)
    assert fresh_rounds >= KILLS // 5, "the kills came too early to test anything"
    # Temporary files of killed writers may remain; they never disturb reads.
    strays = [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]
    assert all(p.name.startswith(".") for p in strays)
    assert FileTokenStore(tmp_path).get("default") is not None
