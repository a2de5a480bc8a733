"""The one writer, held by a scan of the package: only the token source sends refreshes and revokes and
writes tokens. A new door that calls the client or the store itself fails here, before it loses a token."""

from __future__ import annotations

import ast
from pathlib import Path

import tiktok_oauth

PACKAGE = Path(tiktok_oauth.__file__).parent
#: Calls that spend or end a grant: the client's own methods.
GRANT_CALLS = {"refresh_token", "revoke_token", "fetch_client_token"}
#: Where they may be called: the clients define them, the token source is the one writer.
GRANT_CALLERS = {"client.py", "auth/_source.py"}
#: Store writes: `<something store-like>.set(key, token)` / `.delete(key)`.
WRITE_CALLS = {"set", "delete"}
#: Where stores are written: the token source, and the stores themselves (a wrapper writes its inner store).
WRITERS = ("auth/_source.py", "stores/")


def _calls(path: Path) -> list[tuple[int, str, str]]:
    """(line, method, receiver source) of every `x.method(...)` call in `path`."""
    source = path.read_text()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = ast.get_source_segment(source, node.func.value) or ""
            found.append((node.lineno, node.func.attr, receiver))
    return found


def _modules() -> list[tuple[str, Path]]:
    return [(path.relative_to(PACKAGE).as_posix(), path) for path in sorted(PACKAGE.rglob("*.py"))]


def test_only_the_token_source_sends_refreshes_and_revokes() -> None:
    outside = [
        f"{name}:{line} {receiver}.{method}(...)"
        for name, path in _modules()
        if name not in GRANT_CALLERS and not name.startswith("testing/")
        for line, method, receiver in _calls(path)
        if method in GRANT_CALLS
    ]
    assert outside == []


def test_only_the_token_source_writes_tokens_to_a_store() -> None:
    outside = [
        f"{name}:{line} {receiver}.{method}(...)"
        for name, path in _modules()
        if not name.startswith((*WRITERS, "testing/"))
        for line, method, receiver in _calls(path)
        if method in WRITE_CALLS and "store" in receiver.lower()
    ]
    assert outside == []


def test_the_scan_sees_the_writers_it_allows() -> None:
    """The scan is not blind: it finds the token source's own calls."""
    calls = {(method, receiver) for _, method, receiver in _calls(PACKAGE / "auth" / "_source.py")}
    assert ("refresh_token", "client") in calls
    assert ("set", "self.store") in calls
