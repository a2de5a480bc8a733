"""`FileTokenStore`: layout, permissions, corrupt and unreadable files, the parse cache."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.stores._tokens import make_token
from tiktok_oauth.errors import TokenStoreError
from tiktok_oauth.stores import FileTokenStore
from tiktok_oauth.stores import file as file_module
from tiktok_oauth.token import TikTokToken


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- layout and permissions ------------------------------------------------------------------------


@pytest.mark.usefixtures("permissive_umask")
def test_directory_is_0700_and_files_0600_under_a_permissive_umask(
    tmp_path: Path, token: TikTokToken
) -> None:
    store = FileTokenStore(tmp_path / "nested" / "tokens")
    store.set("default", token)
    with store.lock("default"):
        lock_file = store.path / f"{file_module.file_stem('default')}.lock"
        assert mode(lock_file) == 0o600
    assert mode(store.path) == 0o700
    assert mode(store.token_path("default")) == 0o600


def test_path_may_be_a_string(tmp_path: Path, token: TikTokToken) -> None:
    store = FileTokenStore(str(tmp_path))
    store.set("default", token)
    assert store.token_path("default").parent == tmp_path


def test_get_does_not_create_the_directory(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens")
    assert store.get("default") is None
    assert not store.path.exists()


def test_a_write_leaves_only_the_token_file(tmp_path: Path, token: TikTokToken) -> None:
    store = FileTokenStore(tmp_path)
    store.set("default", token)
    store.set("default", token)
    assert [p.name for p in tmp_path.iterdir()] == [store.token_path("default").name]


def test_the_file_holds_the_token_json(tmp_path: Path, token: TikTokToken) -> None:
    store = FileTokenStore(tmp_path)
    store.set("default", token)
    assert TikTokToken.from_json(store.token_path("default").read_bytes()) == token


def test_repr_shows_the_path_only(tmp_path: Path, token: TikTokToken) -> None:
    store = FileTokenStore(tmp_path)
    store.set("default", token)
    assert repr(store) == f"FileTokenStore({str(tmp_path)!r})"


@given(st.text(), st.text())
def test_file_names_are_safe_and_distinct(first: str, second: str) -> None:
    name = file_module.file_stem(first) + ".json"
    assert "/" not in name
    assert "\x00" not in name
    assert name not in {".", ".."}
    assert len(name.encode()) <= 255
    if first != second:
        assert file_module.file_stem(first).lower() != file_module.file_stem(second).lower()


# -- corrupt and unreadable files ------------------------------------------------------------------

CORRUPT = {
    "empty": b"",
    "not json": b"act.secret-in-garbage",
    "truncated": b'{"access_token": "act.secret-truncated", "refresh',
    "a list": b'["act.secret-list"]',
    "a string": b'"act.secret-string"',
    "no access_token": b'{"refresh_token": "rft.secret-only"}',
    "access_token not a string": b'{"access_token": 12345}',
    "invalid utf-8": b'{"access_token": "act.\xff\xfe"}',
    "binary": bytes(range(256)),
}


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_file_raises_naming_the_path_and_is_left_alone(tmp_path: Path, content: bytes) -> None:
    store = FileTokenStore(tmp_path)
    path = store.token_path("default")
    path.write_bytes(content)
    for _ in range(2):  # a failure is not cached as "no token"
        with pytest.raises(TokenStoreError) as caught:
            store.get("default")
        assert str(path) in str(caught.value)
        assert "secret" not in str(caught.value)
        assert caught.value.__cause__ is None
    assert path.read_bytes() == content
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_corrupt_file_can_be_overwritten_by_an_explicit_set(tmp_path: Path, token: TikTokToken) -> None:
    store = FileTokenStore(tmp_path)
    store.token_path("default").write_bytes(b"garbage")
    store.set("default", token)
    assert store.get("default") == token


def test_a_huge_file_is_corrupt(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path)
    store.token_path("default").write_bytes(b" " * (2 << 20))
    with pytest.raises(TokenStoreError, match="larger than"):
        store.get("default")


def test_a_directory_in_place_of_the_file_raises_naming_the_path(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path)
    store.token_path("default").mkdir()
    with pytest.raises(TokenStoreError, match=str(store.token_path("default"))):
        store.get("default")
    assert store.token_path("default").is_dir()


def test_an_unreadable_file_raises_naming_the_path(
    tmp_path: Path, token: TikTokToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests may run as root, for whom chmod 000 changes nothing: make opening the file fail.
    store = FileTokenStore(tmp_path)
    store.set("default", token)
    path = store.token_path("default")
    real_open = os.open

    def refusing_open(file: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(file_module.os, "open", refusing_open)
    with pytest.raises(TokenStoreError, match="Permission denied") as caught:
        FileTokenStore(tmp_path).get("default")
    assert str(path) in str(caught.value)
    assert path.read_bytes() == token.to_json().encode()


def test_a_file_where_the_directory_should_be_raises(tmp_path: Path, token: TikTokToken) -> None:
    (tmp_path / "tokens").write_text("not a directory")
    store = FileTokenStore(tmp_path / "tokens")
    with pytest.raises(TokenStoreError, match="not a directory"):
        store.set("default", token)


# -- the parse cache -------------------------------------------------------------------------------


@pytest.fixture
def parse_count(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real_decode = file_module.decode_token

    def counting_decode(data: bytes | str, where: str) -> TikTokToken:
        calls[0] += 1
        return real_decode(data, where)

    monkeypatch.setattr(file_module, "decode_token", counting_decode)
    return calls


def test_an_unchanged_file_is_parsed_once(tmp_path: Path, token: TikTokToken, parse_count: list[int]) -> None:
    FileTokenStore(tmp_path).set("default", token)
    reader = FileTokenStore(tmp_path)
    for _ in range(5):
        assert reader.get("default") == token
    assert parse_count == [1]


def test_a_cached_token_is_still_returned_as_a_copy(tmp_path: Path, token: TikTokToken) -> None:
    store = FileTokenStore(tmp_path)
    store.set("default", token)
    first = store.get("default")
    assert first is not None
    first["access_token"] = "act.mutated"
    assert store.get("default") == token


def test_a_file_replaced_by_another_store_is_picked_up(tmp_path: Path) -> None:
    reader, writer = FileTokenStore(tmp_path), FileTokenStore(tmp_path)
    writer.set("default", make_token(1))
    assert reader.get("default") == make_token(1)
    writer.set("default", make_token(2))  # the same size: only the inode tells them apart
    assert reader.get("default") == make_token(2)
    writer.delete("default")
    assert reader.get("default") is None


def test_a_file_written_by_another_process_is_picked_up(tmp_path: Path) -> None:
    reader = FileTokenStore(tmp_path)
    reader.set("default", make_token(1))
    assert reader.get("default") == make_token(1)
    script = (
        "import sys\n"
        "from tiktok_oauth.stores import FileTokenStore\n"
        "from tests.stores._tokens import make_token\n"
        "FileTokenStore(sys.argv[1]).set('default', make_token(2))\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=30)
    assert reader.get("default") == make_token(2)
