"""TikTokAuth: bearer header, proactive refresh, refresh-and-retry, allowed hosts, drivers, failures."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests

from tests.conftest import SECRET
from tiktok_oauth import (
    AsyncTikTokOAuth2Client,
    FileTokenStore,
    MemoryTokenStore,
    RateLimitedError,
    ReauthorizationRequiredError,
    TikTokAuth,
    TikTokOAuth2Client,
    TikTokOAuthError,
    TikTokServerError,
    TikTokToken,
    TokenStoreError,
    _clock,
)
from tiktok_oauth.testing import FakeTikTok

USER_INFO = "https://open.tiktokapis.com/v2/user/info/?fields=open_id,display_name"


def seeded(
    fake: FakeTikTok, store: MemoryTokenStore | FileTokenStore, *, expired: bool = False
) -> TikTokToken:
    token = TikTokToken(fake.issue_token())
    if expired:
        token["expires_at"] = int(_clock.now()) - 10
    store.set("default", token)
    return token


@pytest.fixture
def client(fake: FakeTikTok) -> Iterator[TikTokOAuth2Client]:
    with (
        httpx.Client(transport=fake.transport()) as http,
        TikTokOAuth2Client("test-key", SECRET, http_client=http) as client,
    ):
        yield client


@pytest.fixture
def store() -> MemoryTokenStore:
    return MemoryTokenStore()


@pytest.fixture
def auth(client: TikTokOAuth2Client, store: MemoryTokenStore) -> TikTokAuth:
    return TikTokAuth(client, store)


@pytest.fixture
def api(fake: FakeTikTok, auth: TikTokAuth) -> Iterator[httpx.Client]:
    with httpx.Client(transport=fake.transport(), auth=auth) as api:
        yield api


@pytest.fixture
def session(fake: FakeTikTok, auth: TikTokAuth) -> Iterator[requests.Session]:
    with requests.Session() as session:
        fake.mount(session)
        session.auth = auth
        yield session


def bearer_of(fake: FakeTikTok, host_part: str) -> list[str | None]:
    return [r.headers.get("authorization") for r in fake.requests if host_part in r.url]


# -- the header ----------------------------------------------------------------------------------------


def test_sets_the_bearer_header_from_the_store(
    fake: FakeTikTok, store: MemoryTokenStore, api: httpx.Client
) -> None:
    token = seeded(fake, store)
    response = api.get(USER_INFO)
    assert response.status_code == 200
    assert fake.requests[-1].headers["authorization"] == f"Bearer {token.access_token}"


def test_requests_session_gets_the_header(
    fake: FakeTikTok, store: MemoryTokenStore, session: requests.Session
) -> None:
    token = seeded(fake, store)
    assert session.get(USER_INFO).json()["data"]["user"]["open_id"] == "test-open-id"
    assert fake.requests[-1].headers["authorization"] == f"Bearer {token.access_token}"


def test_store_and_key_are_public(client: TikTokOAuth2Client, store: MemoryTokenStore) -> None:
    auth = TikTokAuth(client, store, "alice")
    assert (auth.store, auth.key) == (store, "alice")
    assert isinstance(TikTokAuth(client).store, MemoryTokenStore)


def test_no_token_raises_reauthorization_naming_the_key(client: TikTokOAuth2Client, fake: FakeTikTok) -> None:
    auth = TikTokAuth(client, MemoryTokenStore(), "bob")
    with (
        httpx.Client(transport=fake.transport(), auth=auth) as api,
        pytest.raises(ReauthorizationRequiredError, match="'bob'"),
    ):
        api.get(USER_INFO)


# -- proactive refresh ---------------------------------------------------------------------------


def test_an_expired_token_is_refreshed_and_stored_before_the_request(
    fake: FakeTikTok, store: MemoryTokenStore, api: httpx.Client
) -> None:
    old = seeded(fake, store, expired=True)
    assert api.get(USER_INFO).status_code == 200
    new = store.get("default")
    assert new is not None
    assert new.refresh_token != old.refresh_token
    assert fake.requests[-1].headers["authorization"] == f"Bearer {new.access_token}"
    assert fake.grant_count("refresh_token") == 1


def test_a_token_inside_leeway_is_refreshed(
    fake: FakeTikTok, client: TikTokOAuth2Client, store: MemoryTokenStore
) -> None:
    token = seeded(fake, store)
    token["expires_at"] = int(_clock.now()) + 100
    store.set("default", token)
    with httpx.Client(transport=fake.transport(), auth=TikTokAuth(client, store, leeway=300)) as api:
        api.get(USER_INFO)
    assert fake.grant_count("refresh_token") == 1
    with httpx.Client(transport=fake.transport(), auth=TikTokAuth(client, store, leeway=0)) as api:
        api.get(USER_INFO)
    assert fake.grant_count("refresh_token") == 1


def test_a_valid_token_makes_no_token_request(
    fake: FakeTikTok, store: MemoryTokenStore, api: httpx.Client
) -> None:
    seeded(fake, store)
    for _ in range(5):
        api.get(USER_INFO)
    assert fake.token_requests == []


def test_a_dead_refresh_token_raises_reauthorization_and_marks_the_stored_token(
    fake: FakeTikTok, client: TikTokOAuth2Client, store: MemoryTokenStore, api: httpx.Client
) -> None:
    old = seeded(fake, store, expired=True)
    client.refresh_token(old)  # someone rotated it away behind our back
    with pytest.raises(ReauthorizationRequiredError):
        api.get(USER_INFO)
    assert store.get("default") == {**old, "needs_login": True}  # kept, only marked


# -- 401 refresh and retry ---------------------------------------------------------------------------


def test_access_token_invalid_triggers_one_refresh_and_retry_httpx(
    fake: FakeTikTok, store: MemoryTokenStore, api: httpx.Client
) -> None:
    seeded(fake, store)
    api.get(USER_INFO)
    fake.expire_access_tokens()
    response = api.get(USER_INFO)
    assert response.status_code == 200
    assert fake.grant_count("refresh_token") == 1


def test_access_token_invalid_triggers_one_refresh_and_retry_requests(
    fake: FakeTikTok, store: MemoryTokenStore, session: requests.Session
) -> None:
    seeded(fake, store)
    session.get(USER_INFO)
    fake.expire_access_tokens()
    response = session.get(USER_INFO)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    assert fake.grant_count("refresh_token") == 1


def test_a_second_401_is_returned_not_retried_again(
    fake: FakeTikTok, store: MemoryTokenStore, api: httpx.Client
) -> None:
    seeded(fake, store)
    fake.fail_next(401, b'{"data":{},"error":{"code":"access_token_invalid"}}', times=2, endpoint="user_info")
    assert api.get(USER_INFO).status_code == 401
    assert fake.grant_count("refresh_token") == 1


def test_scope_not_authorized_is_not_retried(
    fake: FakeTikTok, store: MemoryTokenStore, session: requests.Session
) -> None:
    body = fake.issue_token(scopes=("video.list",))
    store.set("default", TikTokToken(body))
    response = session.get(USER_INFO)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "scope_not_authorized"
    assert fake.token_requests == []


def test_flat_code_body_also_triggers_a_refresh(
    fake: FakeTikTok, store: MemoryTokenStore, api: httpx.Client
) -> None:
    seeded(fake, store)
    fake.fail_next(401, b'{"code":"access_token_invalid","message":"expired"}', endpoint="user_info")
    assert api.get(USER_INFO).status_code == 200
    assert fake.grant_count("refresh_token") == 1


def test_a_streaming_body_is_not_replayed(
    fake: FakeTikTok, store: MemoryTokenStore, api: httpx.Client
) -> None:
    seeded(fake, store)
    fake.fail_next(401, b'{"error":{"code":"access_token_invalid"}}', endpoint=None)

    def chunks() -> Iterator[bytes]:
        yield b"part"

    response = api.post("https://open.tiktokapis.com/v2/video/list/", content=chunks())
    assert response.status_code == 401
    assert fake.token_requests == []


def test_a_file_body_is_rewound_and_replayed_by_requests(
    fake: FakeTikTok, store: MemoryTokenStore, session: requests.Session, tmp_path: Path
) -> None:
    seeded(fake, store)
    fake.fail_next(401, b'{"error":{"code":"access_token_invalid"}}', endpoint=None)
    upload = tmp_path / "body.json"
    upload.write_text('{"max_count": 20}')
    with upload.open("rb") as body:
        session.post("https://open.tiktokapis.com/v2/video/list/?fields=id", data=body)
    posted = [r.body for r in fake.requests if "/v2/video/list/" in r.url]
    assert posted == [b'{"max_count": 20}', b'{"max_count": 20}']


# -- allowed hosts --------------------------------------------------------------------------------------


def test_other_hosts_never_get_the_token(
    fake: FakeTikTok, store: MemoryTokenStore, api: httpx.Client, session: requests.Session
) -> None:
    seeded(fake, store)
    adapter = session.get_adapter("https://open.tiktokapis.com/")
    session.mount("https://", adapter)  # let the fake answer (and record) every host
    session.mount("http://", adapter)
    for url in [
        "https://example.com/",
        "https://open.tiktokapis.com.evil.com/x",
        "https://evil.com/open.tiktokapis.com/",
        "http://open.tiktokapis.com/v2/user/info/",
        "https://open.tiktokapis.com:8443/v2/user/info/",
        "https://open.tiktokapis.com@evil.com/",
    ]:
        for send in (api.get, session.get):
            send(url)
    assert [r.headers.get("authorization") for r in fake.requests] == [None] * 12


def test_the_token_does_not_follow_a_redirect_to_another_host(
    fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    token = seeded(fake, store)
    client = TikTokOAuth2Client("test-key", SECRET, http_client=httpx.Client(transport=fake.transport()))
    auth = TikTokAuth(client, store)
    with fake.serve() as evil_base:
        fake.fail_next(302, b"", headers={"location": evil_base + "/steal"}, endpoint=None)
        with httpx.Client(transport=fake.transport(), auth=auth, follow_redirects=True) as api:
            api.get("https://open.tiktokapis.com/v2/user/info/?fields=open_id")
        fake.fail_next(302, b"", headers={"location": evil_base + "/steal"}, endpoint=None)
        with requests.Session() as session:
            fake.mount(session)
            session.auth = auth
            session.get("https://open.tiktokapis.com/v2/user/info/?fields=open_id")
    stolen = [r.headers.get("authorization") for r in fake.requests if "/steal" in r.url]
    assert stolen == [None, None]
    assert all(token.access_token not in json.dumps(r.headers) for r in fake.requests if "/steal" in r.url)


def test_a_401_from_a_redirect_target_does_not_refresh(fake: FakeTikTok, store: MemoryTokenStore) -> None:
    seeded(fake, store)
    client = TikTokOAuth2Client("test-key", SECRET, http_client=httpx.Client(transport=fake.transport()))
    auth = TikTokAuth(client, store)
    with fake.serve() as other:
        fake.fail_next(302, b"", headers={"location": other + "/elsewhere"}, endpoint=None)
        fake.fail_next(401, b'{"error":{"code":"access_token_invalid"}}', endpoint=None)
        with httpx.Client(transport=fake.transport(), auth=auth, follow_redirects=True) as api:
            assert api.get(USER_INFO).status_code == 401
    assert fake.token_requests == []


def test_default_allowed_hosts_include_the_token_url_host(fake: FakeTikTok) -> None:
    client = TikTokOAuth2Client("k", "s", **fake.endpoints("http://127.0.0.1:8123"))
    assert TikTokAuth(client).allowed_hosts == {"open.tiktokapis.com", "127.0.0.1:8123"}


def test_custom_allowed_hosts_replace_the_default(
    fake: FakeTikTok, client: TikTokOAuth2Client, store: MemoryTokenStore
) -> None:
    seeded(fake, store)
    auth = TikTokAuth(client, store, allowed_hosts=["api.example.com"])
    with httpx.Client(transport=fake.transport(), auth=auth) as api:
        api.get(USER_INFO)
    assert fake.requests[-1].headers.get("authorization") is None


# -- client credentials -------------------------------------------------------------------------------


def test_client_credentials_mode_fetches_and_refetches_a_client_token(
    fake: FakeTikTok, client: TikTokOAuth2Client
) -> None:
    store = MemoryTokenStore()
    auth = TikTokAuth(client, store, "app", client_credentials=True)
    with httpx.Client(transport=fake.transport(), auth=auth) as api:
        api.get("https://open.tiktokapis.com/v2/research/video/query/")
        first = store.get("app")
        assert first is not None
        assert first.access_token.startswith("clt.")
        first["expires_at"] = int(_clock.now())
        store.set("app", first)
        auth._source.forget()  # forget the cached copy, as a new process would
        api.get("https://open.tiktokapis.com/v2/research/video/query/")
    assert fake.grant_count("client_credentials") == 2


# -- drivers and kinds ------------------------------------------------------------------------------


def test_async_client_with_httpx_async(fake: FakeTikTok, store: MemoryTokenStore) -> None:
    seeded(fake, store, expired=True)

    async def main() -> int:
        async with (
            httpx.AsyncClient(transport=fake.async_transport()) as http,
            AsyncTikTokOAuth2Client("test-key", SECRET, http_client=http) as client,
            httpx.AsyncClient(transport=fake.async_transport(), auth=TikTokAuth(client, store)) as api,
        ):
            first = (await api.get(USER_INFO)).status_code
            fake.expire_access_tokens()
            return first + (await api.get(USER_INFO)).status_code

    assert asyncio.run(main()) == 400
    assert fake.grant_count("refresh_token") == 2


def test_sync_client_in_an_async_flow_is_a_type_error(
    fake: FakeTikTok, store: MemoryTokenStore, auth: TikTokAuth
) -> None:
    seeded(fake, store, expired=True)

    async def main() -> None:
        async with httpx.AsyncClient(transport=fake.async_transport(), auth=auth) as api:
            await api.get(USER_INFO)

    with pytest.raises(TypeError, match="AsyncTikTokOAuth2Client"):
        asyncio.run(main())


def test_async_client_in_a_sync_flow_is_a_type_error(fake: FakeTikTok, store: MemoryTokenStore) -> None:
    seeded(fake, store, expired=True)
    auth = TikTokAuth(AsyncTikTokOAuth2Client("test-key", SECRET), store)
    with (
        httpx.Client(transport=fake.transport(), auth=auth) as api,
        pytest.raises(TypeError, match="TikTokOAuth2Client"),
    ):
        api.get(USER_INFO)


def test_a_non_client_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="TikTokOAuth2Client"):
        TikTokAuth(object())  # type: ignore[arg-type]


def test_auth_is_an_httpx_auth_so_httpx_keeps_the_async_path(auth: TikTokAuth) -> None:
    assert isinstance(auth, httpx.Auth)
    assert type(auth).__name__ == "TikTokAuth"
    assert isinstance(auth, TikTokAuth)


def test_works_with_httpx2_clients(
    fake: FakeTikTok, store: MemoryTokenStore, client: TikTokOAuth2Client
) -> None:
    httpx2 = pytest.importorskip("httpx2")
    seeded(fake, store, expired=True)
    auth = TikTokAuth(client, store)
    assert isinstance(auth, httpx2.Auth)
    with httpx2.Client(transport=fake.transport(httpx_module=httpx2), auth=auth) as api:
        assert api.get(USER_INFO).status_code == 200
        fake.expire_access_tokens()
        assert api.get(USER_INFO).status_code == 200
    assert fake.grant_count("refresh_token") == 2


def test_works_with_httpx2_async_clients(fake: FakeTikTok, store: MemoryTokenStore) -> None:
    httpx2 = pytest.importorskip("httpx2")
    seeded(fake, store, expired=True)

    async def main() -> int:
        async with (
            httpx.AsyncClient(transport=fake.async_transport()) as http,
            AsyncTikTokOAuth2Client("test-key", SECRET, http_client=http) as client,
            httpx2.AsyncClient(
                transport=fake.async_transport(httpx_module=httpx2), auth=TikTokAuth(client, store)
            ) as api,
        ):
            return (await api.get(USER_INFO)).status_code

    assert asyncio.run(main()) == 200
    assert fake.grant_count("refresh_token") == 1


def test_repr_shows_no_token(
    fake: FakeTikTok, store: MemoryTokenStore, auth: TikTokAuth, api: httpx.Client
) -> None:
    token = seeded(fake, store)
    api.get(USER_INFO)
    assert token.access_token not in repr(auth)
    assert SECRET not in repr(auth)


# -- failures leave the store as it was -------------------------------------------------------------


FAULTS = {
    "5xx": (TikTokServerError, lambda fake: fake.fail_next(500, times=3)),
    "html": (
        TikTokServerError,
        lambda fake: fake.fail_next(
            502, b"<html>Bad Gateway</html>", times=3, headers={"content-type": "text/html"}
        ),
    ),
    "timeout": (TikTokServerError, lambda fake: fake.timeout_next(processed=False)),
    "429": (RateLimitedError, lambda fake: fake.fail_next(429, b'{"error":"rate_limit_exceeded"}')),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failed_refresh_leaves_the_file_byte_for_byte_and_recovers(
    fault: str, fake: FakeTikTok, client: TikTokOAuth2Client, tmp_path: Path
) -> None:
    store = FileTokenStore(tmp_path)
    seeded(fake, store, expired=True)
    [path] = [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")]
    before = path.read_bytes()
    auth = TikTokAuth(client, store)
    with httpx.Client(transport=fake.transport(), auth=auth) as api:
        expected, inject = FAULTS[fault]
        inject(fake)
        with pytest.raises(TikTokOAuthError) as caught:
            api.get(USER_INFO)
        assert type(caught.value) is expected
        assert path.read_bytes() == before
        assert api.get(USER_INFO).status_code == 200
    assert path.read_bytes() != before


def test_an_invalid_grant_marks_the_key_and_nothing_is_sent_again(
    fake: FakeTikTok, client: TikTokOAuth2Client, tmp_path: Path
) -> None:
    """Not a transient failure: TikTok refused the refresh token, so the user must log in again."""
    store = FileTokenStore(tmp_path)
    old = seeded(fake, store, expired=True)
    with httpx.Client(transport=fake.transport(), auth=TikTokAuth(client, store)) as api:
        fake.fail_next(200, b'{"error":"invalid_grant"}')
        with pytest.raises(ReauthorizationRequiredError):
            api.get(USER_INFO)
        sent = len(fake.token_requests)
        with pytest.raises(ReauthorizationRequiredError, match="must log in again"):
            api.get(USER_INFO)
    assert len(fake.token_requests) == sent
    assert store.get("default") == {**old, "needs_login": True}


# -- stores of every kind ---------------------------------------------------------------------------


class AsyncDictStore:
    """A user's own AsyncTokenStore with an async lock, written without inheriting anything."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.locked = 0
        self._lock = asyncio.Lock()

    async def get(self, key: str) -> TikTokToken | None:
        raw = self.tokens.get(key)
        return None if raw is None else TikTokToken.from_json(raw)

    async def set(self, key: str, token: TikTokToken) -> None:
        self.tokens[key] = token.to_json()

    async def delete(self, key: str) -> None:
        self.tokens.pop(key, None)

    def lock(self, key: str) -> AsyncLockCounter:
        return AsyncLockCounter(self)


