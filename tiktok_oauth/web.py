"""Log in with TikTok on a web app: `TikTokLogin` keeps pending logins in the browser's session.

The rules live here, with no web framework imported: what a pending login holds, how many a session
keeps, when one expires, which `next` targets are safe, and the checks a callback goes through before
its code is exchanged. The flavours in `tiktok_oauth.integrations` only read the request and the
session and build their framework's redirect.

The ready-made routes' decisions live here too, as plain functions the flavours share: the session key
of the logged-in user (`USER_SESSION_KEY`), the redirect URI a login route sends (`route_redirect_uri`),
where a login lands (`after_login_url`) and the status and page of a failure (`error_page`).

The session holds one small dict under `session_key`, mapping each pending login's state to what the
callback needs (the redirect URI, the PKCE verifier, `next`, when it began): JSON values only, never
the client secret or a token. A framework's cookie session signs that value (so it cannot be forged)
but does not encrypt it; the verifier in it only proves that the callback comes back to the browser
that began the login, which is the browser that holds the cookie.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import inspect
import unicodedata
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from tiktok_oauth import _clock, _protocol
from tiktok_oauth.auth import TikTokAuth, TokenSource
from tiktok_oauth.client import AsyncTikTokOAuth2Client, TikTokOAuth2Client
from tiktok_oauth.errors import (
    AuthorizationDeniedError,
    RateLimitedError,
    StateMismatchError,
    TikTokOAuthError,
    TikTokServerError,
    TokenStoreError,
)
from tiktok_oauth.events import OnEvent
from tiktok_oauth.stores import AsyncTokenStore, MemoryTokenStore, TokenStore
from tiktok_oauth.token import TikTokToken

__all__ = ["USER_SESSION_KEY", "LoginResult", "TikTokLogin"]

#: Pending logins one session keeps (several tabs at once); beginning a ninth drops the oldest.
MAX_PENDING = 8
#: The longest `next` kept: the session is often a cookie, and browsers cap a cookie at about 4 KB.
MAX_NEXT_LENGTH = 2048

#: Where the ready-made routes keep the logged-in user's store key (their open_id) in the session.
USER_SESSION_KEY = "tiktok_oauth_user"
#: The longest message the ready-made routes' error page shows (an exception's text, escaped).
MAX_ERROR_MESSAGE_LENGTH = 300

Session = MutableMapping[str, Any]


class LoginResult(NamedTuple):
    """What a completed login gives: the user's token, the store key it was saved under, and `next`.

    Attributes:
        token: the user's new `TikTokToken`, already saved in the login's store.
        key: the store key: the user's `open_id`. Keep it in your own session to find the user again
            (`login.auth(key)`).
        next: the same-site path given to `begin`, or None: where to send the user now.
    """

    token: TikTokToken
    key: str
    next: str | None


class _JunkError(Exception):
    """The value under `session_key` is not what `TikTokLogin` writes (tampered with, or someone else's)."""


@dataclass(frozen=True)
class _Pending:
    """One login begun and not yet completed, as the session keeps it."""

    redirect_uri: str
    code_verifier: str | None
    next: str | None
    began: float

    def to_json(self) -> dict[str, Any]:
        return {
            "redirect_uri": self.redirect_uri,
            "code_verifier": self.code_verifier,
            "next": self.next,
            "began": self.began,
        }

    @classmethod
    def from_json(cls, value: object) -> _Pending:
        """Read a session entry back; `_JunkError` for anything `to_json` cannot have written."""
        if not isinstance(value, dict) or set(value) != {"redirect_uri", "code_verifier", "next", "began"}:
            raise _JunkError
        redirect_uri, verifier, next_, began = (
            value["redirect_uri"],
            value["code_verifier"],
            value["next"],
            value["began"],
        )
        if not isinstance(redirect_uri, str) or not _optional_str(verifier) or not _optional_str(next_):
            raise _JunkError
        if isinstance(began, bool) or not isinstance(began, int | float):
            raise _JunkError
        return cls(redirect_uri, verifier, next_, float(began))


class TikTokLogin:
    """ "Log in with TikTok" for a web app, on any per-browser session mapping.

    ```python
    login = TikTokLogin(client, store)
    url = login.begin(session, next="/videos")          # redirect the browser there
    result = login.complete(session, callback_url)      # on the redirect URI's page
    auth = login.auth(result.key)                       # the user's TikTokAuth
    ```

    Each `begin` makes a new state and PKCE verifier and keeps them in `session` until the callback
    comes back; `complete` checks the callback against them, exchanges its code and saves the user's
    token in `store` under their `open_id`. A callback is used once, and nothing reaches TikTok's
    token endpoint unless every check passed.

    Args:
        client: a `TikTokOAuth2Client` (for `complete`) or an `AsyncTikTokOAuth2Client` (`acomplete`).
        store: where users' tokens go (sync or async); a new `MemoryTokenStore` when None.
        pkce: send TikTok's PKCE challenge (a new verifier per login). Keep it on unless your app's
            TikTok settings reject it.
        max_age: seconds a begun login may take to come back; an older callback is refused.
        session_key: the session key holding the pending logins.
        on_event: called with a `TokenEvent` (`"logged_in"`) after each login is stored, outside the lock.
    """

    def __init__(
        self,
        client: TikTokOAuth2Client | AsyncTikTokOAuth2Client,
        store: TokenStore | AsyncTokenStore | None = None,
        *,
        pkce: bool = True,
        max_age: float = 600.0,
        session_key: str = "tiktok_oauth",
        on_event: OnEvent | None = None,
    ) -> None:
        if not isinstance(client, TikTokOAuth2Client | AsyncTikTokOAuth2Client):
            raise TypeError("client must be a TikTokOAuth2Client or an AsyncTikTokOAuth2Client")
        if not max_age > 0:
            raise ValueError("max_age is seconds, more than 0")
        self.client = client
        self.store: TokenStore | AsyncTokenStore = MemoryTokenStore() if store is None else store
        self.pkce = pkce
        self.max_age = max_age
        self.session_key = session_key
        self.on_event = on_event

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client={self.client!r}, store={self.store!r})"

    def begin(
        self,
        session: Session,
        *,
        scope: str | Iterable[str] | None = None,
        redirect_uri: str | None = None,
        next: str | None = None,  # noqa: A002 - the name every web framework uses
    ) -> str:
        """Start a login: keep it pending in `session` and return TikTok's URL to redirect the browser to.

        Args:
            session: the browser's session mapping (Starlette's `request.session`, Flask's `session`,
                Django's `request.session`).
            scope: scopes to ask for; the client's when None.
            redirect_uri: where TikTok sends the browser back; the client's `redirect_uri` when None.
            next: a path on this site to go to after the login (`/videos?page=2`); returned by
                `complete` in `LoginResult.next`.

        Raises:
            ValueError: `next` is not a path on this site (`//host`, a scheme, a backslash, a
                control character): it would be an open redirect.
        """
        checked_next = _same_site_path(next)
        verifier = self.client.generate_code_verifier() if self.pkce else None
        redirect_uri = redirect_uri or self.client.redirect_uri
        url, state = self.client.create_authorization_url(
            scope=scope, redirect_uri=redirect_uri, code_verifier=verifier
        )
        now = _clock.now()
        pending = {
            state: login
            for state, login in _read_pending(session, self.session_key, junk_ok=True).items()
            if not self._expired(login, now)
        }
        pending[state] = _Pending(redirect_uri, verifier, checked_next, now)
        newest = sorted(pending.items(), key=lambda item: item[1].began)[-MAX_PENDING:]
        _write_pending(session, self.session_key, dict(newest))
        return url

    def complete(self, session: Session, callback_url: str) -> LoginResult:
        """Finish the login that `callback_url` (the URL TikTok redirected to) answers; save the token.

        Returns:
            `LoginResult(token, key, next)`; the token is saved in the store under `key` (its open_id).

        Raises:
            StateMismatchError: the callback's state is missing or unknown to this session (a forged
                or replayed callback, another browser's, or a session holding junk), or the login
                is older than `max_age`.
            AuthorizationDeniedError: the callback carries `error=` (the user said no).
            TikTokOAuthError: the callback has neither `code` nor `error` (`.error == "invalid_request"`),
                or TikTok refused the code; its subclasses for TikTok failing or the store failing.
            TypeError: the client is an `AsyncTikTokOAuth2Client` (use `acomplete`) or the store is async.
        """
        client = self.client
        if not isinstance(client, TikTokOAuth2Client):
            raise TypeError(
                "complete() needs a TikTokOAuth2Client; with an AsyncTikTokOAuth2Client use acomplete()"
            )
        if self._store_is_async:
            raise TypeError("complete() needs a sync store; with an async store use acomplete()")
        state, login = self._take(session, callback_url)
        token = client.fetch_token(
            authorization_response=callback_url,
            state=state,
            code_verifier=login.code_verifier,
            redirect_uri=login.redirect_uri,
        )
        key = _key_of(token)
        source = TokenSource.over(client, self.store, key, on_event=self.on_event)
        source.store_login(token)  # under the lock: the one writer
        return LoginResult(token, key, login.next)

    async def acomplete(self, session: Session, callback_url: str) -> LoginResult:
        """`complete` for async apps: with an `AsyncTikTokOAuth2Client`, or a sync client run in a thread.

        A sync store's `set` runs in a thread too, so the event loop is never blocked.
        """
        state, login = self._take(session, callback_url)
        client = self.client
        exchange: dict[str, Any] = {
            "authorization_response": callback_url,
            "state": state,
            "code_verifier": login.code_verifier,
            "redirect_uri": login.redirect_uri,
        }
        if isinstance(client, AsyncTikTokOAuth2Client):
            token = await client.fetch_token(**exchange)
        else:
            token = await asyncio.to_thread(client.fetch_token, **exchange)
        key = _key_of(token)
        source = TokenSource.over(client, self.store, key, on_event=self.on_event)
        await source.astore_login(token)  # under the lock: the one writer
        return LoginResult(token, key, login.next)

    def auth(self, key: str) -> TikTokAuth:
        """The `TikTokAuth` of the user stored under `key` (`LoginResult.key`): `TikTokAuth(client, store, key)`."""
        return TikTokAuth(self.client, self.store, key)

    @property
    def _store_is_async(self) -> bool:
        return inspect.iscoroutinefunction(getattr(self.store, "get", None))

    def _expired(self, login: _Pending, now: float) -> bool:
        return now - login.began > self.max_age

    def _take(self, session: Session, callback_url: str) -> tuple[str, _Pending]:
        """Find the callback's pending login and remove it from the session, before anything else.

        Every check that needs no request is done here or by the client's own callback check
        (the error and code parameters), so a refused callback never reaches the token endpoint.
        """
        try:
            query = dict(parse_qsl(urlsplit(callback_url).query, keep_blank_values=True))
        except ValueError:
            raise TikTokOAuthError("the callback URL is malformed", error="invalid_request") from None
        try:
            pending = _read_pending(session, self.session_key, junk_ok=False)
        except _JunkError:
            session.pop(self.session_key, None)
            raise StateMismatchError(
                "the session's pending logins are unreadable (tampered with, or written by something else); "
                "start the login again"
            ) from None
        state = _matching_state(pending, query.get("state", ""))
        if state is None:
            raise StateMismatchError(
                "the callback's state matches no login begun in this browser session "
                "(forged, replayed, from another browser, or the session was lost); start the login again"
            )
        login = pending.pop(state)
        now = _clock.now()
        _write_pending(
            session, self.session_key, {s: p for s, p in pending.items() if not self._expired(p, now)}
        )
        if self._expired(login, now):
            raise StateMismatchError(
                f"the login expired: it began more than {self.max_age:g} seconds ago; start it again"
            )
        return state, login


