"""`TikTokAuth`: the public auth object, assembled from the token source and one driver per client family."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Self

import httpx

from tiktok_oauth import _protocol
from tiktok_oauth.auth._flow import Hosts
from tiktok_oauth.auth._httpx import HttpxDriver
from tiktok_oauth.auth._niquests import async_variant
from tiktok_oauth.auth._requests import RequestsDriver
from tiktok_oauth.auth._source import TokenSource
from tiktok_oauth.client import AsyncTikTokOAuth2Client, TikTokOAuth2Client

if TYPE_CHECKING:
    from tiktok_oauth.stores import AsyncTokenStore, TokenStore

__all__ = ["TikTokAuth"]


def _with_httpx2_base(cls: type[TikTokAuth]) -> type[TikTokAuth]:
    """`cls` made a subclass of `httpx2.Auth` too, when httpx2 is installed.

    httpx2 wraps any auth that is not its own `Auth` in a `FunctionAuth`, which would call our requests
    driver and lose the refresh-and-retry and the async path. httpx2 is imported on first use only.
    """
    cached = _HTTPX2_CLASSES.get(cls)
    if cached is not None:
        return cached
    result = cls
    if importlib.util.find_spec("httpx2") is not None:
        import httpx2  # noqa: PLC0415 - optional, and 100 ms to import

        httpx2_auth: Any = httpx2.Auth
        if not issubclass(cls, httpx2_auth):
            result = type(
                cls.__name__,
                (cls, httpx2.Auth),
                {"__module__": cls.__module__, "__qualname__": cls.__qualname__},
            )
    _HTTPX2_CLASSES[cls] = result
    return result


_HTTPX2_CLASSES: dict[type[Any], type[Any]] = {}


class TikTokAuth(RequestsDriver, HttpxDriver, httpx.Auth):
    """Bearer auth for TikTok's APIs: requests, httpx (sync and async), niquests, and aiohttp (middleware).

    Before each request to an allowed host it sets `Authorization: Bearer <access token>`, refreshing
    first when the token expires within `leeway` seconds. A 401 `access_token_invalid` triggers one refresh
    and one retry; after any 401 the store is read again, and a different token found there is retried
    once. Refreshes happen once however many threads, tasks, auth objects or processes need them: under
    the store's lock the token is read again, and if someone else already refreshed it, theirs is used.
    Once a refresh request is sent, it and the write of its answer complete even if the caller is
    cancelled.

    Args:
        client: a `TikTokOAuth2Client` (for sync HTTP clients) or an `AsyncTikTokOAuth2Client` (for async).
        store: where the token lives (any `TokenStore` or `AsyncTokenStore`); a new `MemoryTokenStore` when None.
        key: the token's key in the store.
        leeway: refresh this many seconds before the access token expires.
        recheck: read the store again at least this often (seconds; 0: on every request), so a token
            replaced or deleted in the store is picked up.
        allowed_hosts: hosts (`host` or `host:port`, IPv6 in brackets) that get the token; by default
            `open.tiktokapis.com` and the host of the client's `token_url`. Every other host gets the
            request untouched.
        client_credentials: fetch (and re-fetch on expiry) a client access token instead of refreshing a
            user token.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        # An async client's auth also drives niquests' AsyncSession (a `__call__` of its own, see _niquests).
        client = args[0] if args else kwargs.get("client")
        kind = async_variant(cls) if isinstance(client, AsyncTikTokOAuth2Client) else cls
        return super().__new__(_with_httpx2_base(kind))  # type: ignore[return-value]

    def __init__(
        self,
        client: TikTokOAuth2Client | AsyncTikTokOAuth2Client,
        store: TokenStore | AsyncTokenStore | None = None,
        key: str = "default",
        *,
        leeway: float = 60.0,
        recheck: float = 60.0,
        allowed_hosts: Iterable[str] | None = None,
        client_credentials: bool = False,
    ) -> None:
        if not isinstance(client, TikTokOAuth2Client | AsyncTikTokOAuth2Client):
            raise TypeError("client must be a TikTokOAuth2Client or an AsyncTikTokOAuth2Client")
        if recheck < 0 or leeway < 0:
            raise ValueError("leeway and recheck are seconds, 0 or more")
        if store is None:
            from tiktok_oauth.stores import MemoryTokenStore  # noqa: PLC0415 - avoids an import cycle

            store = MemoryTokenStore()
        hosts = {_protocol.API_HOST, _protocol.host_with_port(client.token_url)}
        allowed = (
            frozenset(hosts) if allowed_hosts is None else _protocol.normalise_allowed_hosts(allowed_hosts)
        )
        self._hosts = Hosts(allowed)
        self._source = TokenSource.over(
            client, store, key, leeway=leeway, recheck=recheck, client_credentials=client_credentials
        )
        self._requests_fast_hook = self._requests_fast_response  # bound once: the hot path appends it

    @property
    def client(self) -> TikTokOAuth2Client | AsyncTikTokOAuth2Client:
        """The OAuth client that refreshes the token."""
        client = self._source.client
        assert client is not None  # an auth object is always built with one
        return client

    @property
    def store(self) -> Any:
        """Where the token lives."""
        return self._source.store

    @property
    def key(self) -> str:
        """The token's key in the store."""
        return self._source.key

    @property
    def leeway(self) -> float:
        """Seconds before expiry at which the token is refreshed."""
        return self._source.leeway

    @property
    def recheck(self) -> float:
        """Seconds after which the store is read again."""
        return self._source.recheck

    @property
    def client_credentials(self) -> bool:
        """Whether this auth uses a client access token."""
        return self._source.client_credentials

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """The hosts that get the token."""
        return self._hosts.allowed

    def __repr__(self) -> str:
        return f"TikTokAuth(client={self.client!r}, store={self.store!r}, key={self.key!r})"

    def logout(self) -> None:
        """Revoke the token at TikTok and delete it from the store, under the store's lock (sync client).

        A token TikTok already considers revoked is still deleted, without an error; with nothing stored
        this does nothing. Afterwards the auth raises `ReauthorizationRequiredError` until a new login.
        """
        self._source.logout()

    async def alogout(self) -> None:
        """`logout`, for an `AsyncTikTokOAuth2Client`."""
        await self._source.alogout()
