"""`tiktok-oauth login --qr`: show a QR code in the terminal, wait for the phone, save the user's token.

The QR code is drawn by segno (the `qr` extra), imported only here: `import tiktok_oauth` never loads it.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from tiktok_oauth._cli._common import (
    CLIError,
    client_from_args,
    describe_token,
    normalise_scope,
    open_store,
    where,
)
from tiktok_oauth.auth import TokenSource

__all__ = ["draw_qr_code", "run_qr_login"]

_STATUS_LINES = {
    "new": "Waiting for the QR code to be scanned ...",
    "scanned": "Scanned: confirm the login on the phone ...",
    "confirmed": "Confirmed; exchanging the code for a token ...",
}


def draw_qr_code(text: str, out: TextIO) -> None:
    """Draw `text` as a QR code with Unicode half blocks (two modules a character cell), quiet zone included."""
    try:
        import segno  # noqa: PLC0415 - an optional extra, loaded only by `login --qr`
    except ImportError:
        raise CLIError(
            "login --qr draws the QR code with segno: pip install 'tiktok-oauth[qr]'", exit_code=2
        ) from None
    code = segno.make(text, micro=False)
    try:
        "\u2580\u2584\u2588".encode(out.encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        code.terminal(out=out)  # no half blocks in this encoding: segno's ANSI colours, a module a cell pair
    else:
        code.terminal(out=out, compact=True)
    out.flush()


def run_qr_login(args: argparse.Namespace) -> int:
    """Run `tiktok-oauth login --qr`; return the exit code."""
    store = open_store(args)
    with client_from_args(args, scope=normalise_scope(args.scope)) as client:
        qr = client.start_qr_login()
        print("Scan this QR code with the TikTok app on your phone:", flush=True)
        draw_qr_code(qr.scan_url, sys.stdout)
        print(f"(The QR code holds {qr.scan_url} )", flush=True)

        def on_status(status: str) -> None:
            print(_STATUS_LINES.get(status, f"QR code {status}"), flush=True)

        token = client.wait_qr_login(qr, interval=args.interval, timeout=args.timeout, on_status=on_status)
        key: str = args.key or token.open_id or "default"
        TokenSource.over(client, store, key).store_login(token)  # under the lock: the one writer
    if not token.open_id and not args.key:
        raise CLIError(
            "TikTok's token has no open_id: pass --key"
        )  # pragma: no cover - TikTok always sends one
    print(f"Logged in. Token saved in {where(store)} under key {key!r}:")
    for line in describe_token(token):
        print(line)
    return 0
