"""TikTok's HTTP endpoints as functions: routing, and the token, revoke, user info and video list answers.

Each takes the `TokenLedger` and returns a `FakeResponse`; the caller holds the fake's lock.
"""

from __future__ import annotations

import hmac
import html
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tiktok_oauth.testing._authorize import AUTHORIZE_PATH
from tiktok_oauth.testing._ledger import Grant, OAuthRefusal, TokenLedger
from tiktok_oauth.testing._models import (
    FakeResponse,
    api_response,
    json_response,
    new_log_id,
    oauth_error,
)
from tiktok_oauth.testing._qrcodes import CHECK_QRCODE_PATH, GET_QRCODE_PATH, QRCodeBook
from tiktok_oauth.testing._videos import DEFAULT_COUNT, MAX_COUNT, VIDEO_FIELDS, page_of_videos

__all__ = [
    "REVOKE_PATH",
    "TOKEN_PATH",
    "USER_INFO_FIELDS",
    "USER_INFO_PATH",
    "VIDEO_LIST_FIELDS",
    "VIDEO_LIST_PATH",
    "answer_qrcode",
    "answer_revoke",
    "answer_token",
    "answer_user_info",
    "answer_video_list",
    "endpoint_of",
    "error_page",
]

TOKEN_PATH = "/v2/oauth/token/"  # noqa: S105 - a path, not a password
REVOKE_PATH = "/v2/oauth/revoke/"
USER_INFO_PATH = "/v2/user/info/"
USER_INFO_FIELDS = "open_id,union_id,avatar_url,display_name"
VIDEO_LIST_PATH = "/v2/video/list/"
VIDEO_LIST_FIELDS = ",".join(VIDEO_FIELDS)
_ROUTES = {
    ("GET", AUTHORIZE_PATH): "authorize",
    ("POST", AUTHORIZE_PATH): "authorize",  # the consent page's form
    ("POST", TOKEN_PATH): "token",
    ("POST", REVOKE_PATH): "revoke",
    ("GET", USER_INFO_PATH): "user_info",
    ("POST", VIDEO_LIST_PATH): "video_list",
    ("POST", GET_QRCODE_PATH): "get_qrcode",
    ("POST", CHECK_QRCODE_PATH): "check_qrcode",
}
_HOST_ENDPOINTS = {
    "www.tiktok.com": {"authorize"},
    "open.tiktokapis.com": {"token", "revoke", "user_info", "video_list", "get_qrcode", "check_qrcode"},
}
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})


def endpoint_of(method: str, url: str) -> str | None:
    """Name the endpoint (`authorize`, `token`, `revoke`, `user_info`, `video_list`) `method url` reaches.

    None when it reaches none.

    TikTok's hosts answer their own paths over https; loopback hosts (`serve()`) answer all of them.
    """
    parts = urlsplit(url)
    endpoint = _ROUTES.get((method.upper(), parts.path))
    if parts.hostname in _LOOPBACK_HOSTS:
        return endpoint
    if parts.scheme == "https" and endpoint in _HOST_ENDPOINTS.get(parts.hostname or "", ()):
        return endpoint
    return None


def error_page(message: str) -> FakeResponse:
    """Return the HTML error page TikTok shows for a misconfigured authorization request."""
    page = f"<!doctype html><title>TikTok</title><h1>Something went wrong</h1><p>{html.escape(message)}</p>"
    return FakeResponse(400, {"content-type": "text/html; charset=utf-8"}, page.encode())


def answer_token(
    ledger: TokenLedger, client: tuple[str, str], url: str, headers: dict[str, str], body: bytes
) -> tuple[FakeResponse, str | None]:
    """Answer a token-endpoint request; also return its grant type if it succeeded."""
    log_id = new_log_id()
    try:
        form = _checked_form(client, url, headers, body)
        grant_type = form.get("grant_type", "")
        payload = _grant(ledger, grant_type, form)
    except OAuthRefusal as refusal:
        return oauth_error(refusal.error, refusal.description, log_id), None
    return json_response(200, payload, log_id), grant_type


def answer_revoke(
    ledger: TokenLedger, client: tuple[str, str], url: str, headers: dict[str, str], body: bytes
) -> FakeResponse:
    """Answer a revoke request: HTTP 200 with an empty body, or an OAuth error (also HTTP 200)."""
    log_id = new_log_id()
    try:
        _revoke(ledger, _checked_form(client, url, headers, body))
    except OAuthRefusal as refusal:
        return oauth_error(refusal.error, refusal.description, log_id)
    return FakeResponse(200, {"x-tt-logid": log_id}, b"")


def answer_qrcode(  # noqa: PLR0917 - the shape of the other answer_* functions, plus the endpoint
    book: QRCodeBook, endpoint: str, client: tuple[str, str], url: str, headers: dict[str, str], body: bytes
) -> FakeResponse:
    """Answer `get_qrcode` (the client key, no secret) or `check_qrcode` (key and secret), rows 33-34."""
    log_id = new_log_id()
    try:
        form = _checked_form(client, url, headers, body, secret=endpoint == "check_qrcode")
        payload = book.get_qrcode(client[0], form) if endpoint == "get_qrcode" else book.check_qrcode(form)
    except OAuthRefusal as refusal:
        return oauth_error(refusal.error, refusal.description, log_id)
    return json_response(200, payload, log_id)


