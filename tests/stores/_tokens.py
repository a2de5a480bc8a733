"""Sample tokens for the store tests."""

from __future__ import annotations

from typing import Any

from tiktok_oauth.token import TikTokToken


def make_token(n: int = 1, **extra: Any) -> TikTokToken:
    """A realistic user token, distinguishable by `n`."""
    return TikTokToken(
        {
            "access_token": f"act.{n}.secret-access",
            "refresh_token": f"rft.{n}.secret-refresh",
            "open_id": f"open-{n}",
            "scope": "user.info.basic,video.list",
            "expires_in": 86400,
            "refresh_expires_in": 31536000,
            # Fixed, so two calls with the same n are equal whenever they run.
            "expires_at": 2_000_000_000 + n,
            "refresh_expires_at": 2_100_000_000 + n,
            "token_type": "Bearer",
            **extra,
        }
    )
