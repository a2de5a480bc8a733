"""What the commands share: errors, credentials, the default store, and how tokens and times are shown.

Nothing here prints an access or refresh token: tokens are shown by `describe_token`, which masks them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from authlib.oauth2.rfc6749.errors import InsecureTransportError

from tiktok_oauth import _clock, _protocol
from tiktok_oauth.client import TikTokOAuth2Client
from tiktok_oauth.token import TikTokToken

__all__ = [
    "CLIENT_KEY_ENV",
    "CLIENT_SECRET_ENV",
    "ENCRYPTION_KEY_ENV",
    "CLIError",
    "KeyNotGiven",
    "client_from_args",
    "credentials",
    "default_store_path",
    "describe_token",
    "load_token",
    "local_time",
    "mask",
    "normalise_scope",
    "open_store",
    "relative_time",
    "resolve_key",
    "store_path",
    "where",
]

CLIENT_KEY_ENV: Final = "TIKTOK_CLIENT_KEY"
CLIENT_SECRET_ENV: Final = "TIKTOK_CLIENT_SECRET"  # noqa: S105 - the name of a variable
ENCRYPTION_KEY_ENV: Final = "TIKTOK_OAUTH_KEY"


class CLIError(Exception):
    """A failure the command line reports as one line on stderr, exiting with `exit_code`.

    `exit_code` is 2 for usage errors (as argparse), 1 otherwise.
    """

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def credentials(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """The client key and secret from `--client-key/--client-secret`, else from the environment."""
    key = args.client_key or environ.get(CLIENT_KEY_ENV, "")
    secret = args.client_secret or environ.get(CLIENT_SECRET_ENV, "")
    missing = [
        f"{flag} or {variable}"
        for value, flag, variable in (
            (key, "--client-key", CLIENT_KEY_ENV),
            (secret, "--client-secret", CLIENT_SECRET_ENV),
        )
        if not value
    ]
    if missing:
        raise CLIError(
            f"missing client credentials: pass {' and '.join(missing)} (the app's key and secret)",
            exit_code=2,
        )
    return str(key), str(secret)


def client_from_args(
    args: argparse.Namespace, *, redirect_uri: str | None = None, scope: str | None = None
) -> TikTokOAuth2Client:
    """A `TikTokOAuth2Client` from the credentials and the testing URL options in `args`."""
    key, secret = credentials(args)
    base_url: str | None = getattr(args, "base_url", None)
    urls = (args.authorize_url, args.token_url, args.revoke_url)
    if base_url is not None and any(urls):
        raise CLIError("pass either --base-url or --authorize-url/--token-url/--revoke-url", exit_code=2)
    try:
        return TikTokOAuth2Client(
            key,
            secret,
            redirect_uri=redirect_uri or _protocol.DEFAULT_REDIRECT_URI,
            scope=scope or _protocol.DEFAULT_SCOPE,
            authorize_url=args.authorize_url or _protocol.AUTHORIZE_URL,
            token_url=args.token_url or _protocol.TOKEN_URL,
            revoke_url=args.revoke_url or _protocol.REVOKE_URL,
            base_url=base_url,
        )
    except ValueError as exc:
        raise CLIError(str(exc), exit_code=2) from None
    except InsecureTransportError:
        raise CLIError(
            "refusing plain http: --authorize-url/--token-url/--revoke-url must be https "
            "(http only for loopback hosts)",
            exit_code=2,
        ) from None


def normalise_scope(scope: str) -> str:
    """TikTok's comma-separated scope, accepting commas or spaces between names."""
    names = [name for name in re.split(r"[,\s]+", scope) if name]
    if not names:
        raise CLIError("--scope needs at least one scope name, e.g. user.info.basic", exit_code=2)
    return ",".join(names)


