"""What `import tiktok_oauth` loads: what a first request needs, and FileTokenStore only when asked for."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: Modules a first request does not need, which `import tiktok_oauth` must leave out.
LAZY = ("filelock", "tiktok_oauth.stores.file")


def loaded_after(code: str) -> list[str]:
    probe = f"import sys; {code}; print(' '.join(m for m in {LAZY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return result.stdout.split()


@pytest.mark.parametrize(
    "code",
    [
        "import tiktok_oauth",
        "from tiktok_oauth import TikTokAuth, TikTokOAuth2Client, unwrap",
        "from tiktok_oauth.stores import MemoryTokenStore",
    ],
)
def test_the_file_store_and_filelock_are_not_imported(code: str) -> None:
    assert loaded_after(code) == []


@pytest.mark.parametrize(
    "code", ["from tiktok_oauth import FileTokenStore", "from tiktok_oauth.stores import FileTokenStore"]
)
def test_asking_for_the_file_store_imports_it(code: str) -> None:
    assert loaded_after(code) == list(LAZY)


def test_both_names_are_the_same_class() -> None:
    import tiktok_oauth
    import tiktok_oauth.stores
    from tiktok_oauth.stores.file import FileTokenStore

    assert tiktok_oauth.FileTokenStore is tiktok_oauth.stores.FileTokenStore is FileTokenStore


@pytest.mark.parametrize("module", ["tiktok_oauth", "tiktok_oauth.stores"])
def test_an_unknown_name_is_still_an_attribute_error(module: str) -> None:
    namespace = __import__(module, fromlist=["_"])
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = namespace.no_such_name
