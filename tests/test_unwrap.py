"""`unwrap()`: data API answers from requests, httpx and niquests (and raw bytes) against the served fake."""

from __future__ import annotations

import asyncio
import email.utils
import json
import pickle
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import httpx
import niquests
import pytest
import requests

import tiktok_oauth
from tiktok_oauth import (
    RateLimitedError,
    TikTokAPIError,
    TikTokOAuthError,
    TikTokServerError,
    unwrap,
)
from tiktok_oauth.testing import FakeTikTok

LOG_ID = "20240101000000ABCDEF0123456789ABCDEF"


def envelope(code: str, message: str = "", data: dict[str, Any] | None = None) -> bytes:
    return json.dumps(
        {"data": data or {}, "error": {"code": code, "message": message, "log_id": LOG_ID}}
    ).encode()


@pytest.fixture
def served() -> Iterator[tuple[FakeTikTok, str]]:
    fake = FakeTikTok()
    with fake.serve() as base_url:
        yield fake, base_url


def _get_requests(url: str, headers: dict[str, str]) -> Any:
    with requests.Session() as session:
        return session.get(url, headers=headers)


def _get_httpx(url: str, headers: dict[str, str]) -> Any:
    with httpx.Client() as client:
        return client.get(url, headers=headers)


def _get_niquests(url: str, headers: dict[str, str]) -> Any:
    with niquests.Session() as session:
        return session.get(url, headers=headers)


CLIENTS: dict[str, Callable[[str, dict[str, str]], Any]] = {
    "requests": _get_requests,
    "httpx": _get_httpx,
    "niquests": _get_niquests,
}


