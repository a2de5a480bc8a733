"""QR-code login's wire rules (TIKTOK.md rows 33, 34), with no I/O.

`get_qrcode` gives a scan URL with a `tobefilled` placeholder that we fill with our own `client_ticket`;
`check_qrcode` answers a status, echoing that ticket once the code is scanned, and on `confirmed` the
redirect URI that holds the authorization code, with the state. The clients send what this module builds
and drive `waiting`, the polling loop, as they drive `_protocol.conversation`.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple, get_args
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from tiktok_oauth._protocol import Sleep, TokenCall
from tiktok_oauth.errors import (
    AuthorizationDeniedError,
    QRCodeExpiredError,
    RateLimitedError,
    StateMismatchError,
    TikTokServerError,
)

__all__ = [
    "CHECK_QRCODE_PATH",
    "GET_QRCODE_PATH",
    "Poll",
    "QRAnswer",
    "QRLogin",
    "QRStatus",
    "answer_from",
    "check_call",
    "generate_client_ticket",
    "get_call",
    "login_from",
    "qrcode_urls",
    "waiting",
]

GET_QRCODE_PATH: Final = "/v2/oauth/get_qrcode/"
CHECK_QRCODE_PATH: Final = "/v2/oauth/check_qrcode/"
#: The value TikTok puts in the scan URL's `client_ticket` for the app to replace (row 33).
PLACEHOLDER: Final = "tobefilled"
#: 32 random bytes, URL-safe base64: 43 characters (TikTok allows fewer than 512).
TICKET_BYTES: Final = 32

QRStatus = Literal["new", "scanned", "confirmed", "expired", "utilised"]
_STATUSES: Final = frozenset(get_args(QRStatus))

_QR_HEADERS: Final = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Cache-Control": "no-cache",
    "Accept": "application/json",
}


@dataclass(frozen=True)
class QRLogin:
    """One QR-code login in progress: render `scan_url` as a QR code, then poll with `token`.

    Attributes:
        scan_url: the URL to show as a QR code (TikTok's `scan_qrcode_url` holding our `client_ticket`).
        token: TikTok's token for this QR code, sent (with the client secret) to check its status.
        state: the state TikTok must echo when the user confirms.
        client_ticket: the ticket we made and put into `scan_url`; TikTok echoes it once the code is scanned.

    Its `repr` shows only the first characters of `token` and `client_ticket` (also inside `scan_url`).
    """

    scan_url: str
    token: str
    state: str
    client_ticket: str

    def __repr__(self) -> str:
        scan_url = self.scan_url.replace(self.client_ticket, _masked(self.client_ticket))
        scan_url = scan_url.replace(self.token, _masked(self.token))
        return (
            f"QRLogin(scan_url={scan_url!r}, token={_masked(self.token)!r}, state={self.state!r}, "
            f"client_ticket={_masked(self.client_ticket)!r})"
        )


def _masked(secret: str) -> str:
    return f"{secret[:4]}..." if len(secret) > 8 else "..."


class QRAnswer(NamedTuple):
    """A checked `check_qrcode` answer: the status and, when `confirmed`, the code and its redirect URI."""

    status: QRStatus
    code: str | None = None
    redirect_uri: str | None = None

    def __repr__(self) -> str:
        return f"QRAnswer(status={self.status!r})"


class Poll(NamedTuple):
    """Ask the driver to check the QR code once and send back a `QRAnswer`, or the `RateLimitedError`."""


def qrcode_urls(token_url: str) -> tuple[str, str]:
    """The `get_qrcode` and `check_qrcode` URLs on the token endpoint's origin (a served fake's too)."""
    scheme, netloc = urlsplit(token_url)[:2]
    return (
        urlunsplit((scheme, netloc, GET_QRCODE_PATH, "", "")),
        urlunsplit((scheme, netloc, CHECK_QRCODE_PATH, "", "")),
    )


def generate_client_ticket() -> str:
    """A new `client_ticket`: URL-safe, from a CSPRNG (row 33)."""
    return secrets.token_urlsafe(TICKET_BYTES)


def get_call(url: str, *, client_key: str, scope: str, state: str) -> TokenCall:
    """Ask for a QR code: `client_key`, comma-joined `scope` and `state`; no client secret (row 33)."""
    return TokenCall(
        "get_qrcode", url, {"client_key": client_key, "scope": scope, "state": state}, _QR_HEADERS
    )


def check_call(url: str, credentials: tuple[str, str], qr: QRLogin) -> TokenCall:
    """Ask for a QR code's status: `client_key`, `client_secret`, `token` (row 34)."""
    client_key, client_secret = credentials
    data = {"client_key": client_key, "client_secret": client_secret, "token": qr.token}
    return TokenCall("check_qrcode", url, data, _QR_HEADERS)


