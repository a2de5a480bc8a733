"""The request flow and the fast path, once: what every driver runs, with no I/O of an HTTP library.

In the style of httpx's `Auth.auth_flow`, `flow` is a generator that yields the request to send, or a
`TokenNeeded` when it needs a token, and receives the response or the token. An `Exchange` runs it for one
request, answering its `TokenNeeded` from the token source (`drive_sync` / `drive_async`); a `Driver` holds
the (token source, allowed hosts) pair; the fast path is the same in each: a fresh cached bearer goes on at once,
and the flow starts only on a 401. The drivers (`_requests`, `_niquests`, `_httpx`, `_aiohttp`) add only
their library's I/O: how a request is sent again, how a response body is read.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from tiktok_oauth import _protocol

if TYPE_CHECKING:
    from tiktok_oauth.auth._source import TokenSource
    from tiktok_oauth.token import TikTokToken

#: The scheme prefix of the `Authorization` header the auth sets.
BEARER: Final = "Bearer "


class TokenNeeded(NamedTuple):
    """The flow needs a token.

    `rejected` is the access token TikTok just refused, if any. With `renew`, a usable token is wanted
    (renewed when the stored one is the refused one); without it, only the stored token if it is another
    one (None otherwise: the 401 stands).
    """

    rejected: str | None = None
    renew: bool = True


TOKEN_NEEDED: Final = TokenNeeded()


def token_rejected(response: Any) -> bool:
    """Whether a response is TikTok's 401 `access_token_invalid` (not `scope_not_authorized`; row 15)."""
    status = response.status_code
    # The status first: the body of an answer that is not a 401 is never read here (it may be a stream).
    return status == 401 and _protocol.token_rejected(status, response.content)


def flow(request: Any, *, replayable: bool, sent: str | None = None) -> Generator[Any, Any, None]:
    """Set the bearer; after a 401, retry once with a renewed token or with another one from the store.

    Drivers run it only for a request to an allowed host (each library spells URLs its own way). `sent` is
    the access token a driver's fast path already put on the request; the flow then starts at the response,
    and knows which token TikTok refused (not one another caller has refreshed since).
    """
    if sent is None:
        token = yield TOKEN_NEEDED
        sent = token.access_token
        request.headers["Authorization"] = BEARER + sent
    response = yield request
    # Only the answer of this very request counts: not that of a host a redirect led to.
    if getattr(response, "request", request) is not request or response.status_code != 401 or not replayable:
        return
    if token_rejected(response):
        token = yield TokenNeeded(rejected=sent)
    else:  # scope_not_authorized and the like: a refresh cannot help, a newer stored token may
        token = yield TokenNeeded(rejected=sent, renew=False)
        if token is None:
            return
    request.headers["Authorization"] = BEARER + token.access_token
    yield request


def sent_token(header: str | None) -> str | None:
    """The access token of an `Authorization: Bearer` header value, None for any other value."""
    return header[len(BEARER) :] if header is not None and header.startswith(BEARER) else None


class Answer(NamedTuple):
    """What the flow reads of a response whose body must be awaited: status, body, and its request."""

    status_code: int
    content: bytes
    request: Any


def drive_sync(source: TokenSource, steps: Generator[Any, Any, None], step: Any) -> Any:
    """Advance `steps` past token requests; return the next request to send (or raise StopIteration)."""
    while isinstance(step, TokenNeeded):
        if step.renew:
            step = steps.send(source.token(step.rejected))
        else:
            assert step.rejected is not None
            step = steps.send(source.stored_replacement(step.rejected))
    return step


async def drive_async(source: TokenSource, steps: Generator[Any, Any, None], step: Any) -> Any:
    """`drive_sync` for async drivers; the end of the flow is None here, not StopIteration.

    A StopIteration cannot leave a coroutine (Python turns it into a RuntimeError), and a flow can end on
    a token: a 401 that a refresh cannot cure, with no other token in the store.
    """
    while isinstance(step, TokenNeeded):
        token: TikTokToken | None
        if step.renew:
            token = await source.atoken(step.rejected)
        else:
            assert step.rejected is not None
            token = await source.astored_replacement(step.rejected)
        try:
            step = steps.send(token)
        except StopIteration:
            return None
    return step


