"""The fake's webhook deliveries: what TikTok sends (built without I/O), and the sending with bounded retries.

TikTok signs a delivery with the app's client secret (`TikTok-Signature: t=<epoch>,s=<hex HMAC-SHA256 of
"<t>.<raw body>">`) and retries a non-200 answer with exponential backoff for 72 hours; the fake retries
`retries` times, `backoff`, `2 * backoff`, ... seconds apart. This signs independently of
`tiktok_oauth.webhooks`, so a test of `verify` against the fake checks one implementation with another.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable

__all__ = ["WebhookTarget", "post", "removed_body", "retry_delays", "signed_headers"]

#: A URL to POST deliveries to, or a callable taking (body, headers) and returning the status answered.
WebhookTarget = str | Callable[[bytes, dict[str, str]], int]

_POST_TIMEOUT = 5.0


def removed_body(client_key: str, open_id: str, reason: int, create_time: int) -> bytes:
    """The body of an `authorization.removed` delivery (its `content` is a JSON string, as TikTok sends)."""
    payload = {
        "client_key": client_key,
        "event": "authorization.removed",
        "create_time": create_time,
        "user_openid": open_id,
        "content": json.dumps({"reason": reason}),
    }
    return json.dumps(payload).encode()


def signed_headers(body: bytes, client_secret: str, timestamp: int) -> dict[str, str]:
    """The headers of one delivery attempt of `body`, signed at `timestamp`."""
    digest = hmac.new(client_secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "TikTok-Signature": f"t={timestamp},s={digest}"}


def retry_delays(retries: int, backoff: float) -> list[float]:
    """Seconds to wait before each attempt: none before the first, then doubling from `backoff`."""
    return [0.0] + [backoff * 2**attempt for attempt in range(max(0, retries))]


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST one attempt to `url`; the status answered, or 0 when none came (refused, timed out)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - a test URL
    try:
        with urllib.request.urlopen(request, timeout=_POST_TIMEOUT) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def deliver(
    target: WebhookTarget,
    body: bytes,
    sign: Callable[[bytes], dict[str, str]],
    delays: list[float],
    record: Callable[[bytes, dict[str, str], int], None],
) -> None:
    """Send `body` to `target` until it answers 200 or the attempts run out, recording each attempt."""
    for delay in delays:
        time.sleep(delay)
        headers = sign(body)
        status = target(body, dict(headers)) if callable(target) else post(target, body, headers)
        record(body, headers, status)
        if status == 200:
            return
