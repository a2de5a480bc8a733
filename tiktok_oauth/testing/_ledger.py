"""Who holds which code and token: the fake's state, its grants and their rotation (no I/O, no lock).

`FakeTikTok` holds its lock around every call into a `TokenLedger`.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from typing import Any

from tiktok_oauth import _clock
from tiktok_oauth.testing._authorize import AuthorizationRequest
from tiktok_oauth.testing._models import random_string

__all__ = ["CLIENT_TOKEN_TTL", "CODE_LIFETIME", "Grant", "OAuthRefusal", "TokenLedger"]

CODE_LIFETIME = 600.0
CLIENT_TOKEN_TTL = 7200


class OAuthRefusal(Exception):  # noqa: N818 - a refusal is an answer, not a failure of the fake
    """The token or revoke endpoint answers with this OAuth error."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(error, description)
        self.error = error
        self.description = description


@dataclass
class _Code:
    redirect_uri: str
    code_challenge: str | None
    scopes: tuple[str, ...]
    open_id: str
    expires_at: float
    used: bool = False


@dataclass
class Grant:
    """One user's consent: the scopes, the current refresh token and when that expires."""

    open_id: str
    scopes: tuple[str, ...]
    refresh_token: str
    refresh_expires_at: float
    revoked: bool = False


@dataclass
class _AccessToken:
    grant: Grant | None  # None for a client access token
    expires_at: float
    revoked: bool = False


