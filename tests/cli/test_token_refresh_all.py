"""`tiktok-oauth token refresh --all [--due] [--concurrency]` against the served fake, on file and SQLite stores."""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import pytest

from tests.cli._support import CLI, Served, assert_no_leaks, known_tokens
from tiktok_oauth import _clock
from tiktok_oauth._cli.refresh_all import parse_duration
from tiktok_oauth.stores import FileTokenStore, from_url
from tiktok_oauth.token import TikTokToken


def _issue(served: Served, store: Any, key: str, *, expires_in: float) -> TikTokToken:
    token = served.issue(store, key, open_id=key)
    token["expires_at"] = int(_clock.now() + expires_in)
    store.set(key, token)
    return token


def test_refresh_all_refreshes_only_the_due_tokens_and_prints_a_summary(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    for key in ("alice", "bob"):
        _issue(served, store, key, expires_in=600)
    later = _issue(served, store, "carol", expires_in=5400)  # beyond the default hour
    result = cli("token", "refresh", "--all", *served.options, "--store", str(store_dir))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert sorted(lines[:-1]) == ["refreshed: alice", "refreshed: bob"]  # not a terminal: plain lines
    assert lines[-1].startswith("2 refreshed, 0 fresh, 0 need a new login, 0 failed in ")
    assert lines[-1].endswith(f" s ({store_dir})")
    assert served.fake.grant_count("refresh_token") == 2
    assert store.get("carol") == later
    # 100 minutes: carol's 90, not the 2 hours of the tokens just refreshed
    wider = cli("token", "refresh", "--all", "--due", "100m", *served.options, "--store", str(store_dir))
    assert wider.code == 0, wider.err
    assert wider.out.splitlines() == ["refreshed: carol", wider.out.splitlines()[-1]]
    assert served.fake.grant_count("refresh_token") == 3


def test_refresh_all_exits_1_naming_keys_that_failed_or_need_a_login(
    cli: CLI, served: Served, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    store = from_url(url)
    _issue(served, store, "alice", expires_in=60)
    revoked = _issue(served, store, "bob", expires_in=60)
    served.fake.revoke_grants("bob")
    result = cli("token", "refresh", "--all", "--concurrency", "1", *served.options, "--store", url)
    assert result.code == 1
    assert "1 refreshed, 0 fresh, 1 need a new login, 0 failed" in result.out
    assert "needs a new login: bob (run `tiktok-oauth login` again)" in result.err
    assert store.get("bob") == {**revoked, "needs_login": True}  # kept, marked: never sent again
    served.fake.fail_next(status=503, times=10)
    _issue(served, store, "carol", expires_in=60)
    failed = cli("token", "refresh", "--all", "--due", "5m", *served.options, "--store", url)
    assert failed.code == 1
    assert "failed: carol: TikTokServerError: " in failed.err
    store.close()


def test_refresh_all_with_nothing_due_exits_0(cli: CLI, served: Served, store_dir: Path) -> None:
    result = cli("token", "refresh", "--all", *served.options, "--store", str(store_dir))
    assert result.code == 0, result.err
    assert result.out.startswith("0 refreshed, 0 fresh, 0 need a new login, 0 failed in ")


def test_refresh_all_usage_errors(cli: CLI, served: Served, store_dir: Path) -> None:
    both = cli("token", "refresh", "--all", "--key", "a", *served.options, "--store", str(store_dir))
    assert both.code == 2
    assert both.err == "error: pass either --key or --all, not both\n"
    bad = cli("token", "refresh", "--all", "--due", "soon", *served.options)
    assert bad.code == 2
    assert "not a duration: 'soon'" in bad.err
    zero = cli("token", "refresh", "--all", "--concurrency", "0", *served.options)
    assert zero.code == 2


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("30m", 1800), ("1h", 3600), ("1.5h", 5400), ("2d", 172800)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_a_bad_duration_is_an_argument_error() -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration("-1h")


def test_on_a_terminal_a_progress_bar_is_drawn(
    served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    for key in ("alice", "bob", "carol"):
        _issue(served, store, key, expires_in=60)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # tqdm's width
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tiktok_oauth",
                "token",
                "refresh",
                "--all",
                *served.options,
                "--store",
                str(store_dir),
            ],
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=60,
            check=False,
        )
        os.close(follower)
        follower = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other end is closed
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    assert done.returncode == 0, drawn
    assert done.stdout.decode().startswith("3 refreshed, 0 fresh, 0 need a new login, 0 failed in ")
    assert b"refreshing: " in drawn
    assert b"3token" in drawn.replace(b" ", b"")  # tqdm's count with its unit
    assert_no_leaks([drawn.decode(errors="replace"), done.stdout.decode()], known_tokens(served, [store]))


def test_piped_progress_is_one_whole_line_per_key(
    served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    keys = {f"u{n}" for n in range(300)}
    for key in keys:
        _issue(served, store, key, expires_in=60)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tiktok_oauth",
            "token",
            "refresh",
            "--all",
            "--concurrency",
            "32",
            *served.options,
            "--store",
            str(store_dir),
        ],
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    *progress, summary = done.stdout.decode().splitlines()
    assert summary.startswith("300 refreshed, 0 fresh, 0 need a new login, 0 failed in ")
    line = re.compile(r"^(refreshed|fresh|reauthorization_required|failed): (u\d+)$")
    matched = [line.match(text) for text in progress]
    assert [text for text, found in zip(progress, matched, strict=True) if found is None] == []
    assert sorted(found.group(2) for found in matched if found is not None) == sorted(keys)
    assert_no_leaks([done.stdout.decode(), done.stderr.decode()], known_tokens(served, [store]))
