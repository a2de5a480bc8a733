"""`TikTokAuth`: bearer auth for requests and httpx that refreshes TikTok tokens once, whoever needs them.

The logic lives in one flow generator, `_flow`, in the style of httpx's `Auth.auth_flow`: it yields the
request to send, or a `_TokenNeeded` when it needs a (fresh) token, and receives the response or the token.
Three drivers run it: requests (a callable plus a response hook; requests is never imported), httpx sync and
httpx async (also for `httpx2` clients). Only the drivers do I/O or take locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import json
import logging
import threading
import weakref
from collections.abc import AsyncGenerator, Generator, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Literal, Self
from urllib.parse import urlsplit

import httpx

from tiktok_oauth import _clock, _protocol
from tiktok_oauth.client import AsyncTikTokOAuth2Client, TikTokOAuth2Client
from tiktok_oauth.errors import ReauthorizationRequiredError
from tiktok_oauth.token import TikTokToken

if TYPE_CHECKING:
    from tiktok_oauth.stores import AsyncTokenStore, TokenStore

__all__ = ["TikTokAuth"]

logger = logging.getLogger("tiktok_oauth")

_DEFAULT_PORTS: Final = {"https": 443, "http": 80}
_INVALID_TOKEN: Final = "access_token_invalid"  # noqa: S105 - an error code


@dataclass(frozen=True, slots=True)
class _TokenNeeded:
    """The flow needs a usable token; `rejected` is the access token TikTok just refused, if any."""

    rejected: str | None = None


_TOKEN_NEEDED: Final = _TokenNeeded()


def _token_rejected(response: Any) -> bool:
    """Whether a response is TikTok's 401 `access_token_invalid` (not `scope_not_authorized`; row 15)."""
    if response.status_code != 401:
        return False
    try:
        body = json.loads(response.content)
    except (ValueError, RecursionError):
        return False
    if not isinstance(body, dict):
        return False
    error = body.get("error")
    code = (
        error.get("code")
        if isinstance(error, dict)
        else error
        if isinstance(error, str)
        else body.get("code")
    )
    return code == _INVALID_TOKEN


