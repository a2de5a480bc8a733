"""`FileTokenStore` when the operating system says no: every OSError becomes a TokenStoreError naming the path."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path
from typing import Any

import filelock
import pytest

from tests.stores._tokens import make_token
from tiktok_oauth.errors import TokenStoreError
from tiktok_oauth.stores import FileTokenStore


def refuse(*_: Any, **__: Any) -> Any:
    raise OSError(errno.EACCES, "Permission denied")


@pytest.fixture
def store(tmp_path: Path) -> FileTokenStore:
    store = FileTokenStore(tmp_path / "tokens")
    store.set("k", make_token())
    return store


def test_a_directory_stat_failure_names_the_directory(
    store: FileTokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Path, "stat", refuse)
    with pytest.raises(TokenStoreError, match="Permission denied") as caught:
        FileTokenStore(store.path).get("k")
    assert str(store.path) in str(caught.value)


def test_a_file_that_vanishes_before_it_is_opened_is_no_token(
    store: FileTokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def vanish(path: Any, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith(".json"):
            raise FileNotFoundError(errno.ENOENT, "gone")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", vanish)
    assert FileTokenStore(store.path).get("k") is None


def temporary_files(store: FileTokenStore) -> list[str]:
    return [p.name for p in store.path.iterdir() if p.name.endswith(".tmp")]


INTERRUPTIONS = {
    "KeyboardInterrupt in fsync": ("fsync", KeyboardInterrupt),
    "SystemExit in fsync": ("fsync", SystemExit),
    "KeyboardInterrupt before the rename": ("replace", KeyboardInterrupt),
    "a BaseException subclass in write": ("write", GeneratorExit),
}


@pytest.mark.parametrize(("where", "exception"), INTERRUPTIONS.values(), ids=INTERRUPTIONS.keys())
def test_an_interrupted_write_removes_its_temporary_file_and_re_raises(
    store: FileTokenStore, monkeypatch: pytest.MonkeyPatch, where: str, exception: type[BaseException]
) -> None:
    before = store.token_path("k").read_bytes()

    def interrupt(*_: Any, **__: Any) -> Any:
        assert temporary_files(store), "the temporary file should exist at this point"
        raise exception

    target = {"fsync": (os, "fsync"), "replace": (Path, "replace"), "write": (os, "fchmod")}[where]
    monkeypatch.setattr(*target, interrupt)
    with pytest.raises(exception):
        store.set("k", make_token(2))
    monkeypatch.undo()
    assert temporary_files(store) == []
    assert store.token_path("k").read_bytes() == before


def test_a_failed_write_leaves_the_old_token_and_no_temporary_file(
    store: FileTokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = store.token_path("k").read_bytes()
    monkeypatch.setattr(os, "fsync", refuse)
    with pytest.raises(TokenStoreError, match="cannot write token file"):
        store.set("k", make_token())
    monkeypatch.undo()
    assert store.token_path("k").read_bytes() == before
    assert [p.name for p in store.path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_failed_delete_names_the_path(store: FileTokenStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(TokenStoreError, match="cannot delete token file"):
        store.delete("k")


def test_a_directory_that_cannot_be_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(TokenStoreError, match="cannot create token directory"):
        FileTokenStore(tmp_path / "new").set("k", make_token())


def test_a_lock_that_cannot_be_taken(store: FileTokenStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filelock.FileLock, "acquire", refuse)
    with pytest.raises(TokenStoreError, match="cannot lock"), store.lock("k"):
        pass

    async def take() -> None:
        async with store.alock("k"):
            pass

    with pytest.raises(TokenStoreError, match="cannot lock"):
        asyncio.run(take())
