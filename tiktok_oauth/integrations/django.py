"""`TikTokLogin` for Django (extra `django`): on `request.session` (`SessionMiddleware`).

```python
login = TikTokLogin(client, store)

def start(request):                             # path("login/", start)
    return login.authorize_redirect(request, next="/")

def callback(request):                          # the redirect URI
    result = login.authorize_access_token(request)

path("tiktok/webhook", login.webhook_endpoint(handler))     # POST only, CSRF-exempt
```
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from django.http import (  # type: ignore[import-untyped]
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.views.decorators.csrf import csrf_exempt  # type: ignore[import-untyped]

from tiktok_oauth import web

if TYPE_CHECKING:
    from tiktok_oauth.webhooks import WebhookHandler

__all__ = ["TikTokLogin"]


class TikTokLogin(web.TikTokLogin):
    """`tiktok_oauth.web.TikTokLogin` on a Django request, with a `TikTokOAuth2Client`."""

    def authorize_redirect(
        self,
        request: HttpRequest,
        *,
        next: str | None = None,  # noqa: A002 - the name every web framework uses
        scope: str | Iterable[str] | None = None,
        redirect_uri: str | None = None,
    ) -> HttpResponseRedirect:
        """Begin a login in `request.session` and answer 302 to TikTok's consent page."""
        url = self.begin(_session(request), scope=scope, redirect_uri=redirect_uri, next=next)
        return HttpResponseRedirect(url)

    def authorize_access_token(self, request: HttpRequest) -> web.LoginResult:
        """Complete the login this callback request answers."""
        return self.complete(_session(request), request.get_full_path())

    def webhook_endpoint(self, handler: WebhookHandler) -> Callable[[HttpRequest], HttpResponse]:
        """A CSRF-exempt view for TikTok's webhook deliveries: for a POST it hands the raw body and the
        headers to `handler.handle` and answers its status at once, with an empty body; other methods get
        405."""

        # TikTok's server holds no CSRF token: the signature is the check.
        @csrf_exempt  # type: ignore[untyped-decorator]
        def tiktok_webhook(request: HttpRequest) -> HttpResponse:
            if request.method != "POST":
                return HttpResponseNotAllowed(["POST"])
            return HttpResponse(status=handler.handle(request.body, request.headers))

        return tiktok_webhook  # type: ignore[no-any-return]


def _session(request: HttpRequest) -> Any:
    session = getattr(request, "session", None)
    if session is None:
        raise RuntimeError(
            "TikTokLogin needs Django's session middleware: add "
            "'django.contrib.sessions.middleware.SessionMiddleware' to MIDDLEWARE"
        )
    return session