class AsyncLockCounter:
    def __init__(self, store: AsyncDictStore) -> None:
        self.store = store

    async def __aenter__(self) -> None:
        await self.store._lock.acquire()
        self.store.locked += 1

    async def __aexit__(self, *exc: object) -> None:
        self.store._lock.release()


class LockOnlyStore(MemoryTokenStore):
    """A sync store whose lock has no async variant: the async driver enters it in a worker thread."""

    alock = None  # type: ignore[assignment]


def run_async_auth(fake: FakeTikTok, store: object, *, client_credentials: bool = False) -> int:
    async def main() -> int:
        async with (
            httpx.AsyncClient(transport=fake.async_transport()) as http,
            AsyncTikTokOAuth2Client("test-key", SECRET, http_client=http) as client,
            httpx.AsyncClient(
                transport=fake.async_transport(),
                auth=TikTokAuth(client, store, client_credentials=client_credentials),  # type: ignore[arg-type]
            ) as api,
        ):
            return (await api.get(USER_INFO)).status_code

    return asyncio.run(main())


def test_an_async_store_with_an_async_lock(fake: FakeTikTok) -> None:
    store = AsyncDictStore()
    token = expired_token_body(fake)
    store.tokens["default"] = token.to_json()
    assert run_async_auth(fake, store) == 200
    assert store.locked == 1
    assert TikTokToken.from_json(store.tokens["default"]).refresh_token != token.refresh_token


