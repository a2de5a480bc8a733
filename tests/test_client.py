"""TikTokOAuth2Client and AsyncTikTokOAuth2Client against FakeTikTok: in-process transports and real HTTP."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc6749.errors import InsecureTransportError

import tiktok_oauth
from tests.conftest import SECRET, Harness
from tiktok_oauth import (
    AsyncTikTokOAuth2Client,
    AuthorizationDeniedError,
    RateLimitedError,
    ReauthorizationRequiredError,
    StateMismatchError,
    TikTokOAuth2Client,
    TikTokOAuthError,
    TikTokServerError,
    TikTokToken,
)


def login(h: Harness, *, pkce: bool = True, redirect_uri: str | None = None) -> TikTokToken:
    verifier = h.client.generate_code_verifier() if pkce else None
    url, state = h.client.create_authorization_url(code_verifier=verifier, redirect_uri=redirect_uri)
    callback = h.fake.authorize(url)
    return h.call(
        "fetch_token",
        authorization_response=callback,
        state=state,
        code_verifier=verifier,
        redirect_uri=redirect_uri,
    )


def test_web_login_flow_returns_a_token(harness: Harness) -> None:
    token = login(harness, pkce=False)
    assert isinstance(token, TikTokToken)
    assert token.open_id == "test-open-id"
    assert token.scopes == {"user.info.basic", "video.list"}
    assert token.refresh_token
    assert token.expires_at is not None


def test_desktop_login_with_pkce_and_loopback_redirect(harness: Harness) -> None:
    token = login(harness, redirect_uri="http://127.0.0.1:8765/callback")
    assert token.access_token.startswith("act.")
    sent = harness.fake.token_requests[-1]
    assert sent["redirect_uri"] == "http://127.0.0.1:8765/callback"
    assert len(sent["code_verifier"]) == 64


def test_token_request_is_a_form_post_with_body_credentials(harness: Harness) -> None:
    login(harness)
    recorded = next(r for r in harness.fake.requests if r.url.endswith("/v2/oauth/token/"))
    assert recorded.method == "POST"
    assert recorded.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "authorization" not in recorded.headers
    assert SECRET not in recorded.url
    assert harness.fake.token_requests[-1]["client_key"] == "test-key"
    assert "client_id" not in harness.fake.token_requests[-1]


def test_fetch_token_with_a_decoded_code(harness: Harness) -> None:
    url, _ = harness.client.create_authorization_url()
    callback = harness.fake.authorize(url)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    assert "*" in code
    assert "!" in code
    assert harness.call("fetch_token", code=code).open_id == "test-open-id"


def test_state_mismatch_raises_before_any_request(harness: Harness) -> None:
    url, _ = harness.client.create_authorization_url()
    callback = harness.fake.authorize(url)
    with pytest.raises(StateMismatchError):
        harness.call("fetch_token", authorization_response=callback, state="another-state")
    assert harness.fake.token_requests == []


def test_denied_consent_raises_authorization_denied(harness: Harness) -> None:
    url, state = harness.client.create_authorization_url()
    callback = harness.fake.authorize(url, deny=True)
    with pytest.raises(AuthorizationDeniedError) as caught:
        harness.call("fetch_token", authorization_response=callback, state=state)
    assert caught.value.error == "access_denied"
    assert harness.fake.token_requests == []


def test_wrong_code_verifier_is_refused(harness: Harness) -> None:
    url, state = harness.client.create_authorization_url(
        code_verifier=harness.client.generate_code_verifier()
    )
    callback = harness.fake.authorize(url)
    with pytest.raises(TikTokOAuthError) as caught:
        harness.call(
            "fetch_token",
            authorization_response=callback,
            state=state,
            code_verifier=harness.client.generate_code_verifier(),
        )
    assert caught.value.error == "invalid_grant"
    assert caught.value.log_id


def test_a_code_is_single_use(harness: Harness) -> None:
    url, state = harness.client.create_authorization_url()
    callback = harness.fake.authorize(url)
    harness.call("fetch_token", authorization_response=callback, state=state)
    with pytest.raises(TikTokOAuthError, match="invalid_grant"):
        harness.call("fetch_token", authorization_response=callback, state=state)


def test_a_different_redirect_uri_is_refused(harness: Harness) -> None:
    url, state = harness.client.create_authorization_url(redirect_uri="https://app.example.com/a")
    callback = harness.fake.authorize(url)
    with pytest.raises(TikTokOAuthError, match="invalid_grant"):
        harness.call(
            "fetch_token",
            authorization_response=callback,
            state=state,
            redirect_uri="https://app.example.com/b",
        )


@pytest.mark.parametrize("state", [None, ""])
def test_item12_authorization_response_without_state_is_refused(harness: Harness, state: str | None) -> None:
    url, _ = harness.client.create_authorization_url()
    callback = harness.fake.authorize(url)
    with pytest.raises(ValueError, match="state= is required"):
        harness.call("fetch_token", authorization_response=callback, state=state)
    assert harness.fake.token_requests == []


def test_exactly_one_of_code_and_authorization_response(harness: Harness) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        harness.call("fetch_token")
    with pytest.raises(ValueError, match="exactly one"):
        harness.call("fetch_token", code="a", authorization_response="https://localhost/?code=b")


def test_refresh_rotates_and_the_old_refresh_token_dies(harness: Harness) -> None:
    first = login(harness)
    second = harness.call("refresh_token", first)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert second.open_id == first.open_id
    assert "scope" not in harness.fake.token_requests[-1]
    with pytest.raises(ReauthorizationRequiredError) as caught:
        harness.call("refresh_token", first.refresh_token)
    assert caught.value.error == "invalid_grant"
    assert harness.fake.stale_refresh_token_uses == 1


def test_refresh_with_an_expired_refresh_token_makes_no_request(harness: Harness) -> None:
    token = login(harness)
    token["refresh_expires_at"] = 1
    before = len(harness.fake.token_requests)
    with pytest.raises(ReauthorizationRequiredError):
        harness.call("refresh_token", token)
    assert len(harness.fake.token_requests) == before


def test_fetch_client_token(harness: Harness) -> None:
    token = harness.call("fetch_client_token")
    assert token.access_token.startswith("clt.")
    assert token.refresh_token is None
    assert harness.fake.token_requests[-1]["grant_type"] == "client_credentials"


def test_revoke_then_the_token_is_dead(harness: Harness) -> None:
    token = login(harness)
    assert harness.call("revoke_token", token) is None
    sent = harness.fake.requests[-1]
    assert sent.url.endswith("/v2/oauth/revoke/")
    assert b"token_type_hint" not in sent.body
    with pytest.raises(ReauthorizationRequiredError):
        harness.call("refresh_token", token)


def test_revoke_accepts_an_access_token_string(harness: Harness) -> None:
    token = login(harness)
    harness.call("revoke_token", token.access_token)


def test_wrong_client_secret_is_an_oauth_error_without_the_secret(harness: Harness) -> None:
    harness.client._client_secret = "WRONG-" + SECRET
    with pytest.raises(TikTokOAuthError) as caught:
        harness.call("fetch_client_token")
    assert type(caught.value) is TikTokOAuthError
    assert caught.value.error == "invalid_client"
    assert SECRET not in str(caught.value) + repr(caught.value)


# -- faults ------------------------------------------------------------------------------------------


def test_a_single_503_is_retried_transparently(harness: Harness) -> None:
    token = login(harness)
    harness.fake.fail_next(503, times=1)
    assert harness.call("refresh_token", token).access_token


def test_persistent_5xx_gives_server_error_after_three_attempts(harness: Harness) -> None:
    token = login(harness)
    before = len(harness.fake.token_requests)
    harness.fake.fail_next(
        502, b"<html><body>502 Bad Gateway</body></html>", times=3, headers={"content-type": "text/html"}
    )
    with pytest.raises(TikTokServerError) as caught:
        harness.call("refresh_token", token)
    assert caught.value.status_code == 502
    assert len(harness.fake.token_requests) - before == 3


def test_a_read_timeout_on_refresh_is_not_retried(harness: Harness) -> None:
    harness.fake.serve_timeout_delay = 1.0
    token = login(harness)
    before = len(harness.fake.token_requests)
    harness.fake.timeout_next(processed=True)
    with pytest.raises(TikTokServerError) as caught:
        harness.call("refresh_token", token)
    assert caught.value.retryable is False
    assert len(harness.fake.token_requests) - before == 1


def test_rate_limited_without_retry_after_is_reported(harness: Harness) -> None:
    harness.fake.fail_next(
        429, b'{"error":"rate_limit_exceeded","error_description":"slow down","log_id":"RL"}'
    )
    with pytest.raises(RateLimitedError) as caught:
        harness.call("fetch_client_token")
    assert caught.value.log_id == "RL"
    assert caught.value.status_code == 429


@pytest.mark.parametrize("body", [b"", b"[]", b"null", b"<html>oops</html>", b"\xff\xfe"])
def test_non_json_success_bodies_are_server_errors(harness: Harness, body: bytes) -> None:
    harness.fake.fail_next(200, body, times=3, headers={"content-type": "text/plain"})
    with pytest.raises(TikTokServerError):
        harness.call("fetch_client_token")


def test_an_error_with_http_200_is_detected(harness: Harness) -> None:
    harness.fake.fail_next(200, b'{"error":"invalid_request","error_description":"bad","log_id":"L200"}')
    with pytest.raises(TikTokOAuthError) as caught:
        harness.call("fetch_client_token")
    assert (caught.value.error, caught.value.log_id, caught.value.status_code) == (
        "invalid_request",
        "L200",
        200,
    )


def test_a_connection_error_is_a_server_error() -> None:
    client = TikTokOAuth2Client("k", "s", token_url="http://127.0.0.1:9/v2/oauth/token/", timeout=0.5)
    with client, pytest.raises(TikTokServerError) as caught:
        client.fetch_client_token()
    assert caught.value.error == "connect_error"


# -- construction ---------------------------------------------------------------------------------


def test_plain_http_is_refused_for_non_loopback_hosts() -> None:
    with pytest.raises(InsecureTransportError):
        TikTokOAuth2Client("k", "s", token_url="http://open.tiktokapis.com/v2/oauth/token/")


def test_client_repr_hides_the_secret() -> None:
    client = TikTokOAuth2Client("k", SECRET)
    assert SECRET not in repr(client)
    assert "'k'" in repr(client)


def test_keyword_only_arguments() -> None:
    with pytest.raises(TypeError):
        TikTokOAuth2Client("k", "s", "https://localhost/")  # type: ignore[misc]


def test_wrong_http_client_kind_is_a_type_error() -> None:
    with httpx.Client() as sync_http, pytest.raises(TypeError, match="AsyncClient"):
        AsyncTikTokOAuth2Client("k", "s", http_client=sync_http)  # type: ignore[arg-type]


def test_missing_credentials_are_refused() -> None:
    with pytest.raises(ValueError, match="client_key"):
        TikTokOAuth2Client("", "s")
    with pytest.raises(ValueError, match="client_secret"):
        TikTokOAuth2Client("k", "")


def test_close_leaves_a_passed_http_client_open() -> None:
    with httpx.Client() as http:
        TikTokOAuth2Client("k", "s", http_client=http).close()
        assert not http.is_closed


def test_default_scope_and_redirect_match_pytiktok() -> None:
    client = TikTokOAuth2Client("k", "s")
    url, state = client.create_authorization_url()
    q = parse_qs(urlsplit(url).query)
    assert q["redirect_uri"] == ["https://localhost/"]
    assert q["scope"] == ["user.info.basic,video.list"]
    assert q["state"] == [state]
    assert q["response_type"] == ["code"]


def test_module_level_generate_code_verifier() -> None:
    assert len(tiktok_oauth.generate_code_verifier()) == 64


def test_import_is_silent_under_warnings_as_errors() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import tiktok_oauth"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_import_loads_httpx2_and_not_httpx_requests_or_redis() -> None:
    names = ("requests", "httpx", "httpx2", "redis", "aiohttp", "niquests", "segno")
    code = f"import sys, tiktok_oauth; print(sorted(m for m in {names!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['httpx2']"


def test_the_command_line_loads_the_qr_library_only_for_login_qr() -> None:
    code = "import sys, tiktok_oauth.cli; print('segno' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_public_names_are_pinned() -> None:
    assert sorted(tiktok_oauth.__all__) == sorted(
        [
            "AsyncTikTokOAuth2Client",
            "AuthorizationDeniedError",
            "FileTokenStore",
            "LockLostError",
            "MemoryTokenStore",
            "NothingStoredError",
            "QRCodeExpiredError",
            "QRLogin",
            "AsyncTokenStore",
            "TokenStore",
            "RateLimitedError",
            "ReauthorizationRequiredError",
            "StateMismatchError",
            "TikTokAPIError",
            "TikTokAuth",
            "TikTokOAuth2Client",
            "TikTokOAuthError",
            "TikTokServerError",
            "TikTokToken",
            "TokenEvent",
            "TokenStoreError",
            "WebhookSignatureError",
            "__version__",
            "generate_code_verifier",
            "unwrap",
            "RefreshReport",
            "refresh_due",
            "arefresh_due",
        ]
    )