def default_store_path(
    platform: str = sys.platform, environ: Mapping[str, str] = os.environ, home: Path | None = None
) -> Path:
    """The per-user token directory: `$XDG_DATA_HOME` (or `~/.local/share`), macOS's and Windows' equivalents."""
    home = Path.home() if home is None else home
    if platform == "win32":
        base = Path(environ["APPDATA"]) if environ.get("APPDATA") else home / "AppData" / "Roaming"
    elif platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        xdg = environ.get("XDG_DATA_HOME", "")
        # The XDG spec says to ignore a relative path.
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "share"
    return base / "tiktok-oauth" / "tokens"


def store_path(args: argparse.Namespace) -> Path:
    """The `--store` directory, or the per-user default."""
    value: str | None = args.store
    return Path(value).expanduser() if value else default_store_path()


def open_store(
    args: argparse.Namespace, *, secrets: bool = False, environ: Mapping[str, str] = os.environ
) -> Any:
    """The `--store` (a directory or a URL; the per-user directory by default), encrypted with
    `--encryption-key` / `TIKTOK_OAUTH_KEY` when given.

    An empty key is a usage error: encryption is never silently off. With `secrets` (the commands that
    send tokens to TikTok) and no key, the store is a `KeyNotGiven`: an encrypted token read from it is a
    usage error, never sent.
    """
    from tiktok_oauth.stores import from_url  # noqa: PLC0415

    value: str | None = args.store
    key = _encryption_key(args, environ)
    try:
        store = from_url(value or str(default_store_path()), encryption_key=key, table=args.table)
    except ValueError as exc:  # an unknown URL scheme or a malformed key: never quoted, a usage error
        raise CLIError(str(exc), exit_code=2) from None
    if key is None and secrets:
        return KeyNotGiven(store)
    return store


