"""A real headless browser for page tests: Debian's chromium and chromium-driver via selenium.

Skipped, saying why, only where chromium is absent outside CI; under CI (``CI=true``,
where ``.ci/run`` installs them) a missing browser fails the test instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = ("chromedriver",)


def _which(names) -> str | None:
    return next((p for p in map(shutil.which, names) if p), None)


def require_chromium() -> tuple[str, str]:
    """The browser and its driver, or skip (fail under CI) saying what to install."""
    browser, driver = _which(CHROMIUM), _which(DRIVER)
    if not browser or not driver:
        why = "chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the browser tests: {why}")
        pytest.skip(why)
    return browser, driver


def headless_chromium(width: int = 1280, height: int = 900):
    """A selenium Chrome driver on the system's chromium (quit it when done)."""
    browser, driver = require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def full_page_screenshot(driver, path) -> None:
    """The whole page (not just the window) as a PNG, through the DevTools protocol."""
    import base64

    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    Path(path).write_bytes(base64.b64decode(shot["data"]))