def answer_user_info(ledger: TokenLedger, url: str, headers: dict[str, str]) -> FakeResponse:
    """Answer `GET /v2/user/info/` in the v2 `data`/`error` envelope."""
    log_id = new_log_id()
    grant = _bearer_grant(ledger, headers, "user.info.basic", log_id)
    if isinstance(grant, FakeResponse):
        return grant
    fields = _fields(url)
    if not fields:
        return _invalid_params(log_id, "The fields parameter is required.")
    profile = {
        "open_id": grant.open_id,
        "union_id": f"union-{grant.open_id}",
        "avatar_url": f"https://p16-sign.tiktokcdn.com/fake/{grant.open_id}.jpeg",
        "display_name": f"Fake user {grant.open_id}",
    }
    user = {name: profile[name] for name in fields if name in profile}
    return api_response(200, log_id, data={"user": user})


def answer_video_list(ledger: TokenLedger, url: str, headers: dict[str, str], body: bytes) -> FakeResponse:
    """Answer `POST /v2/video/list/?fields=...` with a JSON body `{"cursor", "max_count"}` (row 26)."""
    log_id = new_log_id()
    grant = _bearer_grant(ledger, headers, "video.list", log_id)
    if isinstance(grant, FakeResponse):
        return grant
    fields = _fields(url)
    if not fields:
        return _invalid_params(log_id, "The fields parameter is required.")
    try:
        request = json.loads(body) if body.strip() else {}
    except (ValueError, RecursionError):
        return _invalid_params(log_id, "The request body is not valid JSON.")
    if not isinstance(request, dict):
        return _invalid_params(log_id, "The request body must be a JSON object.")
    cursor = request.get("cursor")
    max_count = request.get("max_count", DEFAULT_COUNT)
    if cursor is not None and (not _is_int(cursor) or cursor < 0):
        return _invalid_params(log_id, "cursor must be a non-negative integer (a UTC timestamp in ms).")
    if not _is_int(max_count) or not 1 <= max_count <= MAX_COUNT:
        return _invalid_params(log_id, f"max_count must be an integer from 1 to {MAX_COUNT}.")
    page = page_of_videos(grant.open_id, fields, cursor, max_count)
    data = {"videos": page.videos, "cursor": page.cursor, "has_more": page.has_more}
    return api_response(200, log_id, data=data)


def _bearer_grant(
    ledger: TokenLedger, headers: dict[str, str], scope: str, log_id: str
) -> Grant | FakeResponse:
    """The live grant behind the request's bearer token, if it has `scope`; else the 401 TikTok sends."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    grant = ledger.grant_for_access_token(token.strip()) if scheme.lower() == "bearer" else None
    if grant is None:
        message = "The access token is invalid or not found in the request."
        return api_response(401, log_id, code="access_token_invalid", message=message)
    if scope not in grant.scopes:
        message = "The user did not authorize the scope required for completing this request."
        return api_response(401, log_id, code="scope_not_authorized", message=message)
    return grant


def _fields(url: str) -> list[str]:
    value = parse_qs(urlsplit(url).query).get("fields", [""])[0]
    return [name for name in value.split(",") if name]


def _invalid_params(log_id: str, message: str) -> FakeResponse:
    return api_response(400, log_id, code="invalid_params", message=message)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _grant(ledger: TokenLedger, grant_type: str, form: dict[str, str]) -> dict[str, Any]:
    if grant_type == "authorization_code":
        return ledger.exchange_code(form)
    if grant_type == "refresh_token":
        return ledger.refresh(form)
    if grant_type == "client_credentials":
        return ledger.client_credentials()
    raise OAuthRefusal("unsupported_grant_type", f"Unsupported grant_type {grant_type!r}.")


def _revoke(ledger: TokenLedger, form: dict[str, str]) -> None:
    if "token_type_hint" in form:
        raise OAuthRefusal("invalid_request", "token_type_hint is not supported.")
    if not form.get("token"):
        raise OAuthRefusal("invalid_request", "token is required.")
    ledger.revoke(form["token"])


def _checked_form(
    client: tuple[str, str], url: str, headers: dict[str, str], body: bytes, *, secret: bool = True
) -> dict[str, str]:
    """Parse a token, revoke or QR-code body, refusing what TikTok refuses, and check the client.

    `secret=False` (get_qrcode) checks the client key alone.
    """
    if urlsplit(url).query:
        raise OAuthRefusal("invalid_request", "Parameters must be sent in the request body.")
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthRefusal("invalid_request", "Content-Type must be form-urlencoded.")
    if headers.get("authorization", "").lower().startswith("basic"):
        raise OAuthRefusal("invalid_request", "HTTP Basic authentication is not supported.")
    try:
        pairs = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as error:
        raise OAuthRefusal("invalid_request", "The request body is malformed.") from error
    if any(len(values) > 1 for values in pairs.values()):
        raise OAuthRefusal("invalid_request", "A parameter is repeated.")
    form = {name: values[0] for name, values in pairs.items()}
    if "client_id" in form:
        raise OAuthRefusal("invalid_request", "Unknown parameter client_id; use client_key.")
    client_key, client_secret = client
    key_ok = hmac.compare_digest(form.get("client_key", "").encode(), client_key.encode())
    secret_ok = not secret or hmac.compare_digest(
        form.get("client_secret", "").encode(), client_secret.encode()
    )
    if not (key_ok and secret_ok):
        raise OAuthRefusal("invalid_client", "Client key or secret is invalid.")
    return form
