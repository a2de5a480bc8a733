"""`FakeTikTok`: TikTok's OAuth v2 endpoints as a sans-IO request handler, with knobs for tests."""

from __future__ import annotations

import collections
import functools
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from tiktok_oauth import _clock
from tiktok_oauth.testing._authorize import AUTHORIZE_PATH, callback_url, check_authorization_url
from tiktok_oauth.testing._consent import consent_choice, consent_page
from tiktok_oauth.testing._endpoints import (
    REVOKE_PATH,
    TOKEN_PATH,
    USER_INFO_FIELDS,
    USER_INFO_PATH,
    VIDEO_LIST_FIELDS,
    VIDEO_LIST_PATH,
    answer_qrcode,
    answer_revoke,
    answer_token,
    answer_user_info,
    answer_video_list,
    endpoint_of,
    error_page,
)
from tiktok_oauth.testing._ledger import TokenLedger
from tiktok_oauth.testing._models import (
    FakeResponse,
    FakeTikTokError,
    RecordedRequest,
    api_response,
    new_log_id,
    oauth_error,
)
from tiktok_oauth.testing._qrcodes import QRCodeBook
from tiktok_oauth.testing._webhooks import WebhookTarget, deliver, removed_body, retry_delays, signed_headers

if TYPE_CHECKING:
    from types import ModuleType

    from tiktok_oauth.testing._transports import FakeAsyncTransport, FakeTransport

__all__ = ["FakeTikTok"]

_ENDPOINT_NAMES = frozenset(
    {"authorize", "token", "revoke", "user_info", "video_list", "get_qrcode", "check_qrcode"}
)


@dataclass
class _Fault:
    endpoint: str | None
    remaining: int
    response: FakeResponse | None  # None: a timeout
    processed: bool = False


