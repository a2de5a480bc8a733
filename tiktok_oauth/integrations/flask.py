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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import flask
from werkzeug.wrappers import Response

from tiktok_oauth import web

if TYPE_CHECKING:
    from tiktok_oauth.webhooks import WebhookHandler

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
