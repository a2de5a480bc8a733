"""EncryptedTokenStore over memory, file, Redis, SQLite and PostgreSQL stores: ciphertext at rest, rotation,
tamper, wrong key, plaintext refusal, secrets kept out of reprs, errors and logs, and a refresh through
TikTokAuth. The full secrets sweep of every failure path, sync and async, is in `tests/test_no_secrets.py`."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.conftest import SECRET
from tests.stores._sql_backends import unique_table
from tests.stores._tokens import make_token
from tiktok_oauth import TikTokAuth, TikTokOAuth2Client, TikTokToken, TokenStoreError
from tiktok_oauth.stores import FileTokenStore, MemoryTokenStore
from tiktok_oauth.stores.encrypted import AsyncEncryptedTokenStore, EncryptedTokenStore
from tiktok_oauth.testing import FakeTikTok

OLD_KEY = Fernet.generate_key()
NEW_KEY = Fernet.generate_key()


@pytest.fixture(params=["memory", "file", "redis", "sqlite", "postgres"])
def inner(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    kind = request.param
    if kind == "memory":
        yield MemoryTokenStore()
    elif kind == "file":
        yield FileTokenStore(tmp_path / "tokens")
    elif kind == "redis":
        from tiktok_oauth.stores.redis import RedisTokenStore

        yield RedisTokenStore(request.getfixturevalue("redis_client"))
    else:
        from tiktok_oauth.stores.sql import SQLTokenStore

        if kind == "sqlite":
            store = SQLTokenStore(f"sqlite:///{tmp_path / 'tokens.db'}")
        else:
            url = request.getfixturevalue("postgres_url")
            store = SQLTokenStore(url, table=unique_table(request, url))
        yield store
        store.close()


def test_secrets_are_ciphertext_in_the_inner_store_and_the_rest_stays_readable(inner: Any) -> None:
    token = make_token()
    store = EncryptedTokenStore(inner, NEW_KEY)
    store.set("u", token)
    raw = inner.get("u")
    assert raw["access_token"] != token.access_token
    assert raw["refresh_token"] != token.refresh_token
    assert token.access_token not in json.dumps(raw)
    for name in ("open_id", "scope", "expires_at", "refresh_expires_at"):
        assert raw.get(name) == token.get(name)
    assert store.get("u") == token
    assert list(store.keys()) == ["u"]
    assert list(store.expiring(token.expires_at + 1)) == ["u"]  # listing without decrypting


def test_rotation_reads_old_tokens_and_rewrites_them_with_the_first_key(inner: Any) -> None:
    token = make_token()
    EncryptedTokenStore(inner, OLD_KEY).set("u", token)
    rotated = EncryptedTokenStore(inner, [NEW_KEY, OLD_KEY])
    before = dict(inner.get("u"))
    assert rotated.get("u") == token
    assert dict(inner.get("u")) == before  # no write on read
    rotated.set("u", rotated.get("u"))
    assert EncryptedTokenStore(inner, NEW_KEY).get("u") == token  # the old key is no longer needed
    with pytest.raises(TokenStoreError):
        EncryptedTokenStore(inner, OLD_KEY).get("u")


def test_a_wrong_key_is_a_store_error_naming_the_key_and_nothing_else(inner: Any) -> None:
    token = make_token()
    EncryptedTokenStore(inner, OLD_KEY).set("u", token)
    with pytest.raises(TokenStoreError, match="'u'") as caught:
        EncryptedTokenStore(inner, NEW_KEY).get("u")
    message = str(caught.value) + repr(caught.value)
    ciphertext = inner.get("u")["access_token"]
    for secret in (token.access_token, token.refresh_token, ciphertext, OLD_KEY.decode(), NEW_KEY.decode()):
        assert secret not in message


def test_a_tampered_token_is_a_store_error(inner: Any) -> None:
    EncryptedTokenStore(inner, NEW_KEY).set("u", make_token())
    raw = inner.get("u")
    raw["refresh_token"] = raw["refresh_token"][:-6] + "AAAAAA"
    inner.set("u", raw)
    with pytest.raises(TokenStoreError, match="does not decrypt"):
        EncryptedTokenStore(inner, NEW_KEY).get("u")


def test_a_plaintext_token_is_refused(inner: Any) -> None:
    inner.set("u", make_token())
    with pytest.raises(TokenStoreError, match="not encrypted"):
        EncryptedTokenStore(inner, NEW_KEY).get("u")


def test_the_wrapper_offers_exactly_what_the_inner_store_has() -> None:
    class Bare:
        def get(self, key: str) -> TikTokToken | None:
            return None

        def set(self, key: str, token: TikTokToken) -> None:
            pass

        def delete(self, key: str) -> None:
            pass

    assert not hasattr(EncryptedTokenStore(Bare(), NEW_KEY), "lock")
    memory = MemoryTokenStore(lock_timeout=3.0)
    wrapped = EncryptedTokenStore(memory, NEW_KEY)
    assert hasattr(wrapped, "lock")
    assert hasattr(wrapped, "alock")
    assert wrapped.lock_timeout == 3.0


def test_a_bad_key_is_a_value_error_without_the_key() -> None:
    with pytest.raises(ValueError, match="Fernet key") as caught:
        EncryptedTokenStore(MemoryTokenStore(), "not-a-key-but-a-secret")
    assert "not-a-key-but-a-secret" not in str(caught.value)
    with pytest.raises(ValueError, match="at least one"):
        EncryptedTokenStore(MemoryTokenStore(), [])


def test_reprs_errors_and_debug_logs_hold_no_key_material(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    token = make_token()
    store = EncryptedTokenStore(FileTokenStore(tmp_path), [NEW_KEY, OLD_KEY])
    store.set("u", token)
    store.get("u")
    with pytest.raises(TokenStoreError) as caught:
        EncryptedTokenStore(FileTokenStore(tmp_path), Fernet.generate_key()).get("u")
    text = " ".join([repr(store), str(caught.value), repr(caught.value), caplog.text])
    for secret in (NEW_KEY.decode(), OLD_KEY.decode(), token.access_token, token.refresh_token):
        assert secret not in text
    assert "2 Fernet key(s)" in repr(store)


def test_an_async_inner_store_makes_an_async_wrapper(redis_server: Any) -> None:
    from tiktok_oauth.stores.redis import AsyncRedisTokenStore

    async def go() -> TikTokToken | None:
        client = redis_server.async_client()
        try:
            store = EncryptedTokenStore(AsyncRedisTokenStore(client), NEW_KEY)
            assert isinstance(store, AsyncEncryptedTokenStore)
            await store.set("u", make_token())
            return await store.get("u")
        finally:
            await client.aclose()

    assert asyncio.run(go()) is not None


def test_tiktok_auth_refreshes_through_an_encrypted_store(fake: FakeTikTok, tmp_path: Path) -> None:
    inner = FileTokenStore(tmp_path)
    store = EncryptedTokenStore(inner, NEW_KEY)
    token = TikTokToken(fake.issue_token(open_id="u"))
    token["expires_at"] = 0
    store.set("u", token)
    with fake.serve() as base, TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(base)) as client:
        auth = TikTokAuth(client, store, "u")
        response = httpx.get(fake.user_info_url(base), params={"fields": "open_id"}, auth=auth)
    assert response.status_code == 200
    assert fake.grant_count("refresh_token") == 1
    refreshed = store.get("u")
    assert refreshed is not None
    assert refreshed.refresh_token != token.refresh_token
    assert refreshed.refresh_token not in json.dumps(inner.get("u"))


def _secrets_and_keys(token: TikTokToken, *stored: TikTokToken) -> list[str]:
    """What no error message may hold: the plaintexts, the ciphertexts at rest and the Fernet keys."""
    found = [token.access_token, token.refresh_token, NEW_KEY.decode(), OLD_KEY.decode()]
    found += [value for row in stored for value in (row["access_token"], row["refresh_token"])]
    return [value for value in found if value]


def test_a_row_copied_under_another_key_is_refused(inner: Any) -> None:
    store = EncryptedTokenStore(inner, NEW_KEY)
    alice = make_token()
    store.set("alice", alice)
    store.set("mallory", make_token())
    # Someone who can write the table, but holds no key, copies alice's row under their own key.
    copied = inner.get("alice")
    inner.set("mallory", copied)
    with pytest.raises(TokenStoreError, match="'mallory'") as caught:
        store.get("mallory")
    message = str(caught.value) + repr(caught.value)
    for secret in _secrets_and_keys(alice, copied):
        assert secret not in message
    assert store.get("alice") == alice  # the row under its own key still opens


def test_access_and_refresh_ciphertexts_swapped_are_refused(inner: Any) -> None:
    store = EncryptedTokenStore(inner, NEW_KEY)
    token = make_token()
    store.set("u", token)
    raw = inner.get("u")
    swapped = TikTokToken(dict(raw, access_token=raw["refresh_token"], refresh_token=raw["access_token"]))
    inner.set("u", swapped)
    with pytest.raises(TokenStoreError, match="'u'") as caught:
        store.get("u")
    message = str(caught.value) + repr(caught.value)
    for secret in _secrets_and_keys(token, raw):
        assert secret not in message


def test_a_token_written_before_binding_opens_and_is_bound_on_its_next_write(inner: Any) -> None:
    token = make_token()
    fernet = Fernet(NEW_KEY)
    # As earlier versions wrote it: each secret encrypted alone, bound to nothing.
    unbound = {
        name: fernet.encrypt(token[name].encode()).decode() for name in ("access_token", "refresh_token")
    }
    inner.set("u", TikTokToken(dict(token, **unbound)))
    store = EncryptedTokenStore(inner, NEW_KEY)
    assert store.get("u") == token
    store.set("u", store.get("u"))
    rewritten = inner.get("u")
    assert fernet.decrypt(rewritten["access_token"].encode()) != token.access_token.encode()
    assert store.get("u") == token
    inner.set("v", rewritten)  # bound now: under another key it no longer opens
    with pytest.raises(TokenStoreError, match="'v'"):
        store.get("v")


@pytest.mark.parametrize(
    "empty", ["", b"", [], [""], " "], ids=["str", "bytes", "list", "list-of-str", "blank"]
)
def test_an_empty_key_is_a_value_error_never_an_unencrypted_store(empty: Any, tmp_path: Path) -> None:
    from tiktok_oauth.stores import from_url

    with pytest.raises(ValueError, match="never silently off"):
        EncryptedTokenStore(MemoryTokenStore(), empty)
    with pytest.raises(ValueError, match="never silently off"):
        from_url(str(tmp_path / "tokens"), encryption_key=empty)
