"""`TikTokLogin` for Flask (extra `flask`): on `flask.session` and `flask.request`.

```python
app.secret_key = ...                            # Flask's session needs it
login = TikTokLogin(client, store)

@app.get("/login")
def start():
    return login.authorize_redirect(next="/")

@app.get("/callback")                           # the redirect URI
def callback():
    result = login.authorize_access_token()

app.add_url_rule("/tiktok/webhook", view_func=login.webhook_endpoint(handler), methods=["POST"])
```

Or the ready-made routes (`GET login`, `GET callback`, `POST logout`) and `login.current_auth()`:

```python
app.register_blueprint(login.blueprint(url_prefix="/auth/tiktok", on_login=None, on_error=None, after_logout="/"))
```
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import flask
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from tiktok_oauth import web
from tiktok_oauth.errors import TikTokOAuthError

if TYPE_CHECKING:
    from tiktok_oauth.auth import TikTokAuth
    from tiktok_oauth.webhooks import WebhookHandler

#: `on_login(request, result)`: any Flask view answer, sent after a login.
OnLogin = Callable[[flask.Request, web.LoginResult], ResponseReturnValue]
#: `on_error(request, exc)`: any Flask view answer, sent after a failed callback.
OnError = Callable[[flask.Request, TikTokOAuthError], ResponseReturnValue]

__all__ = ["TikTokLogin"]


class TikTokLogin(web.TikTokLogin):
    """`tiktok_oauth.web.TikTokLogin` inside a Flask request, with a `TikTokOAuth2Client`."""

    def authorize_redirect(
        self,
        *,
        next: str | None = None,  # noqa: A002 - the name every web framework uses
        scope: str | Iterable[str] | None = None,
        redirect_uri: str | None = None,
    ) -> Response:
        """Begin a login in `flask.session` and answer 302 to TikTok's consent page."""
        url = self.begin(flask.session, scope=scope, redirect_uri=redirect_uri, next=next)
        return flask.redirect(url, code=302)

    def authorize_access_token(self) -> web.LoginResult:
        """Complete the login that `flask.request` (the callback) answers."""
        return self.complete(flask.session, flask.request.url)

    def webhook_endpoint(self, handler: WebhookHandler) -> Callable[[], Response]:
        """A view for TikTok's webhook deliveries (route it for POST; its endpoint name is `tiktok_webhook`):
        it hands the raw body and the headers to `handler.handle` and answers its status at once, with an
        empty body."""

        def tiktok_webhook() -> Response:
            status = handler.handle(flask.request.get_data(cache=False), flask.request.headers)
            return Response(status=status)

        return tiktok_webhook

    def current_auth(self) -> TikTokAuth | None:
        """The `TikTokAuth` of the user the ready-made routes logged in in `flask.session`, or None."""
        key = web.logged_in_key(flask.session)
        return None if key is None else self.auth(key)

    def blueprint(
        self,
        url_prefix: str = "/auth/tiktok",
        on_login: OnLogin | None = None,
        on_error: OnError | None = None,
        after_logout: str = "/",
        *,
        name: str = "tiktok_oauth",
    ) -> flask.Blueprint:
        """The ready-made routes as a blueprint named `name`, for `app.register_blueprint`: `GET login`
        (`?next=/path`), `GET callback` and `POST logout` under `url_prefix`; see the "Ready-made routes"
        section of the web login docs."""
        blueprint = flask.Blueprint(name, __name__, url_prefix=url_prefix)

        @blueprint.get("/login")
        def login() -> ResponseReturnValue:
            redirect_uri = web.route_redirect_uri(self.client, flask.request.url)
            try:
                return self.authorize_redirect(next=flask.request.args.get("next"), redirect_uri=redirect_uri)
            except ValueError as exc:  # next is not a path on this site
                return _error_page(exc)

        @blueprint.get("/callback")
        def callback() -> ResponseReturnValue:
            try:
                result = self.authorize_access_token()
            except TikTokOAuthError as exc:
                return _error_page(exc) if on_error is None else on_error(flask.request, exc)
            web.remember_user(flask.session, result.key)
            if on_login is not None:
                return on_login(flask.request, result)
            return flask.redirect(web.after_login_url(result), code=302)

        @blueprint.post("/logout")
        def logout() -> ResponseReturnValue:
            key = web.logged_in_key(flask.session)
            if key is not None:
                try:
                    self.auth(key).logout()
                except TikTokOAuthError as exc:  # TikTok may still honour the token: stay logged in
                    return _error_page(exc)
            web.forget_user(flask.session)
            return flask.redirect(after_logout, code=302)

        return blueprint


def _error_page(exc: Exception) -> tuple[str, int]:
    status, page = web.error_page(exc)
    return page, status
