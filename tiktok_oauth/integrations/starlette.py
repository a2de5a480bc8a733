"""`TikTokLogin` for Starlette and FastAPI (extra `starlette`): the session is `request.session`.

```python
app.add_middleware(SessionMiddleware, secret_key=...)
login = TikTokLogin(client, store)

async def start(request):                       # GET /login
    return await login.authorize_redirect(request, next="/")

async def callback(request):                    # GET /callback, the redirect URI
    result = await login.authorize_access_token(request)

Route("/tiktok/webhook", login.webhook_endpoint(handler), methods=["POST"])   # handler: a WebhookHandler
```

Or the ready-made routes (`GET login`, `GET callback`, `POST logout`) and `login.current_auth(request)`:

```python
app.mount("/auth/tiktok", login.router(on_login=None, on_error=None, after_logout="/"))
```
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route, Router

from tiktok_oauth import web
from tiktok_oauth.client import AsyncTikTokOAuth2Client
from tiktok_oauth.errors import TikTokOAuthError

if TYPE_CHECKING:
    from tiktok_oauth.auth import TikTokAuth
    from tiktok_oauth.webhooks import WebhookHandler

#: `on_login(request, result)`: its response (or an awaitable of one) is sent after a login.
OnLogin = Callable[[Request, web.LoginResult], Response | Awaitable[Response]]
#: `on_error(request, exc)`: its response (or an awaitable of one) is sent after a failed callback.
OnError = Callable[[Request, TikTokOAuthError], Response | Awaitable[Response]]

__all__ = ["TikTokLogin"]


class TikTokLogin(web.TikTokLogin):
    """`tiktok_oauth.web.TikTokLogin` on a Starlette request; needs `SessionMiddleware`.

    Takes either client kind: with a `TikTokOAuth2Client`, the code exchange and a sync store's
    write run in a thread, off the event loop.
    """

    async def authorize_redirect(
        self,
        request: Request,
        *,
        next: str | None = None,  # noqa: A002 - the name every web framework uses
        scope: str | Iterable[str] | None = None,
        redirect_uri: str | None = None,
    ) -> RedirectResponse:
        """Begin a login in this browser's session and answer 302 to TikTok's consent page."""
        url = self.begin(_session(request), scope=scope, redirect_uri=redirect_uri, next=next)
        return RedirectResponse(url, status_code=302)

    async def authorize_access_token(self, request: Request) -> web.LoginResult:
        """Complete the login this callback request answers (see `tiktok_oauth.web.TikTokLogin.complete`)."""
        return await self.acomplete(_session(request), str(request.url))

    def webhook_endpoint(self, handler: WebhookHandler) -> Callable[[Request], Awaitable[Response]]:
        """An endpoint for TikTok's webhook deliveries (route it for POST): it hands the raw body and the
        headers to `handler.ahandle` and answers its status at once, with an empty body."""

        async def tiktok_webhook(request: Request) -> Response:
            status = await handler.ahandle(await request.body(), request.headers)
            return Response(status_code=status)

        return tiktok_webhook

    def current_auth(self, request: Request) -> TikTokAuth | None:
        """The `TikTokAuth` of the user the ready-made routes logged in in this session, or None."""
        key = web.logged_in_key(_session(request))
        return None if key is None else self.auth(key)

    def router(
        self, on_login: OnLogin | None = None, on_error: OnError | None = None, after_logout: str = "/"
    ) -> Router:
        """The ready-made routes, to `app.mount("/auth/tiktok", ...)`: `GET login` (`?next=/path`), `GET
        callback` and `POST logout`; see the "Ready-made routes" section of the web login docs."""

        async def login(request: Request) -> Response:
            redirect_uri = web.route_redirect_uri(self.client, str(request.url))
            try:
                return await self.authorize_redirect(
                    request, next=request.query_params.get("next"), redirect_uri=redirect_uri
                )
            except ValueError as exc:  # next is not a path on this site
                return _error_page(exc)

        async def callback(request: Request) -> Response:
            try:
                result = await self.authorize_access_token(request)
            except TikTokOAuthError as exc:
                return _error_page(exc) if on_error is None else await _sent(on_error(request, exc))
            web.remember_user(request.session, result.key)
            if on_login is not None:
                return await _sent(on_login(request, result))
            return RedirectResponse(web.after_login_url(result), status_code=302)

        async def logout(request: Request) -> Response:
            key = web.logged_in_key(_session(request))
            if key is not None:
                auth = self.auth(key)
                try:
                    if isinstance(self.client, AsyncTikTokOAuth2Client):
                        await auth.alogout()
                    else:
                        await asyncio.to_thread(auth.logout)
                except TikTokOAuthError as exc:  # TikTok may still honour the token: stay logged in
                    return _error_page(exc)
            web.forget_user(request.session)
            return RedirectResponse(after_logout, status_code=302)

        return Router(
            routes=[
                Route("/login", login, methods=["GET"], name="login"),
                Route("/callback", callback, methods=["GET"], name="callback"),
                Route("/logout", logout, methods=["POST"], name="logout"),
            ]
        )


async def _sent(response: Response | Awaitable[Response]) -> Response:
    return await response if inspect.isawaitable(response) else response


def _error_page(exc: Exception) -> HTMLResponse:
    status, page = web.error_page(exc)
    return HTMLResponse(page, status_code=status)


def _session(request: Request) -> dict[str, Any]:
    if "session" not in request.scope:
        raise RuntimeError(
            "TikTokLogin needs Starlette's SessionMiddleware: "
            "app.add_middleware(SessionMiddleware, secret_key=...) (from starlette.middleware.sessions)"
        )
    return request.session
