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
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tiktok_oauth import web

if TYPE_CHECKING:
    from tiktok_oauth.webhooks import WebhookHandler

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


def _session(request: Request) -> dict[str, Any]:
    if "session" not in request.scope:
        raise RuntimeError(
            "TikTokLogin needs Starlette's SessionMiddleware: "
            "app.add_middleware(SessionMiddleware, secret_key=...) (from starlette.middleware.sessions)"
        )
    return request.session