def test_an_async_store_in_a_sync_flow_is_a_type_error(fake: FakeTikTok, client: TikTokOAuth2Client) -> None:
    store = AsyncDictStore()
    store.tokens["default"] = expired_token_body(fake).to_json()
    with (
        httpx.Client(transport=fake.transport(), auth=TikTokAuth(client, store)) as api,
        pytest.raises(TypeError, match="sync TokenStore"),
    ):
        api.get(USER_INFO)


def test_a_sync_store_with_only_a_blocking_lock_in_an_async_flow(fake: FakeTikTok) -> None:
    store = LockOnlyStore()
    store.set("default", expired_token_body(fake))
    assert run_async_auth(fake, store) == 200
    assert fake.grant_count("refresh_token") == 1


def test_async_flow_without_a_token_raises_reauthorization(fake: FakeTikTok) -> None:
    with pytest.raises(ReauthorizationRequiredError, match="'default'"):
        run_async_auth(fake, MemoryTokenStore())


def test_async_flow_in_client_credentials_mode(fake: FakeTikTok) -> None:
    store = MemoryTokenStore()
    run_async_auth(fake, store, client_credentials=True)
    token = store.get("default")
    assert token is not None
    assert token.access_token.startswith("clt.")


@pytest.mark.parametrize(
    "body", [b"<html>401</html>", b"[1]", b'{"error":{"code":"scope_not_authorized"}}', b"\xff"]
)
def test_other_401_bodies_do_not_refresh(
    fake: FakeTikTok, store: MemoryTokenStore, api: httpx.Client, body: bytes
) -> None:
    seeded(fake, store)
    fake.fail_next(401, body, endpoint="user_info")
    assert api.get(USER_INFO).status_code == 401
    assert fake.token_requests == []


