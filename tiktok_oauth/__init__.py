"""TikTok OAuth 2.0 for Python: an Authlib-based client, a refresh-once auth object, token stores."""

from typing import TYPE_CHECKING, Any

from tiktok_oauth._api import unwrap
from tiktok_oauth._qrcode import QRLogin
from tiktok_oauth.auth import TikTokAuth
from tiktok_oauth.client import AsyncTikTokOAuth2Client, TikTokOAuth2Client, generate_code_verifier
from tiktok_oauth.errors import (
    AuthorizationDeniedError,
    LockLostError,
    NothingStoredError,
    QRCodeExpiredError,
    RateLimitedError,
    ReauthorizationRequiredError,
    StateMismatchError,
    TikTokAPIError,
    TikTokOAuthError,
    TikTokServerError,
    TokenStoreError,
    WebhookSignatureError,
)
from tiktok_oauth.events import TokenEvent
from tiktok_oauth.keeper import RefreshReport, arefresh_due, refresh_due
from tiktok_oauth.stores import AsyncTokenStore, MemoryTokenStore, TokenStore
from tiktok_oauth.token import TikTokToken

if TYPE_CHECKING:
    from tiktok_oauth.stores.file import FileTokenStore

__version__ = "0.1.0"

__all__ = [
    "AsyncTikTokOAuth2Client",
    "AsyncTokenStore",
    "AuthorizationDeniedError",
    "FileTokenStore",
    "LockLostError",
    "MemoryTokenStore",
    "NothingStoredError",
    "QRCodeExpiredError",
    "QRLogin",
    "RateLimitedError",
    "ReauthorizationRequiredError",
    "RefreshReport",
    "StateMismatchError",
    "TikTokAPIError",
    "TikTokAuth",
    "TikTokOAuth2Client",
    "TikTokOAuthError",
    "TikTokServerError",
    "TikTokToken",
    "TokenEvent",
    "TokenStore",
    "TokenStoreError",
    "WebhookSignatureError",
    "__version__",
    "arefresh_due",
    "generate_code_verifier",
    "refresh_due",
    "unwrap",
]


def __getattr__(name: str) -> Any:
    # FileTokenStore brings filelock, which costs more at import than the rest of the package.
    if name == "FileTokenStore":
        from tiktok_oauth.stores.file import FileTokenStore  # noqa: PLC0415 - on first use

        return FileTokenStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
