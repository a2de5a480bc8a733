"""`TikTokLogin` for Django (extra `django`): on `request.session` (`SessionMiddleware`).

```python
login = TikTokLogin(client, store)

def start(request):                             # path("login/", start)
    return login.authorize_redirect(request, next="/")

def callback(request):                          # the redirect URI
    result = login.authorize_access_token(request)

path("tiktok/webhook", login.webhook_endpoint(handler))     # POST only, CSRF-exempt
```

Or the ready-made views (`GET login/`, `GET callback/`, `POST logout/`) and `login.current_auth(request)`:

```python
path("auth/tiktok/", include(login.urls(on_login=None, on_error=None, after_logout="/")))
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
from django.urls import path  # type: ignore[import-untyped]
from django.views.decorators.csrf import csrf_exempt  # type: ignore[import-untyped]
from django.views.decorators.http import require_GET, require_POST  # type: ignore[import-untyped]

from tiktok_oauth import web
from tiktok_oauth.errors import TikTokOAuthError

if TYPE_CHECKING:
    from tiktok_oauth.auth import TikTokAuth
    from tiktok_oauth.webhooks import WebhookHandler

#: `on_login(request, result)`: its `HttpResponse` is sent after a login.
OnLogin = Callable[[HttpRequest, web.LoginResult], HttpResponse]
#: `on_error(request, exc)`: its `HttpResponse` is sent after a failed callback.
OnError = Callable[[HttpRequest, TikTokOAuthError], HttpResponse]

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

    def current_auth(self, request: HttpRequest) -> TikTokAuth | None:
        """The `TikTokAuth` of the user the ready-made views logged in in `request.session`, or None."""
        key = web.logged_in_key(_session(request))
        return None if key is None else self.auth(key)

    def urls(
        self, on_login: OnLogin | None = None, on_error: OnError | None = None, after_logout: str = "/"
    ) -> tuple[list[Any], str]:
        """The ready-made views, for `path("auth/tiktok/", include(login.urls()))`: `GET login/`
        (`?next=/path`), `GET callback/` and `POST logout/`, named `tiktok_oauth:login`, `:callback` and
        `:logout`; see the "Ready-made routes" section of the web login docs. The logout form needs
        `{% csrf_token %}` under Django's CSRF middleware, as every POST does."""

        @require_GET  # type: ignore[untyped-decorator]
        def login(request: HttpRequest) -> HttpResponse:
            redirect_uri = web.route_redirect_uri(self.client, request.build_absolute_uri())
            try:
                return self.authorize_redirect(
                    request, next=request.GET.get("next"), redirect_uri=redirect_uri
                )
            except ValueError as exc:  # next is not a path on this site
                return _error_page(exc)

        @require_GET  # type: ignore[untyped-decorator]
        def callback(request: HttpRequest) -> HttpResponse:
            try:
                result = self.authorize_access_token(request)
            except TikTokOAuthError as exc:
                return _error_page(exc) if on_error is None else on_error(request, exc)
            request.session.cycle_key()  # a new session id for the logged-in user (no session fixation)
            web.remember_user(request.session, result.key)
            if on_login is not None:
                return on_login(request, result)
            return HttpResponseRedirect(web.after_login_url(result))

        @require_POST  # type: ignore[untyped-decorator]
        def logout(request: HttpRequest) -> HttpResponse:
            key = web.logged_in_key(_session(request))
            if key is not None:
                try:
                    self.auth(key).logout()
                except TikTokOAuthError as exc:  # TikTok may still honour the token: stay logged in
                    return _error_page(exc)
            web.forget_user(request.session)
            return HttpResponseRedirect(after_logout)

        patterns = [
            path("login/", login, name="login"),
            path("callback/", callback, name="callback"),
            path("logout/", logout, name="logout"),
        ]
        return patterns, "tiktok_oauth"


def _error_page(exc: Exception) -> HttpResponse:
    status, page = web.error_page(exc)
    return HttpResponse(page, status=status, content_type="text/html; charset=utf-8")


def _session(request: HttpRequest) -> Any:
    session = getattr(request, "session", None)
    if session is None:
        raise RuntimeError(
            "TikTokLogin needs Django's session middleware: add "
            "'django.contrib.sessions.middleware.SessionMiddleware' to MIDDLEWARE"
        )
    return session