class TokenLedger:
    """The codes, grants and tokens the fake has issued, and the rules for using them."""

    def __init__(self, access_ttl: int, refresh_ttl: int, rotation_grace: float = 0.0) -> None:
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.rotation_grace = rotation_grace
        self.stale_refresh_token_uses = 0
        self._codes: dict[str, _Code] = {}
        self._grants_by_refresh_token: dict[str, Grant] = {}  # includes rotated-away tokens
        self._rotated_at: dict[str, float] = {}  # when each rotated-away refresh token was replaced
        self._access_tokens: dict[str, _AccessToken] = {}

    def issue_code(self, request: AuthorizationRequest, scopes: tuple[str, ...], open_id: str) -> str:
        """Remember and return a new single-use authorization code, shaped like TikTok's."""
        code = f"{random_string()}*0!{random_string(4)}"
        self._codes[code] = _Code(
            request.redirect_uri,
            request.code_challenge,
            scopes,
            open_id,
            _clock.now() + CODE_LIFETIME,
        )
        return code

    def code_used(self, code: str) -> bool:
        """Whether `code` was exchanged for a token already."""
        entry = self._codes.get(code)
        return entry is not None and entry.used

    def new_grant(
        self,
        open_id: str,
        scopes: tuple[str, ...],
        expires_in: int | None = None,
        refresh_expires_in: int | None = None,
    ) -> dict[str, Any]:
        """Register a grant and return the token-endpoint body for it."""
        refresh_ttl = self.refresh_ttl if refresh_expires_in is None else refresh_expires_in
        grant = Grant(open_id, scopes, "", _clock.now() + refresh_ttl)
        return self._issue(grant, self.access_ttl if expires_in is None else expires_in)

    def exchange_code(self, form: dict[str, str]) -> dict[str, Any]:
        """Answer the `authorization_code` grant."""
        entry = self._codes.get(form.get("code", ""))
        if entry is None:
            raise OAuthRefusal("invalid_grant", "Authorization code is invalid.")
        if entry.used:
            raise OAuthRefusal("invalid_grant", "Authorization code has already been used.")
        if _clock.now() >= entry.expires_at:
            raise OAuthRefusal("invalid_grant", "Authorization code is expired.")
        if form.get("redirect_uri") != entry.redirect_uri:
            raise OAuthRefusal("invalid_grant", "Redirect URI does not match the authorization.")
        if entry.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).hexdigest()
            if not verifier or not hmac.compare_digest(digest, entry.code_challenge):
                raise OAuthRefusal("invalid_grant", "Code verifier does not match the challenge.")
        entry.used = True
        return self.new_grant(entry.open_id, entry.scopes)

    def refresh(self, form: dict[str, str]) -> dict[str, Any]:
        """Answer the `refresh_token` grant, rotating the refresh token."""
        if "scope" in form:
            raise OAuthRefusal("invalid_request", "The scope parameter is not supported here.")
        presented = form.get("refresh_token", "")
        if not presented:
            raise OAuthRefusal("invalid_request", "refresh_token is required.")
        grant = self._grants_by_refresh_token.get(presented)
        if grant is None or grant.revoked:
            raise OAuthRefusal("invalid_grant", "Refresh token is invalid or revoked.")
        if not hmac.compare_digest(presented, grant.refresh_token):
            self.stale_refresh_token_uses += 1
            if not self._in_grace(presented):
                raise OAuthRefusal("invalid_grant", "Refresh token is invalid (already rotated).")
        if _clock.now() >= grant.refresh_expires_at:
            raise OAuthRefusal("invalid_grant", "Refresh token is expired.")
        return self._issue(grant, self.access_ttl)

    def _in_grace(self, rotated_away: str) -> bool:
        """Whether a replaced refresh token still works: strict rotation (no grace) unless configured."""
        replaced_at = self._rotated_at.get(rotated_away)
        return replaced_at is not None and _clock.now() < replaced_at + self.rotation_grace

    def client_credentials(self) -> dict[str, Any]:
        """Answer the `client_credentials` grant with a `clt.` token and no refresh token."""
        token = f"clt.{random_string()}"
        self._access_tokens[token] = _AccessToken(None, _clock.now() + CLIENT_TOKEN_TTL)
        return {"access_token": token, "expires_in": CLIENT_TOKEN_TTL, "token_type": "Bearer"}

    def revoke(self, token: str) -> None:
        """Revoke the grant of access token `token` (an unknown token is ignored, as RFC 7009 says)."""
        if token in self._grants_by_refresh_token:
            raise OAuthRefusal("invalid_request", "Revoke takes an access token, not a refresh token.")
        entry = self._access_tokens.get(token)
        if entry is None:
            return
        entry.revoked = True
        if entry.grant is not None:
            entry.grant.revoked = True

    def grant_for_access_token(self, token: str) -> Grant | None:
        """Return the live user grant behind `token`, or None if it is unknown, dead or a client token."""
        entry = self._access_tokens.get(token)
        if entry is None or entry.revoked or entry.grant is None or entry.grant.revoked:
            return None
        if _clock.now() >= entry.expires_at:
            return None
        return entry.grant

    def revoke_grants(self, open_id: str) -> None:
        """The user `open_id` removed the app: every grant of theirs dies, with its access tokens."""
        for grant in self._grants_by_refresh_token.values():
            if grant.open_id == open_id:
                grant.revoked = True

    def expire_access_tokens(self, open_id: str | None = None) -> None:
        """Make every access token issued so far expired: those of user `open_id`, or all when None."""
        for entry in self._access_tokens.values():
            if open_id is None or (entry.grant is not None and entry.grant.open_id == open_id):
                entry.expires_at = -math.inf

    def _issue(self, grant: Grant, expires_in: int) -> dict[str, Any]:
        access_token = f"act.{random_string()}"
        now = _clock.now()
        if grant.refresh_token:
            self._rotated_at[grant.refresh_token] = now
        grant.refresh_token = f"rft.{random_string()}"
        self._grants_by_refresh_token[grant.refresh_token] = grant
        self._access_tokens[access_token] = _AccessToken(grant, now + expires_in)
        return {
            "access_token": access_token,
            "expires_in": expires_in,
            "open_id": grant.open_id,
            "refresh_expires_in": max(0, round(grant.refresh_expires_at - now)),
            "refresh_token": grant.refresh_token,
            "scope": ",".join(grant.scopes),
            "token_type": "Bearer",
        }
