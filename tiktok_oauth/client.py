"""`TikTokOAuth2Client` and `AsyncTikTokOAuth2Client`: thin I/O shells over `_protocol`.

Both build the same requests and read the same replies through `_protocol`; they differ only in how they
send (httpx2 sync or async) and how they wait between attempts. They make httpx2 clients; `http_client=`
takes an httpx2 client or an httpx one (httpx is never imported here: a user who passes an httpx client has
imported it, and its `TransportError` is caught beside httpx2's; `_protocol` reads either by class name).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar, cast

import httpx2

from tiktok_oauth import _protocol, _qrcode
from tiktok_oauth._protocol import Reply, Send, Sleep, TokenCall
from tiktok_oauth._qrcode import QRAnswer, QRLogin, QRStatus
from tiktok_oauth.errors import RateLimitedError
from tiktok_oauth.token import TikTokToken

if TYPE_CHECKING:
    # asyncio costs about 13 ms at import; the async client's methods import it when they run, and by
    # then the event loop that runs them has loaded it.
    import asyncio

    import httpx

__all__ = ["AsyncTikTokOAuth2Client", "QRLogin", "TikTokOAuth2Client", "generate_code_verifier"]

generate_code_verifier = _protocol.generate_code_verifier


HttpClientT = TypeVar("HttpClientT", "httpx2.Client | httpx.Client", "httpx2.AsyncClient | httpx.AsyncClient")


def _accepted(name: str) -> tuple[type[Any], ...]:
    """httpx2's class `name`, and httpx's when httpx is imported (an httpx client exists only then)."""
    httpx = sys.modules.get("httpx")
    ours: type[Any] = getattr(httpx2, name)
    return (ours,) if httpx is None else (ours, getattr(httpx, name))


def _transport_errors() -> tuple[type[Exception], ...]:
    """What a failed attempt raises: httpx2's `TransportError`, and httpx's for a borrowed httpx client."""
    return _accepted("TransportError")


class _TikTokOAuth2Base(Generic[HttpClientT]):
    """What both clients share: configuration, the HTTP client they own or borrow, and everything without I/O."""

    _http_class: ClassVar[type[httpx2.Client | httpx2.AsyncClient]]
    _counterpart: ClassVar[str]

    def __init__(
        self,
        client_key: str,
        client_secret: str,
        *,
        redirect_uri: str = _protocol.DEFAULT_REDIRECT_URI,
        scope: str | Iterable[str] = _protocol.DEFAULT_SCOPE,
        authorize_url: str = _protocol.AUTHORIZE_URL,
        token_url: str = _protocol.TOKEN_URL,
        revoke_url: str = _protocol.REVOKE_URL,
        http_client: HttpClientT | None = None,
        timeout: float = 10.0,
        base_url: str | None = None,
    ) -> None:
        if not client_key:
            raise ValueError("client_key is required")
        if base_url is not None:
            if (authorize_url, token_url, revoke_url) != (
                _protocol.AUTHORIZE_URL,
                _protocol.TOKEN_URL,
                _protocol.REVOKE_URL,
            ):
                raise ValueError("base_url cannot be combined with authorize_url, token_url or revoke_url")
            authorize_url, token_url, revoke_url = _protocol.endpoints_under(base_url)
        if not client_secret:
            raise ValueError("client_secret is required")
        self.client_key = client_key
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.scope = _protocol.join_scope(scope)
        self.authorize_url = _protocol.check_transport(authorize_url)
        self.token_url = _protocol.check_transport(token_url)
        self.revoke_url = _protocol.check_transport(revoke_url)
        # QR-code login lives beside the token endpoint: a client pointed at a served fake reaches it there.
        self._get_qrcode_url, self._check_qrcode_url = _qrcode.qrcode_urls(self.token_url)
        self.timeout = timeout
        if http_client is not None and not isinstance(http_client, _accepted(self._http_class.__name__)):
            name = self._http_class.__name__
            raise TypeError(
                f"http_client must be an httpx2.{name} or an httpx.{name} (use {self._counterpart} for the other kind)"
            )
        self._http: HttpClientT | None = http_client
        self._owns_http = http_client is None
        self._http_lock = threading.Lock()
        #: The async client's tasks running a call now: `aclose` lets them finish before it closes
        #: their HTTP client (the sync client's `close` has no such tasks to wait for).
        self._calls: weakref.WeakSet[Any] = weakref.WeakSet()
        _clients.add(self)

    def _forget_inherited_http(self) -> None:
        """In a forked child: drop the owned HTTP client (its connections are the parent's) and any held lock."""
        self._http_lock = threading.Lock()
        if self._owns_http and self._http is not None:
            _inherited.append(self._http)  # never closed or collected here: its sockets belong to the parent
            self._http = None

    def _budget(self, deadline: float) -> float:
        """Seconds the next attempt may take: `timeout`, or what is left of the call's overall deadline."""
        return min(self.timeout, deadline - time.monotonic())

    def _deadline(self) -> float:
        """The overall deadline of one call with its retries (each attempt is bounded by `timeout` too)."""
        return (
            time.monotonic()
            + _protocol.MAX_ATTEMPTS * self.timeout
            + _protocol.MAX_ATTEMPTS * (_protocol.MAX_RETRY_AFTER)
        )

    def _client(self) -> HttpClientT:
        # Made on first use: building an SSL context costs milliseconds that `__init__` need not pay.
        with self._http_lock:
            if self._http is None:
                self._http = self._http_class(timeout=self.timeout)  # type: ignore[assignment]
            return self._http  # type: ignore[return-value]

    @property
    def _credentials(self) -> tuple[str, str]:
        return self.client_key, self._client_secret

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(client_key={self.client_key!r}, redirect_uri={self.redirect_uri!r}, "
            f"scope={self.scope!r}, token_url={self.token_url!r})"
        )

    @staticmethod
    def generate_code_verifier() -> str:
        """A new PKCE code verifier: 64 characters of RFC 7636's unreserved set, from a CSPRNG."""
        return _protocol.generate_code_verifier()

    def create_authorization_url(
        self,
        *,
        scope: str | Iterable[str] | None = None,
        state: str | None = None,
        redirect_uri: str | None = None,
        code_verifier: str | None = None,
        disable_auto_auth: bool | None = None,
        **extra: str,
    ) -> tuple[str, str]:
        """Build the URL of TikTok's consent page; return `(url, state)`.

        Args:
            scope: scopes to ask for (a `"a,b"` string or an iterable); the client's default when None.
            state: the CSRF state; a new one from a CSPRNG when None. Keep it to check the callback.
            redirect_uri: where TikTok sends the user back; the client's default when None.
            code_verifier: a PKCE verifier (see `generate_code_verifier`); TikTok's hex S256 challenge is sent.
            disable_auto_auth: True always shows the consent page (to switch accounts); sent as 1/0.
            **extra: more query parameters for the authorize URL.
        """
        state = state or _protocol.generate_state()
        url = _protocol.authorization_url(
            self.authorize_url,
            client_key=self.client_key,
            redirect_uri=redirect_uri or self.redirect_uri,
            scope=self.scope if scope is None else scope,
            state=state,
            code_verifier=code_verifier,
            disable_auto_auth=disable_auto_auth,
            extra=extra,
        )
        return url, state

    def _code_call(
        self,
        code: str | None,
        authorization_response: str | None,
        state: str | None,
        code_verifier: str | None,
        redirect_uri: str | None,
    ) -> TokenCall:
        if (code is None) == (authorization_response is None):
            raise ValueError("pass exactly one of code= and authorization_response=")
        if authorization_response is not None:
            code = _protocol.code_from_callback(authorization_response, state)
        assert code is not None
        return _protocol.authorization_code_call(
            self.token_url,
            self._credentials,
            code=code,
            redirect_uri=redirect_uri or self.redirect_uri,
            code_verifier=code_verifier,
        )

    def _refresh_call(self, refresh_token: str | TikTokToken) -> TokenCall:
        return _protocol.refresh_call(self.token_url, self._credentials, refresh_token)

    def _client_call(self) -> TokenCall:
        return _protocol.client_credentials_call(self.token_url, self._credentials)

    def _revoke_call(self, token: str | TikTokToken) -> TokenCall:
        return _protocol.revoke_call(self.revoke_url, self._credentials, token)

    def _get_qrcode_call(self, scope: str | Iterable[str] | None, state: str | None) -> TokenCall:
        scope = _protocol.join_scope(self.scope if scope is None else scope)
        return _qrcode.get_call(
            self._get_qrcode_url,
            client_key=self.client_key,
            scope=scope,
            state=state or _protocol.generate_state(),
        )

    @staticmethod
    def _qr_login(call: TokenCall, answer: Any) -> QRLogin:
        ticket = _qrcode.generate_client_ticket()
        return _qrcode.login_from(answer, state=call.data["state"], client_ticket=ticket)

    def _check_qrcode_call(self, qr: QRLogin) -> TokenCall:
        return _qrcode.check_call(self._check_qrcode_url, self._credentials, qr)


def _reply(response: Any) -> Reply:
    return Reply(response.status_code, response.headers, response.content)


class TikTokOAuth2Client(_TikTokOAuth2Base["httpx2.Client | httpx.Client"]):
    """TikTok's OAuth 2.0 client (Login Kit v2), sync, on httpx2.

    Args:
        client_key: the app's client key (TikTok's name for the client id).
        client_secret: the app's client secret; it is sent only in token-endpoint form bodies.
        redirect_uri: the registered redirect URI; `https://localhost/` by default, as pytiktok's KitApi.
        scope: default scopes, a `"a,b"` string or an iterable of names.
        authorize_url: TikTok's consent page.
        token_url: TikTok's token endpoint.
        revoke_url: TikTok's revoke endpoint.
        http_client: an `httpx2.Client` or an `httpx.Client` to reuse (it is not closed by `close()`); an
            `httpx2.Client` is made when None.
        timeout: seconds, for the client this makes.
        base_url: every endpoint (authorize, token, revoke, QR code, user info) under this origin with
            TikTok's own paths, e.g. a served FakeTikTok's `http://127.0.0.1:8123`; not with a `*_url`.
    """

    _http_class = httpx2.Client
    _counterpart = "AsyncTikTokOAuth2Client with httpx2.AsyncClient"

    def _run(self, call: TokenCall) -> TikTokToken | None:
        steps = _protocol.conversation(call)
        outcome: _protocol.Outcome = None
        deadline = self._deadline()
        while True:
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            if isinstance(step, Sleep):
                time.sleep(min(step.seconds, max(deadline - time.monotonic(), 0.0)))
                outcome = None
                continue
            outcome = self._send(step, self._budget(deadline))

    def _send(self, step: Send, budget: float) -> Reply | Exception:
        """One attempt, bounded as a whole by `budget` seconds: a trickling answer is cut."""
        if budget <= 0:
            return httpx2.ConnectTimeout("the call's overall deadline passed before this attempt")
        cut_at = time.monotonic() + budget
        call = step.call
        try:
            with self._client().stream(
                "POST", call.url, data=call.data, headers=call.headers, timeout=budget, follow_redirects=False
            ) as response:
                chunks = []
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() > cut_at:
                        raise httpx2.ReadTimeout("TikTok's answer took longer than the timeout")
                return Reply(response.status_code, response.headers, b"".join(chunks))
        except _transport_errors() as exc:
            return exc

    def fetch_token(
        self,
        *,
        code: str | None = None,
        authorization_response: str | None = None,
        state: str | None = None,
        code_verifier: str | None = None,
        redirect_uri: str | None = None,
    ) -> TikTokToken:
        """Exchange an authorization code for a user token.

        Pass exactly one of `code` (as given, already decoded) or `authorization_response` (the full
        callback URL; its code is decoded exactly once). With `state`, the callback's state must match it
        (compared in constant time) or `StateMismatchError` is raised before any request. A callback with
        `error=...` raises `AuthorizationDeniedError`.

        Args:
            code: the authorization code, already URL-decoded.
            authorization_response: the full callback URL TikTok redirected to.
            state: the state `create_authorization_url` returned; checked against the callback's.
            code_verifier: the PKCE verifier the authorization URL was built with.
            redirect_uri: the redirect URI the code was issued for; the client's default when None.

        Returns:
            The user's token, with absolute `expires_at` and `refresh_expires_at`.

        Raises:
            StateMismatchError: the callback's state differs from `state`.
            AuthorizationDeniedError: the callback carries `error=...`.
            RateLimitedError: TikTok answered 429.
            TikTokServerError: a 5xx, a timeout, a connection error or an unreadable answer.
            TikTokOAuthError: any other OAuth error (`invalid_grant` for a bad, reused or expired code).
        """
        call = self._code_call(code, authorization_response, state, code_verifier, redirect_uri)
        token = self._run(call)
        assert token is not None
        return token

    def refresh_token(self, refresh_token: str | TikTokToken) -> TikTokToken:
        """Refresh a user token; TikTok rotates the refresh token, so store the returned one.

        An expired refresh token (known from `refresh_expires_at`) or an `invalid_grant` answer raises
        `ReauthorizationRequiredError`. If the answer has no refresh token, the old one is kept.

        Args:
            refresh_token: a refresh-token string, or a `TikTokToken` (its expiry is checked first, and its
                `open_id` and `scope` carry over).

        Returns:
            The new token. Store it: the refresh token it replaces no longer works.

        Raises:
            ReauthorizationRequiredError: the refresh token is expired, revoked or already rotated away.
            RateLimitedError: TikTok answered 429.
            TikTokServerError: a 5xx, a timeout, a connection error or an unreadable answer. After a read
                timeout the refresh is not retried, since TikTok may already have rotated the token.
        """
        token = self._run(self._refresh_call(refresh_token))
        assert token is not None
        return token

    def fetch_client_token(self) -> TikTokToken:
        """Fetch a client access token (`client_credentials`): no user, no refresh token.

        Returns:
            A `clt.` token that lives about two hours; fetch another when it expires.
        """
        token = self._run(self._client_call())
        assert token is not None
        return token

    def revoke_token(self, token: str | TikTokToken) -> None:
        """Revoke a user's access token (and with it the grant).

        Args:
            token: an access-token string, or a `TikTokToken` whose access token (never its refresh token)
                is revoked.
        """
        self._run(self._revoke_call(token))

    def start_qr_login(
        self, *, scope: str | Iterable[str] | None = None, state: str | None = None
    ) -> QRLogin:
        """Start a QR-code login (TikTok's `get_qrcode`): render the returned `scan_url` as a QR code.

        Args:
            scope: scopes to ask for (a `"a,b"` string or an iterable); the client's default when None.
            state: the state TikTok must echo on confirmation; a new one from a CSPRNG when None.

        Returns:
            A `QRLogin` holding the scan URL (with a new `client_ticket` from a CSPRNG in place of TikTok's
            `tobefilled`), TikTok's token for the code, the state and the ticket.
        """
        call = self._get_qrcode_call(scope, state)
        return self._qr_login(call, self._run(call))

    def check_qr_login(self, qr: QRLogin) -> QRStatus:
        """Ask TikTok once how the QR code stands: `new`, `scanned`, `confirmed`, `expired` or `utilised`.

        Raises:
            StateMismatchError: the answer's `client_ticket` is not ours (or missing once scanned), or a
                confirmation's `state` is not `qr.state`.
            RateLimitedError: TikTok answered 429.
        """
        return self._check(qr).status

    def _check(self, qr: QRLogin) -> QRAnswer:
        answer = cast("dict[str, Any]", self._run(self._check_qrcode_call(qr)))  # a QR call's JSON object
        return _qrcode.answer_from(answer, qr)

    def wait_qr_login(
        self,
        qr: QRLogin,
        *,
        interval: float = 2.0,
        timeout: float = 300.0,
        on_status: Callable[[str], object] | None = None,
    ) -> TikTokToken:
        """Poll until the user confirms on their phone, then exchange the code for the user's token.

        Args:
            qr: what `start_qr_login` returned.
            interval: seconds between two checks (longer after a 429 asking for more).
            timeout: seconds to wait for the confirmation in all.
            on_status: called with the status each time it changes (`"new"`, `"scanned"`, ...).

        Raises:
            QRCodeExpiredError: the code expired (or was already used), or `timeout` passed first.
            StateMismatchError: an answer's `client_ticket` or `state` is not ours.
        """
        steps = _qrcode.waiting(interval=interval, timeout=timeout, on_status=on_status)
        outcome: QRAnswer | RateLimitedError | None = None
        while True:
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                confirmed: QRAnswer = done.value
                break
            if isinstance(step, Sleep):
                time.sleep(step.seconds)
                outcome = None
                continue
            try:
                outcome = self._check(qr)
            except RateLimitedError as limited:
                outcome = limited
        return self.fetch_token(code=confirmed.code, redirect_uri=confirmed.redirect_uri)

    def close(self) -> None:
        """Close the HTTP client, unless it was passed in."""
        if self._owns_http and self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncTikTokOAuth2Client(_TikTokOAuth2Base["httpx2.AsyncClient | httpx.AsyncClient"]):
    """TikTok's OAuth 2.0 client, async: the same arguments and methods as `TikTokOAuth2Client`, as coroutines.

    Args:
        client_key: the app's client key (TikTok's name for the client id).
        client_secret: the app's client secret; it is sent only in token-endpoint form bodies.
        redirect_uri: the registered redirect URI; `https://localhost/` by default.
        scope: default scopes, a `"a,b"` string or an iterable of names.
        authorize_url: TikTok's consent page.
        token_url: TikTok's token endpoint.
        revoke_url: TikTok's revoke endpoint.
        http_client: an `httpx2.AsyncClient` or an `httpx.AsyncClient` to reuse (it is not closed by
            `aclose()`); an `httpx2.AsyncClient` is made per event loop when None.
        timeout: seconds, for the client this makes.
        base_url: every endpoint (authorize, token, revoke, QR code, user info) under this origin with
            TikTok's own paths, e.g. a served FakeTikTok's `http://127.0.0.1:8123`; not with a `*_url`.
    """

    _http_class = httpx2.AsyncClient
    _counterpart = "TikTokOAuth2Client with httpx2.Client"
    _http_loop: Callable[[], asyncio.AbstractEventLoop | None] = staticmethod(lambda: None)
    _closer: AsyncGenerator[None, None] | None = None

    async def _run(self, call: TokenCall) -> TikTokToken | None:
        import asyncio  # noqa: PLC0415 - see the top of the module

        task = asyncio.current_task()
        if task is None:  # not in a task (a bare coroutine driven by hand): nothing to wait for
            return await self._converse(call)
        self._calls.add(task)
        try:
            return await self._converse(call)
        finally:
            self._calls.discard(task)

    async def _converse(self, call: TokenCall) -> TikTokToken | None:
        steps = _protocol.conversation(call)
        outcome: _protocol.Outcome = None
        deadline = self._deadline()
        while True:
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            if isinstance(step, Sleep):
                import asyncio  # noqa: PLC0415 - see the top of the module

                await asyncio.sleep(min(step.seconds, max(deadline - time.monotonic(), 0.0)))
                outcome = None
                continue
            outcome = await self._send(step, self._budget(deadline))

    async def _send(self, step: Send, budget: float) -> Reply | Exception:
        """One attempt, bounded as a whole by `budget` seconds: a trickling answer is cut."""
        if budget <= 0:
            return httpx2.ConnectTimeout("the call's overall deadline passed before this attempt")
        call = step.call
        http = await self._loop_client()
        import asyncio  # noqa: PLC0415

        try:
            async with asyncio.timeout(budget):
                response = await http.post(
                    call.url, data=call.data, headers=call.headers, timeout=budget, follow_redirects=False
                )
        except _transport_errors() as exc:
            return exc
        except TimeoutError:
            return httpx2.ReadTimeout("TikTok's answer took longer than the timeout")
        return _reply(response)

    async def _loop_client(self) -> httpx2.AsyncClient | httpx.AsyncClient:
        """The HTTP client for the running event loop.

        An owned client is made per event loop (connections cannot cross loops, so a client survives
        successive `asyncio.run` calls); it is closed when its loop shuts its async generators down
        (`asyncio.run` does), or by `aclose()`.
        """
        if not self._owns_http:
            assert self._http is not None
            return self._http
        import asyncio  # noqa: PLC0415

        loop = asyncio.get_running_loop()
        if self._http is not None and self._http_loop() is loop:
            return self._http
        self._http = http = httpx2.AsyncClient(timeout=self.timeout)
        self._http_loop = weakref.ref(loop)
        self._closer = _closed_with_loop(http)
        await anext(self._closer)  # registers with the loop: its shutdown closes the client
        return http

    async def fetch_token(
        self,
        *,
        code: str | None = None,
        authorization_response: str | None = None,
        state: str | None = None,
        code_verifier: str | None = None,
        redirect_uri: str | None = None,
    ) -> TikTokToken:
        """Exchange an authorization code for a user token (see `TikTokOAuth2Client.fetch_token`)."""
        call = self._code_call(code, authorization_response, state, code_verifier, redirect_uri)
        token = await self._run(call)
        assert token is not None
        return token

    async def refresh_token(self, refresh_token: str | TikTokToken) -> TikTokToken:
        """Refresh a user token (see `TikTokOAuth2Client.refresh_token`)."""
        token = await self._run(self._refresh_call(refresh_token))
        assert token is not None
        return token

    async def fetch_client_token(self) -> TikTokToken:
        """Fetch a client access token (`client_credentials`)."""
        token = await self._run(self._client_call())
        assert token is not None
        return token

    async def revoke_token(self, token: str | TikTokToken) -> None:
        """Revoke a user's access token (see `TikTokOAuth2Client.revoke_token`)."""
        await self._run(self._revoke_call(token))

    async def start_qr_login(
        self, *, scope: str | Iterable[str] | None = None, state: str | None = None
    ) -> QRLogin:
        """Start a QR-code login (see `TikTokOAuth2Client.start_qr_login`)."""
        call = self._get_qrcode_call(scope, state)
        return self._qr_login(call, await self._run(call))

    async def check_qr_login(self, qr: QRLogin) -> QRStatus:
        """Ask TikTok once how the QR code stands (see `TikTokOAuth2Client.check_qr_login`)."""
        return (await self._check(qr)).status

    async def _check(self, qr: QRLogin) -> QRAnswer:
        answer = cast("dict[str, Any]", await self._run(self._check_qrcode_call(qr)))
        return _qrcode.answer_from(answer, qr)

    async def wait_qr_login(
        self,
        qr: QRLogin,
        *,
        interval: float = 2.0,
        timeout: float = 300.0,  # noqa: ASYNC109 - API.md's signature, the same as the sync client's
        on_status: Callable[[str], object] | None = None,
    ) -> TikTokToken:
        """Poll until the user confirms, then exchange the code (see `TikTokOAuth2Client.wait_qr_login`).

        Cancelling it cancels the check or the sleep in progress; nothing is left running.
        """
        import asyncio  # noqa: PLC0415 - see the top of the module

        steps = _qrcode.waiting(interval=interval, timeout=timeout, on_status=on_status)
        outcome: QRAnswer | RateLimitedError | None = None
        while True:
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                confirmed: QRAnswer = done.value
                break
            if isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
                outcome = None
                continue
            try:
                outcome = await self._check(qr)
            except RateLimitedError as limited:
                outcome = limited
        return await self.fetch_token(code=confirmed.code, redirect_uri=confirmed.redirect_uri)

    async def aclose(self) -> None:
        """Close the HTTP client, unless it was passed in; calls still in flight on it finish first.

        A refresh whose caller was cancelled goes on (its answer holds TikTok's rotated refresh token),
        and the caller's `async with` block ends meanwhile: closing under it would lose that answer. The
        wait is bounded by the calls' own deadline.
        """
        if not self._owns_http or self._http is None:
            return
        import asyncio  # noqa: PLC0415

        loop = asyncio.get_running_loop()
        busy = [t for t in self._calls if t is not asyncio.current_task() and t.get_loop() is loop]
        if busy:
            await asyncio.wait(busy, timeout=self._deadline() - time.monotonic())
        closer, self._closer, self._http = self._closer, None, None
        if closer is not None and self._http_loop() is asyncio.get_running_loop():
            await closer.aclose()  # its `finally` closes the client
        # Otherwise the client belonged to a loop that has ended, and that loop's shutdown closed it.

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


async def _closed_with_loop(http: httpx2.AsyncClient) -> AsyncGenerator[None, None]:
    """Suspended for the loop's lifetime: the loop's `shutdown_asyncgens` (or `aclose`) closes `http`."""
    try:
        yield
    finally:
        await http.aclose()


_clients: weakref.WeakSet[_TikTokOAuth2Base[Any]] = weakref.WeakSet()
_inherited: list[object] = []


def _after_fork_in_child() -> None:
    for client in list(_clients):
        client._forget_inherited_http()  # noqa: SLF001 - the module's own clients


os.register_at_fork(after_in_child=_after_fork_in_child)
