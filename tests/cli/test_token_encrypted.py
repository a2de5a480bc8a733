"""`token list|show|refresh|refresh --all|revoke` through an `EncryptedTokenStore` on every `--store` kind.

One set of tests, parametrised over a directory, a `redis://` URL and a `postgresql://` URL (real servers),
and over where the key comes from: `--encryption-key` (one key) or `TIKTOK_OAUTH_KEY` (two keys,
comma-separated: a rotation, the new key first). Every output is scanned for the keys and for the stored
ciphertexts (besides the tokens and the client secret the `cli` fixture's scan looks for).
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from tests.cli._support import CLI, CLIENT_KEY, SECRET, Served
from tests.stores._sql_backends import psycopg_url
from tiktok_oauth import _clock
from tiktok_oauth.stores import FileTokenStore, from_url
from tiktok_oauth.stores.encrypted import EncryptedTokenStore
from tiktok_oauth.token import TikTokToken

KEY_ENV = "TIKTOK_OAUTH_KEY"


def _postgres_database(request: pytest.FixtureRequest) -> str:
    """A new database on the session's PostgreSQL (so the default table is this test's), dropped afterwards."""
    server_url: str = request.getfixturevalue("postgres_url")
    name = f"cli_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(psycopg_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        try:
            with admin.connect() as connection:  # FORCE: the CLI's engines are never closed in-process
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()

    request.addfinalizer(drop)
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["directory", "redis", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The `--store` value, on an empty store."""
    if request.param == "directory":
        return str(tmp_path / "encrypted-tokens")
    if request.param == "redis":
        request.getfixturevalue("redis_client")  # flushes the database
        url: str = request.getfixturevalue("redis_server").url
        return url
    return _postgres_database(request)


@dataclass
class Keys:
    """The keys of one test: the CLI's options for them, and what `from_url` takes to seed the store."""

    source: str
    new: str = field(default_factory=lambda: Fernet.generate_key().decode())
    old: str = field(default_factory=lambda: Fernet.generate_key().decode())
    wrong: str = field(default_factory=lambda: Fernet.generate_key().decode())

    @property
    def given(self) -> str:
        """What the CLI is given: one key by flag, or a rotation (new first) in the environment."""
        return self.new if self.source == "flag" else f"{self.new},{self.old}"

    @property
    def seeded_with(self) -> str:
        """The key the tokens were written with before the test: the old one when rotating."""
        return self.new if self.source == "flag" else self.old

    def options(self) -> list[str]:
        return ["--encryption-key", self.given] if self.source == "flag" else []


@pytest.fixture(params=["flag", "env"])
def keys(request: pytest.FixtureRequest, cli: CLI, monkeypatch: pytest.MonkeyPatch) -> Keys:
    made = Keys(request.param)
    if made.source == "env":
        monkeypatch.setenv(KEY_ENV, made.given)
    else:
        monkeypatch.delenv(KEY_ENV, raising=False)
    cli.secrets.update({made.new, made.old, made.wrong})  # the cli fixture's scan: in no output
    return made


def _close(store: Any) -> None:
    inner = getattr(store, "inner", store)
    if hasattr(inner, "close"):
        inner.close()  # SQLTokenStore
    elif hasattr(inner, "client"):
        inner.client.close()  # RedisTokenStore


@pytest.fixture
def seeded(store_url: str, keys: Keys) -> Iterator[Any]:
    """The store as the test sees it, encrypted with the key the tokens were written with."""
    store = from_url(store_url, encryption_key=keys.seeded_with)
    assert isinstance(store, EncryptedTokenStore)
    yield store
    _close(store)


def _issue(served: Served, store: Any, key: str, *, expires_in: float) -> TikTokToken:
    token = served.issue(store, key, open_id=key)
    token["expires_at"] = int(_clock.now() + expires_in)
    store.set(key, token)
    return token


def _at_rest(store_url: str, key: str) -> TikTokToken:
    """The token under `key` as the inner store holds it (ciphertext), read without any key."""
    plain = from_url(store_url)
    try:
        token: TikTokToken | None = plain.get(key)
    finally:
        _close(plain)
    assert token is not None
    return token


def _remember_ciphertexts(cli: CLI, store_url: str, *names: str) -> None:
    for name in names:
        stored = _at_rest(store_url, name)
        cli.secrets.update(value for value in (stored.access_token, stored.refresh_token) if value)


