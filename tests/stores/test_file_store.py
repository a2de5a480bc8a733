"""`FileTokenStore`: layout, permissions, corrupt and unreadable files, reads that see the disk."""

from __future__ import annotations

import json
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


@pytest.mark.usefixtures("permissive_umask")
def test_every_directory_it_creates_is_0700_under_umask_0(tmp_path: Path, token: TikTokToken) -> None:
    store = FileTokenStore(tmp_path / "a" / "b" / "c")
    with store.lock("default"):  # a lock creates the directory too
        pass
    assert [mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o700, 0o700, 0o700]
    assert mode(tmp_path) == 0o700  # pytest made it; an existing directory keeps its mode


def test_an_existing_private_directory_is_used_as_is(tmp_path: Path, token: TikTokToken) -> None:
    directory = tmp_path / "tokens"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)  # others may read (and see file names), not write
    FileTokenStore(directory).set("default", token)
    assert FileTokenStore(directory).get("default") == token
    assert mode(directory) == 0o755


OPERATIONS: dict[str, Any] = {
    "get": lambda store: store.get("default"),
    "set": lambda store: store.set("default", make_token()),
    "delete": lambda store: store.delete("default"),
    "lock": lambda store: store.lock("default").__enter__(),
    "keys": lambda store: list(store.keys()),
    "expiring": lambda store: list(store.expiring(2e9)),
}


@pytest.mark.parametrize("directory_mode", [0o770, 0o730, 0o777, 0o1777, 0o1770, 0o702])
@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_a_directory_others_can_write_is_refused_on_the_first_operation(
    tmp_path: Path, directory_mode: int, operation: Any
) -> None:
    directory = tmp_path / "shared"
    FileTokenStore(directory).set("default", make_token(1))
    directory.chmod(directory_mode)
    before = sorted(p.name for p in directory.iterdir())
    with pytest.raises(TokenStoreError, match="can be written by other users") as caught:
        operation(FileTokenStore(directory))
    assert str(directory) in str(caught.value)
    assert f"{directory_mode:04o}" in str(caught.value)
    assert sorted(p.name for p in directory.iterdir()) == before  # nothing written, not even a lock file


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


def test_the_file_holds_the_token_json_and_the_key(tmp_path: Path, token: TikTokToken) -> None:
    store = FileTokenStore(tmp_path)
    store.set("../odd key", token)
    stored = json.loads(store.token_path("../odd key").read_bytes())
    assert stored == {**token, "tiktok_oauth_store_key": "../odd key"}


def test_a_token_holding_the_reserved_key_field_is_refused(tmp_path: Path, token: TikTokToken) -> None:
    store = FileTokenStore(tmp_path)
    with pytest.raises(ValueError, match="tiktok_oauth_store_key"):
        store.set("default", TikTokToken({**token, "tiktok_oauth_store_key": "other"}))
    assert store.get("default") is None


