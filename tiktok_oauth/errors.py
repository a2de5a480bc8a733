"""The exceptions tiktok-oauth raises.

```
TikTokOAuthError                    .error, .description, .log_id, .status_code (None where not applicable)
├── AuthorizationDeniedError        the callback carried error=... (the user said no, or a misconfiguration)
├── StateMismatchError              callback state differs from the expected one
├── ReauthorizationRequiredError    no token, refresh token expired or revoked: log in again
│   └── NothingStoredError          no token is stored under the key at all
├── RateLimitedError                HTTP 429 / rate_limit_exceeded; .retry_after when the server gave one
├── TikTokServerError               5xx, timeouts, connection errors, bodies that are not JSON objects; .retryable, .retry_after
├── TikTokAPIError                  a data API answer whose `error.code` is not "ok" (see `unwrap`)
├── WebhookSignatureError           a webhook delivery with a missing, malformed, wrong or stale signature
├── QRCodeExpiredError              the QR code expired (or the wait timed out) before the user confirmed
└── TokenStoreError                 a store cannot read or write
    └── LockLostError               the store's lock for the key was lost while held
```

Every error builds on Authlib's `AuthlibBaseError`, pickles (so it crosses process boundaries), and never
carries a client secret, an access token or a refresh token: messages are built only from TikTok's error code,
its description and `log_id`, which contain none of them.
"""

from __future__ import annotations

from typing import Any

from authlib.common.errors import AuthlibBaseError

__all__ = [
    "AuthorizationDeniedError",
    "LockLostError",
    "NothingStoredError",
    "QRCodeExpiredError",
    "RateLimitedError",
    "ReauthorizationRequiredError",
    "StateMismatchError",
    "TikTokAPIError",
    "TikTokOAuthError",
    "TikTokServerError",
    "TokenStoreError",
    "WebhookSignatureError",
]


class TikTokOAuthError(AuthlibBaseError):  # type: ignore[misc]
    """Base class of every error raised by tiktok-oauth.

    Attributes:
        error: TikTok's error code (`invalid_grant`, `access_token_invalid`, ...) or None.
        description: a human-readable description (TikTok's `error_description` when it sent one).
        log_id: TikTok's `log_id`, which its support asks for, or None.
        status_code: the HTTP status of the response, or None where no response was involved.
    """

    error: str | None
    description: str

    def __init__(
        self,
        description: str = "",
        *,
        error: str | None = None,
        log_id: str | None = None,
        status_code: int | None = None,
    ) -> None:
        self.log_id = log_id
        self.status_code = status_code
        super().__init__(error=error, description=description)
        self.args = (self._message(),)

    def _message(self) -> str:
        parts = [f"{self.error}: {self.description}" if self.error else self.description]
        if self.status_code is not None and self.status_code != 200:  # TikTok sends its errors with 200
            parts.append(f"(HTTP {self.status_code})")
        if self.log_id:
            parts.append(f"[log_id {self.log_id}]")
        return " ".join(p for p in parts if p)

    def __str__(self) -> str:
        return self._message()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(error={self.error!r}, description={self.description!r}, "
            f"log_id={self.log_id!r}, status_code={self.status_code!r})"
        )

    def _state(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "log_id": self.log_id,
            "status_code": self.status_code,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.description, self._state()))


def _rebuild(cls: type[TikTokOAuthError], description: str, state: dict[str, Any]) -> TikTokOAuthError:
    return cls(description, **state)


class AuthorizationDeniedError(TikTokOAuthError):
    """The authorization callback carried `error=...`: the user declined, or the app is misconfigured."""


class StateMismatchError(TikTokOAuthError):
    """The `state` in the callback differs from the one the login started with (a possible CSRF)."""


class ReauthorizationRequiredError(TikTokOAuthError):
    """There is no usable token: none stored, or the refresh token expired or was revoked. Log in again."""


class NothingStoredError(ReauthorizationRequiredError):
    """No token is stored under the key at all (never logged in, logged out, or deleted)."""


class RateLimitedError(TikTokOAuthError):
    """TikTok answered 429 / `rate_limit_exceeded`.

    Attributes:
        retry_after: seconds to wait, when the server sent `Retry-After`, else None.
    """

    def __init__(
        self,
        description: str = "",
        *,
        error: str | None = None,
        log_id: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(description, error=error, log_id=log_id, status_code=status_code)

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "retry_after": self.retry_after}


class TikTokServerError(TikTokOAuthError):
    """TikTok failed: a 5xx answer, a timeout, a connection error, or a body that is not a JSON object.

    Attributes:
        retryable: True when repeating the same request is safe and may succeed.
        retry_after: seconds to wait, when a 5xx answer carried `Retry-After`, else None.
    """

    def __init__(
        self,
        description: str = "",
        *,
        error: str | None = None,
        log_id: str | None = None,
        status_code: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
    ) -> None:
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(description, error=error, log_id=log_id, status_code=status_code)

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "retryable": self.retryable, "retry_after": self.retry_after}


class TikTokAPIError(TikTokOAuthError):
    """A data API (user info, video list, ...) answered with an `error.code` other than `"ok"`.

    `unwrap()` raises it for `access_token_invalid`, `scope_not_authorized`, `scope_permission_missed`,
    `invalid_params` and any other code that is neither a rate limit (`RateLimitedError`) nor a server
    failure (`TikTokServerError`).

    Attributes:
        error: TikTok's `error.code`, e.g. `scope_not_authorized`.
        description: TikTok's `error.message`.
        log_id: TikTok's `error.log_id` (or its `x-tt-logid` header), which its support asks for.
        status_code: the HTTP status of the answer.
    """


class WebhookSignatureError(TikTokOAuthError):
    """A webhook delivery failed verification: no `TikTok-Signature`, a malformed or wrong one, a `t` outside
    the tolerance window, or a body that is not TikTok's JSON. The message never holds the secret or the
    expected signature."""


class QRCodeExpiredError(TikTokOAuthError):
    """A QR-code login ended before the user confirmed it: TikTok said `expired` (or `utilised`), or
    `wait_qr_login`'s `timeout` passed. Start a new one with `start_qr_login`."""


class TokenStoreError(TikTokOAuthError):
    """A token store could not read or write (a corrupt file, a permission error, Redis down)."""


class LockLostError(TokenStoreError):
    """The store's lock for a key was lost while held (a Redis lock that expired, a PostgreSQL session that
    ended): someone else may hold it now, so nothing more is sent or written under it."""