def _matching_state(pending: dict[str, _Pending], received: str) -> str | None:
    """The pending state equal to `received`, compared in constant time with each (there are at most 8)."""
    found = None
    for state in pending:
        if hmac.compare_digest(state.encode(), received.encode()):
            found = state
    return found


def _read_pending(session: Session, session_key: str, *, junk_ok: bool) -> dict[str, _Pending]:
    """The pending logins under `session_key`; junk raises `_JunkError`, or reads as none with `junk_ok`."""
    try:
        return _parse_pending(session.get(session_key))
    except _JunkError:
        if junk_ok:
            return {}
        raise


def _parse_pending(value: object) -> dict[str, _Pending]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(state, str) and state for state in value):
        raise _JunkError
    return {state: _Pending.from_json(login) for state, login in value.items()}


def _write_pending(session: Session, session_key: str, pending: dict[str, _Pending]) -> None:
    # Always a new dict assigned to the key: Flask and Django notice assignments, not nested changes.
    if pending:
        session[session_key] = {state: login.to_json() for state, login in pending.items()}
    else:
        session.pop(session_key, None)


def _same_site_path(next_: str | None) -> str | None:
    """`next_` if it is a path on this site, else `ValueError` (an open redirect otherwise)."""
    if next_ is None:
        return None
    if not isinstance(next_, str):
        raise TypeError("next must be a str")
    refuse = ValueError(
        f"next must be a path on this site such as '/videos' (not '//host', a scheme or a backslash): {next_!r}"
    )
    if not next_.startswith("/") or next_.startswith("//") or "\\" in next_:
        raise refuse
    # Browsers drop tabs and newlines inside URLs ("/\t/evil" becomes "//evil"): no control characters.
    if any(unicodedata.category(character) in {"Cc", "Cf", "Zl", "Zp"} for character in next_):
        raise refuse
    parts = urlsplit(next_)
    if parts.scheme or parts.netloc:
        raise refuse
    if len(next_) > MAX_NEXT_LENGTH:
        raise ValueError(f"next is longer than {MAX_NEXT_LENGTH} characters")
    return next_


