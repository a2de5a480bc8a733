"""TikTok's consent page for a real browser: the HTML the fake shows, and the form it reads back.

`GET /v2/auth/authorize/?...` shows the page; its form posts to the same URL (query included), with the
`open_id` to log in as and the button pressed. The fake then consents exactly as `FakeTikTok.authorize`
does, so the browser lands on the redirect URI with the same parameters. Everything echoed is escaped.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs, urlsplit

from tiktok_oauth.testing._authorize import AUTHORIZE_PATH, AuthorizationRequest
from tiktok_oauth.testing._models import FakeResponse, FakeTikTokError

__all__ = ["DEFAULT_OPEN_ID", "consent_choice", "consent_page"]

DEFAULT_OPEN_ID = "test-open-id"
_HTML = {"content-type": "text/html; charset=utf-8", "cache-control": "no-store"}


def consent_page(request: AuthorizationRequest, client_key: str, url: str) -> FakeResponse:
    """The page asking the user to let app `client_key` have `request.scopes`; its form posts to `url`."""
    query = urlsplit(url).query
    action = html.escape(f"{AUTHORIZE_PATH}?{query}" if query else AUTHORIZE_PATH)
    scopes = "".join(f"<li><code>{html.escape(scope)}</code></li>" for scope in request.scopes)
    page = f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Authorize {html.escape(client_key)} - FakeTikTok</title></head>
<body>
<h1>FakeTikTok</h1>
<p>The app <strong id="client-key">{html.escape(client_key)}</strong> would like to access your account:</p>
<ul id="scopes">{scopes}</ul>
<p>It will send you back to <code>{html.escape(request.redirect_uri)}</code>.</p>
<form method="post" action="{action}">
<label for="open_id">Log in as (open_id)</label>
<input type="text" id="open_id" name="open_id" value="{DEFAULT_OPEN_ID}" required>
<button type="submit" id="authorize" name="decision" value="authorize">Authorize</button>
<button type="submit" id="deny" name="decision" value="deny">Deny</button>
</form>
</body>
</html>
"""
    return FakeResponse(200, dict(_HTML), page.encode())


def consent_choice(body: bytes) -> tuple[str, bool]:
    """Read the consent form: `(open_id, deny)`; `FakeTikTokError` for a form the page cannot have sent."""
    try:
        form = {name: values[0] for name, values in parse_qs(body.decode(), keep_blank_values=True).items()}
    except (UnicodeDecodeError, ValueError):
        raise FakeTikTokError("TikTok would show an error page: the consent form is malformed") from None
    decision = form.get("decision")
    if decision not in {"authorize", "deny"}:
        raise FakeTikTokError("TikTok would show an error page: press Authorize or Deny")
    open_id = form.get("open_id", "").strip()
    if decision == "authorize" and not open_id:
        raise FakeTikTokError("TikTok would show an error page: an open_id is needed to log in")
    return open_id or DEFAULT_OPEN_ID, decision == "deny"
