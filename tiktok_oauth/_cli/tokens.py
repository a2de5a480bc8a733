"""`tiktok-oauth token show|refresh|revoke|list`: inspect, refresh, revoke-and-delete, or list stored tokens."""

from __future__ import annotations

import argparse
import json

from tiktok_oauth import _clock
from tiktok_oauth._cli._common import (
    client_from_args,
    describe_token,
    load_token,
    open_store,
    resolve_key,
    where,
)
from tiktok_oauth.auth import TokenSource

__all__ = ["list_tokens", "refresh_token", "revoke_token", "show_token"]


def show_token(args: argparse.Namespace) -> int:
    """Print the stored token's open_id, scopes and expiries (local time and relative), tokens masked."""
    store = open_store(args)
    key = resolve_key(store, args.key)
    token = load_token(store, key)
    print(f"Token under key {key!r} in {where(store)}:")
    for line in describe_token(token):
        print(line)
    return 0


def refresh_token(args: argparse.Namespace) -> int:
    """Refresh the stored token now and store the new one (TikTok rotates the refresh token).

    Through the token source, like `TikTokAuth`: under the store's lock, read again first, and a Ctrl-C
    after the request went out waits until TikTok's answer is stored.
    """
    with client_from_args(args) as client:
        store = open_store(args, secrets=True)
        key = resolve_key(store, args.key)
        load_token(store, key)  # fail before `lock` creates the directory of a mistyped --store
        outcome, fresh = TokenSource.over(client, store, key).refresh_now()
    if outcome == "refreshed":
        print(f"Refreshed. New token saved under key {key!r} in {where(store)}:")
    else:
        print(f"Another process refreshed it just now. The token under key {key!r} in {where(store)}:")
    for line in describe_token(fresh):
        print(line)
    return 0


def revoke_token(args: argparse.Namespace) -> int:
    """Revoke the stored access token at TikTok, then delete the stored token (`TikTokAuth.logout`)."""
    with client_from_args(args) as client:
        store = open_store(args, secrets=True)
        key = resolve_key(store, args.key)
        load_token(store, key)
        TokenSource.over(client, store, key).logout()
    print(f"Revoked the access token and deleted the token under key {key!r} from {where(store)}.")
    return 0


def list_tokens(args: argparse.Namespace) -> int:
    """One line per stored token (key, open_id, scopes, expiries; expired ones marked), or `--json`."""
    store = open_store(args)
    now = _clock.now()
    within: float | None = args.needs_login  # None: every token; else the users who must log in again
    rows = []
    for key in sorted(store.keys()):
        token = store.get(key)
        if token is None:
            continue  # deleted meanwhile
        if within is not None and not (
            token.needs_login or (within > 0 and token.is_refresh_expired(leeway=within))
        ):
            continue
        rows.append(
            {
                "key": key,
                "open_id": token.open_id,
                "scopes": sorted(token.scopes),
                "expires_at": token.expires_at,
                "refresh_expires_at": token.refresh_expires_at,
                "expired": token.is_expired(),
                "needs_login": token.needs_login,
            }
        )
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print(
            f"No tokens in {where(store)}."
            if within is None
            else f"Nobody must log in again in {where(store)}."
        )
        return 0
    table = [("KEY", "OPEN_ID", "SCOPES", "ACCESS EXPIRES", "REFRESH EXPIRES")]
    table += [
        (
            row["key"],
            row["open_id"] or "-",
            ",".join(row["scopes"]) or "-",
            _when(row["expires_at"], now),
            _when(row["refresh_expires_at"], now) + (" (needs login)" if row["needs_login"] else ""),
        )
        for row in rows
    ]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(table[0]))]
    for line in table:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    return 0


def _when(epoch: float | None, now: float) -> str:
    if epoch is None:
        return "unknown"
    import datetime as dt  # noqa: PLC0415

    stamp = dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{stamp} (expired)" if epoch <= now else stamp
