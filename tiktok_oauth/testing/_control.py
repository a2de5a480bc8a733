"""The served fake's control endpoints, for an app in another process (`tiktok-oauth fake serve`).

`GET /_fake/state` answers the counters as JSON; `POST /_fake/expire` (form or JSON `open_id`, optional)
expires access tokens; `POST /_fake/revoke` (`open_id`) plays the user removing the app. They exist only on
the served fake, which listens on loopback only.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qsl

from tiktok_oauth.testing._models import FakeResponse

if TYPE_CHECKING:
    from tiktok_oauth.testing._fake import FakeTikTok

__all__ = ["CONTROL_PREFIX", "answer_control"]

CONTROL_PREFIX: Final = "/_fake/"
_GRANTS: Final = ("authorization_code", "refresh_token", "client_credentials")


def _json(status: int, payload: object) -> FakeResponse:
    return FakeResponse(status, {"content-type": "application/json"}, json.dumps(payload).encode())


def _fields(body: bytes) -> dict[str, str]:
    text = body.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            loaded = json.loads(text)
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
    return dict(parse_qsl(text))


def state(fake: FakeTikTok) -> dict[str, object]:
    """The fake's counters, as `GET /_fake/state` answers them."""
    return {
        "client_key": fake.client_key,
        "grants": {grant: fake.grant_count(grant) for grant in _GRANTS},
        "stale_refresh_token_uses": fake.stale_refresh_token_uses,
        "token_requests": len(fake.token_requests),
        "requests": len(fake.requests),
        "webhook_deliveries": len(fake.webhook_deliveries),
    }


def answer_control(fake: FakeTikTok, method: str, path: str, body: bytes) -> FakeResponse:
    """Answer one request under `/_fake/`."""
    route = path.split("?", 1)[0]
    if route == "/_fake/state":
        return _json(200, state(fake)) if method == "GET" else _json(405, {"error": "use GET"})
    if route in ("/_fake/expire", "/_fake/revoke"):
        if method != "POST":
            return _json(405, {"error": "use POST"})
        open_id = _fields(body).get("open_id") or None
        if route == "/_fake/expire":
            fake.expire_access_tokens(open_id=open_id)
        elif open_id is None:
            return _json(400, {"error": "open_id is required"})
        else:
            fake.revoke_grants(open_id)
        return _json(200, state(fake))
    return _json(404, {"error": f"no such control endpoint: {route}"})
