"""Type-checked use of the public API (run by `nox -s typecheck`, never executed): the signatures users rely on."""

from __future__ import annotations

import threading
from collections.abc import Coroutine
from typing import Any

import httpx
import httpx2

from tiktok_oauth import (
    AsyncTikTokOAuth2Client,
    AsyncTokenStore,
    FileTokenStore,
    LockLostError,
    MemoryTokenStore,
    NothingStoredError,
    QRCodeExpiredError,
    QRLogin,
    RateLimitedError,
    ReauthorizationRequiredError,
    RefreshReport,
    TikTokAuth,
    TikTokOAuth2Client,
    TikTokOAuthError,
    TikTokServerError,
    TikTokToken,
    TokenEvent,
    TokenStore,
    TokenStoreError,
    generate_code_verifier,
    refresh_due,
)
from tiktok_oauth.testing import FakeTikTok
from tiktok_oauth.webhooks import WebhookEvent, WebhookHandler, verify


def sync_usage() -> None:
    fake = FakeTikTok(client_key="k", client_secret="s", access_ttl=60, refresh_ttl=120)
    with (
        httpx2.Client(transport=fake.transport()) as http,  # the fake's transports are httpx2's
        TikTokOAuth2Client("k", "s", http_client=http) as client,
    ):
        verifier: str = generate_code_verifier()
        url, state = client.create_authorization_url(scope=("user.info.basic",), code_verifier=verifier)
        callback: str = fake.authorize(url, open_id="u", deny=False)
        token: TikTokToken = client.fetch_token(
            authorization_response=callback, state=state, code_verifier=verifier
        )
        scopes: frozenset[str] = token.scopes
        expires_at: float | None = token.expires_at
        refreshed: TikTokToken = client.refresh_token(token)
        client.revoke_token(refreshed)
        store: TokenStore = MemoryTokenStore()
        store.set("k", token)
        files: TokenStore = FileTokenStore("tokens")
        auth = TikTokAuth(client, files, "k", leeway=30.0, allowed_hosts=["open.tiktokapis.com"])
        with httpx.Client(auth=auth) as api:
            api.get("https://open.tiktokapis.com/v2/user/info/")
        _ = (scopes, expires_at, auth.store, auth.key)


def qr_usage(client: TikTokOAuth2Client, fake: FakeTikTok) -> TikTokToken:
    qr: QRLogin = client.start_qr_login(scope=("user.info.basic",), state="s")
    scan_url, qr_token, state, ticket = qr.scan_url, qr.token, qr.state, qr.client_ticket
    fake.qr_ttl = 60
    fake.scan_qr(scan_url, open_id="u1", confirm=False)
    status: str = client.check_qr_login(qr)
    _ = (qr_token, state, ticket, status)
    try:
        return client.wait_qr_login(qr, interval=1.0, timeout=60.0, on_status=print)
    except QRCodeExpiredError as expired:
        return qr_usage(client, fake) if expired.error == "expired" else client.fetch_client_token()


async def async_qr_usage(client: AsyncTikTokOAuth2Client) -> TikTokToken:
    qr: QRLogin = await client.start_qr_login()
    status: str = await client.check_qr_login(qr)
    _ = status
    return await client.wait_qr_login(qr, interval=1.0, timeout=60.0)


async def async_usage(store: AsyncTokenStore) -> None:
    async with AsyncTikTokOAuth2Client("k", "s", scope="user.info.basic") as client:
        token: TikTokToken = await client.fetch_client_token()
        await store.set("app", token)
        auth = TikTokAuth(client, store, "app", client_credentials=True)
        async with httpx.AsyncClient(auth=auth) as api:
            await api.get("https://open.tiktokapis.com/v2/research/video/query/")


def errors(error: TikTokOAuthError) -> None:
    log_id: str | None = error.log_id
    status: int | None = error.status_code
    if isinstance(error, RateLimitedError):
        retry_after: float | None = error.retry_after
        _ = retry_after
    if isinstance(error, TikTokServerError):
        retryable: bool = error.retryable
        _ = retryable
    _ = (log_id, status)


def webhooks(body: bytes, headers: dict[str, str], store: TokenStore, async_store: AsyncTokenStore) -> None:
    event: WebhookEvent = verify(body, headers, "secret", tolerance=60.0)
    reason: int | None = event.reason
    handler = WebhookHandler(
        "secret",
        store,
        client_key="k",
        key_for=lambda open_id: f"tiktok:{open_id}",
        on_webhook=lambda delivered: print(delivered.id),
        on_event=lambda token_event: print(token_event.kind),
        seen=set(),
    )
    status: int = handler.handle(body, headers)
    async_status: Coroutine[Any, Any, int] = WebhookHandler("secret", async_store).ahandle(body, headers)
    async_status.close()
    _ = (reason, status)


def webhook_fake(fake: FakeTikTok) -> None:
    fake.webhook_url = lambda body, headers: 200
    fake.webhook_url = "http://127.0.0.1:8000/tiktok/webhook"
    fake.webhook_retries = 1
    fake.revoke_grants("u1", reason=2)
    deliveries: list[tuple[bytes, dict[str, str], int]] = fake.webhook_deliveries
    done: bool = fake.wait_webhooks(timeout=1.0)
    _ = (deliveries, done)


def fleet(client: TikTokOAuth2Client, store: TokenStore, stop: threading.Event) -> None:
    """The keeper, events, needs_login and the lock contract."""
    events: list[TokenEvent] = []
    report: RefreshReport = refresh_due(client, store, within=1800.0, on_event=events.append, stop=stop)
    kinds: list[str] = [event.kind for event in events]
    marked: bool = TikTokToken({"access_token": "a"}).needs_login
    issued: float | None = TikTokToken({"access_token": "a"}).issued_at
    lost: type[TokenStoreError] = LockLostError
    nothing: type[ReauthorizationRequiredError] = NothingStoredError
    _ = (report.refreshed, kinds, marked, issued, lost, nothing)


def web_routes(client: TikTokOAuth2Client, store: TokenStore) -> None:
    from tiktok_oauth.integrations.flask import TikTokLogin as FlaskLogin
    from tiktok_oauth.integrations.starlette import TikTokLogin as StarletteLogin

    starlette_login = StarletteLogin(client, store, on_event=print)
    _ = starlette_login.router(after_logout="/")
    flask_login = FlaskLogin(client, store)
    _ = flask_login.blueprint(url_prefix="/auth/tiktok")
    auth: TikTokAuth | None = flask_login.current_auth()
    _ = auth
