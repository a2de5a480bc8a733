"""`tiktok-oauth token refresh --all [--due 1h] [--concurrency N]`: `refresh_due` over the whole `--store`.

A progress bar on a terminal (when tqdm, the `progress` extra, is installed), one plain line per key
otherwise; then the report's one-line summary. Exit 0 when every due token was refreshed, 1 when any
failed or needs a new login. No token is ever printed: only keys, outcomes and typed errors.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
from collections.abc import Callable
from typing import Any, Final

from tiktok_oauth import _clock
from tiktok_oauth._cli._common import CLIError, KeyNotGiven, client_from_args, open_store, where

__all__ = ["add_options", "parse_duration", "refresh_all"]

_UNITS: Final = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*$")


def parse_duration(text: str) -> float:
    """Seconds from `90`, `90s`, `30m`, `1h` or `2d`."""
    found = _DURATION.match(text)
    if found is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 30m, 1h, 2d)")
    return float(found.group(1)) * _UNITS[found.group(2) or "s"]


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return value


def add_options(parser: argparse.ArgumentParser, single: Callable[[argparse.Namespace], int]) -> None:
    """Give `token refresh` the `--all`, `--due` and `--concurrency` options; `single` handles the rest."""
    group = parser.add_argument_group("every due token (refresh_due)")
    group.add_argument(
        "--all", action="store_true", help="refresh every stored token that is due, instead of one --key"
    )
    group.add_argument(
        "--due",
        type=parse_duration,
        default=3600.0,
        metavar="DURATION",
        help="with --all: tokens whose access token expires within this (90s, 30m, 1h, 2d; default: 1h)",
    )
    group.add_argument(
        "--concurrency",
        type=positive,
        default=8,
        metavar="N",
        help="with --all: refreshes at a time (default: %(default)s)",
    )

    def handler(args: argparse.Namespace) -> int:
        if not args.all:
            return single(args)
        if args.key is not None:
            raise CLIError("pass either --key or --all, not both", exit_code=2)
        return refresh_all(args)

    parser.set_defaults(handler=handler)


class _Lines:
    """Progress as one plain line per key (not a terminal, or no tqdm).

    The keeper reports from its worker threads: each line is one write under a lock (`print` writes the
    text and the newline separately, so lines written at once would interleave).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, key: str, outcome: str) -> None:
        line = f"{outcome}: {key}\n"
        with self._lock:
            sys.stdout.write(line)
            sys.stdout.flush()

    def close(self) -> None:
        """Nothing to close."""


class _Bar:
    """Progress as a tqdm bar on stderr; the keys that need attention are written above it."""

    def __init__(self, tqdm: Any) -> None:
        self._tqdm = tqdm
        self._bar = tqdm(unit="token", desc="refreshing", file=sys.stderr)

    def __call__(self, key: str, outcome: str) -> None:
        if outcome in {"failed", "reauthorization_required"}:
            self._tqdm.write(f"{outcome}: {key}", file=sys.stderr)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


def _progress() -> _Lines | _Bar:
    if not sys.stderr.isatty():
        return _Lines()
    import importlib  # noqa: PLC0415

    try:
        tqdm = importlib.import_module("tqdm")  # the optional `progress` extra (no type stubs)
    except ImportError:
        return _Lines()
    return _Bar(tqdm.tqdm)


def refresh_all(args: argparse.Namespace) -> int:
    """Refresh every due token in `--store`, print the summary, exit 1 when any failed or needs a login."""
    from tiktok_oauth.keeper import refresh_due  # noqa: PLC0415

    with client_from_args(args) as client:
        store = open_store(args, secrets=True)
        if isinstance(store, KeyNotGiven):  # an encrypted store and no key: one usage error, nothing sent
            store.refuse_if_encrypted(_clock.now() + args.due)
        progress = _progress()
        try:
            report = refresh_due(
                client, store, within=args.due, concurrency=args.concurrency, progress=progress
            )
        finally:
            progress.close()
    for key, error in sorted(report.failed.items()):
        print(f"failed: {key}: {type(error).__name__}: {' '.join(str(error).split())}", file=sys.stderr)
    for key in sorted(report.reauthorization_required):
        print(f"needs a new login: {key} (run `tiktok-oauth login` again)", file=sys.stderr)
    print(f"{report} ({where(store)})")
    return 1 if report.failed or report.reauthorization_required else 0