class FakeTikTok:
    """An emulator of TikTok's OAuth v2 endpoints (authorize, token, revoke, user info, video list, QR code).

    It answers TikTok's real URLs through `transport()`, `async_transport()` and `mount()`, or
    loopback URLs through `serve()`, with the quirks of TikTok's v2 API: `client_key`, comma-separated
    scopes, hex PKCE, OAuth errors with HTTP 200, rotating refresh tokens and the `data`/`error`
    envelope. All state sits behind one lock, so one fake may serve many threads.

    Lifetimes follow TikTok's current documentation: access tokens live `access_ttl` seconds (2 hours),
    refresh tokens `refresh_ttl` (180 days). Rotation is strict: once a refresh issues a new refresh token,
    the one it replaced is `invalid_grant` (and counted in `stale_refresh_token_uses`), unless
    `rotation_grace` gives it that many seconds more to work.

    Attributes:
        client_key: the app's client key, which requests must send as `client_key`.
        client_secret: the app's client secret, which requests must send in the form body.
        token_delay: seconds every token-endpoint request waits before it is handled (outside the
            lock), to widen races in concurrency tests.
        serve_timeout_delay: seconds the served server holds a `timeout_next` request before it
            closes the connection without answering.
        requests: every `RecordedRequest` any transport or the server received, in order.
        token_requests: the parsed form bodies the token endpoint received, in order, including
            rejected ones and ones answered by `fail_next` or `timeout_next`.
        webhook_url: where `revoke_grants` sends TikTok's signed `authorization.removed` delivery: a URL
            (POSTed from a background thread, so `revoke_grants` returns at once; `wait_webhooks()` waits for
            it), or a callable `(body: bytes, headers: dict) -> int` (the status it answered; called before
            `revoke_grants` returns, and an exception it raises reaches `revoke_grants`'s caller). None (the
            default): no deliveries.
        webhook_retries: how many times a delivery not answered 200 is retried (TikTok retries for 72 hours;
            the fake, 3 times by default).
        webhook_backoff: seconds before the first retry; each later one waits twice as long.
        webhook_deliveries: `(body, headers, status)` of every delivery attempt, in order (status 0: no
            answer, e.g. the connection was refused). A retry sends the same body, signed anew.
    """

    def __init__(
        self,
        client_key: str = "test-key",
        client_secret: str = "test-secret",  # noqa: S107 - a fake's well-known test secret
        *,
        access_ttl: int = 7200,
        refresh_ttl: int = 15552000,
        rotation_grace: float = 0.0,
    ) -> None:
        """Create a fake app `client_key` / `client_secret` issuing tokens with these lifetimes.

        `rotation_grace` is how many seconds a refresh token still works after a refresh replaced it
        (0: not at all, as TikTok documents).
        """
        if rotation_grace < 0:
            raise ValueError("rotation_grace is a number of seconds, at least 0")
        self.client_key = client_key
        self.client_secret = client_secret
        self.token_delay = 0.0
        self.serve_timeout_delay = 2.0
        self.requests: list[RecordedRequest] = []
        self.token_requests: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._ledger = TokenLedger(access_ttl, refresh_ttl, rotation_grace)
        self._qrcodes = QRCodeBook(self._ledger)
        self._faults: list[_Fault] = []
        self._grant_counts: collections.Counter[str] = collections.Counter()
        self.webhook_url: WebhookTarget | None = None
        self.webhook_retries = 3
        self.webhook_backoff = 0.05
        self.webhook_deliveries: list[tuple[bytes, dict[str, str], int]] = []
        self._webhook_threads: list[threading.Thread] = []

    @property
    def stale_refresh_token_uses(self) -> int:
        """How many refresh requests presented a refresh token that rotation had already replaced.

        Refused ones, and with `rotation_grace` those the grace let through as well.
        """
        return self._ledger.stale_refresh_token_uses

    def authorize(
        self,
        authorization_url: str,
        *,
        open_id: str = "test-open-id",
        scopes: Iterable[str] | None = None,
        deny: bool = False,
    ) -> str:
        """Play a user consenting on TikTok's page, and return the callback URL it redirects to.

        `authorization_url` is checked as TikTok would (raising `FakeTikTokError`). The callback
        carries `code`, `scopes` (the granted `scopes`, by default all requested) and `state`, or
        with `deny=True` `error=access_denied`. Codes are single-use and live 10 minutes.
        """
        with self._lock:
            return self._consent(authorization_url, open_id, scopes, deny=deny)

    def issue_token(
        self,
        *,
        open_id: str = "test-open-id",
        scopes: Iterable[str] = ("user.info.basic", "video.list"),
        expires_in: int | None = None,
        refresh_expires_in: int | None = None,
    ) -> dict[str, Any]:
        """Register a fresh grant without a login and return its token-endpoint JSON body."""
        with self._lock:
            return self._ledger.new_grant(open_id, tuple(scopes), expires_in, refresh_expires_in)

    @property
    def qr_ttl(self) -> float:
        """Seconds before a QR code nobody confirmed answers `expired` (default 300; TikTok's is undocumented)."""
        return self._qrcodes.ttl

    @qr_ttl.setter
    def qr_ttl(self, seconds: float) -> None:
        with self._lock:
            self._qrcodes.ttl = seconds

    @property
    def qr_redirect_uri(self) -> str:
        """The redirect URI a confirmed QR code's `redirect_uri` holds the code on (default `https://localhost/`)."""
        return self._qrcodes.redirect_uri

    @qr_redirect_uri.setter
    def qr_redirect_uri(self, uri: str) -> None:
        with self._lock:
            self._qrcodes.redirect_uri = uri

    def scan_qr(self, scan_url_or_token: str, open_id: str = "u1", *, confirm: bool = True) -> None:
        """Play the user's phone scanning a QR code from `start_qr_login`, and confirming it or not.

        Given the `scan_url`, the phone sends TikTok the `client_ticket` in it, which `check_qrcode` then
        echoes. Given only the token, no ticket comes with the scan (the client then refuses the answer,
        as for a code someone else drew). The code answers `scanned`; with `confirm=True` (the default)
        then `confirmed`, with an authorization code for `open_id` in its `redirect_uri`, and `utilised`
        once that code was exchanged. An unknown, expired or used code raises `FakeTikTokError`.
        """
        with self._lock:
            self._qrcodes.scan(scan_url_or_token, open_id, confirm=confirm)

    def grant_count(self, grant_type: str) -> int:
        """How many successful token-endpoint answers `grant_type` has had."""
        with self._lock:
            return self._grant_counts[grant_type]

    def endpoints(self, base_url: str) -> dict[str, str]:
        """Return `authorize_url`, `token_url` and `revoke_url` on `base_url` (from `serve()`)."""
        base = base_url.rstrip("/")
        return {
            "authorize_url": base + AUTHORIZE_PATH,
            "token_url": base + TOKEN_PATH,
            "revoke_url": base + REVOKE_PATH,
        }

    def user_info_url(self, base_url: str | None = None) -> str:
        """Return the user info URL asking for every field, on TikTok's host or on `base_url`."""
        base = "https://open.tiktokapis.com" if base_url is None else base_url.rstrip("/")
        return f"{base}{USER_INFO_PATH}?fields={USER_INFO_FIELDS}"

    def video_list_url(self, base_url: str | None = None) -> str:
        """Return the video list URL (POST it) asking for every field, on TikTok's host or on `base_url`.

        Each user has the same 12 videos, one a day, newest first; the JSON body takes `cursor` and
        `max_count` (10 when left out, at most 20), and the answer's `data` holds `videos`, `cursor`
        (send it back for the next page) and `has_more`.
        """
        base = "https://open.tiktokapis.com" if base_url is None else base_url.rstrip("/")
        return f"{base}{VIDEO_LIST_PATH}?fields={VIDEO_LIST_FIELDS}"

    def fail_next(
        self,
        status: int = 503,
        body: bytes | None = None,
        times: int = 1,
        *,
        headers: Mapping[str, str] | None = None,
        endpoint: str | None = "token",
    ) -> None:
        """Answer the next `times` requests to `endpoint` (None: any) with `status` and `body`.

        `endpoint` is one of `authorize`, `token`, `revoke`, `user_info`, `video_list`, `get_qrcode`,
        `check_qrcode`. Nothing is processed. The default body is TikTok-shaped JSON
        (`temporarily_unavailable` on the token, revoke and QR-code endpoints, an `internal_error`
        envelope elsewhere).
        """
        if body is None:
            body = _default_failure_body(endpoint)
        answer_headers = {"content-type": "application/json"} if headers is None else headers
        response = FakeResponse(status, {k.lower(): v for k, v in answer_headers.items()}, body)
        self._add_fault(_Fault(_checked_endpoint(endpoint), _checked_times(times), response))

    def timeout_next(
        self, times: int = 1, *, processed: bool = False, endpoint: str | None = "token"
    ) -> None:
        """Lose the response to the next `times` requests to `endpoint` (None: any).

        Transports raise their `ReadTimeout`; the served server waits `serve_timeout_delay` and
        closes the connection. With `processed=True` the request takes effect first (a refresh
        really rotates), the realistic case.
        """
        fault = _Fault(_checked_endpoint(endpoint), _checked_times(times), None, processed)
        self._add_fault(fault)

    def expire_access_tokens(self, open_id: str | None = None) -> None:
        """Expire every access token issued so far, or only user `open_id`'s.

        The data APIs then answer 401 `access_token_invalid`; refresh tokens keep working.
        """
        with self._lock:
            self._ledger.expire_access_tokens(open_id)

    def revoke_grants(self, open_id: str, reason: int = 1) -> None:
        """Play user `open_id` removing the app: every access and refresh token of theirs dies.

        The data APIs answer 401 `access_token_invalid` to their access tokens, and a refresh gets
        `invalid_grant`. A later login of the same user gets a new, working grant. When `webhook_url` is
        set, TikTok's signed `authorization.removed` delivery (content `{"reason": reason}`) goes to it
        afterwards, retried as `webhook_retries` says.
        """
        with self._lock:
            self._ledger.revoke_grants(open_id)
            target = self.webhook_url
            if target is None:
                return
            body = removed_body(self.client_key, open_id, reason, int(_clock.now()))
        # Sent outside the lock: the app answering it may well call the fake meanwhile.
        send = functools.partial(
            deliver,
            target,
            body,
            self._sign_webhook,
            retry_delays(self.webhook_retries, self.webhook_backoff),
            self._record_webhook,
        )
        if callable(target):
            send()
            return
        thread = threading.Thread(target=send, name="fake-tiktok-webhook", daemon=True)
        with self._lock:
            self._webhook_threads.append(thread)
        thread.start()

    def wait_webhooks(self, timeout: float = 10.0) -> bool:
        """Wait until the deliveries to a `webhook_url` URL are done (answered 200 or out of retries).

        Returns False if some are still being sent after `timeout` seconds.
        """
        deadline = time.monotonic() + timeout  # real time, whatever a test does to the clock
        with self._lock:
            threads = list(self._webhook_threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._webhook_threads = [thread for thread in self._webhook_threads if thread.is_alive()]
            return not self._webhook_threads

    def request_delay(self, method: str, url: str) -> float:
        """Seconds a transport should sleep before `handle`: `token_delay` for the token endpoint."""
        return self.token_delay if endpoint_of(method, url) == "token" else 0.0

    def handle(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> FakeResponse | None:
        """Record and answer one request; None means the response is lost (`timeout_next`)."""
        lowered = {name.lower(): value for name, value in headers.items()}
        endpoint = endpoint_of(method, url)
        with self._lock:
            self.requests.append(RecordedRequest(method.upper(), url, lowered, body))
            if endpoint == "token":
                form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
                self.token_requests.append(dict(form))
            fault = self._take_fault(endpoint)
            if fault is not None and (fault.response is not None or not fault.processed):
                return fault.response
            if endpoint == "authorize":
                response = self._consent_page(method.upper(), url, body)
            else:
                response = self._answer(endpoint, url, lowered, body)
            return None if fault is not None else response

    def transport(self, *, httpx_module: ModuleType | None = None) -> FakeTransport:
        """Return an httpx2 (or httpx) transport answering TikTok's URLs, in the classes of the request's library."""
        from tiktok_oauth.testing._transports import FakeTransport  # noqa: PLC0415 - import cycle

        return FakeTransport(self, httpx_module)

    def async_transport(self, *, httpx_module: ModuleType | None = None) -> FakeAsyncTransport:
        """Return an httpx2 (or httpx) async transport answering TikTok's URLs."""
        from tiktok_oauth.testing._transports import FakeAsyncTransport  # noqa: PLC0415

        return FakeAsyncTransport(self, httpx_module)

    def mount(self, session: Any) -> None:
        """Mount an adapter answering TikTok's hosts on a `requests.Session`."""
        from tiktok_oauth.testing._transports import mount_requests_adapter  # noqa: PLC0415

        mount_requests_adapter(self, session)

    def respx(self, router: Any) -> Any:
        """Answer TikTok's hosts from this fake inside a respx router; return the `respx.Route` added.

        `router` is `respx.mock` (or the router it yields), a `respx.MockRouter`, or the `respx_mock`
        fixture. Requests of httpx clients, sync or async, to `https://open.tiktokapis.com` and
        `https://www.tiktok.com` go to the fake (with its faults and delays); every other request is left to
        the router's other routes. Routes added before this call match first, so a test can still answer one
        TikTok URL itself. The route counts as unused (respx's `assert_all_called`) if no request reached it.
        """
        from tiktok_oauth.testing._transports import add_respx_route  # noqa: PLC0415

        return add_respx_route(self, router)

    @contextmanager
    def serve(self, *, port: int = 0) -> Iterator[str]:
        """Serve the endpoints on a loopback HTTP server on `port` (0: a free one); yield its base URL, stop
        it on exit.

        A browser sent to the authorization URL gets TikTok's consent page: the app's client key, the
        scopes asked, a text field `open_id` and Authorize / Deny buttons; submitting it redirects to
        the redirect URI exactly as `authorize()` would. The server holds hundreds of concurrent
        connections. Its control endpoints drive it from another process: `GET /_fake/state` (the
        counters as JSON), `POST /_fake/expire` (optional `open_id`), `POST /_fake/revoke` (`open_id`).
        """
        from tiktok_oauth.testing._server import running_server  # noqa: PLC0415

        with running_server(self, port) as base_url:
            yield base_url

    def _sign_webhook(self, body: bytes) -> dict[str, str]:
        return signed_headers(body, self.client_secret, int(_clock.now()))

    def _record_webhook(self, body: bytes, headers: dict[str, str], status: int) -> None:
        with self._lock:
            self.webhook_deliveries.append((body, headers, status))

    # Everything below runs with the lock held.

    def _consent(self, url: str, open_id: str, scopes: Iterable[str] | None, *, deny: bool) -> str:
        request = check_authorization_url(url, self.client_key)
        if deny:
            return callback_url(
                request.redirect_uri,
                {
                    "error": "access_denied",
                    "error_description": "The user denied the authorization request.",
                    "state": request.state,
                },
            )
        if isinstance(scopes, str):
            scopes = scopes.split(",")
        granted = request.scopes if scopes is None else tuple(scopes)
        if not granted or not set(granted) <= set(request.scopes):
            raise FakeTikTokError(f"granted scopes {granted} must be a subset of {request.scopes}")
        code = self._ledger.issue_code(request, granted, open_id)
        params = {"code": code, "scopes": ",".join(granted), "state": request.state}
        return callback_url(request.redirect_uri, params)

    def _consent_page(self, method: str, url: str, body: bytes) -> FakeResponse:
        """A browser on TikTok's consent page: GET shows it; its form (POST) consents as `authorize` does."""
        try:
            if method == "GET":
                return consent_page(check_authorization_url(url, self.client_key), self.client_key, url)
            open_id, deny = consent_choice(body)
            callback = self._consent(url, open_id, None, deny=deny)
        except FakeTikTokError as error:
            return error_page(str(error))
        return FakeResponse(302, {"location": callback}, b"")

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, endpoint: str | None) -> _Fault | None:
        for fault in self._faults:
            if fault.endpoint is None or fault.endpoint == endpoint:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _answer(self, endpoint: str | None, url: str, headers: dict[str, str], body: bytes) -> FakeResponse:
        client = (self.client_key, self.client_secret)
        if endpoint == "token":
            response, grant_type = answer_token(self._ledger, client, url, headers, body)
            if grant_type is not None:
                self._grant_counts[grant_type] += 1
            return response
        if endpoint == "revoke":
            return answer_revoke(self._ledger, client, url, headers, body)
        if endpoint == "user_info":
            return answer_user_info(self._ledger, url, headers)
        if endpoint == "video_list":
            return answer_video_list(self._ledger, url, headers, body)
        if endpoint in ("get_qrcode", "check_qrcode"):
            return answer_qrcode(self._qrcodes, endpoint, client, url, headers, body)
        return api_response(404, new_log_id(), code="not_found", message="No such endpoint.")


def _checked_endpoint(endpoint: str | None) -> str | None:
    if endpoint is not None and endpoint not in _ENDPOINT_NAMES:
        raise ValueError(f"endpoint must be one of {sorted(_ENDPOINT_NAMES)} or None")
    return endpoint


def _checked_times(times: int) -> int:
    if times < 1:
        raise ValueError("times must be at least 1")
    return times


def _default_failure_body(endpoint: str | None) -> bytes:
    if endpoint in {"token", "revoke", "get_qrcode", "check_qrcode"}:
        response = oauth_error("temporarily_unavailable", "Try again later.", new_log_id())
    else:
        response = api_response(500, new_log_id(), code="internal_error", message="Try again.")
    return response.body
