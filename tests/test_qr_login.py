"""QR-code login (API.md section 13) on both clients, against the fake through transports and served."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.conftest import SECRET, Harness
from tiktok_oauth import (
    AsyncTikTokOAuth2Client,
    QRCodeExpiredError,
    QRLogin,
    RateLimitedError,
    StateMismatchError,
    TikTokOAuth2Client,
    TikTokOAuthError,
)
from tiktok_oauth._protocol import Sleep
from tiktok_oauth._qrcode import Poll, QRAnswer, answer_from, login_from, qrcode_urls, waiting
from tiktok_oauth.errors import TikTokServerError
from tiktok_oauth.testing import FakeTikTok
from tiktok_oauth.testing._models import FakeTikTokError


def _forms(fake: FakeTikTok, path: str) -> list[dict[str, str]]:
    return [
        dict(parse_qsl(request.body.decode()))
        for request in fake.requests
        if urlsplit(request.url).path == path
    ]


def _checks(fake: FakeTikTok) -> list[dict[str, str]]:
    return _forms(fake, "/v2/oauth/check_qrcode/")


# -- the flow, status by status ----------------------------------------------------------------------


def test_a_qr_code_goes_new_scanned_confirmed_then_utilised(harness: Harness) -> None:
    qr = harness.call("start_qr_login")
    assert harness.call("check_qr_login", qr) == "new"
    harness.fake.scan_qr(qr.scan_url, confirm=False)
    assert harness.call("check_qr_login", qr) == "scanned"
    harness.fake.scan_qr(qr.scan_url, open_id="u7")
    assert harness.call("check_qr_login", qr) == "confirmed"
    token = harness.call("wait_qr_login", qr, interval=0.05, timeout=30)
    assert token.open_id == "u7"
    assert token.scopes == {"user.info.basic", "video.list"}
    assert harness.call("check_qr_login", qr) == "utilised"


def test_wait_hears_each_change_of_status_once_and_returns_the_token(harness: Harness) -> None:
    heard: list[str] = []
    qr = harness.call("start_qr_login", scope="user.info.basic")

    def phone(status: str) -> None:
        heard.append(status)
        if status == "new":
            harness.fake.scan_qr(qr.scan_url, confirm=False)
        elif status == "scanned":
            harness.fake.scan_qr(qr.scan_url, open_id="u1")

    token = harness.call("wait_qr_login", qr, interval=0.05, timeout=30, on_status=phone)
    assert heard == ["new", "scanned", "confirmed"]
    assert (token.open_id, token.scopes) == ("u1", {"user.info.basic"})


def test_the_code_is_exchanged_for_the_redirect_uri_it_was_issued_for(harness: Harness) -> None:
    harness.fake.qr_redirect_uri = "https://app.example/tiktok/qr/"
    qr = harness.call("start_qr_login")
    harness.fake.scan_qr(qr.scan_url)
    harness.call("wait_qr_login", qr, interval=0.05, timeout=30)
    (exchange,) = harness.fake.token_requests
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["redirect_uri"] == "https://app.example/tiktok/qr/"  # without the code and state
    assert "*0!" in exchange["code"]  # TikTok-shaped, decoded exactly once


def test_start_sends_key_comma_scope_and_state_and_no_secret(harness: Harness) -> None:
    qr = harness.call("start_qr_login", scope=("user.info.basic", "video.list"), state="my-state")
    (form,) = _forms(harness.fake, "/v2/oauth/get_qrcode/")
    assert form == {"client_key": "test-key", "scope": "user.info.basic,video.list", "state": "my-state"}
    assert qr.state == "my-state"
    assert all(SECRET not in request.url for request in harness.fake.requests)


def test_start_makes_a_new_url_safe_ticket_and_state_and_fills_the_scan_url(harness: Harness) -> None:
    first, second = harness.call("start_qr_login"), harness.call("start_qr_login")
    for qr in (first, second):
        assert "tobefilled" not in qr.scan_url
        assert dict(parse_qsl(urlsplit(qr.scan_url).query))["client_ticket"] == qr.client_ticket
        assert len(qr.client_ticket) >= 43
        assert set(qr.client_ticket) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )
        assert len(qr.state) >= 43
    assert first.client_ticket != second.client_ticket
    assert first.state != second.state
    assert first.token != second.token


def test_check_sends_key_secret_and_token(harness: Harness) -> None:
    qr = harness.call("start_qr_login")
    harness.call("check_qr_login", qr)
    assert _checks(harness.fake) == [{"client_key": "test-key", "client_secret": SECRET, "token": qr.token}]


# -- someone else's scan, someone else's state --------------------------------------------------------


def test_a_scan_with_another_ticket_is_a_state_mismatch(harness: Harness) -> None:
    qr = harness.call("start_qr_login")
    harness.fake.scan_qr(qr.scan_url.replace(qr.client_ticket, "someone-elses-ticket"), confirm=False)
    with pytest.raises(StateMismatchError, match="client_ticket"):
        harness.call("check_qr_login", qr)
    with pytest.raises(StateMismatchError):
        harness.call("wait_qr_login", qr, interval=0.05, timeout=30)
    assert harness.fake.token_requests == []


def test_a_scan_without_our_ticket_is_a_state_mismatch(harness: Harness) -> None:
    qr = harness.call("start_qr_login")
    harness.fake.scan_qr(qr.token)  # the phone sent no ticket: the code was not drawn from our scan URL
    with pytest.raises(StateMismatchError, match="without our client_ticket"):
        harness.call("check_qr_login", qr)
    assert harness.fake.token_requests == []


def test_a_confirmation_with_another_state_is_a_state_mismatch(harness: Harness) -> None:
    qr = harness.call("start_qr_login", state="the-state-we-sent")
    harness.fake.scan_qr(qr.scan_url)
    ours_by_mistake = dataclasses.replace(qr, state="another-state")
    with pytest.raises(StateMismatchError, match="state"):
        harness.call("check_qr_login", ours_by_mistake)
    with pytest.raises(StateMismatchError):
        harness.call("wait_qr_login", ours_by_mistake, interval=0.05, timeout=30)
    assert harness.fake.token_requests == []
    assert harness.call("check_qr_login", qr) == "confirmed"


# -- expiry, timeout, rate limits, errors --------------------------------------------------------------


def test_an_unconfirmed_code_expires_after_qr_ttl(harness: Harness, clock: Callable[[float], None]) -> None:
    harness.fake.qr_ttl = 120
    qr = harness.call("start_qr_login")
    harness.fake.scan_qr(qr.scan_url, confirm=False)
    clock(119)
    assert harness.call("check_qr_login", qr) == "scanned"
    clock(2)
    assert harness.call("check_qr_login", qr) == "expired"
    with pytest.raises(QRCodeExpiredError) as caught:
        harness.call("wait_qr_login", qr, interval=0.05, timeout=30)
    assert caught.value.error == "expired"
    with pytest.raises(FakeTikTokError, match="expired"):
        harness.fake.scan_qr(qr.scan_url)


def test_a_used_code_ends_the_wait(harness: Harness) -> None:
    qr = harness.call("start_qr_login")
    harness.fake.scan_qr(qr.scan_url)
    harness.call("wait_qr_login", qr, interval=0.05, timeout=30)
    with pytest.raises(QRCodeExpiredError) as caught:
        harness.call("wait_qr_login", qr, interval=0.05, timeout=30)
    assert caught.value.error == "utilised"


def test_the_wait_ends_at_its_timeout(harness: Harness) -> None:
    qr = harness.call("start_qr_login")
    heard: list[str] = []
    started = time.monotonic()
    with pytest.raises(QRCodeExpiredError) as caught:
        harness.call("wait_qr_login", qr, interval=0.05, timeout=0.3, on_status=heard.append)
    assert caught.value.error == "timeout"
    assert 0.3 <= time.monotonic() - started < 10
    assert len(_checks(harness.fake)) >= 2
    assert heard == ["new"]  # polled many times, heard once


def test_a_429_while_polling_is_waited_out(harness: Harness) -> None:
    qr = harness.call("start_qr_login")
    harness.fake.scan_qr(qr.scan_url)
    harness.fake.fail_next(429, times=2, endpoint="check_qrcode")  # no Retry-After: reported, not retried
    with pytest.raises(RateLimitedError):
        harness.call("check_qr_login", qr)
    token = harness.call("wait_qr_login", qr, interval=0.05, timeout=30)
    assert token.open_id == "u1"
    assert len(_checks(harness.fake)) == 3


def test_a_429_with_retry_after_delays_the_next_poll(fake: FakeTikTok) -> None:
    with fake.serve() as base, TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(base)) as client:
        qr = client.start_qr_login()
        fake.scan_qr(qr.scan_url)
        # 2.5 s is longer than a call sits through by itself (2 s), so the wait must honour it.
        fake.fail_next(429, headers={"retry-after": "2.5"}, endpoint="check_qrcode")
        started = time.monotonic()
        token = client.wait_qr_login(qr, interval=0.05, timeout=30)
        assert time.monotonic() - started >= 2.5
    assert token.open_id == "u1"
    assert len(_checks(fake)) == 2


def test_a_503_at_get_qrcode_is_retried_inside_the_call(harness: Harness) -> None:
    harness.fake.fail_next(503, endpoint="get_qrcode")
    qr = harness.call("start_qr_login")
    assert harness.call("check_qr_login", qr) == "new"
    assert len(_forms(harness.fake, "/v2/oauth/get_qrcode/")) == 2


def test_a_wrong_secret_is_refused_at_check_qrcode(fake: FakeTikTok) -> None:
    with fake.serve() as base, TikTokOAuth2Client("test-key", "wrong", **fake.endpoints(base)) as client:
        qr = client.start_qr_login()  # needs no secret
        with pytest.raises(TikTokOAuthError) as caught:
            client.check_qr_login(qr)
    assert caught.value.error == "invalid_client"
    assert caught.value.log_id


def test_a_wrong_client_key_is_refused_at_get_qrcode(fake: FakeTikTok) -> None:
    with (
        fake.serve() as base,
        TikTokOAuth2Client("other-key", SECRET, **fake.endpoints(base)) as client,
        pytest.raises(TikTokOAuthError) as caught,
    ):
        client.start_qr_login()
    assert caught.value.error == "invalid_client"


def test_the_qr_endpoints_sit_beside_the_token_endpoint() -> None:
    assert TikTokOAuth2Client("k", "s")._get_qrcode_url == "https://open.tiktokapis.com/v2/oauth/get_qrcode/"
    assert qrcode_urls("http://127.0.0.1:8123/v2/oauth/token/") == (
        "http://127.0.0.1:8123/v2/oauth/get_qrcode/",
        "http://127.0.0.1:8123/v2/oauth/check_qrcode/",
    )


# -- async cancellation ---------------------------------------------------------------------------------


def test_cancelling_the_async_wait_leaves_nothing_behind(fake: FakeTikTok) -> None:
    async def scenario(base: str) -> None:
        async with AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(base)) as client:
            qr = await client.start_qr_login()
            polled = asyncio.Event()
            wait = asyncio.create_task(
                client.wait_qr_login(qr, interval=0.05, timeout=60, on_status=lambda _: polled.set())
            )
            await asyncio.wait_for(polled.wait(), timeout=30)
            wait.cancel()
            with pytest.raises(asyncio.CancelledError):
                await wait
            assert asyncio.all_tasks() == {asyncio.current_task()}
            assert not client._calls
            # The client goes on working after the cancellation.
            fake.scan_qr(qr.scan_url)
            token = await client.wait_qr_login(qr, interval=0.05, timeout=30)
            assert token.open_id == "u1"

    with fake.serve() as base:
        asyncio.run(scenario(base))


# -- the rules, without I/O --------------------------------------------------------------------------------

QR = QRLogin(
    scan_url="aweme://authorize?client_ticket=" + "T" * 43, token="qrt.x", state="S", client_ticket="T" * 43
)


@pytest.mark.parametrize("status", ["new", "expired"])
def test_an_empty_ticket_is_fine_before_the_scan(status: str) -> None:
    assert answer_from({"client_ticket": "", "status": status}, QR) == QRAnswer(status)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", ["scanned", "confirmed"])
def test_a_scanned_or_confirmed_answer_needs_our_ticket(status: str) -> None:
    with pytest.raises(StateMismatchError):
        answer_from({"status": status, "state": "S", "redirect_uri": "https://a/?code=c"}, QR)


def test_a_confirmed_answer_gives_the_code_decoded_once_and_the_redirect_without_query() -> None:
    answer = {
        "client_ticket": QR.client_ticket,
        "status": "confirmed",
        "state": "S",
        "redirect_uri": "https://app.example/cb/?code=abc%2A0%21x%2541&state=S",
    }
    assert answer_from(answer, QR) == QRAnswer("confirmed", "abc*0!x%41", "https://app.example/cb/")


def test_an_unknown_status_is_a_server_error() -> None:
    with pytest.raises(TikTokServerError):
        answer_from({"status": "teleported"}, QR)


def test_a_scan_url_without_the_placeholder_is_a_server_error() -> None:
    with pytest.raises(TikTokServerError):
        login_from({"scan_qrcode_url": "aweme://authorize?x=1", "token": "t"}, state="s", client_ticket="T")


def test_the_wait_sleeps_a_429s_retry_after_when_longer_than_the_interval() -> None:
    steps = waiting(interval=2.0, timeout=300.0)
    assert next(steps) == Poll()
    assert steps.send(RateLimitedError("slow", retry_after=30.0)) == Sleep(30.0)
    assert steps.send(None) == Poll()
    assert steps.send(RateLimitedError("slow")) == Sleep(2.0)
    assert steps.send(None) == Poll()
    assert steps.send(QRAnswer("new")) == Sleep(2.0)


def test_qr_login_repr_hides_the_token_and_the_ticket() -> None:
    qr = QRLogin(
        scan_url="aweme://authorize?t=qrt.SECRETTOKEN123&client_ticket=TICKETSECRET456",
        token="qrt.SECRETTOKEN123",
        state="state",
        client_ticket="TICKETSECRET456",
    )
    text = repr(qr)
    assert "SECRETTOKEN123" not in text
    assert "TICKETSECRET456" not in text
    assert "state='state'" in text
