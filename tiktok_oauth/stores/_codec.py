"""How every store turns a `TikTokToken` into text and back, copies it, and reads its expiry (no I/O)."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from typing import Any

from tiktok_oauth.errors import TokenStoreError
from tiktok_oauth.token import TikTokToken

__all__ = ["access_expiry", "copy_token", "decode_token", "encode_token", "expires_before"]

# A TikTok token is well under 4 KiB; anything much larger is not one of ours.
MAX_TOKEN_BYTES = 1 << 20


def copy_token(token: Mapping[str, Any]) -> TikTokToken:
    """Return an independent `TikTokToken` copy, so callers can never mutate what a store holds."""
    data = {
        name: copy.deepcopy(value) if isinstance(value, dict | list) else value
        for name, value in token.items()
    }
    return TikTokToken(data)


def encode_token(token: Mapping[str, Any], where: str) -> bytes:
    """Serialise `token` as UTF-8 JSON; `where` names the destination in the error message."""
    if not isinstance(token, Mapping):
        raise TypeError(f"a token must be a TikTokToken (a mapping), not {type(token).__name__}")
    if not isinstance(token.get("access_token"), str):
        raise ValueError("a token must have a string access_token")  # noqa: TRY004 (a bad value)
    try:
        return TikTokToken(token).to_json().encode()
    except (TypeError, ValueError):
        # Never chain: the JSON error could quote a value.
        raise TokenStoreError(f"cannot serialise the token for {where}: not JSON data") from None


def _refuse_constant(name: str) -> object:
    # NaN and Infinity are not JSON, and no token of ours contains them.
    raise ValueError(name)


def decode_token(data: bytes | str, where: str) -> TikTokToken:
    """Parse what `encode_token` wrote; `TokenStoreError` naming `where` (never the data) if corrupt."""
    if len(data) > MAX_TOKEN_BYTES:
        raise TokenStoreError(f"corrupt token in {where}: larger than {MAX_TOKEN_BYTES} bytes")
    try:
        text = data.decode() if isinstance(data, bytes) else data
        value = json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise TokenStoreError(f"corrupt token in {where}: not UTF-8") from None
    except (ValueError, RecursionError):
        raise TokenStoreError(f"corrupt token in {where}: not JSON") from None
    if not isinstance(value, dict):
        raise TokenStoreError(f"corrupt token in {where}: not a JSON object")
    if not isinstance(value.get("access_token"), str):
        raise TokenStoreError(f"corrupt token in {where}: no access_token")
    return TikTokToken(value)


def access_expiry(token: Mapping[str, Any], field: str = "expires_at") -> float | None:
    """The access token's `expires_at` (or `field`, e.g. `refresh_expires_at`) as a float, or None when
    the token has no usable one.

    The one rule every store's `expiring(before)` follows: a missing, non-numeric (booleans
    included) or non-finite expiry means "no expiry", and such a token is never listed.
    """
    value = token.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    expiry = float(value)
    return expiry if math.isfinite(expiry) else None


def expires_before(token: Mapping[str, Any], before: float, *, refresh: bool = False) -> bool:
    """Whether `token`'s access token (with `refresh`: its refresh token) expires strictly before `before`."""
    expiry = access_expiry(token, "refresh_expires_at" if refresh else "expires_at")
    return expiry is not None and expiry < before
