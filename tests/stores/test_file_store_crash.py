"""Killed writers: every file left behind holds a whole token, and their temporary files are swept."""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.stores._processes import wait_for_line
from tests.stores._tokens import make_token
from tiktok_oauth.stores import FileTokenStore
from tiktok_oauth.stores import file as file_module
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
    # Temporary files of killed writers may remain; they never disturb reads or listings...
    strays = temporary_files(tmp_path)
    assert all(name.startswith(".") for name in strays)
    token = FileTokenStore(tmp_path).get("default")
    assert token is not None
    assert list(FileTokenStore(tmp_path).keys()) == ["default"]
    # ...and the next write sweeps them, since their writers are dead.
    FileTokenStore(tmp_path).set("default", token)
    assert temporary_files(tmp_path) == []


def temporary_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# Stops for good between writing the temporary file and renaming it, the moment a kill is worst.
STOPPED_BEFORE_RENAME = """
import sys, time
from pathlib import Path
from tiktok_oauth.stores import FileTokenStore
from tests.stores._tokens import make_token

def stop_here(self, target):
    print("temporary file written", flush=True)
    time.sleep(60)

Path.replace = stop_here
FileTokenStore(sys.argv[1]).set("default", make_token(2))
"""


@pytest.mark.slow
def test_the_temporary_file_of_a_writer_killed_before_its_rename_is_swept_by_the_next_write(
    tmp_path: Path,
) -> None:
    FileTokenStore(tmp_path).set("default", make_token(1))
    with subprocess.Popen(
        [sys.executable, "-c", STOPPED_BEFORE_RENAME, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as writer:
        try:
            wait_for_line(writer, "temporary file written")
            [stray] = temporary_files(tmp_path)
            assert b"act.2.secret-access" in (tmp_path / stray).read_bytes()  # the whole token is there
        finally:
            writer.send_signal(signal.SIGKILL)
            assert writer.wait(timeout=10) == -signal.SIGKILL

    store = FileTokenStore(tmp_path)
    assert store.get("default") == make_token(1)  # the old token, whole
    store.set("other", make_token(3))
    assert temporary_files(tmp_path) == []
    assert store.get("default") == make_token(1)


def plant_temporary_file(directory: Path, *, pid: int, age: float = 0.0, host: str | None = None) -> str:
    stem = file_module.file_stem("default")
    name = f".{stem}.{host or file_module._host_tag()}.{pid}.{secrets.token_hex(4)}.tmp"
    path = directory / name
    path.write_bytes(b'{"access_token": "act.leftover-secret"}')
    if age:
        past = time.time() - age
        os.utime(path, (past, past))
    return name


def dead_pid() -> int:
    with subprocess.Popen([sys.executable, "-c", "pass"]) as child:
        child.wait(timeout=30)
    return child.pid


def test_a_write_sweeps_temporary_files_of_dead_writers_only(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path)
    store.set("default", make_token(1))
    dead = plant_temporary_file(tmp_path, pid=dead_pid())
    alive = plant_temporary_file(tmp_path, pid=os.getppid())
    own = plant_temporary_file(tmp_path, pid=os.getpid())  # maybe another thread's write in progress
    remote = plant_temporary_file(tmp_path, pid=dead_pid(), host="ffffffff")  # another machine's
    unrelated = tmp_path / ".not-ours.tmp"
    unrelated.write_text("keep me")

    assert FileTokenStore(tmp_path).sweep_temporary_files() == 1
    assert temporary_files(tmp_path) == sorted([alive, own, remote, unrelated.name])
    assert dead not in temporary_files(tmp_path)


def test_temporary_files_older_than_stale_after_are_swept_whoever_wrote_them(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path, stale_after=60)
    store.set("default", make_token(1))
    old = [
        plant_temporary_file(tmp_path, pid=os.getppid(), age=120),
        plant_temporary_file(tmp_path, pid=12345, host="ffffffff", age=120),
    ]
    (tmp_path / f".{file_module.file_stem('default')}.0123456789abcdef.tmp").write_text("0.1.0's")
    old_style = tmp_path / f".{file_module.file_stem('x')}.fedcba9876543210.tmp"
    old_style.write_text("0.1.0's, old")
    os.utime(old_style, (time.time() - 120, time.time() - 120))
    recent = plant_temporary_file(tmp_path, pid=os.getppid(), age=5)

    FileTokenStore(tmp_path, stale_after=60).set("default", make_token(2))
    remaining = temporary_files(tmp_path)
    assert not set(old) & set(remaining)
    assert old_style.name not in remaining
    assert recent in remaining
    assert f".{file_module.file_stem('default')}.0123456789abcdef.tmp" in remaining
