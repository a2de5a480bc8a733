"""TikTok's OAuth 2.0 wire rules, written once, with no I/O.

Every departure from RFC 6749 listed in TIKTOK.md has a small named function or constant here; the sync
client, the async client and the auth object are thin shells that send what this module builds and hand
back what they receive. The row numbers below are TIKTOK.md's.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import math
import string
from collections.abc import Generator, Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.errors import InsecureTransportError

from tiktok_oauth import _clock
from tiktok_oauth.errors import (
    AuthorizationDeniedError,
    RateLimitedError,
    ReauthorizationRequiredError,
    StateMismatchError,
    TikTokOAuthError,
    TikTokServerError,
)
from tiktok_oauth.token import TikTokToken

logger = logging.getLogger("tiktok_oauth")

AUTHORIZE_URL: Final = "https://www.tiktok.com/v2/auth/authorize/"
TOKEN_URL: Final = "https://open.tiktokapis.com/v2/oauth/token/"  # noqa: S105 - a URL
REVOKE_URL: Final = "https://open.tiktokapis.com/v2/oauth/revoke/"
API_HOST: Final = "open.tiktokapis.com"
DEFAULT_REDIRECT_URI: Final = "https://localhost/"
DEFAULT_SCOPE: Final = ("user.info.basic", "video.list")

#: RFC 7636's unreserved characters, the alphabet of a PKCE code verifier.
UNRESERVED: Final = string.ascii_letters + string.digits + "-._~"
CODE_VERIFIER_LENGTH: Final = 64
STATE_LENGTH: Final = 43  # 43 characters of 62 symbols: about 256 bits

#: Attempts per token-endpoint call: the first one and at most two retries of a transient failure.
MAX_ATTEMPTS: Final = 3
BACKOFF: Final = (0.1, 0.3)
#: A `Retry-After` longer than this is reported to the caller rather than slept through.
MAX_RETRY_AFTER: Final = 2.0

_FORM_HEADERS: Final = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Cache-Control": "no-cache",
    "Accept": "application/json",
}

#: Legacy v1 numeric error codes (TIKTOK.md "Legacy v1") mapped to OAuth error names.
_V1_ERRORS: Final = {
    10002: "invalid_request",
    10003: "invalid_client",
    10004: "invalid_scope",
    10007: "invalid_grant",
    10008: "invalid_grant",
    10010: "invalid_grant",
    10013: "invalid_client",
    10014: "invalid_grant",
    2190008: "access_token_invalid",
}

Grant = Literal[
    "authorization_code", "refresh_token", "client_credentials", "revoke", "get_qrcode", "check_qrcode"
]

#: QR-code login's endpoints (rows 33, 34; their rules are in `_qrcode`): a success is the answer's JSON object.
_QR_GRANTS: Final = frozenset({"get_qrcode", "check_qrcode"})

#: Grants whose request TikTok may have acted on before a reply was lost: they are never sent twice.
_SINGLE_USE: Final = frozenset({"refresh_token", "authorization_code"})


# -- transport security ----------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback host (127.0.0.0/8, ::1 or localhost)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


AUTHORIZE_PATH: Final = "/v2/auth/authorize/"
TOKEN_PATH: Final = "/v2/oauth/token/"  # noqa: S105 - a path
REVOKE_PATH: Final = "/v2/oauth/revoke/"


def endpoints_under(base_url: str) -> tuple[str, str, str]:
    """The authorize, token and revoke URLs under `base_url` (an origin such as a served fake's), with
    TikTok's own paths; `ValueError` for a URL with a path, a query or no host."""
    parts = urlsplit(base_url)
    if not parts.scheme or not parts.netloc or parts.path.strip("/") or parts.query or parts.fragment:
        raise ValueError(f"base_url must be an origin such as http://127.0.0.1:8123, not {base_url!r}")
    origin = f"{parts.scheme}://{parts.netloc}"
    return origin + AUTHORIZE_PATH, origin + TOKEN_PATH, origin + REVOKE_PATH


def check_transport(url: str) -> str:
    """Refuse plain `http` except to loopback hosts; needs no environment variable (unlike Authlib)."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or "")):
        return url
    raise InsecureTransportError


def host_with_port(url: str) -> str:
    """The host of `url`, with its port when one is given (`127.0.0.1:8000`, `[::1]:8000`), lowercased."""
    return urlsplit(url).netloc.rpartition("@")[2].lower()


def host_entry(host: str, port: int | None, scheme: str) -> str:
    """How `allowed_hosts` spells a URL's host: `host`, or `host:port` off the scheme's default port.

    IPv6 addresses go in brackets (`[::1]:8000`), whichever library parsed the URL (httpx and urllib give
    the bare address).
    """
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return host
    return f"{host}:{port}"


def normalise_allowed_hosts(hosts: Iterable[str]) -> frozenset[str]:
    """Validate `allowed_hosts` entries (`host` or `host:port`, IPv6 in brackets) and lowercase them."""
    if isinstance(hosts, str | bytes):
        raise ValueError(  # noqa: TRY004 - API.md names ValueError, as for a malformed entry
            "allowed_hosts takes an iterable of hosts, not one string: allowed_hosts={'open.tiktokapis.com'}"
        )
    entries = frozenset(hosts)
    for entry in entries:
        if not isinstance(entry, str) or not _is_host_entry(entry):
            raise ValueError(
                f"allowed_hosts entry {entry!r} is not a host: give 'host' or 'host:port' (IPv6 in brackets, "
                "as '[::1]:8000'), without a scheme or a path"
            )
    return frozenset(entry.lower() for entry in entries)


def _is_host_entry(entry: str) -> bool:
    if not entry or any(c in entry for c in "/@?#\\") or any(c.isspace() for c in entry):
        return False
    if entry.startswith("["):
        close = entry.find("]")
        rest = entry[close + 1 :]
        return close > 1 and (rest == "" or (rest[:1] == ":" and rest[1:].isdigit()))
    host, separator, port = entry.partition(":")
    return bool(host) and (not separator or port.isdigit())


_DEFAULT_PORTS: Final = {"https": 443, "http": 80}


# -- scopes (row 3) and PKCE (rows 5, 6) ----------------------------------------------------------


def join_scope(scope: str | Iterable[str]) -> str:
    """TikTok's scope is comma-separated (row 3): accept `"a,b"` or any iterable of names."""
    names = scope.split(",") if isinstance(scope, str) else scope
    return ",".join(name.strip() for name in names if name.strip())


def generate_code_verifier() -> str:
    """A new PKCE code verifier: 64 characters from RFC 7636's unreserved set, from a CSPRNG."""
    return generate_token(CODE_VERIFIER_LENGTH, UNRESERVED)  # type: ignore[no-any-return]


def code_challenge(code_verifier: str) -> str:
    """TikTok's PKCE challenge: the lowercase **hex** SHA-256 of the verifier, not base64url (row 5)."""
    if not 43 <= len(code_verifier) <= 128 or not set(code_verifier) <= set(UNRESERVED):
        raise ValueError("a code verifier is 43 to 128 characters from A-Z a-z 0-9 - . _ ~")
    return hashlib.sha256(code_verifier.encode("ascii")).hexdigest()


def generate_state() -> str:
    """A new `state`: 43 characters from a CSPRNG (about 256 bits)."""
    return generate_token(STATE_LENGTH)  # type: ignore[no-any-return]


# -- the authorization URL and its callback (rows 1, 4, 16, 17) -----------------------------------


def authorization_url(
    authorize_url: str,
    *,
    client_key: str,
    redirect_uri: str,
    scope: str | Iterable[str],
    state: str,
    code_verifier: str | None = None,
    disable_auto_auth: bool | None = None,
    extra: Mapping[str, str] | None = None,
) -> str:
    """Build the URL of TikTok's consent page: `client_key`, never `client_id` (row 1)."""
    params: list[tuple[str, str]] = [
        ("client_key", client_key),
        ("response_type", "code"),
        ("scope", join_scope(scope)),
        ("redirect_uri", redirect_uri),
        ("state", state),
    ]
    if code_verifier is not None:
        params += [("code_challenge", code_challenge(code_verifier))]
        params += [("code_challenge_method", "S256")]
    if disable_auto_auth is not None:
        params.append(("disable_auto_auth", "1" if disable_auto_auth else "0"))
    params += [(k, v) for k, v in (extra or {}).items() if k != "client_id"]
    return add_params_to_uri(authorize_url, params)  # type: ignore[no-any-return]


def code_from_callback(authorization_response: str, expected_state: str | None) -> str:
    """Check TikTok's callback URL and return its authorization code, decoded exactly once (row 16).

    The state is required and compared in constant time before anything else (the CSRF check is never
    skipped); an `error` parameter (the user declined, or the app is misconfigured) raises
    `AuthorizationDeniedError`.
    """
    if not expected_state:
        raise ValueError(
            "state= is required with authorization_response=: pass the state create_authorization_url "
            "returned (the CSRF check is never skipped)"
        )
    try:
        query = dict(parse_qsl(urlsplit(authorization_response).query, keep_blank_values=True))
    except ValueError:  # e.g. an unbalanced "[" in the host
        raise TikTokOAuthError("the callback URL is malformed", error="invalid_request") from None
    received = query.get("state", "")
    if not hmac.compare_digest(received.encode(), expected_state.encode()):
        raise StateMismatchError("the callback's state does not match the one the login began with")
    if "error" in query:
        raise AuthorizationDeniedError(
            query.get("error_description") or "TikTok did not grant access",
            error=query["error"] or "access_denied",
            log_id=query.get("log_id"),
        )
    code = query.get("code")
    if not code:
        raise TikTokOAuthError("the callback URL has no code", error="invalid_request")
    return code


# -- token-endpoint requests (rows 1, 2, 7, 12, 13) ------------------------------------------------


class TokenCall(NamedTuple):
    """One call to the token or revoke endpoint: what to send, and which grant it is."""

    grant: Grant
    url: str
    data: dict[str, str]
    headers: Mapping[str, str] = _FORM_HEADERS
    previous: TikTokToken | None = None

    def __repr__(self) -> str:
        return f"TokenCall(grant={self.grant!r}, url={self.url!r})"


def _credentials(client_key: str, client_secret: str) -> dict[str, str]:
    # In the form body only: never HTTP Basic (row 2), never the URL.
    return {"client_key": client_key, "client_secret": client_secret}


def authorization_code_call(
    token_url: str,
    credentials: tuple[str, str],
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
) -> TokenCall:
    """Exchange a code: `redirect_uri` must be the one the code was issued for (row 7)."""
    data = {
        **_credentials(*credentials),
        "code": code,
        "grant_type": "authorization_code",
        "redirect_uri": redirect_uri,
    }
    if code_verifier is not None:
        data["code_verifier"] = code_verifier
    return TokenCall("authorization_code", token_url, data)


def refresh_call(token_url: str, credentials: tuple[str, str], refresh_token: str | TikTokToken) -> TokenCall:
    """Refresh: no `scope` (row 12); an expired refresh token is refused without a request."""
    previous = refresh_token if isinstance(refresh_token, TikTokToken) else None
    if previous is not None:
        if previous.refresh_token is None:
            raise ReauthorizationRequiredError("the token has no refresh token: log in again")
        if previous.is_refresh_expired():
            raise ReauthorizationRequiredError("the refresh token has expired: log in again")
        refresh_token = previous.refresh_token
    if not isinstance(refresh_token, str) or not refresh_token:
        raise ReauthorizationRequiredError("no refresh token: log in again")
    data = {
        **_credentials(*credentials),
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
    }
    return TokenCall("refresh_token", token_url, data, previous=previous)


def client_credentials_call(token_url: str, credentials: tuple[str, str]) -> TokenCall:
    """Fetch a client access token (row 18)."""
    data = {**_credentials(*credentials), "grant_type": "client_credentials"}
    return TokenCall("client_credentials", token_url, data)


def revoke_call(revoke_url: str, credentials: tuple[str, str], token: str | TikTokToken) -> TokenCall:
    """Revoke: `token` is the **access** token, and no `token_type_hint` (row 13)."""
    access_token = token.access_token if isinstance(token, TikTokToken) else token
    if not access_token:
        raise ValueError("revoke_token needs an access token")
    return TokenCall("revoke", revoke_url, {**_credentials(*credentials), "token": access_token})


# -- reading an answer, once: JSON or not, the error envelope, Retry-After, a refused token -------


#: The error code of an access token TikTok no longer accepts (expired, revoked): a refresh may help.
INVALID_TOKEN: Final = "access_token_invalid"  # noqa: S105 - an error code
#: The code of TikTok's rate limit, whatever the status it comes with.
RATE_LIMITED: Final = "rate_limit_exceeded"
#: Codes that mean TikTok failed, whatever the status it sent them with.
SERVER_ERRORS: Final = frozenset({"internal_error", "server_error", "temporarily_unavailable"})
#: The data API envelope's code for a success (row 14).
OK: Final = "ok"


class Reply(NamedTuple):
    """What came back from the endpoint: a status, headers and the raw body."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes


class ErrorFields(NamedTuple):
    """The error an answer's envelope reports: its code (None when it names none), message and log id."""

    code: str | None
    message: str
    log_id: str | None

    @property
    def failed(self) -> bool:
        """Whether the envelope reports a failure: a code, and not the data API's `"ok"`."""
        return self.code is not None and self.code != OK


def json_object(content: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None for anything else (an HTML page, a list, invalid UTF-8, ...)."""
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; RecursionError: deep nesting
        return None
    return body if isinstance(body, dict) else None


def error_fields(body: Mapping[str, Any] | None) -> ErrorFields:
    """Read the error of either v2 envelope (row 8: whatever the HTTP status).

    The token endpoint's `{"error": "invalid_grant", "error_description": ..., "log_id": ...}`, or the data
    API's `{"data": ..., "error": {"code": "ok", "message": ..., "log_id": ...}}`. The legacy v1 envelope
    is turned into the first by `unwrap_v1`.
    """
    if body is None:
        return ErrorFields(None, "", None)
    error = body.get("error")
    log_id: object = body.get("log_id")
    if isinstance(error, Mapping):
        code = error.get("code")
        log_id = error.get("log_id") or log_id
        return ErrorFields(
            None if code is None else str(code), str(error.get("message") or ""), _text(log_id)
        )
    if error is None or error == "":
        return ErrorFields(None, "", _text(log_id))
    return ErrorFields(str(error), str(body.get("error_description") or ""), _text(log_id))


def _text(value: object) -> str | None:
    return str(value) if value else None


def header_log_id(headers: Mapping[str, str]) -> str | None:
    """TikTok's `x-tt-logid` header: the log id of an answer whose body names none."""
    return headers.get("x-tt-logid") or None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The seconds a `Retry-After` header asks for (a number or an HTTP date), or None without a usable one."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - _clock.now())
    except (TypeError, ValueError):
        return None


def transient_error(
    reply: Reply, error: str | None, description: str, log_id: str | None, *, server_message: str
) -> RateLimitedError | TikTokServerError | None:
    """A 429 or `rate_limit_exceeded`, or a failure on TikTok's side (5xx or a server code); else None.

    Either carries the `Retry-After` seconds; `server_message` describes a server failure whose body
    says nothing.
    """
    status = reply.status_code
    common: dict[str, Any] = {"error": error, "log_id": log_id, "status_code": status}
    if status == 429 or error == RATE_LIMITED:
        return RateLimitedError(
            description or "TikTok's rate limit was hit", retry_after=retry_after(reply.headers), **common
        )
    if status >= 500 or error in SERVER_ERRORS:
        return TikTokServerError(
            description or server_message, retry_after=retry_after(reply.headers), **common
        )
    return None


def token_rejected(status_code: int, content: bytes) -> bool:
    """Whether an answer is TikTok's 401 `access_token_invalid` (not `scope_not_authorized`; row 15).

    Besides both envelopes, a flat `{"code": "access_token_invalid", "message": ...}` counts.
    """
    if status_code != 401:
        return False
    body = json_object(content)
    if body is None:
        return False
    code = error_fields(body).code
    return (body.get("code") if code is None else code) == INVALID_TOKEN


# -- token-endpoint responses (rows 8, 9, 10, 11) --------------------------------------------------


def unwrap_v1(body: dict[str, Any]) -> dict[str, Any]:
    """Unwrap the legacy v1 envelope `{"data": {..., "error_code": N}, "message": ...}`."""
    data = body.get("data")
    if isinstance(data, dict) and "error_code" in data and "error" not in body:
        code = data.get("error_code")
        if code in (0, "0"):
            return {k: v for k, v in data.items() if k not in ("error_code", "description")}
        name = _V1_ERRORS.get(code, f"v1_error_{code}") if isinstance(code, int) else "v1_error"
        return {
            "error": name,
            "error_description": str(data.get("description") or body.get("message") or ""),
            "log_id": data.get("log_id"),
        }
    return body


def error_for(call: TokenCall, reply: Reply) -> TikTokOAuthError | None:
    """The typed error a token-endpoint reply stands for, or None when it is a success."""
    status = reply.status_code
    body = json_object(reply.content)
    fields = error_fields(unwrap_v1(body) if body is not None else None)
    error = fields.code if fields.failed else None
    log_id = fields.log_id or header_log_id(reply.headers)
    if 300 <= status < 400:
        # Never followed: the form holds the client secret (and a refresh token) and must not go elsewhere.
        return TikTokServerError(
            f"TikTok answered with a redirect (HTTP {status}); token requests never follow redirects",
            retryable=False,
            error=error,
            log_id=log_id,
            status_code=status,
        )
    transient = transient_error(
        reply, error, fields.message, log_id, server_message="TikTok had a server error"
    )
    if transient is not None:
        return transient
    common: dict[str, Any] = {"error": error, "log_id": log_id, "status_code": status}
    if body is None:
        if call.grant == "revoke" and 200 <= status < 300 and not reply.content.strip():
            return None  # revoke answers success with an empty body (row 13)
        # Below 500, TikTok handled the request and only its answer is unreadable: a refresh token may
        # have rotated, so a single-use grant is not sent again.
        return TikTokServerError(_not_json(reply), retryable=call.grant not in _SINGLE_USE, **common)
    if fields.failed:
        if call.grant == "refresh_token" and error in ("invalid_grant", INVALID_TOKEN):
            return ReauthorizationRequiredError(
                fields.message or "the refresh token is invalid, expired or revoked: log in again",
                **common,
            )
        return TikTokOAuthError(fields.message or "TikTok refused the request", **common)
    if not 200 <= status < 300:
        return TikTokOAuthError(f"TikTok answered HTTP {status}", **common)
    return None


def _not_json(reply: Reply) -> str:
    content_type = reply.headers.get("content-type", "unknown type")
    if not reply.content.strip():
        return "TikTok answered with an empty body"
    return (
        f"TikTok answered with a body that is not a JSON object ({content_type}, {len(reply.content)} bytes)"
    )


def token_from(call: TokenCall, reply: Reply, received_at: float) -> TikTokToken:
    """Turn a successful token reply into a `TikTokToken` with absolute expiries (rows 9, 10, 11)."""
    body = unwrap_v1(json_object(reply.content) or {})
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise TikTokServerError(
            "TikTok's token response has no access_token",
            status_code=reply.status_code,
            log_id=error_fields(body).log_id or header_log_id(reply.headers),
        )
    for name in ("expires_in", "refresh_expires_in"):
        value = body.get(name)
        if value is not None and (not _is_lifetime(value) or value <= 0):
            raise TikTokServerError(
                f"TikTok's token response has a malformed {name}", status_code=reply.status_code
            )
    body.pop("expires_at", None)
    body.pop("refresh_expires_at", None)
    if "expires_in" in body:
        body["expires_at"] = int(received_at + body["expires_in"])
    if "refresh_expires_in" in body:
        body["refresh_expires_at"] = int(received_at + body["refresh_expires_in"])
    if call.grant == "refresh_token":
        _carry_over(body, call)
    return TikTokToken(body)


def _is_lifetime(value: object) -> bool:
    """A number of seconds that fits a timestamp: not a bool, not NaN or infinite, not absurdly large."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value) and abs(value) < 1e11
    except OverflowError:  # an int beyond float range
        return False


def _carry_over(body: dict[str, Any], call: TokenCall) -> None:
    """Keep what a refresh answer leaves out: the old refresh token (and its expiry), open_id, scope."""
    previous: Mapping[str, Any] = call.previous or {}
    if not body.get("refresh_token"):
        body["refresh_token"] = call.data["refresh_token"]
        if "refresh_expires_at" in previous and "refresh_expires_in" not in body:
            body["refresh_expires_at"] = previous["refresh_expires_at"]
    for name in ("open_id", "scope"):
        if name not in body and name in previous:
            body[name] = previous[name]


# -- one call, as a sans-I/O conversation with a driver --------------------------------------------


class Send(NamedTuple):
    """Ask the driver to POST `call` and send back a `Reply` or the transport exception."""

    call: TokenCall


class Sleep(NamedTuple):
    """Ask the driver to wait before the next attempt."""

    seconds: float


Step = Send | Sleep
Outcome = Reply | Exception | None


def _retry_delay(error: TikTokOAuthError) -> float | None:
    """How long to wait before trying again, or None when the failure must be reported."""
    if isinstance(error, RateLimitedError):
        if error.retry_after is None or error.retry_after > MAX_RETRY_AFTER:
            return None
        return error.retry_after
    if isinstance(error, TikTokServerError) and error.retryable:
        if error.retry_after is not None and error.retry_after > MAX_RETRY_AFTER:
            return None  # the server asked for a longer pause than a call should sit through
        return error.retry_after or 0.0
    return None


def _success(call: TokenCall, reply: Reply, received_at: float) -> Any:
    if call.grant == "revoke":
        return None
    if call.grant in _QR_GRANTS:
        return json_object(reply.content)  # a success is a JSON object: error_for said so
    return token_from(call, reply, received_at)


def conversation(call: TokenCall) -> Generator[Step, Outcome, Any]:
    """Drive one token-endpoint call: send, classify, maybe retry; return its result.

    The result is the token, None for revoke, or the answer's JSON object for the QR-code endpoints.

    The drivers (sync and async) only perform the steps: `Send` gets back a `Reply` or the exception the
    transport raised, `Sleep` gets back None.
    """
    for attempt in range(MAX_ATTEMPTS):
        outcome = yield Send(call)
        received_at = _clock.now()
        if isinstance(outcome, Reply):
            error = error_for(call, outcome)
            if error is None:
                return _success(call, outcome, received_at)
        elif isinstance(outcome, Exception):
            error, maybe_processed = classify_transport_error(outcome)
            # A refresh is retried only where TikTok cannot have used the refresh token: after a read
            # timeout it may have rotated it, and a second try would present a dead one. Codes are single-use.
            if maybe_processed and call.grant in _SINGLE_USE:
                error.retryable = False
        else:  # pragma: no cover - a driver bug
            raise TypeError("a Send step needs a Reply or an exception back")
        delay = _retry_delay(error)
        if delay is None or attempt == MAX_ATTEMPTS - 1:
            raise error
        delay = max(delay, BACKOFF[min(attempt, len(BACKOFF) - 1)])
        logger.info("%s to %s failed (%s); trying again in %.1f s", call.grant, call.url, error, delay)
        yield Sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def classify_transport_error(exc: Exception) -> tuple[TikTokServerError, bool]:
    """Map a transport exception to `(TikTokServerError, whether TikTok may have acted on the request)`.

    The exception classes are looked up by name on the exception's own module, so the same mapping serves
    `httpx` and `httpx2` alike.
    """
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "TimeoutException" in names:
        connect = "ConnectTimeout" in names or "PoolTimeout" in names
        error = TikTokServerError(f"TikTok did not answer in time ({type(exc).__name__})", error="timeout")
        return error, not connect
    if "ConnectError" in names:
        return TikTokServerError("could not connect to TikTok", error="connect_error"), False
    if "TransportError" in names or isinstance(exc, OSError):
        # Sent, and then the connection broke: like a read timeout, TikTok may have acted on it.
        error = TikTokServerError(
            f"the connection to TikTok failed ({type(exc).__name__})", error="network_error"
        )
        return error, True
    raise exc
