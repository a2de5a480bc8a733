"""`tiktok-oauth token list` on file, SQLite and encrypted stores, and `--store` URLs (from_url)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.cli._support import CLI, Served, assert_no_leaks
from tiktok_oauth import TikTokToken, _clock
from tiktok_oauth.stores import FileTokenStore, from_url
from tiktok_oauth.stores.encrypted import EncryptedTokenStore
from tiktok_oauth.stores.sql import SQLTokenStore


def test_list_prints_one_line_per_token_and_marks_expired_ones(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    alice = served.issue(store, "alice", open_id="alice")
    bob = served.issue(store, "bob", open_id="bob")
    bob["expires_at"] = int(_clock.now()) - 60
    store.set("bob", bob)
    result = cli("token", "list", "--store", str(store_dir))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["KEY", "OPEN_ID", "SCOPES", "ACCESS", "EXPIRES", "REFRESH", "EXPIRES"]
    assert lines[1].startswith("alice")
    assert "(expired)" not in lines[1]
    assert lines[2].startswith("bob")
    assert "(expired)" in lines[2]
    assert_no_leaks(
        [result.out, result.err], {alice.access_token, alice.refresh_token or "", bob.access_token}
    )


def test_list_json_gives_the_documented_fields(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    token = served.issue(store, "alice", open_id="alice")
    result = cli("token", "list", "--json", "--store", str(store_dir))
    assert result.code == 0, result.err
    assert json.loads(result.out) == [
        {
            "key": "alice",
            "open_id": "alice",
            "scopes": sorted(token.scopes),
            "expires_at": token.expires_at,
            "refresh_expires_at": token.refresh_expires_at,
            "expired": False,
            "needs_login": False,
        }
    ]


def test_needs_login_lists_the_marked_keys_and_those_whose_refresh_token_runs_out(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    served.issue(store, "fine", open_id="fine")
    marked = served.issue(store, "revoked", open_id="revoked")
    store.set("revoked", TikTokToken({**marked, "needs_login": True}))
    served.issue(store, "soon", open_id="soon", refresh_expires_in=3 * 86400)

    def listed(*extra: str) -> list[str]:
        result = cli("token", "list", "--json", "--store", str(store_dir), *extra)
        assert result.code == 0, result.err
        return [row["key"] for row in json.loads(result.out)]

    assert listed() == ["fine", "revoked", "soon"]
    assert listed("--needs-login") == ["revoked"]
    assert listed("--needs-login", "7d") == ["revoked", "soon"]
    assert listed("--needs-login", "1d") == ["revoked"]
    table = cli("token", "list", "--store", str(store_dir), "--needs-login")
    assert "(needs login)" in table.out
    assert "fine" not in table.out


def test_list_and_show_work_on_an_encrypted_sqlite_store_url(
    cli: CLI, served: Served, tmp_path: Path
) -> None:
    key = Fernet.generate_key().decode()
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    store = from_url(url, encryption_key=key)
    assert isinstance(store, EncryptedTokenStore)
    assert isinstance(store.inner, SQLTokenStore)
    token = served.issue(store, "carol", open_id="carol")
    listed = cli("token", "list", "--json", "--store", url)  # listing needs no key
    assert [row["key"] for row in json.loads(listed.out)] == ["carol"]
    shown = cli("token", "show", "--store", url, "--encryption-key", key)
    assert shown.code == 0, shown.err
    assert "carol" in shown.out
    wrong = Fernet.generate_key().decode()
    refused = cli("token", "show", "--store", url, "--encryption-key", wrong)
    assert refused.code != 0
    assert "does not decrypt" in refused.err
    assert_no_leaks(
        [listed.out, shown.out, shown.err, refused.err], {token.access_token}, secrets=(key, wrong)
    )
    store.inner.close()


def test_from_url_picks_the_store_for_each_url(tmp_path: Path) -> None:
    assert isinstance(from_url(tmp_path / "dir"), FileTokenStore)
    assert isinstance(from_url(f"file://{tmp_path / 'dir'}"), FileTokenStore)
    sql = from_url(f"sqlite:///{tmp_path / 't.db'}")
    assert isinstance(sql, SQLTokenStore)
    sql.close()
    from tiktok_oauth.stores.redis import RedisTokenStore

    redis_store = from_url("redis://127.0.0.1:1/0")  # no connection until first used
    assert isinstance(redis_store, RedisTokenStore)
    redis_store.client.close()
    with pytest.raises(ValueError, match="unknown store URL scheme") as caught:
        from_url("ftp://user:hunter2@example.com/")
    assert "hunter2" not in str(caught.value)


def test_a_table_is_named_by_option_or_in_the_url_and_only_for_sql_stores(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    for store in (from_url(url, table="app_tokens"), from_url(f"{url}?table=app_tokens")):
        assert isinstance(store, SQLTokenStore)
        assert "app_tokens" in repr(store)
        store.close()
    chosen = from_url(f"{url}?table=ignored", table="app_tokens")  # the option wins
    assert "app_tokens" in repr(chosen)
    chosen.close()
    with pytest.raises(ValueError, match="SQL stores only"):
        from_url(tmp_path / "dir", table="app_tokens")
    with pytest.raises(ValueError, match="empty table"):
        from_url(url, table="")


def test_every_command_takes_table_and_the_summary_names_every_layer(
    cli: CLI, served: Served, tmp_path: Path
) -> None:
    key = Fernet.generate_key().decode()
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    store = from_url(url, encryption_key=key, table="app_tokens")
    served.issue(store, "dave", open_id="dave")
    listed = cli("token", "list", "--json", "--store", url, "--table", "app_tokens")
    assert [row["key"] for row in json.loads(listed.out)] == ["dave"]
    assert json.loads(cli("token", "list", "--json", "--store", url).out) == []  # the default table
    shown = cli("token", "show", "--store", url, "--table", "app_tokens", "--encryption-key", key)
    assert shown.code == 0, shown.err
    assert "in EncryptedTokenStore(SQLTokenStore(table='app_tokens'" in shown.out
    store.inner.close()