def login_from(answer: Mapping[str, Any], *, state: str, client_ticket: str) -> QRLogin:
    """Read a `get_qrcode` answer and fill our ticket into its scan URL in place of `tobefilled`."""
    scan_url, token = answer.get("scan_qrcode_url"), answer.get("token")
    if not isinstance(scan_url, str) or PLACEHOLDER not in scan_url:
        raise TikTokServerError("TikTok's get_qrcode answer has no scan_qrcode_url with a ticket placeholder")
    if not isinstance(token, str) or not token:
        raise TikTokServerError("TikTok's get_qrcode answer has no token")
    placeholder = f"client_ticket={PLACEHOLDER}"
    if placeholder in scan_url:
        scan_url = scan_url.replace(placeholder, f"client_ticket={client_ticket}", 1)
    else:
        scan_url = scan_url.replace(PLACEHOLDER, client_ticket, 1)
    return QRLogin(scan_url=scan_url, token=token, state=state, client_ticket=client_ticket)


def answer_from(answer: Mapping[str, Any], qr: QRLogin) -> QRAnswer:
    """Check a `check_qrcode` answer against `qr` (row 34) and read it.

    The ticket must be ours once the code is scanned (TikTok sends an empty one while it is `new` or
    `expired`), and a confirmation must carry our state: both compared in constant time.
    """
    status: QRStatus = answer.get("status")  # type: ignore[assignment] # checked below
    if status not in _STATUSES:
        raise TikTokServerError(f"TikTok's check_qrcode answer has an unknown status {status!r}")
    ticket = answer.get("client_ticket") or ""
    if not isinstance(ticket, str):
        raise StateMismatchError("the QR code's client_ticket is not ours")
    if ticket and not hmac.compare_digest(ticket.encode(), qr.client_ticket.encode()):
        raise StateMismatchError("the QR code's client_ticket is not ours: someone else's scan answered")
    if not ticket and status in ("scanned", "confirmed"):
        raise StateMismatchError(f"the QR code was {status} without our client_ticket")
    if status != "confirmed":
        return QRAnswer(status)
    redirect_uri = answer.get("redirect_uri")
    if not isinstance(redirect_uri, str) or not redirect_uri:
        raise TikTokServerError("TikTok's confirmed check_qrcode answer has no redirect_uri")
    parts = urlsplit(redirect_uri)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))  # decoded exactly once (row 16)
    state = answer.get("state") or query.get("state") or ""
    if not isinstance(state, str) or not hmac.compare_digest(state.encode(), qr.state.encode()):
        raise StateMismatchError("the QR code was confirmed with a state that is not ours")
    if "error" in query:
        raise AuthorizationDeniedError(
            query.get("error_description") or "TikTok did not grant access", error=query["error"]
        )
    code = query.get("code")
    if not code:
        raise TikTokServerError("TikTok's confirmed check_qrcode answer has no code in its redirect_uri")
    # The code was issued for the redirect URI without its query: the token request must send that one.
    return QRAnswer("confirmed", code, urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")))


def waiting(
    *, interval: float, timeout: float, on_status: Callable[[str], object] | None = None
) -> Generator[Poll | Sleep, QRAnswer | RateLimitedError | None, QRAnswer]:
    """Poll until the user confirms; return the confirmed answer.

    Every `interval` seconds, or after a 429's `retry_after` when it is longer; `on_status` hears each
    change of status. `expired` or `utilised` (the code was used already) raise `QRCodeExpiredError`, and
    so does the end of `timeout` seconds.
    """
    if not interval > 0:
        raise ValueError("interval must be more than 0 seconds")
    if not timeout >= 0:
        raise ValueError("timeout must be at least 0 seconds")
    deadline = time.monotonic() + timeout
    last: str | None = None
    while True:
        outcome = yield Poll()
        if isinstance(outcome, RateLimitedError):
            pause = max(interval, outcome.retry_after or 0.0)
        elif isinstance(outcome, QRAnswer):
            if outcome.status != last and on_status is not None:
                on_status(outcome.status)
            last = outcome.status
            if _settled(outcome):
                return outcome
            pause = interval
        else:  # pragma: no cover - a driver bug
            raise TypeError("a Poll step needs a QRAnswer or a RateLimitedError back")
        left = deadline - time.monotonic()
        if left <= 0:
            raise QRCodeExpiredError(f"the QR code was not confirmed within {timeout:g} s", error="timeout")
        yield Sleep(min(pause, left))


def _settled(answer: QRAnswer) -> bool:
    """True once confirmed; `expired` and `utilised` end the login with `QRCodeExpiredError`."""
    if answer.status == "expired":
        raise QRCodeExpiredError(
            "the QR code expired before it was confirmed: start a new one", error="expired"
        )
    if answer.status == "utilised":
        raise QRCodeExpiredError("the QR code was already used: start a new one", error="utilised")
    return answer.status == "confirmed"