def test_a_file_of_version_0_1_0_without_the_key_field_is_read(tmp_path: Path, token: TikTokToken) -> None:
    store = FileTokenStore(tmp_path)
    store.set("default", token)  # creates the directory
    store.token_path("default").write_text(token.to_json())
    assert store.get("default") == token


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
    before = path.read_bytes()
    real_open = os.open

    def refusing_open(file: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(file_module.os, "open", refusing_open)
    with pytest.raises(TokenStoreError, match="Permission denied") as caught:
        FileTokenStore(tmp_path).get("default")
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before


def test_a_file_where_the_directory_should_be_raises(tmp_path: Path, token: TikTokToken) -> None:
    (tmp_path / "tokens").write_text("not a directory")
    store = FileTokenStore(tmp_path / "tokens")
    with pytest.raises(TokenStoreError, match="not a directory"):
        store.set("default", token)


# -- reads see the disk --------------------------------------------------------------------------


def rewrite_in_place_keeping_identity(path: Path, old: bytes, new: bytes) -> None:
    """Change the file's content but keep its inode, size and mtime: what a reused inode looks like
    on a file system with coarse timestamps (ext4 with 128-byte inodes, FAT, HFS+, some NFS)."""
    before = path.stat()
    content = path.read_bytes()
    assert len(old) == len(new)
    assert old in content
    with path.open("r+b") as file:
        file.write(content.replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )


def test_a_read_under_the_lock_sees_a_file_changed_with_the_same_inode_size_and_mtime(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path)
    store.set("default", make_token(1))
    with store.lock("default"):
        assert store.get("default") == make_token(1)
        rewrite_in_place_keeping_identity(store.token_path("default"), b"act.1.", b"act.2.")
        got = store.get("default")
    assert got is not None
    assert got.access_token == "act.2.secret-access"


def test_an_unlocked_read_sees_a_file_changed_with_the_same_inode_size_and_mtime(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path)
    store.set("default", make_token(1))
    assert store.get("default") == make_token(1)
    rewrite_in_place_keeping_identity(store.token_path("default"), b"rft.1.", b"rft.2.")
    got = store.get("default")
    assert got is not None
    assert got.refresh_token == "rft.2.secret-refresh"


def test_a_replacement_that_reuses_the_inode_and_mtime_is_read(tmp_path: Path) -> None:
    reader, writer = FileTokenStore(tmp_path), FileTokenStore(tmp_path)
    writer.set("default", make_token(1))
    path = reader.token_path("default")
    first = path.stat()
    assert reader.get("default") == make_token(1)
    # Each write frees the previous file's inode; ext4 and others hand a freed one out again soon.
    for n in range(2, 200):
        writer.set("default", make_token(n % 8 + 2))  # n % 8 + 2 < 10: the same length as token 1
        if path.stat().st_ino == first.st_ino:
            break
    else:
        pytest.skip("this file system does not reuse inode numbers soon enough to test this")
    expected = make_token(n % 8 + 2)
    assert path.stat().st_size == first.st_size
    os.utime(path, ns=(first.st_atime_ns, first.st_mtime_ns))
    with reader.lock("default"):
        assert reader.get("default") == expected
    assert reader.get("default") == expected


def test_a_returned_token_is_a_copy(tmp_path: Path, token: TikTokToken) -> None:
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
    writer.set("default", make_token(2))
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


# -- listing ---------------------------------------------------------------------------------------


def test_listing_skips_lock_temporary_and_foreign_files(tmp_path: Path, token: TikTokToken) -> None:
    store = FileTokenStore(tmp_path)
    store.set("default", token)
    with store.lock("locked"):
        (tmp_path / f".{file_module.file_stem('x')}.0123456789abcdef.tmp").write_text(token.to_json())
        (tmp_path / "notes.json").write_text(token.to_json())
        (tmp_path / "subdir.json").mkdir()
        assert list(store.keys()) == ["default"]
        assert list(store.expiring(float("inf"))) == ["default"]


def test_a_key_spelled_by_its_file_name_is_listed_without_reading_the_file(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path)
    store.set("plain-key_1", make_token(1))
    store.set("needs/the file", make_token(2))
    store.token_path("plain-key_1").write_bytes(b"corrupt")
    assert sorted(store.keys()) == ["needs/the file", "plain-key_1"]
    with pytest.raises(TokenStoreError, match="corrupt token"):
        list(store.expiring(float("inf")))  # expiring must read it, and says so


def test_a_corrupt_file_whose_name_does_not_spell_its_key_stops_the_listing(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path)
    store.set("needs/the file", make_token(1))
    path = store.token_path("needs/the file")
    path.write_bytes(b'{"access_token": "act.secret-in-a-broken-file", ')
    with pytest.raises(TokenStoreError, match="corrupt token") as caught:
        list(store.keys())
    assert str(path) in str(caught.value)
    assert "secret" not in str(caught.value)


def test_files_of_version_0_1_0_are_listed_when_the_slug_or_the_open_id_is_the_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileTokenStore(tmp_path)
    keys = {
        "plain": make_token(1),
        "open/2 ü": make_token(2, open_id="open/2 ü"),
        "../unknowable": make_token(3),
    }
    for key, token in keys.items():
        store.set(key, token)
        store.token_path(key).write_text(token.to_json())  # as 0.1.0 wrote it: no key field
    with caplog.at_level("WARNING", logger="tiktok_oauth"):
        assert sorted(store.keys()) == ["open/2 ü", "plain"]
        assert sorted(store.expiring(float("inf"))) == ["open/2 ü", "plain"]
    assert str(store.token_path("../unknowable")) in caplog.text
    assert "secret" not in caplog.text
    store.set("../unknowable", keys["../unknowable"])  # any write records the key
    assert sorted(store.keys()) == ["../unknowable", "open/2 ü", "plain"]


def test_a_missing_directory_lists_nothing_and_is_not_created(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens")
    assert list(store.keys()) == []
    assert list(store.expiring(float("inf"))) == []
    assert not store.path.exists()
