"""`unwrap`: the `data` of a TikTok data API answer, or the typed error it stands for (no I/O).

The v2 data APIs (user info, video list, ...) answer in one envelope, success or not (TIKTOK.md row 25):
`{"data": {...}, "error": {"code": "ok", "message": "", "log_id": "..."}}`. The token endpoint's errors
have another shape; both are read by `_protocol`'s one error reader, which this module only calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, overload

from tiktok_oauth import _protocol
from tiktok_oauth._protocol import OK, Reply
from tiktok_oauth.errors import TikTokAPIError, TikTokOAuthError, TikTokServerError

__all__ = ["Response", "unwrap"]


class Response(Protocol):
    """What `unwrap` reads of a requests, httpx or niquests response (niquests types both as optional)."""

    @property
    def status_code(self) -> int | None: ...

    @property
    def content(self) -> bytes | None: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


@overload
def unwrap(response: Response, /) -> dict[str, Any]: ...


@overload
def unwrap(
    body: bytes | bytearray, /, *, status: int, headers: Mapping[str, str] | None = None
) -> dict[str, Any]: ...


def unwrap(
    answer: Response | bytes | bytearray,
    /,
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return the `data` of a data API answer whose `error.code` is `"ok"`, else raise its typed error.

    Pass a requests, httpx or niquests response, or, for any other client, the body's bytes with the
    HTTP status (and the headers, for `Retry-After`): `unwrap(await r.read(), status=r.status,
    headers=r.headers)` with aiohttp.

    Raises:
        RateLimitedError: HTTP 429, or the code `rate_limit_exceeded` whatever the status; `.retry_after`
            holds the `Retry-After` header's seconds when TikTok sent one (it documents no other
            rate-limit header).
        TikTokServerError: a 5xx answer, the codes `internal_error` / `server_error` /
            `temporarily_unavailable`, or a body that is not a JSON object (an HTML page, an empty or
            truncated body, invalid UTF-8). `.retryable` is False only for such a body with a 4xx status.
        TikTokAPIError: any other code (`access_token_invalid`, `scope_not_authorized`,
            `scope_permission_missed`, `invalid_params`, ...), with `.error`, `.description`, `.log_id`
            and `.status_code`.
        TypeError: neither a response nor bytes with `status=`.
    """
    if isinstance(answer, bytes | bytearray):
        if status is None:
            raise TypeError("unwrap(body) needs the HTTP status: unwrap(body, status=response.status)")
        reply = Reply(status, _lowered(headers or {}), bytes(answer))
        secret = None
    else:
        if status is not None or headers is not None:
            raise TypeError("status= and headers= go with a body's bytes; a response carries its own")
        try:
            status, content, answer_headers = answer.status_code, answer.content, answer.headers
        except AttributeError:
            raise TypeError(
                f"unwrap() takes a requests, httpx or niquests response, or bytes with status=; got "
                f"{type(answer).__name__} (aiohttp: unwrap(await r.read(), status=r.status, headers=r.headers))"
            ) from None
        if status is None:
            raise TypeError("unwrap() needs a response that has arrived: its status_code is None")
        reply = Reply(status, _lowered(answer_headers), content or b"")
        secret = _bearer_sent(answer)
    error = error_for(reply)
    if error is None:
        return _data(reply)
    if secret:
        error = _without(error, secret)
    raise error


def error_for(reply: Reply) -> TikTokOAuthError | None:
    """The typed error a data API reply stands for, or None when its `error.code` is `"ok"`."""
    status = reply.status_code
    body = _protocol.json_object(reply.content)
    code, message, log_id = _protocol.error_fields(body)
    log_id = log_id or _protocol.header_log_id(reply.headers)
    transient = _protocol.transient_error(
        reply, code, message, log_id, server_message=f"TikTok failed (HTTP {status})"
    )
    if transient is not None:
        return transient
    if body is None or not isinstance(body.get("data") or {}, dict):
        return _not_envelope(reply, log_id)
    if code == OK:
        return None
    if code is not None:
        return TikTokAPIError(
            message or f"TikTok answered HTTP {status} with error {code}",
            error=code,
            log_id=log_id,
            status_code=status,
        )
    if 200 <= status < 300 and isinstance(body.get("data"), dict):
        return None  # the envelope without its `error`: TikTok always sends one, but the data is there
    return _not_envelope(reply, log_id)


def _not_envelope(reply: Reply, log_id: str | None) -> TikTokServerError:
    """A body that is not the data API's envelope: an HTML page, an empty or truncated body, ..."""
    status = reply.status_code
    content_type = reply.headers.get("content-type", "unknown type")
    if not reply.content.strip():
        description = "TikTok answered with an empty body"
    else:
        description = (
            f"TikTok's answer is not a data API envelope ({content_type}, {len(reply.content)} bytes)"
        )
    # Repeating a request that met a 4xx answer meets it again; a 2xx body cut short may come whole.
    retryable = not 400 <= status < 500
    return TikTokServerError(description, retryable=retryable, log_id=log_id, status_code=status)


def _data(reply: Reply) -> dict[str, Any]:
    body = _protocol.json_object(reply.content) or {}
    data: dict[str, Any] = body.get("data") or {}
    return data


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in headers.items()}


def _bearer_sent(response: object) -> str | None:
    """The bearer token the request behind `response` carried, if the response keeps its request."""
    try:
        authorization = response.request.headers.get("authorization")  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # httpx raises RuntimeError for a response made without a request
        return None
    if isinstance(authorization, bytes):
        authorization = authorization.decode("latin-1")
    if not isinstance(authorization, str):
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _without(error: TikTokOAuthError, secret: str) -> TikTokOAuthError:
    """`error` with `secret` masked in its description: an answer that echoes the token must not leak it."""
    if secret not in error.description:
        return error
    state = error._state()  # noqa: SLF001 - the errors' own rebuild state
    return type(error)(error.description.replace(secret, "***"), **state)