class _Locks:
    """In-process locks, one per (store, key), shared by every `TikTokAuth` on that store.

    They live as long as their store (and, for asyncio locks, their event loop), so an app that makes a
    store per request does not accumulate locks.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._by_store: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._by_id: dict[int, dict[tuple[str, str], Any]] = {}  # stores that cannot be weakly referenced

    def _table(self, store: object) -> dict[tuple[str, str], Any]:
        try:
            return self._by_store.setdefault(store, {})
        except TypeError:  # no __weakref__ slot, or not hashable
            return self._by_id.setdefault(id(store), {})

    def thread_lock(self, store: object, key: str) -> threading.Lock:
        with self._guard:
            lock: threading.Lock = self._table(store).setdefault(("thread", key), threading.Lock())
            return lock

    def async_lock(self, store: object, key: str) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._guard:
            per_loop = self._table(store).setdefault(("async", key), weakref.WeakKeyDictionary())
            lock: asyncio.Lock = per_loop.setdefault(loop, asyncio.Lock())
            return lock


_locks: Final = _Locks()


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


class TikTokAuth(httpx.Auth):
    """Bearer auth for TikTok's APIs, for `requests.Session.auth`, `httpx.Client(auth=)` and `httpx.AsyncClient(auth=)`.

    Before each request to an allowed host it sets `Authorization: Bearer <access token>`, refreshing
    first when the token expires within `leeway` seconds. A 401 `access_token_invalid` triggers one refresh
    and one retry. Refreshes happen once however many threads, tasks, auth objects or processes need them:
    under the store's lock the token is read again, and if someone else already refreshed it, theirs is used.

    Args:
        client: a `TikTokOAuth2Client` (for requests and httpx sync) or an `AsyncTikTokOAuth2Client` (for
            httpx async).
        store: where the token lives (any `TokenStore` or `AsyncTokenStore`); a new `MemoryTokenStore` when None.
        key: the token's key in the store.
        leeway: refresh this many seconds before the access token expires.
        allowed_hosts: hosts (`host` or `host:port`) that get the token; by default `open.tiktokapis.com`
            and the host of the client's `token_url`. Every other host gets the request untouched.
        client_credentials: fetch (and re-fetch on expiry) a client access token instead of refreshing a
            user token.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:  # noqa: ARG004 - __init__ takes them
        return super().__new__(_with_httpx2_base(cls))  # type: ignore[return-value]

    def __init__(
        self,
        client: TikTokOAuth2Client | AsyncTikTokOAuth2Client,
        store: TokenStore | AsyncTokenStore | None = None,
        key: str = "default",
        *,
        leeway: float = 60.0,
        allowed_hosts: Iterable[str] | None = None,
        client_credentials: bool = False,
    ) -> None:
        if not isinstance(client, TikTokOAuth2Client | AsyncTikTokOAuth2Client):
            raise TypeError("client must be a TikTokOAuth2Client or an AsyncTikTokOAuth2Client")
        if store is None:
            from tiktok_oauth.stores import MemoryTokenStore  # noqa: PLC0415 - avoids an import cycle

            store = MemoryTokenStore()
        self.client = client
        self.store = store
        self.key = key
        self.leeway = leeway
        self.client_credentials = client_credentials
        hosts = {_protocol.API_HOST, _protocol.host_with_port(client.token_url)}
        if allowed_hosts is not None:
            hosts = {host.lower() for host in allowed_hosts}
        self.allowed_hosts: frozenset[str] = frozenset(hosts)
        # Fast path for requests' URL strings: these prefixes are allowed without parsing the URL.
        self._prefixes = tuple(
            f"{scheme}://{host}/"
            for host in self.allowed_hosts
            for scheme in ("https", "http")
            if scheme == "https" or _protocol.is_loopback(host.rsplit(":", 1)[0])
        )
        self._async_store = inspect.iscoroutinefunction(getattr(store, "get", None))
        self._current: tuple[TikTokToken | None, float, str] = (None, 0.0, "")
        # A new token the store failed to take. TikTok has already rotated the refresh token, so the one in
        # the store is dead: the next caller writes this one first instead of reading the dead one.
        self._unsaved: TikTokToken | None = None
        self._requests_fast_hook = self._requests_fast_response  # bound once: the hot path appends it

    def __repr__(self) -> str:
        return f"TikTokAuth(client={self.client!r}, store={self.store!r}, key={self.key!r})"

    # -- what every driver shares -------------------------------------------------------------------

    def _url_allowed(self, scheme: str, host: str | None, port: int | None) -> bool:
        if not host:
            return False
        host = host.lower()
        if scheme != "https" and not (scheme == "http" and _protocol.is_loopback(host)):
            return False
        if port is None or port == _DEFAULT_PORTS.get(scheme):
            return host in self.allowed_hosts
        return f"{host}:{port}" in self.allowed_hosts

    def _str_url_allowed(self, url: str) -> bool:
        if url.startswith(self._prefixes):
            return True
        try:
            parts = urlsplit(url)
            return parts.username is None and self._url_allowed(parts.scheme, parts.hostname, parts.port)
        except ValueError:
            return False

    def _flow(self, request: Any, *, replayable: bool, sent: str | None = None) -> Generator[Any, Any, None]:
        """The auth logic, once: set the bearer header, and on `access_token_invalid` refresh and retry once.

        Drivers run it only for a request to an allowed host (each library spells URLs its own way).
        `sent` is the access token a driver's fast path already put on the request; the flow then starts at
        the response, and knows which token TikTok refused (not one another caller has refreshed since).
        """
        if sent is None:
            token: TikTokToken = yield _TOKEN_NEEDED
            sent = token.access_token
            request.headers["Authorization"] = f"Bearer {sent}"
        response = yield request
        # Only the answer of this very request counts: not that of a host a redirect led to.
        if response.request is request and _token_rejected(response):
            if not replayable:
                return
            token = yield _TokenNeeded(rejected=sent)
            request.headers["Authorization"] = f"Bearer {token.access_token}"
            yield request

    def _fresh_bearer(self) -> str | None:
        """The header value of the token this object last saw, while fresh (no I/O, no lock)."""
        token, fresh_until, bearer = self._current
        return bearer if token is not None and _clock.now() < fresh_until else None

    def _cached(self, rejected: str | None) -> TikTokToken | None:
        token, fresh_until, _ = self._current
        if token is None or _clock.now() >= fresh_until or token.access_token == rejected:
            return None
        return token

    def _usable(self, token: TikTokToken | None, rejected: str | None) -> bool:
        return token is not None and not token.is_expired(self.leeway) and token.access_token != rejected

    def _remember(self, token: TikTokToken) -> TikTokToken:
        expires_at = token.expires_at
        fresh_until = float("inf") if expires_at is None else expires_at - self.leeway
        self._current = (token, fresh_until, f"Bearer {token.access_token}")
        return token

    def _reuse(self, token: TikTokToken) -> TikTokToken:
        logger.debug("key %r: the stored token is good (another caller may have refreshed it)", self.key)
        return self._remember(token)

    def _renewal(self, current: TikTokToken | None, rejected: str | None) -> Literal["client", "refresh"]:
        """Which grant renews `current` (logged); `ReauthorizationRequiredError` when none can."""
        if not self.client_credentials and current is None:
            raise self._missing()
        what = "a client access token" if self.client_credentials else "a refresh"
        why = (
            "TikTok refused the token" if rejected else "no token" if current is None else "the token expires"
        )
        logger.debug("key %r: %s (%s)", self.key, what, why)
        return "client" if self.client_credentials else "refresh"

    def _saved(self) -> TikTokToken:
        """The new token has reached the store: use it from now on."""
        fresh, self._unsaved = self._unsaved, None
        assert fresh is not None
        return self._remember(fresh)

    def _missing(self) -> ReauthorizationRequiredError:
        return ReauthorizationRequiredError(f"no token is stored under key {self.key!r}: log in first")

    # -- the sync token source (requests and httpx sync) --------------------------------------------

    def _sync_client(self) -> TikTokOAuth2Client:
        if self._async_store or not isinstance(self.client, TikTokOAuth2Client):
            raise TypeError(
                "a sync flow (requests, httpx.Client) needs a TikTokOAuth2Client and a sync TokenStore; "
                "use AsyncTikTokOAuth2Client only with httpx.AsyncClient"
            )
        return self.client

    def _sync_token(self, rejected: str | None) -> TikTokToken:
        cached = self._cached(rejected)
        if cached is not None:
            return cached
        client = self._sync_client()
        store: Any = self.store
        with _locks.thread_lock(self.store, self.key):
            lock = getattr(store, "lock", None)
            with lock(self.key) if lock is not None else contextlib.nullcontext():
                # Someone else may have refreshed while we waited: read again, under the lock.
                current = self._unsaved
                if current is not None:  # our last new token never reached the store: write it first
                    store.set(self.key, current)
                    self._unsaved = None
                else:
                    current = store.get(self.key)
                if self._usable(current, rejected):
                    return self._reuse(current)
                if self._renewal(current, rejected) == "client":
                    self._unsaved = client.fetch_client_token()
                else:
                    self._unsaved = client.refresh_token(current)
                store.set(self.key, self._unsaved)
                return self._saved()

    def _drive_sync(self, flow: Generator[Any, Any, None], step: Any) -> Any:
        """Advance `flow` past token requests; return the next request to send (or raise StopIteration)."""
        while isinstance(step, _TokenNeeded):
            step = flow.send(self._sync_token(step.rejected))
        return step

    # -- httpx sync ---------------------------------------------------------------------------------

    def _httpx_allowed(self, request: Any) -> bool:
        url = request.url
        return self._url_allowed(url.scheme, url.host, url.port)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Drive the flow for `httpx.Client` (and `httpx2.Client`)."""
        if not self._httpx_allowed(request):
            yield request  # another host: the token never goes there
            return
        bearer = self._fresh_bearer()
        if bearer is not None:
            # Fast path: a fresh token; the flow starts only if TikTok answers 401.
            request.headers["Authorization"] = bearer
            response = yield request
            if response.status_code != 401:
                return
            flow = self._flow(request, replayable=_httpx_replayable(request), sent=bearer[7:])
            next(flow)
        else:
            flow = self._flow(request, replayable=_httpx_replayable(request))
            response = yield self._drive_sync(flow, next(flow))
        while True:
            if response.status_code == 401:
                response.read()
            try:
                next_request = self._drive_sync(flow, flow.send(response))
            except StopIteration:
                return
            response = yield next_request

    # -- httpx async --------------------------------------------------------------------------------

    def _async_client(self) -> AsyncTikTokOAuth2Client:
        if not isinstance(self.client, AsyncTikTokOAuth2Client):
            raise TypeError(
                "httpx.AsyncClient needs an AsyncTikTokOAuth2Client; use TikTokOAuth2Client with sync clients"
            )
        return self.client

    @contextlib.asynccontextmanager
    async def _store_lock(self) -> AsyncGenerator[None, None]:
        store: Any = self.store
        if self._async_store:
            lock = getattr(store, "lock", None)
            cm = lock(self.key) if lock is not None else contextlib.nullcontext()
        elif getattr(store, "alock", None) is not None:
            cm = store.alock(self.key)  # waits without blocking the event loop
        elif getattr(store, "lock", None) is not None:
            cm = _in_thread(store.lock(self.key))
        else:
            cm = contextlib.nullcontext()
        async with cm:
            yield

    async def _store_call(self, name: str, *args: Any) -> Any:
        method = getattr(self.store, name)
        if self._async_store:
            return await method(*args)
        return await asyncio.to_thread(method, *args)

    async def _async_token(self, rejected: str | None) -> TikTokToken:
        cached = self._cached(rejected)
        if cached is not None:
            return cached
        client = self._async_client()
        async with _locks.async_lock(self.store, self.key), self._store_lock():
            # Someone else may have refreshed while we waited: read again, under the lock.
            current = self._unsaved
            if current is not None:  # our last new token never reached the store: write it first
                await self._store_call("set", self.key, current)
                self._unsaved = None
            else:
                current = await self._store_call("get", self.key)
            if self._usable(current, rejected):
                return self._reuse(current)
            if self._renewal(current, rejected) == "client":
                self._unsaved = await client.fetch_client_token()
            else:
                self._unsaved = await client.refresh_token(current)
            await self._store_call("set", self.key, self._unsaved)
            return self._saved()

    async def _drive_async(self, flow: Generator[Any, Any, None], step: Any) -> Any:
        while isinstance(step, _TokenNeeded):
            step = flow.send(await self._async_token(step.rejected))
        return step

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Drive the flow for `httpx.AsyncClient` (and `httpx2.AsyncClient`)."""
        if not self._httpx_allowed(request):
            yield request  # another host: the token never goes there
            return
        bearer = self._fresh_bearer()
        if bearer is not None:
            request.headers["Authorization"] = bearer
            response = yield request
            if response.status_code != 401:
                return
            flow = self._flow(request, replayable=_httpx_replayable(request), sent=bearer[7:])
            next(flow)
        else:
            flow = self._flow(request, replayable=_httpx_replayable(request))
            response = yield await self._drive_async(flow, next(flow))
        while True:
            if response.status_code == 401:
                await response.aread()
            try:
                next_request = await self._drive_async(flow, flow.send(response))
            except StopIteration:
                return
            response = yield next_request

    # -- requests -----------------------------------------------------------------------------------

    def __call__(self, request: Any) -> Any:
        """Drive the flow for requests: `session.auth = auth` calls this with each `PreparedRequest`."""
        body = request.body
        bearer = self._fresh_bearer()
        if (
            bearer is not None
            and (body is None or type(body) in (bytes, str))
            and request.url.startswith(self._prefixes)
        ):
            # Fast path: a fresh token for a plainly allowed URL; the flow starts only on a 401.
            request.headers["Authorization"] = bearer
            request.hooks["response"].append(self._requests_fast_hook)
            return request
        if not self._str_url_allowed(request.url):
            return request  # another host: the token never goes there
        position = body.tell() if hasattr(body, "tell") else None
        replayable = body is None or isinstance(body, bytes | str) or position is not None
        flow = self._flow(request, replayable=replayable)
        prepared = self._drive_sync(flow, next(flow))
        request.register_hook("response", partial(self._requests_response, flow, position))
        return prepared

    def _requests_fast_response(self, response: Any, **kwargs: Any) -> Any:
        if response.status_code != 401:
            return response
        # This hook also sees the answers of redirects requests followed: act only for an allowed URL
        # that carried our bearer (requests strips it when a redirect leaves the host).
        request = response.request
        sent = request.headers.get("Authorization", "")
        if not sent.startswith("Bearer ") or not self._str_url_allowed(request.url):
            return response
        flow = self._flow(request, replayable=True, sent=sent[7:])
        next(flow)
        return self._requests_response(flow, None, response, **kwargs)

    def _requests_response(
        self, flow: Generator[Any, Any, None], position: int | None, response: Any, **kwargs: Any
    ) -> Any:
        # The first call carries this request's own response and ends the flow unless it asks for a retry;
        # later calls (for redirects requests follows) find the flow finished and change nothing.
        if inspect.getgeneratorstate(flow) != inspect.GEN_SUSPENDED:
            return response
        try:
            retry = self._drive_sync(flow, flow.send(response))
        except StopIteration:
            return response
        _ = response.content  # consume the body and release the connection for the retry
        response.close()
        prepared = retry.copy()
        if position is not None:
            prepared.body.seek(position)
        cookie_jar = getattr(prepared, "_cookies", None)
        if cookie_jar is not None:
            # Cookies the 401 set go out with the retry, as requests' digest auth does; requests has already
            # parsed them into `response.cookies`, so the library need not import requests for it.
            cookie_jar.update(response.cookies)
            prepared.headers.pop("Cookie", None)
            prepared.prepare_cookies(cookie_jar)
        retried = response.connection.send(prepared, **kwargs)
        retried.history.append(response)
        retried.request = prepared
        flow.close()
        return retried


def _httpx_replayable(request: Any) -> bool:
    """Whether an httpx request's body is in memory, so it can be sent a second time."""
    try:
        _ = request.content
    except Exception:  # noqa: BLE001 - httpx and httpx2 each raise their own RequestNotRead
        return False
    return True


@contextlib.asynccontextmanager
async def _in_thread(cm: contextlib.AbstractContextManager[Any]) -> AsyncGenerator[None, None]:
    """Enter and leave a blocking lock in a worker thread, so the event loop keeps running."""
    await asyncio.to_thread(cm.__enter__)
    try:
        yield
    finally:
        await asyncio.to_thread(cm.__exit__, None, None, None)
