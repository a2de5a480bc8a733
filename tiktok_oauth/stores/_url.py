"""`from_url`: a store from a directory path, a Redis URL or an SQLAlchemy database URL (the CLI's `--store`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["from_url"]

_REDIS_SCHEMES = ("redis", "rediss", "unix")
_SQL_SCHEMES = ("sqlite", "postgresql")


def from_url(
    url: str | os.PathLike[str],
    *,
    encryption_key: str | bytes | Sequence[str | bytes] | None = None,
    table: str | None = None,
) -> Any:
    """The store `url` names, connecting only when first used.

    - a directory path (or `file:///path`): `FileTokenStore`;
    - `redis://` / `rediss://`: `RedisTokenStore` (redis-py, with 5 s socket timeouts);
    - `sqlite:///...`, `postgresql://...` (or an SQLAlchemy `+driver` form): `SQLTokenStore` (psycopg 3 for
      PostgreSQL), in `table` (or `?table=NAME` in the URL; default `tiktok_oauth_tokens`), with
      `?pool_size=N` for its pool.

    `encryption_key` (one Fernet key, several comma-separated in one string, or a list: the first encrypts)
    wraps the store in an `EncryptedTokenStore`; an empty one (`""`, `b""`, `[]`) raises `ValueError`, never
    turning encryption off. Only `None` means "not encrypted".
    """
    store = _plain(os.fspath(url), table)
    if encryption_key is not None:
        from tiktok_oauth.stores.encrypted import EncryptedTokenStore  # noqa: PLC0415

        keys: Sequence[str | bytes]
        if isinstance(encryption_key, str):
            keys = encryption_key.split(",")
        elif isinstance(encryption_key, bytes):
            keys = [encryption_key]
        else:
            keys = encryption_key
        store = EncryptedTokenStore(store, [key.strip() if isinstance(key, str) else key for key in keys])
    return store


def _plain(url: str, table: str | None) -> Any:
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    base = scheme.split("+", 1)[0]
    if base in _SQL_SCHEMES:
        return _sql(url, table)
    if table is not None:
        raise ValueError("a table applies to SQL stores only (sqlite:///..., postgresql://...)")
    if not scheme or scheme == "file":
        from tiktok_oauth.stores.file import FileTokenStore  # noqa: PLC0415

        path = urlsplit(url).path if scheme == "file" else url
        return FileTokenStore(Path(path).expanduser())
    if base in _REDIS_SCHEMES:
        import redis  # noqa: PLC0415 - extra "redis"

        from tiktok_oauth.stores.redis import RedisTokenStore  # noqa: PLC0415

        return RedisTokenStore(redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5))
    raise ValueError(
        f"unknown store URL scheme {scheme!r}: give a directory, redis://, rediss://, sqlite:/// or postgresql://"
    )


def _sql(url: str, table: str | None) -> Any:
    """`SQLTokenStore` at `url`: its table from `table`, else `?table=` (taken out of the URL), else the default."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - extra "sql"

    from tiktok_oauth.stores.sql import SQLTokenStore  # noqa: PLC0415 - extra "sql"

    parsed = make_url(url)
    in_url = parsed.query.get("table")
    if isinstance(in_url, tuple):
        raise ValueError("give ?table= once in the store URL")  # noqa: TRY004 - a malformed URL: a value error
    chosen = table if table is not None else in_url
    if chosen is not None and not chosen:
        raise ValueError("an empty table name")
    parsed = parsed.difference_update_query(["table"])
    plain = parsed.render_as_string(hide_password=False)
    return SQLTokenStore(plain) if chosen is None else SQLTokenStore(plain, table=chosen)