def _optional_str(value: object) -> bool:
    return value is None or isinstance(value, str)


def _key_of(token: TikTokToken) -> str:
    if not token.open_id:
        raise TikTokServerError("TikTok's token answer carries no open_id", retryable=False)
    return token.open_id


# -- the ready-made routes' decisions, shared by every flavour (which only does its framework's I/O) ---------


def route_redirect_uri(client: TikTokOAuth2Client | AsyncTikTokOAuth2Client, login_url: str) -> str:
    """The redirect URI a ready-made login route sends: the client's `redirect_uri` when one was configured
    (it is the one registered on TikTok's portal, and stays right behind a proxy), else the `callback` route
    beside the `login` route that `login_url` (the request's own URL) names."""
    if client.redirect_uri != _protocol.DEFAULT_REDIRECT_URI:
        return client.redirect_uri
    return sibling_url(login_url, "callback")


def sibling_url(url: str, name: str) -> str:
    """`url` with its last path segment replaced by `name` and no query: `/a/login?x` -> `/a/callback`;
    a trailing slash is kept (`/a/login/` -> `/a/callback/`, as Django's URLs end)."""
    parts = urlsplit(url)
    trailing = parts.path.endswith("/")
    head, _, _ = parts.path.rstrip("/").rpartition("/")
    return urlunsplit((parts.scheme, parts.netloc, f"{head}/{name}{'/' if trailing else ''}", "", ""))


