"""`tiktok-oauth token show|refresh|revoke`: inspect, refresh, or revoke-and-delete a stored token."""

from __future__ import annotations

import argparse

from tiktok_oauth._cli._common import client_from_args, describe_token, load_token, resolve_key, store_path
from tiktok_oauth.stores import FileTokenStore

__all__ = ["refresh_token", "revoke_token", "show_token"]


def show_token(args: argparse.Namespace) -> int:
    """Print the stored token's open_id, scopes and expiries (local time and relative), tokens masked."""
    store = FileTokenStore(store_path(args))
    key = resolve_key(store, args.key)
    token = load_token(store, key)
    print(f"Token under key {key!r} in {store.path}:")
    for line in describe_token(token):
        print(line)
    return 0


def refresh_token(args: argparse.Namespace) -> int:
    """Refresh the stored token now and store the new one (TikTok rotates the refresh token)."""
    with client_from_args(args) as client:
        store = FileTokenStore(store_path(args))
        key = resolve_key(store, args.key)
        load_token(store, key)  # fail before `lock` creates the directory of a mistyped --store
        # Under the store's lock, like TikTokAuth: no other process refreshes (and rotates) meanwhile.
        with store.lock(key):
            fresh = client.refresh_token(load_token(store, key))
            store.set(key, fresh)
    print(f"Refreshed. New token saved under key {key!r} in {store.path}:")
    for line in describe_token(fresh):
        print(line)
    return 0


def revoke_token(args: argparse.Namespace) -> int:
    """Revoke the stored access token at TikTok, then delete the stored token."""
    with client_from_args(args) as client:
        store = FileTokenStore(store_path(args))
        key = resolve_key(store, args.key)
        load_token(store, key)
        with store.lock(key):
            client.revoke_token(load_token(store, key))
            store.delete(key)
    print(f"Revoked the access token and deleted the token under key {key!r} from {store.path}.")
    return 0
