"""The fake's QR-code endpoints (TIKTOK.md rows 33, 34): TikTok's shapes and errors, and `scan_qr`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tiktok_oauth.testing import FakeTikTok
from tiktok_oauth.testing._models import FakeTikTokError

GET = "https://open.tiktokapis.com/v2/oauth/get_qrcode/"
CHECK = "https://open.tiktokapis.com/v2/oauth/check_qrcode/"


@pytest.fixture
def fake() -> FakeTikTok:
    return FakeTikTok("key", "secret")


@pytest.fixture
def http(fake: FakeTikTok) -> Iterator[httpx.Client]:
    with httpx.Client(transport=fake.transport()) as client:
        yield client


def _get(http: httpx.Client, **form: str) -> Any:
    return http.post(
        GET, data={"client_key": "key", "scope": "user.info.basic", "state": "s1", **form}
    ).json()


def _check(http: httpx.Client, token: str, **form: str) -> Any:
    return http.post(
        CHECK, data={"client_key": "key", "client_secret": "secret", "token": token, **form}
    ).json()


def test_get_qrcode_answers_a_scan_url_with_the_placeholder_and_a_token(http: httpx.Client) -> None:
    answer = _get(http)
    assert set(answer) == {"scan_qrcode_url", "token"}
    assert answer["scan_qrcode_url"].startswith("aweme://authorize?")
    assert answer["scan_qrcode_url"].endswith("&client_ticket=tobefilled")
    assert answer["token"] not in answer["scan_qrcode_url"]


def test_check_qrcode_answers_new_with_an_empty_ticket(http: httpx.Client) -> None:
    assert _check(http, _get(http)["token"]) == {"client_ticket": "", "status": "new"}


def test_a_confirmed_answer_carries_the_ticket_the_state_and_a_code(
    fake: FakeTikTok, http: httpx.Client
) -> None:
    answer = _get(http)
    fake.scan_qr(answer["scan_qrcode_url"].replace("tobefilled", "T1"), open_id="u9")
    confirmed = _check(http, answer["token"])
    assert confirmed["status"] == "confirmed"
    assert (confirmed["client_ticket"], confirmed["state"]) == ("T1", "s1")
    assert confirmed["redirect_uri"].startswith("https://localhost/?code=")
    assert confirmed["redirect_uri"].endswith("&state=s1")


@pytest.mark.parametrize(
    ("form", "error"),
    [({"client_secret": "wrong"}, "invalid_client"), ({"client_key": "other"}, "invalid_client")],
)
def test_check_qrcode_refuses_wrong_credentials(http: httpx.Client, form: dict[str, str], error: str) -> None:
    answer = _check(http, _get(http)["token"], **form)
    assert set(answer) == {"error", "error_description", "log_id"}
    assert answer["error"] == error


def test_check_qrcode_refuses_an_unknown_token(http: httpx.Client) -> None:
    assert _check(http, "qrt.nope")["error"] == "invalid_request"


def test_get_qrcode_needs_a_scope(http: httpx.Client) -> None:
    assert _get(http, scope="")["error"] == "invalid_request"


def test_scan_qr_refuses_an_unknown_or_used_code(fake: FakeTikTok, http: httpx.Client) -> None:
    with pytest.raises(FakeTikTokError, match="no such QR code"):
        fake.scan_qr("qrt.nope")
    token = _get(http)["token"]
    fake.scan_qr(token)
    with pytest.raises(FakeTikTokError, match="confirmed"):
        fake.scan_qr(token)


def test_fail_next_hits_the_qr_endpoints_by_name(fake: FakeTikTok, http: httpx.Client) -> None:
    fake.fail_next(429, endpoint="check_qrcode")
    token = _get(http)["token"]
    first = http.post(CHECK, data={"client_key": "key", "client_secret": "secret", "token": token})
    assert first.status_code == 429
    assert first.json()["error"] == "temporarily_unavailable"
    assert _check(http, token)["status"] == "new"