def logged_in_key(session: Session) -> str | None:
    """The store key of the user the ready-made routes logged in with this session, or None."""
    key = session.get(USER_SESSION_KEY)
    return key if isinstance(key, str) and key else None


def remember_user(session: Session, key: str) -> None:
    """Keep `key` (`LoginResult.key`) as this session's logged-in user."""
    session[USER_SESSION_KEY] = key


def forget_user(session: Session) -> None:
    """Remove this session's logged-in user."""
    session.pop(USER_SESSION_KEY, None)


def after_login_url(result: LoginResult) -> str:
    """Where the callback route sends the browser without an `on_login` hook: `result.next`, else `/`."""
    return result.next or "/"


def error_status(exc: Exception) -> int:
    """The HTTP status of a ready-made route's error page for `exc`.

    403 for a denial, 502 when TikTok failed (a 5xx, a timeout, a rate limit), 500 when the store failed,
    400 for the rest: a state mismatch, a malformed callback, a refused code, a `next` off this site.
    """
    if isinstance(exc, AuthorizationDeniedError):
        return 403
    if isinstance(exc, TikTokServerError | RateLimitedError):
        return 502
    if isinstance(exc, TokenStoreError):
        return 500
    return 400


_ERROR_TITLES = {
    400: "This login cannot be completed",
    403: "You did not log in",
    502: "TikTok is unavailable",
}


def error_page(exc: Exception) -> tuple[int, str]:
    """`(status, html)`: the small page a ready-made route answers for `exc`, its message short and escaped
    (a callback's `error_description` comes from the URL: anyone can write it)."""
    status = error_status(exc)
    title = _ERROR_TITLES.get(status, "The login failed")
    message = str(exc)
    if len(message) > MAX_ERROR_MESSAGE_LENGTH:
        message = message[: MAX_ERROR_MESSAGE_LENGTH - 1] + "\u2026"
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>'
        f"{title}</title></head>\n<body><h1>{title}</h1>\n<p>{html.escape(message)}</p>\n"
        '<p><a href="/">Home</a></p></body></html>\n'
    )
    return status, page
