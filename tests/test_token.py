"""TikTokToken: absolute expiries, scopes, JSON round trip, masked repr."""

from __future__ import annotations

import json

import pytest

from tiktok_oauth import TikTokToken, _clock

BODY = {
    "access_token": "act.SECRET-ACCESS-1234",
    "refresh_token": "rft.SECRET-REFRESH-5678",
    "expires_in": 3600,
    "refresh_expires_in": 86400,
    "open_id": "open-1",
    "scope": "user.info.basic,video.list",
    "token_type": "Bearer",
}


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1_000_000.0]
    monkeypatch.setattr(_clock, "now", lambda: now[0])
    return now


def test_expiries_are_absolute_and_computed_once(frozen: list[float]) -> None:
    token = TikTokToken(BODY)
    assert token["expires_at"] == 1_003_600
    assert token["refresh_expires_at"] == 1_086_400
    frozen[0] += 10
    assert TikTokToken(token)["expires_at"] == 1_003_600


def test_is_expired_uses_leeway(frozen: list[float]) -> None:
    token = TikTokToken(BODY)
    assert not token.is_expired()
    assert token.is_expired(leeway=3600)
    frozen[0] += 3600
    assert token.is_expired()


def test_is_refresh_expired(frozen: list[float]) -> None:
    token = TikTokToken(BODY)
    assert not token.is_refresh_expired()
    frozen[0] += 86400
    assert token.is_refresh_expired()
    assert not TikTokToken({"access_token": "clt.x"}).is_refresh_expired()


def test_an_edited_expires_at_is_honoured(frozen: list[float]) -> None:
    token = TikTokToken(BODY)
    token["expires_at"] = frozen[0] - 1
    assert token.is_expired()


def test_scopes_are_a_frozenset_from_the_comma_list() -> None:
    assert TikTokToken(BODY).scopes == frozenset({"user.info.basic", "video.list"})
    assert TikTokToken({"access_token": "a"}).scopes == frozenset()


def test_json_round_trip() -> None:
    token = TikTokToken(BODY)
    again = TikTokToken(json.loads(json.dumps(token)))
    assert again == token
    assert TikTokToken.from_json(token.to_json()) == token


def test_from_json_refuses_a_non_object() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        TikTokToken.from_json("[1]")


def test_properties() -> None:
    token = TikTokToken(BODY)
    assert token.access_token == BODY["access_token"]
    assert token.refresh_token == BODY["refresh_token"]
    assert token.open_id == "open-1"
    client = TikTokToken({"access_token": "clt.x", "expires_in": 7200})
    assert client.refresh_token is None
    assert client.open_id is None
    assert client.refresh_expires_at is None


@pytest.mark.parametrize("show", [repr, str, lambda t: f"{t}", lambda t: "%s" % (t,)])  # noqa: UP031
def test_repr_and_str_never_show_tokens(show: object) -> None:
    text = show(TikTokToken(BODY))  # type: ignore[operator]
    assert "SECRET" not in text
    assert "open-1" in text


def test_malformed_expires_in_is_ignored_rather_than_crashing() -> None:
    token = TikTokToken({"access_token": "a", "expires_in": "soon"})
    assert token.expires_at is None
    assert not token.is_expired()
