"""The error tree: classes, attributes, pickling, and no secrets in messages."""

from __future__ import annotations

import pickle

import pytest

import tiktok_oauth
from tiktok_oauth import (
    AuthorizationDeniedError,
    LockLostError,
    NothingStoredError,
    QRCodeExpiredError,
    RateLimitedError,
    ReauthorizationRequiredError,
    StateMismatchError,
    TikTokOAuthError,
    TikTokServerError,
    TokenStoreError,
    WebhookSignatureError,
)

SUBCLASSES = [
    AuthorizationDeniedError,
    StateMismatchError,
    ReauthorizationRequiredError,
    RateLimitedError,
    TikTokServerError,
    TokenStoreError,
    NothingStoredError,
    LockLostError,
    WebhookSignatureError,
    QRCodeExpiredError,
]


def test_nothing_stored_is_a_reauthorization_and_a_lost_lock_a_store_error() -> None:
    assert issubclass(NothingStoredError, ReauthorizationRequiredError)
    assert issubclass(LockLostError, TokenStoreError)


@pytest.mark.parametrize("cls", SUBCLASSES)
def test_every_error_is_a_tiktok_oauth_error(cls: type[TikTokOAuthError]) -> None:
    assert issubclass(cls, TikTokOAuthError)
    assert cls.__name__ in tiktok_oauth.__all__


def test_an_expired_qr_code_is_neither_a_reauthorization_nor_a_server_error() -> None:
    # A new QR code is what the user needs, not a retry of the same call (nor a stored token's login).
    assert not issubclass(QRCodeExpiredError, ReauthorizationRequiredError | TikTokServerError)
    assert "QRCodeExpiredError" in (tiktok_oauth.errors.__doc__ or "")


def test_tiktok_oauth_error_builds_on_authlib() -> None:
    from authlib.common.errors import AuthlibBaseError

    assert issubclass(TikTokOAuthError, AuthlibBaseError)


def test_attributes_default_to_none() -> None:
    error = TikTokOAuthError("boom")
    assert (error.error, error.log_id, error.status_code) == (None, None, None)
    assert error.description == "boom"
    assert str(error) == "boom"


def test_message_carries_error_status_and_log_id() -> None:
    error = TikTokOAuthError("bad key", error="invalid_client", log_id="L1", status_code=400)
    assert str(error) == "invalid_client: bad key (HTTP 400) [log_id L1]"


def test_message_leaves_out_http_200_which_tiktok_sends_with_its_errors() -> None:
    error = TikTokOAuthError("bad key", error="invalid_client", log_id="L1", status_code=200)
    assert str(error) == "invalid_client: bad key [log_id L1]"
    assert "invalid_client" in repr(error)


@pytest.mark.parametrize(
    "error",
    [
        TikTokOAuthError("x", error="invalid_client", log_id="L", status_code=400),
        RateLimitedError("slow", error="rate_limit_exceeded", retry_after=3.5, status_code=429),
        TikTokServerError("down", status_code=503, retryable=False),
        ReauthorizationRequiredError("again", error="invalid_grant"),
        TokenStoreError("/tmp/x is corrupt"),
        NothingStoredError("no token under 'u1'"),
        LockLostError("the lock for 'u1' was lost"),
        WebhookSignatureError("the signature does not match", status_code=401),
        QRCodeExpiredError("the QR code expired", error="expired"),
    ],
)
def test_errors_pickle_with_their_attributes(error: TikTokOAuthError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert vars(copy) == vars(error)
    assert str(copy) == str(error)


def test_retryable_defaults_to_true_for_server_errors() -> None:
    assert TikTokServerError("x").retryable is True