def test_a_malformed_url_gets_no_token(auth: TikTokAuth) -> None:
    assert not auth._hosts.allows_str("https://[::1/")


def expired_token_body(fake: FakeTikTok) -> TikTokToken:
    token = TikTokToken(fake.issue_token())
    token["expires_at"] = int(_clock.now()) - 1
    return token


@pytest.mark.parametrize("library", ["httpx", "requests"])
def test_a_401_after_another_auth_refreshed_uses_their_token_without_refreshing(
    library: str, fake: FakeTikTok, client: TikTokOAuth2Client, store: MemoryTokenStore
) -> None:
    seeded(fake, store)
    ours, theirs = TikTokAuth(client, store), TikTokAuth(client, store)
    with httpx.Client(transport=fake.transport(), auth=ours) as api, requests.Session() as session:
        fake.mount(session)
        session.auth = ours
        send = api.get if library == "httpx" else session.get
        assert send(USER_INFO).status_code == 200  # ours now caches the first token
        fake.expire_access_tokens()
        with httpx.Client(transport=fake.transport(), auth=theirs) as other:
            assert other.get(USER_INFO).status_code == 200  # theirs refreshes: one refresh
        response = send(USER_INFO)  # ours sends its stale cached token, gets 401, finds theirs in the store
    assert response.status_code == 200
    assert fake.grant_count("refresh_token") == 1
    assert fake.requests[-1].headers["authorization"] == f"Bearer {store.get('default').access_token}"  # type: ignore[union-attr]


