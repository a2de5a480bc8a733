"""`tiktok-oauth keeper`: `refresh_due` every `--every` (with jitter) until SIGTERM or SIGINT.

A signal stops the run from taking new keys; the refreshes in flight finish and are written, the round's
summary is printed, and the command exits 0. Safe on many machines at once: every refresh runs under the
store's lock with a read again, so two keepers never refresh one token twice.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import signal
import sys
import threading
from typing import Any, Final

from tiktok_oauth import _clock
from tiktok_oauth._cli._common import KeyNotGiven, client_from_args, open_store, where
from tiktok_oauth._cli.refresh_all import parse_duration, positive

__all__ = ["add_keeper", "run_keeper"]

#: The spread of each pause around `--every`, so keepers started together drift apart.
JITTER: Final = 0.1


def add_keeper(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """The `keeper` command and its options."""
    keeper = commands.add_parser(
        "keeper",
        parents=parents,
        help="keep every stored token fresh, until SIGTERM or Ctrl-C",
        description="Refresh every token due within --due, every --every (with jitter), until SIGTERM or "
        "SIGINT: refreshes in flight finish and are written, then it exits 0. One summary line per "
        "round. Safe on many machines sharing one Redis or SQL store.",
    )
    keeper.add_argument(
        "--every",
        type=parse_duration,
        default=600.0,
        metavar="DURATION",
        help="the pause between rounds (default: 10m)",
    )
    keeper.add_argument(
        "--due",
        type=parse_duration,
        default=1800.0,
        metavar="DURATION",
        help="refresh tokens whose access token expires within this (default: 30m)",
    )
    keeper.add_argument(
        "--concurrency",
        type=positive,
        default=8,
        metavar="N",
        help="refreshes at a time (default: %(default)s)",
    )
    keeper.add_argument(
        "--once", action="store_true", help="one round, then exit (status as `token refresh --all`)"
    )
    keeper.set_defaults(handler=run_keeper)


def run_keeper(args: argparse.Namespace) -> int:
    """Rounds of `refresh_due` until a signal (or one with `--once`); the exit status."""
    from tiktok_oauth.keeper import refresh_due  # noqa: PLC0415

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    status = 0
    try:
        with client_from_args(args) as client:
            store = open_store(args, secrets=True)
            if isinstance(store, KeyNotGiven):
                store.refuse_if_encrypted(_clock.now() + args.due)
            rng = random.Random()  # noqa: S311 - a pause, not a secret
            while not stop.is_set():
                report = refresh_due(client, store, within=args.due, concurrency=args.concurrency, stop=stop)
                stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
                print(f"{stamp} {report} ({where(store)})", flush=True)
                for key, error in sorted(report.failed.items()):
                    print(
                        f"failed: {key}: {type(error).__name__}: {' '.join(str(error).split())}",
                        file=sys.stderr,
                        flush=True,
                    )
                status = 1 if report.failed or report.reauthorization_required else 0
                if args.once:
                    return status
                stop.wait(args.every * rng.uniform(1 - JITTER, 1 + JITTER))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("Stopped: the refreshes in flight were finished and written.", flush=True)
    return 0
