"""QR-code login at the fake (TIKTOK.md rows 33, 34): the codes handed out, the phone's scan, the endpoints.

No I/O and no lock: `FakeTikTok` holds its lock around every call, as for the `TokenLedger`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tiktok_oauth import _clock
from tiktok_oauth.testing._authorize import AuthorizationRequest, callback_url
from tiktok_oauth.testing._ledger import OAuthRefusal, TokenLedger
from tiktok_oauth.testing._models import FakeTikTokError, random_string

__all__ = ["CHECK_QRCODE_PATH", "GET_QRCODE_PATH", "QRCodeBook"]

GET_QRCODE_PATH = "/v2/oauth/get_qrcode/"
CHECK_QRCODE_PATH = "/v2/oauth/check_qrcode/"


@dataclass
class _QRCode:
    token: str
    scan_id: str
    scopes: tuple[str, ...]
    state: str
    expires_at: float
    client_ticket: str = ""
    scanned: bool = False
    code: str | None = None  # set when the user confirmed


class QRCodeBook:
    """The QR codes the fake handed out and what the user's phone did with them."""

    def __init__(self, ledger: TokenLedger) -> None:
        self._ledger = ledger
        self._codes: dict[str, _QRCode] = {}  # by token
        self._scanned: dict[str, _QRCode] = {}  # by the id in the scan URL (which does not show the token)
        #: Where a confirmed code's `redirect_uri` points (the app's registered redirect URI).
        self.redirect_uri = "https://localhost/"
        #: Seconds before a code nobody confirmed expires (TikTok's is not documented).
        self.ttl = 300.0

    def get_qrcode(self, client_key: str, form: dict[str, str]) -> dict[str, Any]:
        """Answer `get_qrcode`: a new code's scan URL (with `client_ticket=tobefilled`) and token."""
        scopes = tuple(name for name in form.get("scope", "").split(",") if name)
        if not scopes:
            raise OAuthRefusal("invalid_request", "scope is required.")
        token, scan_id = f"qrt.{random_string()}", random_string(24)
        entry = _QRCode(token, scan_id, scopes, form.get("state", ""), _clock.now() + self.ttl)
        self._codes[token] = self._scanned[scan_id] = entry
        query = urlencode({"client_key": client_key, "scope": ",".join(scopes), "qrcode_id": scan_id})
        return {"scan_qrcode_url": f"aweme://authorize?{query}&client_ticket=tobefilled", "token": token}

    def check_qrcode(self, form: dict[str, str]) -> dict[str, Any]:
        """Answer `check_qrcode`: the status, our ticket once scanned, and on confirmation the code."""
        entry = self._codes.get(form.get("token", ""))
        if entry is None:
            raise OAuthRefusal("invalid_request", "token is invalid.")
        status = self._status(entry)
        if status in ("new", "expired"):
            return {"client_ticket": "", "status": status}
        answer = {"client_ticket": entry.client_ticket, "status": status}
        if status == "confirmed":
            assert entry.code is not None
            answer["redirect_uri"] = callback_url(
                self.redirect_uri, {"code": entry.code, "state": entry.state}
            )
            answer["state"] = entry.state
        return answer

    def scan(self, scan_url_or_token: str, open_id: str, *, confirm: bool) -> None:
        """The user's phone scans the code (and confirms or not), as `FakeTikTok.scan_qr`."""
        if scan_url_or_token.startswith("aweme://"):
            query = parse_qs(urlsplit(scan_url_or_token).query)
            entry = self._scanned.get(query.get("qrcode_id", [""])[0])
            ticket = query.get("client_ticket", [""])[0]
        else:
            entry, ticket = self._codes.get(scan_url_or_token), ""
        if entry is None:
            raise FakeTikTokError("no such QR code: pass the scan_url (or the token) start_qr_login returned")
        if self._status(entry) not in ("new", "scanned"):
            raise FakeTikTokError(f"the QR code is {self._status(entry)}: it cannot be scanned any more")
        if not entry.scanned:
            entry.scanned, entry.client_ticket = True, ticket
        elif not hmac.compare_digest(entry.client_ticket, ticket) and ticket:
            raise FakeTikTokError("the QR code was scanned already, with another client_ticket")
        if confirm:
            request = AuthorizationRequest(self.redirect_uri, entry.scopes, entry.state, None)
            entry.code = self._ledger.issue_code(request, entry.scopes, open_id)

    def _status(self, entry: _QRCode) -> str:
        if entry.code is not None:
            return "utilised" if self._ledger.code_used(entry.code) else "confirmed"
        if _clock.now() >= entry.expires_at:
            return "expired"
        return "scanned" if entry.scanned else "new"
