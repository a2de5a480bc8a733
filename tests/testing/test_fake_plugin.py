"""The pytest plugin: a `fake_tiktok` fixture, fresh for each test."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_fake_tiktok_fixture_is_a_fresh_fake_per_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Load the plugin explicitly, whether or not the package's entry point is installed.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(
        """
        import httpx
        from tiktok_oauth.testing import FakeTikTok

        def test_one(fake_tiktok):
            assert isinstance(fake_tiktok, FakeTikTok)
            fake_tiktok.issue_token()
            with httpx.Client(transport=fake_tiktok.transport()) as client:
                client.get(fake_tiktok.user_info_url())
            assert len(fake_tiktok.requests) == 1

        def test_two(fake_tiktok):
            assert fake_tiktok.requests == []
            assert fake_tiktok.client_key == "test-key"
        """
    )
    result = pytester.runpytest("-p", "tiktok_oauth.testing.plugin")
    result.assert_outcomes(passed=2)


def test_plugin_module_imports_no_requests(pytester: pytest.Pytester) -> None:
    result = pytester.runpython_c(
        "import sys, tiktok_oauth.testing.plugin, tiktok_oauth.testing;"
        "assert 'requests' not in sys.modules, 'requests imported';"
        "print('ok')"
    )
    assert result.ret == 0
    result.stdout.fnmatch_lines(["ok"])
