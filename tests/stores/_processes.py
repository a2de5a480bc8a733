"""Child processes for the cross-process tests: scripts run with `sys.executable -c`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Holds lock(key) on a FileTokenStore until its stdin closes.
HOLD_FILE_LOCK = """
import sys
from tiktok_oauth.stores import FileTokenStore
with FileTokenStore(sys.argv[1]).lock(sys.argv[2]):
    print("locked", flush=True)
    sys.stdin.read()
"""


def start(script: str, *args: str | Path) -> subprocess.Popen[str]:
    """Start `python -c script args...` with pipes for stdin and stdout."""
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_for_line(process: subprocess.Popen[str], expected: str) -> None:
    """Read the child's stdout until it prints `expected` (it must, or the test fails)."""
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == expected, f"child said {line!r} instead of {expected!r}"


@contextmanager
def file_lock_held_by_another_process(path: Path, key: str) -> Iterator[subprocess.Popen[str]]:
    """A child process holds `FileTokenStore(path).lock(key)` until `release(process)` or the end."""
    with start(HOLD_FILE_LOCK, path, key) as process:
        try:
            wait_for_line(process, "locked")
            yield process
        finally:
            release(process)


def release(process: subprocess.Popen[str]) -> None:
    """Let a holder started by `file_lock_held_by_another_process` release its lock and exit."""
    if process.stdin is not None and not process.stdin.closed:
        process.stdin.close()
    process.wait(timeout=10)