@pytest.fixture(params=sorted(CLIENTS))
def get(request: pytest.FixtureRequest, served: tuple[FakeTikTok, str]) -> Callable[..., Any]:
    """GET the served fake's user info (a path and query of choice) with a bearer token, by one client."""
    fake, base_url = served
    send = CLIENTS[request.param]

    def call(token: str | None = None, url: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return send(url or fake.user_info_url(base_url), headers)

    return call


def a_token(fake: FakeTikTok, scopes: tuple[str, ...] = ("user.info.basic", "video.list")) -> str:
    token: str = fake.issue_token(open_id="alice", scopes=scopes)["access_token"]
    return token


# -- success ---------------------------------------------------------------------------------------


def test_ok_returns_the_data(served: tuple[FakeTikTok, str], get: Callable[..., Any]) -> None:
    data = unwrap(get(a_token(served[0])))
    assert data["user"]["open_id"] == "alice"
    assert set(data["user"]) == {"open_id", "union_id", "avatar_url", "display_name"}


def test_ok_from_raw_bytes() -> None:
    assert unwrap(envelope("ok", data={"user": {"open_id": "u"}}), status=200) == {"user": {"open_id": "u"}}


def test_ok_with_null_data_is_an_empty_dict() -> None:
    body = json.dumps({"data": None, "error": {"code": "ok", "message": "", "log_id": LOG_ID}}).encode()
    assert unwrap(body, status=200) == {}


def test_envelope_without_error_object_but_with_data_is_data() -> None:
    assert unwrap(b'{"data": {"videos": []}}', status=200) == {"videos": []}


# -- TikTok's documented data API error codes, as the fake answers them ----------------------------


def test_access_token_invalid_401(get: Callable[..., Any]) -> None:
    with pytest.raises(TikTokAPIError) as caught:
        unwrap(get("act.not-a-token"))
    assert caught.value.error == "access_token_invalid"
    assert caught.value.status_code == 401
    assert caught.value.description == "The access token is invalid or not found in the request."
    assert caught.value.log_id is not None
    assert len(caught.value.log_id) == 34


def test_scope_not_authorized_401(served: tuple[FakeTikTok, str], get: Callable[..., Any]) -> None:
    with pytest.raises(TikTokAPIError) as caught:
        unwrap(get(a_token(served[0], scopes=("video.list",))))
    assert (caught.value.error, caught.value.status_code) == ("scope_not_authorized", 401)


def test_invalid_params_400(served: tuple[FakeTikTok, str], get: Callable[..., Any]) -> None:
    fake, base_url = served
    with pytest.raises(TikTokAPIError) as caught:
        unwrap(get(a_token(fake), url=f"{base_url}/v2/user/info/"))  # no fields
    assert (caught.value.error, caught.value.status_code) == ("invalid_params", 400)
    assert "fields" in caught.value.description


def test_scope_permission_missed_400(served: tuple[FakeTikTok, str], get: Callable[..., Any]) -> None:
    fake = served[0]
    message = "The app is not approved for the scope this request needs."
    fake.fail_next(400, envelope("scope_permission_missed", message), endpoint="user_info")
    with pytest.raises(TikTokAPIError) as caught:
        unwrap(get(a_token(fake)))
    error = caught.value
    assert (error.error, error.description, error.log_id, error.status_code) == (
        "scope_permission_missed",
        message,
        LOG_ID,
        400,
    )


def test_rate_limit_exceeded_429_with_retry_after(
    served: tuple[FakeTikTok, str], get: Callable[..., Any]
) -> None:
    fake = served[0]
    body = envelope("rate_limit_exceeded", "Too many requests.")
    fake.fail_next(
        429, body, headers={"Content-Type": "application/json", "Retry-After": "30"}, endpoint=None
    )
    with pytest.raises(RateLimitedError) as caught:
        unwrap(get(a_token(fake)))
    assert (caught.value.error, caught.value.status_code, caught.value.retry_after) == (
        "rate_limit_exceeded",
        429,
        30.0,
    )
    assert caught.value.log_id == LOG_ID


def test_rate_limit_exceeded_without_retry_after(
    served: tuple[FakeTikTok, str], get: Callable[..., Any]
) -> None:
    fake = served[0]
    fake.fail_next(429, envelope("rate_limit_exceeded"), endpoint="user_info")
    with pytest.raises(RateLimitedError) as caught:
        unwrap(get(a_token(fake)))
    assert caught.value.retry_after is None
    assert caught.value.description == "TikTok's rate limit was hit"


def test_internal_error_500(served: tuple[FakeTikTok, str], get: Callable[..., Any]) -> None:
    fake = served[0]
    fake.fail_next(500, endpoint="user_info")  # the fake's default: an internal_error envelope
    with pytest.raises(TikTokServerError) as caught:
        unwrap(get(a_token(fake)))
    assert (caught.value.error, caught.value.status_code, caught.value.retryable) == (
        "internal_error",
        500,
        True,
    )
    assert caught.value.log_id is not None


# -- bodies that are not the envelope ----------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param((200, "text/plain", b"upstream said hello", True), id="non-JSON 200"),
        pytest.param((502, "text/html", b"<html><h1>502 Bad Gateway</h1></html>", True), id="HTML 502"),
        pytest.param((200, "text/html", b"<!doctype html><title>TikTok</title>", True), id="HTML 200"),
        pytest.param((404, "text/plain", b"Unsupported path(Janus)", False), id="text 404"),
        pytest.param((503, "application/json", b'{"message": "overloaded"}', True), id="5xx JSON"),
        pytest.param((200, "application/json", b"", True), id="empty 200"),
        pytest.param((200, "application/json", b'{"data": {"us', True), id="truncated JSON"),
        pytest.param((200, "application/json", b"[1, 2]", True), id="JSON array"),
        pytest.param((200, "application/json", b'"ok"', True), id="JSON string"),
        pytest.param(
            (200, "application/json", b'{"data": "x", "error": {"code": "ok"}}', True),
            id="data not an object",
        ),
        pytest.param((200, "application/json", b'{"user": {}}', True), id="object without data or error"),
        pytest.param((200, "application/json", b"\xff\xfe{}", True), id="invalid UTF-8"),
    ],
)
def test_a_body_that_is_not_the_envelope_is_a_server_error(
    served: tuple[FakeTikTok, str],
    get: Callable[..., Any],
    answer: tuple[int, str, bytes, bool],
) -> None:
    fake = served[0]
    status, content_type, body, retryable = answer
    fake.fail_next(status, body, headers={"Content-Type": content_type}, endpoint="user_info")
    with pytest.raises(TikTokServerError) as caught:
        unwrap(get(a_token(fake)))
    assert caught.value.status_code == status
    assert caught.value.retryable is retryable
    assert type(caught.value) is TikTokServerError


def test_5xx_with_retry_after_carries_it() -> None:
    with pytest.raises(TikTokServerError) as caught:
        unwrap(b"", status=503, headers={"Retry-After": "7"})
    assert caught.value.retry_after == 7.0


