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
    url: str | os.PathLike[str], *, encryption_key: str | bytes | Sequence[str | bytes] | None = None
) -> Any:
    """The store `url` names, connecting only when first used.

    - a directory path (or `file:///path`): `FileTokenStore`;
    - `redis://` / `rediss://`: `RedisTokenStore` (redis-py, with 5 s socket timeouts);
    - `sqlite:///...`, `postgresql://...` (or an SQLAlchemy `+driver` form): `SQLTokenStore` (psycopg 3 for
      PostgreSQL).

    `encryption_key` (one Fernet key, several comma-separated in one string, or a list: the first encrypts)
    wraps the store in an `EncryptedTokenStore`; an empty one (`""`, `b""`, `[]`) raises `ValueError`, never
    turning encryption off. Only `None` means "not encrypted".
    """
    store = _plain(os.fspath(url))
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


def _plain(url: str) -> Any:
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    base = scheme.split("+", 1)[0]
    if not scheme or scheme == "file":
        from tiktok_oauth.stores.file import FileTokenStore  # noqa: PLC0415

        path = urlsplit(url).path if scheme == "file" else url
        return FileTokenStore(Path(path).expanduser())
    if base in _REDIS_SCHEMES:
        import redis  # noqa: PLC0415 - extra "redis"

        from tiktok_oauth.stores.redis import RedisTokenStore  # noqa: PLC0415

        return RedisTokenStore(redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5))
    if base in _SQL_SCHEMES:
        from tiktok_oauth.stores.sql import SQLTokenStore  # noqa: PLC0415 - extra "sql"

        return SQLTokenStore(url)
    raise ValueError(
        f"unknown store URL scheme {scheme!r}: give a directory, redis://, rediss://, sqlite:/// or postgresql://"
    )
