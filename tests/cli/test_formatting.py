"""How the command line shows times, tokens and where it keeps them: pure functions."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiktok_oauth._cli._common import default_store_path, describe_token, mask, relative_time
from tiktok_oauth.token import TikTokToken

NOW = 1_750_000_000.0


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (0, "now"),
        (0.4, "now"),
        (30, "in 30 s"),
        (-30, "30 s ago"),
        (89, "in 89 s"),
        (90, "in 2 min"),
        (5 * 60, "in 5 min"),
        (89 * 60, "in 89 min"),
        (90 * 60, "in 2 h"),
        (86400 - 5, "in 24 h"),
        (23 * 3600 + 60, "in 23 h"),
        (-(47 * 3600), "47 h ago"),
        (48 * 3600, "in 2 d"),
        (-(2 * 86400 + 600), "2 d ago"),
        (365 * 86400 - 30, "in 365 d"),
    ],
)
def test_relative_time(offset: float, expected: str) -> None:
    assert relative_time(NOW + offset, NOW) == expected


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        ("act.abcDEF123", "act.***"),
        ("rft.abcDEF123", "rft.***"),
        ("clt.abcDEF123", "clt.***"),
        ("no-prefix-token", "***"),
        ("longprefix.abc", "***"),
        ("a1b.c", "***"),
        (None, "none"),
        ("", "none"),
    ],
)
def test_mask_keeps_only_tiktoks_type_prefix(secret: str | None, shown: str) -> None:
    assert mask(secret) == shown


def test_describe_token_never_shows_the_tokens() -> None:
    token = TikTokToken(
        access_token="act.SECRETaccess",
        refresh_token="rft.SECRETrefresh",
        expires_in=60,
        open_id="o",
        scope="b,a",
    )

    text = "\n".join(describe_token(token))

    assert "SECRET" not in text
    assert "  scopes:         a, b" in text
    assert "act.***, expires" in text


def test_describe_a_client_access_token() -> None:
    text = "\n".join(describe_token(TikTokToken(access_token="clt.SECRET")))

    assert "SECRET" not in text
    assert "open_id:        (none: a client access token)" in text
    assert "access token:   clt.***, expiry unknown" in text
    assert "refresh token:  none" in text


@pytest.mark.parametrize(
    ("platform", "environ", "expected"),
    [
        ("linux", {"XDG_DATA_HOME": "/data"}, "/data/tiktok-oauth/tokens"),
        ("linux", {}, "/home/u/.local/share/tiktok-oauth/tokens"),
        ("linux", {"XDG_DATA_HOME": "relative/dir"}, "/home/u/.local/share/tiktok-oauth/tokens"),
        ("darwin", {"XDG_DATA_HOME": "/data"}, "/home/u/Library/Application Support/tiktok-oauth/tokens"),
        ("win32", {"APPDATA": "/appdata"}, "/appdata/tiktok-oauth/tokens"),
        ("win32", {}, "/home/u/AppData/Roaming/tiktok-oauth/tokens"),
    ],
)
def test_default_store_path(platform: str, environ: dict[str, str], expected: str) -> None:
    assert default_store_path(platform, environ, Path("/home/u")) == Path(expected)