def test_refreshes_and_retries_are_logged_without_secrets(
    fake: FakeTikTok, store: MemoryTokenStore, api: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    token = seeded(fake, store, expired=True)
    fake.fail_next(503)
    with caplog.at_level("DEBUG", logger="tiktok_oauth"):
        api.get(USER_INFO)
    messages = [r.getMessage() for r in caplog.records if r.name == "tiktok_oauth"]
    assert "key 'default': a refresh (the token expires)" in messages
    assert any("trying again in" in m for m in messages)
    new = store.get("default")
    assert new is not None
    for secret in (SECRET, token.access_token, token.refresh_token, new.access_token, new.refresh_token):
        assert all(secret not in m for m in messages)


def test_in_process_lock_entries_live_while_used_and_tables_as_long_as_their_store() -> None:
    import gc

    from tiktok_oauth.auth._locks import locks

    before = len(locks._by_store)
    for _ in range(100):
        store = MemoryTokenStore()
        with locks.hold(store, "k", 1.0) as first:
            assert locks.entries(store) == 1
            # a second caller meets the same lock
            with pytest.raises(TokenStoreError, match="timed out"), locks.hold(store, "k", 0.0):
                pass
            assert locks.entries(store) == 1
        assert not first.locked()
        assert locks.entries(store) == 0
        del store
    gc.collect()
    assert len(locks._by_store) <= before


class SlottedStore:
    """A store that cannot be weakly referenced (no __weakref__ slot)."""

    __slots__ = ("_d",)

    def __init__(self) -> None:
        self._d: dict[str, TikTokToken] = {}

    def get(self, key: str) -> TikTokToken | None:
        return self._d.get(key)

    def set(self, key: str, token: TikTokToken) -> None:
        self._d[key] = token

    def delete(self, key: str) -> None:
        self._d.pop(key, None)


def test_in_process_locks_work_for_stores_that_cannot_be_weakly_referenced(
    client: TikTokOAuth2Client,
) -> None:
    from tiktok_oauth.auth._locks import locks

    store = SlottedStore()
    auth = TikTokAuth(client, store)
    assert auth.store is store
    with locks.hold(store, "k", 1.0):
        with pytest.raises(TokenStoreError, match="timed out"), locks.hold(store, "k", 0.0):  # one per key...
            pass
        with locks.hold(store, "other", 0.0):  # ...and another for another key
            assert locks.entries(store) == 2
    assert locks.entries(store) == 0


def test_item10_lock_tables_of_unreferenceable_stores_are_freed(client: TikTokOAuth2Client) -> None:
    import gc

    from tiktok_oauth.auth._locks import locks

    before = len(locks._by_id)
    for _ in range(1000):
        store = SlottedStore()
        auth = TikTokAuth(client, store)
        with locks.hold(store, "default", 1.0):
            pass
        del auth, store
    gc.collect()
    assert len(locks._by_id) <= before


#: Auth objects on unreferenceable stores, freed only by the cyclic collector, which then runs their finalizers
#: wherever it happens to run: also inside the lock table's guard, in the thread holding it.
_COLLECTED_INSIDE_THE_GUARD = """
import gc
from tests.test_auth import SlottedStore
from tiktok_oauth import TikTokAuth, TikTokOAuth2Client
from tiktok_oauth.auth._locks import locks

client = TikTokOAuth2Client("k", "s")
for _ in range(20_000):
    store = SlottedStore()
    auth = TikTokAuth(client, store)
    auth.cycle = auth
    with locks.hold(store, "default", 5.0):
        pass
    del auth, store
gc.collect()
print(len(locks._by_id))
"""


def test_item10_a_user_collected_inside_the_tables_guard_does_not_deadlock() -> None:
    # The finalizer once took the (non-reentrant) guard: a collection started by an allocation under the
    # guard then waited for the guard its own thread held, for ever (a hang within the first ~1,000 rounds).
    result = subprocess.run(
        [sys.executable, "-c", _COLLECTED_INSIDE_THE_GUARD],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == 0  # and every dead user was counted out, its store's entry gone


def test_item10_a_recycled_id_does_not_share_a_dead_stores_locks(client: TikTokOAuth2Client) -> None:
    import gc

    from tiktok_oauth.auth._locks import locks

    seen: dict[int, object] = {}
    # The heap so far is not this test's garbage: frozen, each collect below walks only what the loop made
    # (a whole-heap collect took up to 0.9 s in a busy pytest worker: 200 of them were the suite's slowest test).
    gc.collect()
    gc.freeze()
    try:
        for _ in range(200):
            store = SlottedStore()
            auth = TikTokAuth(client, store)
            with locks.hold(
                store, "default", 0.0
            ) as lock:  # a dead store's lock, even held, never blocks a new one
                pass
            lock.acquire()
            old = seen.get(id(store))
            assert old is None or old is not lock
            seen[id(store)] = lock
            del auth, store
            gc.collect()
    finally:
        gc.unfreeze()


class FlakyStore(MemoryTokenStore):
    """A store whose next `set` fails, like a Redis that drops for a moment."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_sets = 0

    def set(self, key: str, token: TikTokToken) -> None:
        if self.fail_sets:
            self.fail_sets -= 1
            raise TokenStoreError("the store is down")
        super().set(key, token)


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_refreshed_token_the_store_failed_to_take_is_not_lost(driver: str, fake: FakeTikTok) -> None:
    store = FlakyStore()
    old = seeded(fake, store, expired=True)
    store.fail_sets = 1

    def two_requests(auth_client: TikTokOAuth2Client | AsyncTikTokOAuth2Client) -> list[object]:
        auth = TikTokAuth(auth_client, store)
        outcomes: list[object] = []
        if driver == "sync":
            with httpx.Client(transport=fake.transport(), auth=auth) as api:
                for _ in range(2):
                    try:
                        outcomes.append(api.get(USER_INFO).status_code)
                    except TokenStoreError as exc:
                        outcomes.append(type(exc))
                        assert store.get("default") == old  # the store kept what it had
            return outcomes

        async def main() -> None:
            async with httpx.AsyncClient(transport=fake.async_transport(), auth=auth) as api:
                for _ in range(2):
                    try:
                        outcomes.append((await api.get(USER_INFO)).status_code)
                    except TokenStoreError as exc:
                        outcomes.append(type(exc))

        asyncio.run(main())
        return outcomes

    if driver == "sync":
        with httpx.Client(transport=fake.transport()) as http:
            outcomes = two_requests(TikTokOAuth2Client("test-key", SECRET, http_client=http))
    else:
        outcomes = two_requests(
            AsyncTikTokOAuth2Client(
                "test-key", SECRET, http_client=httpx.AsyncClient(transport=fake.async_transport())
            )
        )
    assert outcomes == [TokenStoreError, 200]
    assert fake.grant_count("refresh_token") == 1
    assert fake.stale_refresh_token_uses == 0
    new = store.get("default")
    assert new is not None
    assert new.refresh_token != old.refresh_token


def test_cookies_set_by_the_401_go_out_with_the_retry(fake: FakeTikTok, store: MemoryTokenStore) -> None:
    seeded(fake, store)
    with fake.serve() as base_url, requests.Session() as session:  # a real HTTP response, with real cookies
        client = TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(base_url))
        session.auth = TikTokAuth(client, store)
        session.get(fake.user_info_url(base_url))  # cache the token: the retry then comes from the hook
        fake.fail_next(
            401,
            b'{"error":{"code":"access_token_invalid"}}',
            headers={"content-type": "application/json", "set-cookie": "tt_session=abc; Path=/"},
            endpoint="user_info",
        )
        assert session.get(fake.user_info_url(base_url)).status_code == 200
        client.close()
    assert fake.requests[-1].headers.get("cookie") == "tt_session=abc"
    assert fake.grant_count("refresh_token") == 1