class Exchange:
    """One request's way through the flow, its tokens taken from the source: a driver only sends and reads.

    `first()` / `afirst()` give the request to send (the bearer set); `answer(response)` / `aanswer(...)`
    give the request to send again, or None when the response stands. Built with the `bearer` the fast
    path already sent, the exchange starts at the answer to it.
    """

    __slots__ = ("_source", "_step", "_steps")

    def __init__(
        self, source: TokenSource, request: Any, *, replayable: bool, bearer: str | None = None
    ) -> None:
        self._source = source
        self._steps = flow(request, replayable=replayable, sent=sent_token(bearer))
        self._step = next(self._steps)

    @property
    def waiting(self) -> bool:
        """Whether the flow still waits for an answer (a hook called again for a redirect finds it done)."""
        return inspect.getgeneratorstate(self._steps) == inspect.GEN_SUSPENDED

    def first(self) -> Any:
        """The request to send, with a token read, refreshed or fetched as needed."""
        return drive_sync(self._source, self._steps, self._step)

    async def afirst(self) -> Any:
        """`first`, awaiting the token."""
        return await drive_async(self._source, self._steps, self._step)

    def answer(self, response: Any) -> Any:
        """The request to send again after `response`, or None: the response stands."""
        try:
            return drive_sync(self._source, self._steps, self._steps.send(response))
        except StopIteration:
            return None

    async def aanswer(self, response: Any) -> Any:
        """`answer`, awaiting the token."""
        try:
            step = self._steps.send(response)
        except StopIteration:
            return None
        return await drive_async(self._source, self._steps, step)

    def close(self) -> None:
        """End the flow: the hooks of later redirects find it done."""
        self._steps.close()


class Driver:
    """What every driver is built over: the token source and the allowed hosts.

    The fast path is the same in each: `source.fresh_bearer()` (a fresh cached token's header value, no
    I/O, no lock) goes on the request, and only a 401 starts `exchange(request, bearer=...)`; without a
    fresh token the exchange starts at once. Drivers call the source themselves: one call less per request.
    """

    __slots__ = ("hosts", "source")

    def __init__(self, source: TokenSource, hosts: Hosts) -> None:
        self.source = source
        self.hosts = hosts

    def exchange(self, request: Any, *, replayable: bool, bearer: str | None = None) -> Exchange:
        """The flow for `request`: from its start, or (`bearer` sent by the fast path) from its answer."""
        return Exchange(self.source, request, replayable=replayable, bearer=bearer)


class Hosts:
    """Which URLs get the token: the allowed hosts, over https (or http to a loopback host)."""

    def __init__(self, allowed: frozenset[str]) -> None:
        self.allowed = allowed
        # Fast path for URL strings (requests, niquests): these prefixes are allowed without parsing the URL.
        self.prefixes = tuple(
            f"{scheme}://{host}/"
            for host in allowed
            for scheme in ("https", "http")
            if scheme == "https" or _protocol.is_loopback(host.rsplit(":", 1)[0] if "]" not in host else host)
        )

    def allows(self, scheme: str, host: str | None, port: int | None) -> bool:
        if not host:
            return False
        host = host.lower()
        if scheme != "https" and not (scheme == "http" and _protocol.is_loopback(host)):
            return False
        return _protocol.host_entry(host, port, scheme) in self.allowed

    def allows_str(self, url: str) -> bool:
        if url.startswith(self.prefixes):
            return True
        from urllib.parse import urlsplit  # noqa: PLC0415 - only off the fast path

        try:
            parts = urlsplit(url)
            return parts.username is None and self.allows(parts.scheme, parts.hostname, parts.port)
        except ValueError:
            return False
