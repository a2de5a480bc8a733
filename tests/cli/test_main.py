"""`main` and `python -m tiktok_oauth`: usage errors, help, and one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cli._support import CLI
from tiktok_oauth import __version__
from tiktok_oauth.cli import main


def test_no_command_is_a_usage_error(cli: CLI) -> None:
    result = cli()

    assert result.code == 2
    assert "the following arguments are required: COMMAND" in result.err


def test_an_unknown_option_is_a_usage_error(cli: CLI) -> None:
    result = cli("login", "--bogus")

    assert result.code == 2
    assert "unrecognized arguments: --bogus" in result.err


def test_token_needs_an_action(cli: CLI) -> None:
    result = cli("token")

    assert result.code == 2
    assert "ACTION" in result.err


def test_version(cli: CLI) -> None:
    result = cli("--version")

    assert result.code == 0
    assert result.out == f"tiktok-oauth {__version__}\n"


def test_login_help_documents_the_options_and_the_testing_urls(cli: CLI) -> None:
    result = cli("login", "--help")

    assert result.code == 0
    for option in (
        "--client-key", "--client-secret", "TIKTOK_CLIENT_KEY", "TIKTOK_CLIENT_SECRET", "--scope",
        "--redirect-uri", "--pkce, --no-pkce", "--store", "--key", "--no-browser", "--timeout",
        "--authorize-url", "--token-url", "--revoke-url", "--debug",
    ):  # fmt: skip
        assert option in result.out
    assert "for testing against FakeTikTok" in result.out


def test_an_unexpected_error_is_one_line_naming_debug(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> int:
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr("tiktok_oauth.cli.run_demo", broken)

    result = cli("demo")

    assert result.code == 1
    assert (
        result.err == "error: unexpected RuntimeError: something broke (run with --debug for a traceback)\n"
    )


def test_ctrl_c_exits_130_without_traceback(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("tiktok_oauth.cli.run_demo", interrupted)

    result = cli("demo")

    assert result.code == 130
    assert result.err == "\ninterrupted\n"


def test_main_reads_sys_argv_by_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["tiktok-oauth", "--version"])

    assert main() == 0
    assert capsys.readouterr().out == f"tiktok-oauth {__version__}\n"


def test_python_m_tiktok_oauth_exits_with_mains_code() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "tiktok_oauth",
            "token",
            "show",
            "--key",
            "nobody",
            "--store",
            "/nonexistent/x",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 1
    assert completed.stderr == "error: no token stored under key 'nobody' in /nonexistent/x\n"


def test_importing_the_cli_loads_neither_requests_nor_the_test_helpers() -> None:
    code = (
        "import sys, tiktok_oauth.cli;"
        "assert 'requests' not in sys.modules, 'requests';"
        "assert 'tiktok_oauth.testing' not in sys.modules, 'testing'"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )

    assert completed.returncode == 0, completed.stderr
