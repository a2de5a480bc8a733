"""TikTok's authorization page: which authorization URLs it accepts, and the callback URL it redirects to."""

from __future__ import annotations

import hmac
import re
import unicodedata
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import parse_qs, quote, urlsplit

from tiktok_oauth.testing._models import FakeTikTokError

__all__ = ["AUTHORIZE_PATH", "AuthorizationRequest", "callback_url", "check_authorization_url"]

AUTHORIZE_PATH = "/v2/auth/authorize/"
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1"})


@dataclass(frozen=True)
class AuthorizationRequest:
    """The parameters of an authorization URL that passed TikTok's checks."""

    redirect_uri: str
    scopes: tuple[str, ...]
    state: str
    code_challenge: str | None


def check_authorization_url(url: str, client_key: str) -> AuthorizationRequest:
    """Check `url` as TikTok's authorization page would; raise `FakeTikTokError` saying what is wrong."""
    parts = urlsplit(url)
    if parts.path != AUTHORIZE_PATH:
        _refuse(f"the authorization path must be {AUTHORIZE_PATH!r}, not {parts.path!r}")
    params = _single_valued(parts.query)
    _check_client(params, client_key)
    redirect_uri = params.get("redirect_uri", "")
    _check_redirect_uri(redirect_uri)
    scopes = _checked_scopes(params.get("scope", ""))
    if not params.get("state"):
        _refuse("`state` is missing or empty")
    challenge = params.get("code_challenge")
    if challenge is not None:
        _check_challenge(challenge, params.get("code_challenge_method"))
    if params.get("disable_auto_auth", "0") not in {"0", "1"}:
        _refuse("`disable_auto_auth` must be '0' or '1'")
    return AuthorizationRequest(redirect_uri, scopes, params["state"], challenge)


def callback_url(redirect_uri: str, params: dict[str, str]) -> str:
    """Return `redirect_uri` with `params` appended, percent-encoded as TikTok does (`*` as %2A, `!` as %21)."""
    query = "&".join(f"{name}={quote(value, safe=',')}" for name, value in params.items())
    separator = "&" if "?" in redirect_uri else "?"
    return f"{redirect_uri}{separator}{query}"


def _check_client(params: dict[str, str], client_key: str) -> None:
    if "client_id" in params:
        _refuse("TikTok names the client id `client_key`; `client_id` must not be sent")
    if "client_key" not in params:
        _refuse("`client_key` is missing")
    if not hmac.compare_digest(params["client_key"].encode(), client_key.encode()):
        _refuse("`client_key` is not this app's client key")
    if params.get("response_type") != "code":
        _refuse(f"`response_type` must be 'code', not {params.get('response_type')!r}")


def _checked_scopes(scope: str) -> tuple[str, ...]:
    if not scope:
        _refuse("`scope` is missing or empty")
    if " " in scope:
        _refuse(f"`scope` is comma-separated on TikTok, not space-separated: {scope!r}")
    scopes = tuple(scope.split(","))
    if not all(scopes):
        _refuse(f"`scope` has an empty item: {scope!r}")
    return scopes


def _check_challenge(challenge: str, method: str | None) -> None:
    if not _HEX_SHA256.fullmatch(challenge):
        _refuse("`code_challenge` must be the lowercase hex SHA-256 of the verifier (64 chars)")
    if method != "S256":
        _refuse(f"`code_challenge_method` must be 'S256', not {method!r}")


def _single_valued(query: str) -> dict[str, str]:
    params = parse_qs(query, keep_blank_values=True)
    repeated = sorted(name for name, values in params.items() if len(values) > 1)
    if repeated:
        _refuse(f"parameters given more than once: {', '.join(repeated)}")
    return {name: values[0] for name, values in params.items()}


def _check_redirect_uri(redirect_uri: str) -> None:
    if not redirect_uri:
        _refuse("`redirect_uri` is missing")
    # urlsplit drops CR, LF and tab silently, so check the raw value: a control character would reach the
    # redirect's Location header (and split it).
    if any(unicodedata.category(character) == "Cc" for character in redirect_uri):
        _refuse("`redirect_uri` holds a control character")
    parts = urlsplit(redirect_uri)
    if parts.fragment or redirect_uri.endswith("#"):
        _refuse(f"`redirect_uri` must not have a fragment: {redirect_uri!r}")
    if parts.scheme == "https" and parts.hostname:
        return
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS and port is not None:
        return
    _refuse(f"`redirect_uri` must be https, or http on localhost/127.0.0.1 with a port: {redirect_uri!r}")


def _refuse(reason: str) -> NoReturn:
    raise FakeTikTokError(f"TikTok would show an error page: {reason}")
