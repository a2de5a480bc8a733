"""Plain values shared by the fake's parts: its error, requests and responses, and TikTok's body shapes."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from tiktok_oauth import _clock

__all__ = [
    "FakeResponse",
    "FakeTikTokError",
    "RecordedRequest",
    "api_response",
    "json_response",
    "new_log_id",
    "oauth_error",
    "random_string",
]

_ALPHANUMERIC = string.ascii_letters + string.digits


class FakeTikTokError(AssertionError):
    """TikTok would refuse this: raised by `FakeTikTok.authorize` for an authorization URL TikTok's page rejects.

    It derives from `AssertionError` so that pytest reports it as a failed expectation.
    """


@dataclass(frozen=True)
class RecordedRequest:
    """One request that reached the fake, through any transport or the served server.

    Header names are lowercased; `url` is the full URL as the client sent it.
    """

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class FakeResponse:
    """The fake's answer to one request, before a transport turns it into its own response type."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def random_string(length: int = 40) -> str:
    """Return a random alphanumeric string, the body of a fake token."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def new_log_id() -> str:
    """Return a 34-character log id shaped like TikTok's: a UTC timestamp and 20 uppercase hex digits."""
    moment = dt.datetime.fromtimestamp(_clock.now(), tz=dt.UTC)
    return moment.strftime("%Y%m%d%H%M%S") + secrets.token_hex(10).upper()


def json_response(status: int, payload: dict[str, Any], log_id: str) -> FakeResponse:
    """Return a JSON response carrying TikTok's `x-tt-logid` header."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return FakeResponse(
        status, {"content-type": "application/json; charset=utf-8", "x-tt-logid": log_id}, body
    )


def oauth_error(error: str, description: str, log_id: str) -> FakeResponse:
    """Return a token- or revoke-endpoint error: HTTP 200 with `error` in the body (TIKTOK.md row 8)."""
    payload = {"error": error, "error_description": description, "log_id": log_id}
    return json_response(200, payload, log_id)


def api_response(
    status: int,
    log_id: str,
    data: dict[str, Any] | None = None,
    code: str = "ok",
    message: str = "",
) -> FakeResponse:
    """Return a data-API response in the v2 envelope, with an `error` object even on success."""
    payload = {"data": data or {}, "error": {"code": code, "message": message, "log_id": log_id}}
    return json_response(status, payload, log_id)
