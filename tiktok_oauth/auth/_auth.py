"""`TikTokAuth`: the public auth object, composed of the token source and one driver per client family.

It is an `httpx2.Auth` by inheritance, so httpx2 keeps it (rather than wrapping it in a `FunctionAuth`)
and calls its `sync_auth_flow` / `async_auth_flow`. httpx has its own `Auth` class, and `import
tiktok_oauth` does not import httpx; `isinstance(auth, httpx.Auth)` holds all the same once httpx is
imported, through `__class__`: `isinstance` asks an object's `__class__` when its `type()` is not a
subclass, and the property answers `HttpxTikTokAuth` (`_httpx_auth`, a class written out in a module
that imports httpx, loaded only when httpx already is). Never instantiated, it only answers that check;
`type(auth)` stays `TikTokAuth` (or the user's subclass of it). httpx's `_build_auth` then keeps the auth
as it is and drives its flows.

The drivers are plain objects over (token source, allowed hosts), composed, not mixed in: `auth(request)`
(requests, niquests) is the requests driver's `__call__`, or niquests' async driver's for an auth built
with an async client; `sync_auth_flow` / `async_auth_flow` are the httpx driver's; `driver(kind)` builds
any other (aiohttp's middleware).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator, Generator, Iterable
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar

import httpx2

from tiktok_oauth import _protocol
from tiktok_oauth.auth._flow import Driver, Hosts
from tiktok_oauth.auth._httpx import HttpxDriver
from tiktok_oauth.auth._niquests import NiquestsAsyncDriver
from tiktok_oauth.auth._requests import RequestsDriver
from tiktok_oauth.auth._source import TokenSource
from tiktok_oauth.client import AsyncTikTokOAuth2Client, TikTokOAuth2Client

if TYPE_CHECKING:
    from tiktok_oauth.events import OnEvent
    from tiktok_oauth.stores import AsyncTokenStore, TokenStore

__all__ = ["TikTokAuth"]

D = TypeVar("D", bound=Driver)


class TikTokAuth(httpx2.Auth):
    """Bearer auth for TikTok's APIs: requests, httpx2 and httpx (sync and async), niquests, aiohttp (middleware).

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
        on_event: called with a `TokenEvent` after each refresh, failure, mark or logout, outside every
            lock; an exception it raises is logged and changes nothing.
    """

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
        on_event: OnEvent | None = None,
    ) -> None:
        if not isinstance(client, TikTokOAuth2Client | AsyncTikTokOAuth2Client):
            raise TypeError("client must be a TikTokOAuth2Client or an AsyncTikTokOAuth2Client")
        if recheck < 0 or leeway < 0:
            raise ValueError("leeway and recheck are seconds, 0 or more")
        if store is None:
            from tiktok_oauth.stores import MemoryTokenStore  # noqa: PLC0415 - avoids an import cycle

            store = MemoryTokenStore()
        defaults = {_protocol.API_HOST, _protocol.host_with_port(client.token_url)}
        allowed = (
            frozenset(defaults) if allowed_hosts is None else _protocol.normalise_allowed_hosts(allowed_hosts)
        )
        self._hosts = hosts = Hosts(allowed)
        self._source = source = TokenSource.over(
            client,
            store,
            key,
            leeway=leeway,
            recheck=recheck,
            client_credentials=client_credentials,
            on_event=on_event,
        )
        # An async client's auth drives niquests' AsyncSession too; a sync client's keeps the requests hot path.
        kind = NiquestsAsyncDriver if isinstance(client, AsyncTikTokOAuth2Client) else RequestsDriver
        self._call = kind(source, hosts).__call__
        httpx_driver = HttpxDriver(source, hosts)
        self._sync_flow, self._async_flow = httpx_driver.sync_auth_flow, httpx_driver.async_auth_flow

    if TYPE_CHECKING:

        def __call__(self, request: Any) -> Any:
            """Drive the flow for requests and niquests: `session.auth = auth` calls this with each request."""

        def sync_auth_flow(self, request: Any) -> Generator[Any, Any, None]:
            """Drive the flow for `httpx2.Client` and `httpx.Client`."""

        def async_auth_flow(self, request: Any) -> AsyncGenerator[Any, Any]:
            """Drive the flow for `httpx2.AsyncClient` and `httpx.AsyncClient`."""

    else:
        # The drivers' own bound methods, with no call in between: `auth(request)` finds `__call__` on the
        # class, and a property there hands over the driver's method, read by C code (`attrgetter`). The
        # hot path pays no Python frame for the composition. niquests reads `auth.__call__` too: the
        # driver's method, a plain function for requests' driver and niquests' async one alike.
        __call__ = property(attrgetter("_call"), doc="The requests or niquests driver's `__call__`.")
        sync_auth_flow = property(attrgetter("_sync_flow"), doc="The httpx driver's sync flow.")
        async_auth_flow = property(attrgetter("_async_flow"), doc="The httpx driver's async flow.")

    def driver(self, kind: type[D]) -> D:
        """A driver of class `kind` over this auth's token source and allowed hosts (aiohttp's middleware)."""
        return kind(self._source, self._hosts)

    @property  # type: ignore[misc]
    def __class__(self) -> type[Any]:
        """`type(self)`, or, once httpx is imported, a subclass of `httpx.Auth` too (`HttpxTikTokAuth`)."""
        cls = type(self)
        if "httpx" in sys.modules:
            from tiktok_oauth.auth._httpx_auth import HttpxTikTokAuth  # noqa: PLC0415 - httpx is loaded

            if not issubclass(cls, HttpxTikTokAuth):
                return HttpxTikTokAuth
        return cls

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
