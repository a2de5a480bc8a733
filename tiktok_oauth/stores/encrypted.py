"""`EncryptedTokenStore`: field-level Fernet encryption over any token store, sync or async.

`access_token` and `refresh_token` become Fernet ciphertext in the inner store; `open_id`, `scope` and the
expiries stay readable, so listing (`keys`, `expiring`) works without the key. There is no plaintext
fallback: a token that does not decrypt, or that was stored unencrypted, is a `TokenStoreError`.

Fernet has no associated data, so each secret is encrypted inside a small envelope naming the store key and
the field it was written for, and opening checks both: a ciphertext copied under another key (by someone who
can write the inner store but holds no key), or from `access_token` to `refresh_token`, is refused. Secrets
written before the envelope existed (the bare token, no marker) still open; `set` always writes the envelope,
so they are bound on their next write.
`cryptography` (a dependency of Authlib) is imported on first use.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Self

from tiktok_oauth.errors import TokenStoreError
from tiktok_oauth.token import TikTokToken

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

__all__ = ["AsyncEncryptedTokenStore", "EncryptedTokenStore"]

_SECRET_FIELDS: Final = ("access_token", "refresh_token")
#: What the wrapper passes through to the inner store, when (and only when) the inner store has it.
_DELEGATED: Final = frozenset({"lock", "alock", "keys", "expiring", "lock_timeout", "lock_blocking_timeout"})
_FERNET_PREFIX: Final = "gAAAAA"  # every Fernet token starts so (version byte 0x80, then the timestamp)
#: What every enveloped plaintext starts with. A NUL never begins a token, so the secrets of earlier
#: versions (the bare token) are told apart from it.
_ENVELOPE_V1: Final = b"\x00tiktok-oauth/1\x00"


def holds_ciphertext(token: Mapping[str, Any]) -> bool:
    """Whether `token`, read from an inner store without the key, holds a secret as this wrapper writes it.

    Such a token is of no use without the key, and is never to be sent to TikTok.
    """
    return any(
        isinstance(value, str) and value.startswith(_FERNET_PREFIX)
        for value in (token.get(name) for name in _SECRET_FIELDS)
    )


def _envelope(key: str, field: str, value: str) -> bytes:
    """The plaintext that binds `value` to the store key and the field it is written under."""
    bound = json.dumps({"key": key, "field": field, "value": value}, separators=(",", ":"))
    return _ENVELOPE_V1 + bound.encode()


def _unseal(key: str, field: str, plaintext: bytes) -> str | None:
    """The secret in `plaintext` if it was written for `key` and `field`, else None.

    A plaintext without the envelope's marker is a secret written by an earlier version: it opens as it is.
    """
    if not plaintext.startswith(_ENVELOPE_V1):
        return plaintext.decode()
    try:
        bound = json.loads(plaintext[len(_ENVELOPE_V1) :])
    except ValueError:  # only the key's holder writes envelopes: this one is not ours
        return None
    if not isinstance(bound, dict) or bound.get("key") != key or bound.get("field") != field:
        return None
    value = bound.get("value")
    return value if isinstance(value, str) else None


def _fernets(keys: Any) -> list[Fernet]:
    from cryptography.fernet import Fernet  # noqa: PLC0415 - lazy: not needed by import

    items = [keys] if isinstance(keys, str | bytes | Fernet) else list(keys)
    if not items:
        raise ValueError("EncryptedTokenStore needs at least one key: encryption is never silently off")
    fernets: list[Fernet] = []
    for item in items:
        if isinstance(item, Fernet):
            fernets.append(item)
            continue
        if isinstance(item, str | bytes) and not item.strip():
            raise ValueError("an encryption key is empty: encryption is never silently off")
        try:
            fernets.append(Fernet(item))
        except (ValueError, TypeError):
            raise ValueError(
                "an encryption key is a Fernet key: 32 url-safe base64-encoded bytes "
                "(make one with cryptography.fernet.Fernet.generate_key())"
            ) from None
    return fernets


class _Cipher:
    """The encryption, written once for the sync and the async store."""

    def __init__(self, keys: str | bytes | Fernet | Iterable[str | bytes | Fernet]) -> None:
        from cryptography.fernet import MultiFernet  # noqa: PLC0415

        fernets = _fernets(keys)
        self.key_count = len(fernets)
        self._fernet = MultiFernet(fernets)

    def seal(self, key: str, token: TikTokToken) -> TikTokToken:
        sealed = dict(token)
        for name in _SECRET_FIELDS:
            value = sealed.get(name)
            if isinstance(value, str) and value:
                sealed[name] = self._fernet.encrypt(_envelope(key, name, value)).decode("ascii")
        return TikTokToken(sealed)

    def open(self, key: str, stored: TikTokToken | None) -> TikTokToken | None:
        from cryptography.fernet import InvalidToken  # noqa: PLC0415

        if stored is None:
            return None
        opened = dict(stored)
        for name in _SECRET_FIELDS:
            value = opened.get(name)
            if value is None:
                continue
            if not isinstance(value, str) or not value.startswith(_FERNET_PREFIX):
                raise TokenStoreError(
                    f"the token under key {key!r} is not encrypted: refused (EncryptedTokenStore never "
                    "uses a plaintext token)"
                )
            try:
                secret = _unseal(key, name, self._fernet.decrypt(value.encode("ascii")))
            except (InvalidToken, UnicodeError, ValueError):
                raise TokenStoreError(
                    f"the token under key {key!r} does not decrypt: tampered, or encrypted with a key not given"
                ) from None
            if secret is None:
                raise TokenStoreError(
                    f"the token under key {key!r} was not written there: its {name} was encrypted for "
                    "another key or field (copied in the store): refused"
                )
            opened[name] = secret
        return TikTokToken(opened)


class _Wrapper:
    _inner: Any
    _cipher: _Cipher

    def _wrap(self, inner: Any, keys: Any) -> None:
        self._inner = inner
        self._cipher = _Cipher(keys)
        # Only what the inner store really has, so `hasattr(store, "lock")` stays honest. Instance
        # attributes, not `__getattr__`: protocol checks (`isinstance`, Python 3.12+) look them up statically.
        for name in _DELEGATED:
            if hasattr(inner, name):
                setattr(self, name, getattr(inner, name))

    @property
    def inner(self) -> Any:
        """The wrapped store, which holds the ciphertext."""
        return self._inner

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._inner!r}, keys=<{self._cipher.key_count} Fernet key(s)>)"


class EncryptedTokenStore(_Wrapper):
    """Encrypts `access_token` and `refresh_token` with Fernet before they reach `inner`.

    Given an async store, `EncryptedTokenStore(...)` returns an `AsyncEncryptedTokenStore`.

    Args:
        inner: any `TokenStore` (or `AsyncTokenStore`). Its `lock`, `alock`, `keys`, `expiring` and wait
            limits are offered as they are.
        keys: a Fernet key (`str` or `bytes`) or `Fernet`, or a list of them: the first encrypts, all
            decrypt, so a new key goes first and old ones stay until every token was written again.
    """

    def __new__(cls, inner: Any = None, *args: Any, **kwargs: Any) -> Self:
        import inspect  # noqa: PLC0415

        if cls is EncryptedTokenStore and inspect.iscoroutinefunction(getattr(inner, "get", None)):
            return AsyncEncryptedTokenStore(inner, *args, **kwargs)  # type: ignore[return-value]
        return super().__new__(cls)

    def __init__(self, inner: Any, keys: str | bytes | Fernet | Iterable[str | bytes | Fernet]) -> None:
        self._wrap(inner, keys)

    def get(self, key: str) -> TikTokToken | None:
        """The decrypted token under `key`, or None; `TokenStoreError` if it does not decrypt."""
        return self._cipher.open(key, self._inner.get(key))

    def set(self, key: str, token: TikTokToken) -> None:
        """Encrypt `token`'s secrets with the first key and store it."""
        self._inner.set(key, self._cipher.seal(key, token))

    def delete(self, key: str) -> None:
        """Remove the token under `key`."""
        self._inner.delete(key)


class AsyncEncryptedTokenStore(_Wrapper):
    """`EncryptedTokenStore` over an `AsyncTokenStore`: the same, with coroutine methods."""

    def __init__(self, inner: Any, keys: str | bytes | Fernet | Iterable[str | bytes | Fernet]) -> None:
        self._wrap(inner, keys)

    async def get(self, key: str) -> TikTokToken | None:
        """The decrypted token under `key`, or None; `TokenStoreError` if it does not decrypt."""
        return self._cipher.open(key, await self._inner.get(key))

    async def set(self, key: str, token: TikTokToken) -> None:
        """Encrypt `token`'s secrets with the first key and store it."""
        await self._inner.set(key, self._cipher.seal(key, token))

    async def delete(self, key: str) -> None:
        """Remove the token under `key`."""
        await self._inner.delete(key)
