"""A real headless Chromium under Selenium, for the browser tests (the CLI's login, the web login)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@contextmanager
def headless_chromium(profile: Path) -> Iterator[Any]:
    """A Selenium driver on Debian's Chromium; skips without it, except in CI where that is a failure."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        message = f"needs {CHROMIUM} and {CHROMEDRIVER} (Debian: apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    webdriver: Any = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}",
    ):  # fmt: skip
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    browser.set_page_load_timeout(20)
    try:
        yield browser
    finally:
        browser.quit()


def press(driver: Any, button_id: str) -> None:
    """Click the button with id `button_id` and wait until the browser has loaded the page it leads to."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.wait import WebDriverWait

    before = driver.current_url
    driver.find_element("id", button_id).click()
    # Mid-navigation, the driver may answer with an error rather than a page: keep asking.
    WebDriverWait(driver, 20, ignored_exceptions=(WebDriverException,)).until(
        lambda browser: (
            browser.current_url != before
            and browser.execute_script("return document.readyState") == "complete"
        )
    )


def authorize_as(driver: Any, open_id: str) -> None:
    """On the served fake's consent page: type `open_id` and press Authorize."""
    field = driver.find_element("id", "open_id")
    field.clear()
    field.send_keys(open_id)
    press(driver, "authorize")