# -- raw bytes (any other client) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        ("access_token_invalid", 401, TikTokAPIError),
        ("scope_not_authorized", 401, TikTokAPIError),
        ("scope_permission_missed", 400, TikTokAPIError),
        ("invalid_params", 400, TikTokAPIError),
        ("rate_limit_exceeded", 429, RateLimitedError),
        ("internal_error", 500, TikTokServerError),
        ("rate_limit_exceeded", 200, RateLimitedError),  # the code decides, whatever the status
        ("internal_error", 200, TikTokServerError),
        ("some_new_code", 403, TikTokAPIError),
    ],
)
def test_raw_bytes_each_code(code: str, status: int, cls: type[TikTokOAuthError]) -> None:
    with pytest.raises(cls) as caught:
        unwrap(envelope(code, "TikTok's words"), status=status)
    error = caught.value
    assert type(error) is cls
    assert (error.error, error.description, error.log_id, error.status_code) == (
        code,
        "TikTok's words",
        LOG_ID,
        status,
    )


def test_raw_bytes_429_reads_retry_after_in_any_case_and_as_a_date() -> None:
    when = email.utils.formatdate(timeval=None, usegmt=True)  # now: nothing left to wait
    with pytest.raises(RateLimitedError) as caught:
        unwrap(b"", status=429, headers={"RETRY-AFTER": when})
    assert caught.value.retry_after is not None
    assert 0.0 <= caught.value.retry_after <= 1.0


def test_raw_bytes_429_with_an_html_body_is_still_rate_limited() -> None:
    with pytest.raises(RateLimitedError):
        unwrap(b"<html>slow down</html>", status=429, headers={"content-type": "text/html"})


def test_log_id_falls_back_to_the_x_tt_logid_header() -> None:
    with pytest.raises(TikTokAPIError) as caught:
        unwrap(b'{"data": {}, "error": {"code": "invalid_params"}}', status=400, headers={"X-Tt-Logid": "L9"})
    assert caught.value.log_id == "L9"


def test_token_endpoint_shaped_error_is_read_too() -> None:
    body = b'{"error": "invalid_request", "error_description": "bad", "log_id": "L1"}'
    with pytest.raises(TikTokAPIError) as caught:
        unwrap(body, status=200)
    assert (caught.value.error, caught.value.description, caught.value.log_id) == (
        "invalid_request",
        "bad",
        "L1",
    )


def test_aiohttp_through_bytes_and_status(served: tuple[FakeTikTok, str]) -> None:
    fake, base_url = served
    token = a_token(fake, scopes=("video.list",))

    async def main() -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(fake.user_info_url(base_url), headers={"Authorization": f"Bearer {token}"}) as r,
        ):
            return unwrap(await r.read(), status=r.status, headers=r.headers)

    with pytest.raises(TikTokAPIError) as caught:
        asyncio.run(main())
    assert caught.value.error == "scope_not_authorized"


# -- misuse ------------------------------------------------------------------------------------------


def test_bytes_without_status_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="status"):
        unwrap(envelope("ok"))  # type: ignore[call-overload]


def test_a_response_with_status_is_a_type_error(
    served: tuple[FakeTikTok, str], get: Callable[..., Any]
) -> None:
    with pytest.raises(TypeError, match="carries its own"):
        unwrap(get(a_token(served[0])), status=200)  # type: ignore[call-overload]


def test_something_else_is_a_type_error_naming_the_aiohttp_way() -> None:
    with pytest.raises(TypeError, match=r"r\.read\(\)"):
        unwrap({"data": {}})  # type: ignore[call-overload]


# -- secrets and the error class ----------------------------------------------------------------------


def test_no_token_in_the_error_when_tiktok_echoes_it(
    served: tuple[FakeTikTok, str], get: Callable[..., Any]
) -> None:
    fake = served[0]
    token = a_token(fake)
    fake.fail_next(401, envelope("access_token_invalid", f"token {token} is bad"), endpoint="user_info")
    with pytest.raises(TikTokAPIError) as caught:
        unwrap(get(token))
    for text in (str(caught.value), repr(caught.value), caught.value.description, *caught.value.args):
        assert token not in text
    assert caught.value.description == "token *** is bad"


def test_tiktok_api_error_is_public_and_a_tiktok_oauth_error() -> None:
    assert issubclass(TikTokAPIError, TikTokOAuthError)
    assert {"TikTokAPIError", "unwrap"} <= set(tiktok_oauth.__all__)


def test_tiktok_api_error_pickles_with_its_attributes() -> None:
    error = TikTokAPIError("no scope", error="scope_not_authorized", log_id="L", status_code=401)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is TikTokAPIError
    assert vars(copy) == vars(error)
    assert str(copy) == str(error) == "scope_not_authorized: no scope (HTTP 401) [log_id L]"
