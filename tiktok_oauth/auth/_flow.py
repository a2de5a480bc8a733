"""The request flow, once: set the bearer header; on a 401, refresh or pick up the stored token, retry once.

In the style of httpx's `Auth.auth_flow`, `flow` is a generator that yields the request to send, or a
`TokenNeeded` when it needs a token, and receives the response or the token. Every driver (requests and
niquests, httpx and httpx2 sync and async, aiohttp) runs it; only the drivers do I/O or take locks.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Final, NamedTuple

from tiktok_oauth import _protocol


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
        request.headers["Authorization"] = f"Bearer {sent}"
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
    request.headers["Authorization"] = f"Bearer {token.access_token}"
    yield request


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
