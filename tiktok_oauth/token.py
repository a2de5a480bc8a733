"""`TikTokToken`: the token TikTok issues, as an Authlib `OAuth2Token` with TikTok's extra fields."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Token

from tiktok_oauth import _clock

__all__ = ["TikTokToken", "parse_scope"]


def parse_scope(scope: object) -> frozenset[str]:
    """Split TikTok's comma-separated scope string (TIKTOK.md row 3) into a set of scope names."""
    if not isinstance(scope, str):
        return frozenset()
    return frozenset(part.strip() for part in scope.split(",") if part.strip())


def _absolute(seconds: object, received_at: float) -> int | None:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float | str):
        return None
    try:
        return int(received_at + float(seconds))
    except (ValueError, OverflowError):  # "soon", "inf", 1e400, 10**400: not a lifetime
        return None


class TikTokToken(OAuth2Token):  # type: ignore[misc]
    """A TikTok token: a `dict` of what the token endpoint returned, plus absolute expiries.

    It always holds `expires_at` and, when TikTok sent `refresh_expires_in`, `refresh_expires_at`: epoch
    seconds computed once, when the response arrived. Because it is a plain `dict`,
    `json.dumps(token)` serialises it and `TikTokToken(json.loads(s))` restores it; the properties read the
    dict every time, so a stored token whose `expires_at` was edited is judged by the new value.

    `repr()` and `str()` never show the access or refresh token.
    """

    def __init__(self, params: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        data: dict[str, Any] = {**(params or {}), **kwargs}
        received_at = _clock.now()
        if data.get("expires_at") is None:
            expires_at = _absolute(data.get("expires_in"), received_at)
            if expires_at is not None:
                data["expires_at"] = expires_at
                data.setdefault("issued_at", int(received_at))  # an answer just arrived from TikTok
        if data.get("refresh_expires_at") is None:
            refresh_expires_at = _absolute(data.get("refresh_expires_in"), received_at)
            if refresh_expires_at is not None:
                data["refresh_expires_at"] = refresh_expires_at
        dict.__init__(self, data)

    @classmethod
    def from_json(cls, text: str | bytes) -> TikTokToken:
        """Restore a token written by `to_json()` (or `json.dumps(token)`)."""
        try:
            data = json.loads(text)
        except RecursionError:  # nesting deeper than the parser goes: not a token either
            raise ValueError("a token must be a JSON object") from None
        if not isinstance(data, dict):
            raise ValueError("a token must be a JSON object")  # noqa: TRY004 - a parse error, like json's
        return cls(data)

    def to_json(self) -> str:
        """Serialise the token (secrets included: this is what stores write)."""
        return json.dumps(self, sort_keys=True, separators=(",", ":"))

    @property
    def access_token(self) -> str:
        """The access token (`act.` for a user, `clt.` for a client access token)."""
        return str(self["access_token"])

    @property
    def refresh_token(self) -> str | None:
        """The refresh token, or None (client access tokens have none)."""
        value = self.get("refresh_token")
        return str(value) if value else None

    @property
    def open_id(self) -> str | None:
        """The user's `open_id`, or None for a client access token."""
        value = self.get("open_id")
        return str(value) if value else None

    @property
    def scopes(self) -> frozenset[str]:
        """The granted scopes, parsed from TikTok's comma-separated `scope`."""
        return parse_scope(self.get("scope"))

    @property
    def expires_at(self) -> float | None:
        """When the access token expires, in epoch seconds."""
        return _as_float(self.get("expires_at"))

    @property
    def refresh_expires_at(self) -> float | None:
        """When the refresh token expires, in epoch seconds, or None when unknown."""
        return _as_float(self.get("refresh_expires_at"))

    @property
    def issued_at(self) -> float | None:
        """When TikTok's answer holding this token arrived, in epoch seconds (None for tokens stored by
        versions before 0.2)."""
        return _as_float(self.get("issued_at"))

    @property
    def needs_login(self) -> bool:
        """Whether the user must log in again: the refresh ended in `invalid_grant`, or a webhook said
        the user removed the app. Such a token stays stored, marked, and is never sent to TikTok again."""
        return self.get("needs_login") is True

    def is_expired(self, leeway: float = 0) -> bool:
        """Whether the access token has expired, or will within `leeway` seconds."""
        expires_at = self.expires_at
        return expires_at is not None and expires_at - leeway <= _clock.now()

    def is_refresh_expired(self, leeway: float = 0) -> bool:
        """Whether the refresh token has expired (or will within `leeway` seconds); False when unknown."""
        refresh_expires_at = self.refresh_expires_at
        return refresh_expires_at is not None and refresh_expires_at - leeway <= _clock.now()

    def __repr__(self) -> str:
        fields = [
            f"open_id={self.open_id!r}",
            f"scopes={sorted(self.scopes)!r}",
            f"expires_at={self.expires_at!r}",
            f"refresh_expires_at={self.refresh_expires_at!r}",
            *(["needs_login=True"] if self.needs_login else []),
            "access_token='***'",
            f"refresh_token={'***' if self.refresh_token else None!r}",
        ]
        return f"TikTokToken({', '.join(fields)})"

    __str__ = __repr__


def _as_float(value: object) -> float | None:
    """A finite number of epoch seconds, or None for anything else (a bool, text, NaN, 10**400)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
