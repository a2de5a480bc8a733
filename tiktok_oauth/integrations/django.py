"""`TikTokLogin` for Django (extra `django`): on `request.session` (`SessionMiddleware`).

```python
login = TikTokLogin(client, store)

def start(request):                             # path("login/", start)
    return login.authorize_redirect(request, next="/")

def callback(request):                          # the redirect URI
    result = login.authorize_access_token(request)
```
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest, HttpResponseRedirect  # type: ignore[import-untyped]

from tiktok_oauth import web

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


def _session(request: HttpRequest) -> Any:
    session = getattr(request, "session", None)
    if session is None:
        raise RuntimeError(
            "TikTokLogin needs Django's session middleware: add "
            "'django.contrib.sessions.middleware.SessionMiddleware' to MIDDLEWARE"
        )
    return session