def test_list_show_refresh_refresh_all_and_revoke_through_the_encrypted_store(
    cli: CLI, served: Served, store_url: str, keys: Keys, seeded: Any, *, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = _issue(served, seeded, "alice", expires_in=600)  # due within the default hour
    bob = _issue(served, seeded, "bob", expires_in=7200)
    _remember_ciphertexts(cli, store_url, "alice", "bob")
    assert _at_rest(store_url, "alice").access_token != alice.access_token

    listed = cli("token", "list", "--store", store_url, *keys.options())
    assert listed.code == 0, listed.err
    assert [line.split()[0] for line in listed.out.splitlines()] == ["KEY", "alice", "bob"]
    with monkeypatch.context() as environment:
        environment.delenv(KEY_ENV, raising=False)
        without_key = cli("token", "list", "--json", "--store", store_url)
    assert without_key.code == 0, without_key.err  # listing needs no key: only the secrets are encrypted
    assert [(row["key"], row["open_id"]) for row in json.loads(without_key.out)] == [
        ("alice", "alice"),
        ("bob", "bob"),
    ]

    shown = cli("token", "show", "--store", store_url, "--key", "alice", *keys.options())
    assert shown.code == 0, shown.err
    assert "  open_id:        alice\n" in shown.out
    assert "  access token:   act.***, expires " in shown.out  # decrypted, then masked
    assert "  refresh token:  rft.***, expires " in shown.out

    refreshed = cli(
        "token", "refresh", *served.options, "--store", store_url, "--key", "bob", *keys.options()
    )
    assert refreshed.code == 0, refreshed.err
    assert refreshed.out.startswith("Refreshed. New token saved under key 'bob' in ")
    assert served.fake.grant_count("refresh_token") == 1

    every = cli("token", "refresh", "--all", *served.options, "--store", store_url, *keys.options())
    assert every.code == 0, every.err
    assert every.out.splitlines()[0] == "refreshed: alice"
    assert every.out.splitlines()[-1].startswith("1 refreshed, 0 fresh, 0 need a new login, 0 failed in ")
    assert served.fake.grant_count("refresh_token") == 2
    assert served.fake.stale_refresh_token_uses == 0
    _remember_ciphertexts(cli, store_url, "alice", "bob")

    # Both tokens were written again with the first key: it alone decrypts them now (the old one is retired).
    first_only = from_url(store_url, encryption_key=keys.new)
    try:
        for name, before in (("alice", alice), ("bob", bob)):
            now = first_only.get(name)
            assert now is not None
            assert now.refresh_token != before.refresh_token
            assert now.refresh_token not in json.dumps(dict(_at_rest(store_url, name)))
    finally:
        _close(first_only)

    revoked = cli("token", "revoke", *served.options, "--store", store_url, "--key", "alice", *keys.options())
    assert revoked.code == 0, revoked.err
    listed = cli("token", "list", "--json", "--store", store_url, *keys.options())
    assert [row["key"] for row in json.loads(listed.out)] == ["bob"]


def test_a_wrong_key_is_a_clear_error_and_changes_nothing(
    cli: CLI, served: Served, store_url: str, keys: Keys, seeded: Any
) -> None:
    _issue(served, seeded, "alice", expires_in=600)
    before = _at_rest(store_url, "alice")
    _remember_ciphertexts(cli, store_url, "alice")
    wrong = ["--encryption-key", keys.wrong]
    message = "the token under key 'alice' does not decrypt: tampered, or encrypted with a key not given"

    for argv in (
        ["token", "show", "--key", "alice"],
        ["token", "show"],
        ["token", "list"],
        ["token", "refresh", *served.options, "--key", "alice"],
    ):
        result = cli(*argv, "--store", store_url, *wrong)
        assert (result.code, result.out, result.err) == (1, "", f"error: {message}\n"), argv
    every = cli("token", "refresh", "--all", *served.options, "--store", store_url, *wrong)
    assert every.code == 1
    assert every.err == f"failed: alice: TokenStoreError: {message}\n"
    assert every.out.splitlines()[-1].startswith("0 refreshed, 0 fresh, 0 need a new login, 1 failed in ")
    traced = cli("token", "show", "--key", "alice", "--store", store_url, *wrong, "--debug")
    assert traced.code == 1
    assert "tiktok_oauth.errors.TokenStoreError: the token under key 'alice' does not decrypt" in traced.err

    assert served.fake.grant_count("refresh_token") == 0
    assert _at_rest(store_url, "alice") == before


def test_a_plaintext_token_is_refused_when_a_key_is_given(
    cli: CLI, served: Served, store_url: str, keys: Keys
) -> None:
    plain = from_url(store_url)
    try:
        served.issue(plain, "alice", open_id="alice")
    finally:
        _close(plain)
    result = cli("token", "show", "--key", "alice", "--store", store_url, *keys.options())
    assert result.code == 1
    assert result.err == (
        "error: the token under key 'alice' is not encrypted: refused "
        "(EncryptedTokenStore never uses a plaintext token)\n"
    )
    refresh = cli(
        "token", "refresh", *served.options, "--key", "alice", "--store", store_url, *keys.options()
    )
    assert refresh.code == 1
    assert served.fake.grant_count("refresh_token") == 0


@pytest.mark.parametrize("source", ["flag", "env"])
def test_a_malformed_key_is_a_usage_error_that_does_not_quote_it(
    cli: CLI, store_dir: Path, store: FileTokenStore, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    good = Fernet.generate_key().decode()
    malformed = f"{good},this-is-no-fernet-key-but-it-is-secret"
    cli.secrets.update({good, "this-is-no-fernet-key-but-it-is-secret"})
    monkeypatch.setenv(KEY_ENV, malformed)
    options = ["--encryption-key", malformed] if source == "flag" else []
    for action in ("show", "list"):
        result = cli("token", action, "--store", str(store_dir), *options)
        assert result.code == 2
        assert result.err == (
            "error: an encryption key is a Fernet key: 32 url-safe base64-encoded bytes "
            "(make one with cryptography.fernet.Fernet.generate_key())\n"
        )


def test_a_key_beginning_with_a_dash_is_taken_as_the_value_of_encryption_key(
    cli: CLI, served: Served, store_dir: Path
) -> None:
    # A Fernet key is url-safe base64, so one in 64 begins with "-": argparse alone would take it for an option.
    dashed = base64.urlsafe_b64encode(b"\xf8" + os.urandom(31)).decode()
    assert dashed.startswith("-")
    cli.secrets.add(dashed)
    store = EncryptedTokenStore(FileTokenStore(store_dir), dashed)
    served.issue(store, "alice", open_id="alice")
    for argv in (
        ["token", "show", "--encryption-key", dashed],
        ["token", "show", f"--encryption-key={dashed}"],
    ):
        result = cli(*argv, "--store", str(store_dir))
        assert result.code == 0, result.err
        assert "  access token:   act.***, expires " in result.out
    dashed_secret = ["--client-key", CLIENT_KEY, "--client-secret", "-" + SECRET, *served.url_options]
    refreshed = cli("token", "refresh", *dashed_secret, "--store", str(store_dir), "--encryption-key", dashed)
    assert refreshed.code == 1  # the secret was taken whole (and is wrong): the token endpoint said so
    assert refreshed.err.startswith("error: invalid_client: ")
    assert served.fake.grant_count("refresh_token") == 0


@pytest.mark.parametrize("source", ["flag", "env"])
def test_an_empty_encryption_key_is_a_usage_error_naming_where_it_came_from(
    cli: CLI,
    served: Served,
    store_dir: Path,
    store: FileTokenStore,
    *,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    if source == "flag":
        monkeypatch.delenv(KEY_ENV, raising=False)
        options, named = ["--encryption-key", ""], "argument --encryption-key: empty"
    else:
        monkeypatch.setenv(KEY_ENV, "")
        options, named = [], f"error: {KEY_ENV} is empty"
    for argv in (
        ["login", *served.options, "--no-browser"],
        ["token", "list"],
        ["token", "refresh", "--all", *served.options],
    ):
        result = cli(*argv, "--store", str(store_dir), *options)
        assert (result.code, result.out) == (2, ""), argv
        assert named in result.err, argv
        assert "encryption is never silently off" in result.err
    assert list(store.keys()) == []  # login wrote nothing, least of all a plaintext token
    assert served.fake.requests == []


def test_without_a_key_the_commands_that_send_tokens_fail_before_any_request(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    key = Fernet.generate_key().decode()
    cli.secrets.add(key)
    encrypted = EncryptedTokenStore(store, key)
    _issue(served, encrypted, "alice", expires_in=600)  # due: `refresh --all` would refresh it
    before = store.get("alice")
    message = (
        f"error: the token under key 'alice' in {store_dir} is encrypted: "
        f"pass --encryption-key or set {KEY_ENV}\n"
    )
    for argv in (
        ["token", "refresh", "--key", "alice"],
        ["token", "refresh"],
        ["token", "revoke", "--key", "alice"],
        ["token", "refresh", "--all"],
    ):
        result = cli(*argv, *served.options, "--store", str(store_dir))
        assert (result.code, result.out, result.err) == (2, "", message), argv
    assert served.fake.requests == []
    assert store.get("alice") == before
    shown = cli("token", "show", "--key", "alice", "--store", str(store_dir))
    assert shown.code == 0, shown.err  # showing needs no key: the secrets are masked anyway
