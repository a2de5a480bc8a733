"""`tiktok-oauth login` with a non-loopback redirect URI: the redirected URL is pasted on stdin."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli._support import CLI, CLIENT_KEY, SECRET, Served
from tiktok_oauth.stores import FileTokenStore


class ConsentingStdin(io.StringIO):
    """stdin whose first line is the callback `fake.authorize` returns for the URL printed so far."""

    def __init__(self, served: Served, capsys: pytest.CaptureFixture[str], **consent: object) -> None:
        super().__init__()
        self.served, self.capsys, self.consent, self.printed = served, capsys, consent, ""

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        self.printed = self.capsys.readouterr().out
        sys.stdout.write(self.printed)  # give it back to the test's capture
        url = next(line.strip() for line in self.printed.splitlines() if "/v2/auth/authorize/" in line)
        return self.served.fake.authorize(url, **self.consent) + "\n"  # type: ignore[arg-type]


@pytest.fixture
def consent_on_stdin(
    served: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., None]:
    """Make stdin paste the callback of a user consenting (`fake.authorize(url, **consent)`)."""

    def install(**consent: object) -> None:
        monkeypatch.setattr(sys, "stdin", ConsentingStdin(served, capsys, **consent))

    return install


def test_login_with_the_default_redirect_uri_reads_the_pasted_url(
    cli: CLI,
    served: Served,
    store_dir: Path,
    store: FileTokenStore,
    consent_on_stdin: Callable[..., None],
) -> None:
    consent_on_stdin(open_id="pasting-user")

    result = cli("login", *served.options, "--store", str(store_dir), "--no-browser")

    assert result.code == 0, result.err
    assert "https://localhost/?code=..." in result.out
    assert "Redirected URL: " in result.out
    assert "redirect_uri=https%3A%2F%2Flocalhost%2F" in result.out
    token = store.get("pasting-user")
    assert token is not None
    assert token.open_id == "pasting-user"


def test_credentials_from_the_environment(
    cli: CLI,
    served: Served,
    store_dir: Path,
    consent_on_stdin: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIKTOK_CLIENT_KEY", CLIENT_KEY)
    monkeypatch.setenv("TIKTOK_CLIENT_SECRET", SECRET)
    consent_on_stdin()

    result = cli(
        "login", *served.url_options, "--store", str(store_dir), "--scope", "user.info.basic video.list"
    )

    assert result.code == 0, result.err
    token = FileTokenStore(store_dir).get("test-open-id")
    assert token is not None
    assert token.scopes == {"user.info.basic", "video.list"}


def test_login_default_store_is_under_xdg_data_home(
    cli: CLI,
    served: Served,
    consent_on_stdin: Callable[..., None],
    tmp_path: Path,
) -> None:
    consent_on_stdin()

    result = cli("login", *served.options)

    assert result.code == 0, result.err
    default = tmp_path / "xdg" / "tiktok-oauth" / "tokens"  # conftest points XDG_DATA_HOME there
    assert FileTokenStore(default).get("test-open-id") is not None


def test_nothing_pasted_is_a_one_line_error(cli: CLI, served: Served, store_dir: Path) -> None:
    result = cli("login", *served.options, "--store", str(store_dir), stdin="")

    assert result.code == 1
    assert result.err == "error: no redirected URL was pasted\n"


def test_pasting_something_else_is_a_one_line_error(cli: CLI, served: Served, store_dir: Path) -> None:
    result = cli("login", *served.options, "--store", str(store_dir), stdin="https://localhost/\n")

    assert result.code == 1
    assert result.err.startswith("error: the pasted text has no code= or error= parameter")


def test_a_pasted_denial_is_a_clear_line(
    cli: CLI,
    served: Served,
    store_dir: Path,
    consent_on_stdin: Callable[..., None],
) -> None:
    consent_on_stdin(deny=True)

    result = cli("login", *served.options, "--store", str(store_dir))

    assert result.code == 1
    assert result.err == "error: access_denied: The user denied the authorization request.\n"


def test_missing_credentials_name_the_flags_and_variables(cli: CLI, served: Served) -> None:
    result = cli("login", *served.url_options)

    assert result.code == 2
    assert result.err == (
        "error: missing client credentials: pass --client-key or TIKTOK_CLIENT_KEY and "
        "--client-secret or TIKTOK_CLIENT_SECRET (the app's key and secret)\n"
    )