def _encryption_key(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    """`--encryption-key`, else `TIKTOK_OAUTH_KEY`, else None; an empty one is a usage error (exit 2)."""
    flag: str | None = getattr(args, "encryption_key", None)
    source, key = (
        ("--encryption-key", flag)
        if flag is not None
        else (ENCRYPTION_KEY_ENV, environ.get(ENCRYPTION_KEY_ENV))
    )
    if key is not None and not key.strip():
        unset = "leave out --encryption-key" if flag is not None else f"unset {ENCRYPTION_KEY_ENV}"
        raise CLIError(
            f"{source} is empty: give a Fernet key, or {unset} for an unencrypted store "
            "(encryption is never silently off)",
            exit_code=2,
        )
    return key


class KeyNotGiven:
    """A store opened without an encryption key for a command that sends its tokens to TikTok.

    A token holding ciphertext (written by an `EncryptedTokenStore`) is a usage error when read: without the
    key it is of no use, and its ciphertext must never reach TikTok as a token.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        # Instance attributes, as `EncryptedTokenStore` offers them: only what the inner store has.
        for name in ("lock", "alock", "keys", "expiring", "lock_timeout", "lock_blocking_timeout"):
            if hasattr(inner, name):
                setattr(self, name, getattr(inner, name))

    def get(self, key: str) -> TikTokToken | None:
        """The token under `key`; a usage error if it is encrypted."""
        from tiktok_oauth.stores.encrypted import holds_ciphertext  # noqa: PLC0415

        token: TikTokToken | None = self.inner.get(key)
        if token is not None and holds_ciphertext(token):
            raise CLIError(
                f"the token under key {key!r} in {where(self)} is encrypted: pass --encryption-key "
                f"or set {ENCRYPTION_KEY_ENV}",
                exit_code=2,
            )
        return token

    def set(self, key: str, token: TikTokToken) -> None:
        """Store `token` under `key` as it is."""
        self.inner.set(key, token)

    def delete(self, key: str) -> None:
        """Remove the token under `key`."""
        self.inner.delete(key)

    def refuse_if_encrypted(self, before: float) -> None:
        """Read the first token expiring before `before`: if it is encrypted, fail now (exit 2), before any
        request to TikTok. (The others are read by `get` too, and never sent either.)"""
        first = next(iter(self.inner.expiring(before)), None)
        if first is not None:
            self.get(first)


def where(store: Any) -> str:
    """How messages name a store, every layer of it: a file store's directory, an SQL or Redis store's repr
    (never a password), wrapped as `EncryptedTokenStore(...)` when encrypted."""
    if isinstance(store, KeyNotGiven):  # the CLI's own guard, not a layer of the user's store
        return where(store.inner)
    path = getattr(store, "path", None)
    if path is not None:
        return str(path)
    inner = getattr(store, "inner", None)
    if inner is not None:  # a wrapper such as EncryptedTokenStore
        return f"{type(store).__name__}({where(inner)})"
    return repr(store)


def relative_time(moment: float, now: float) -> str:
    """`moment` relative to `now` in words: "in 23 h", "2 d ago", "in 5 min", "now"."""
    delta = moment - now
    seconds = abs(delta)
    if seconds < 1:
        return "now"
    # Rounded to whole units (a fresh 24 h token reads "in 24 h"); each unit is used up to 90 of the
    # next smaller one, and hours up to 48.
    if seconds < 90:
        unit, size = "s", 1
    elif seconds < 90 * 60:
        unit, size = "min", 60
    elif seconds < 48 * 3600:
        unit, size = "h", 3600
    else:
        unit, size = "d", 86400
    amount = int(seconds / size + 0.5)
    return f"in {amount} {unit}" if delta > 0 else f"{amount} {unit} ago"


def local_time(moment: float) -> str:
    """Epoch seconds as a local date and time with its zone, e.g. `2025-01-02 13:04:05 CET`."""
    try:
        return dt.datetime.fromtimestamp(moment).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    except (OverflowError, OSError, ValueError):
        return f"epoch {moment}"


def mask(secret: str | None) -> str:
    """A token masked for display: only TikTok's type prefix is kept (`act.***`, `rft.***`)."""
    if not secret:
        return "none"
    prefix, dot, _ = secret.partition(".")
    return f"{prefix}.***" if dot and prefix.isalpha() and len(prefix) <= 4 else "***"


def _expiry(moment: float | None, now: float) -> str:
    if moment is None:
        return "expiry unknown"
    verb = "expires" if moment > now else "expired"
    return f"{verb} {local_time(moment)} ({relative_time(moment, now)})"


def describe_token(token: TikTokToken) -> list[str]:
    """Lines describing `token` (open_id, scopes, expiries) with both tokens masked."""
    now = _clock.now()
    refresh = (
        f"{mask(token.refresh_token)}, {_expiry(token.refresh_expires_at, now)}"
        if token.refresh_token
        else "none"
    )
    return [
        f"  open_id:        {token.open_id or '(none: a client access token)'}",
        f"  scopes:         {', '.join(sorted(token.scopes)) or '(none)'}",
        f"  access token:   {mask(token.access_token)}, {_expiry(token.expires_at, now)}",
        f"  refresh token:  {refresh}",
    ]


def load_token(store: Any, key: str) -> TikTokToken:
    """The token stored under `key`, or a `CLIError` naming the key and the store."""
    token: TikTokToken | None = store.get(key)
    if token is None:
        raise CLIError(f"no token stored under key {key!r} in {where(store)}")
    return token


def resolve_key(store: Any, key: str | None) -> str:
    """`key`, or when None the one key in `store` that `login` saved under its open_id."""
    if key is not None:
        return key
    found = []
    for stored_key in sorted(store.keys()):
        token = store.get(stored_key)
        if token is not None and token.open_id == stored_key:
            found.append(stored_key)
    if len(found) == 1:
        return str(found[0])
    if found:
        raise CLIError(f"several tokens are stored in {where(store)} ({', '.join(found)}): pass --key")
    raise CLIError(f"no token stored in {where(store)} under its open_id: pass --key, or log in first")
