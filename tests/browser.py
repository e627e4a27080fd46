"""Headless Chromium for the browser tests: Debian's package driven by Playwright for
Python (``playwright install`` cannot download browsers here; CI installs ``chromium``).

Each test module makes its own module-scoped fixture from :func:`chromium`, and each test
asks :func:`needs` for the browser: without one, CI (which must have it) fails and a
developer's machine skips, with the reason either way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("MDPLAB_CHROMIUM", "/usr/bin/chromium"))
# No sandbox (CI runs as root), and none of Chromium's own traffic: this machine's network
# is closed, and refused connections would show up as failed requests of the page.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def chromium() -> Iterator[Any]:
    """Yield a launched headless Chromium, or the reason there is none (a string)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        yield "Playwright for Python is not installed (pip install playwright)"
        return
    if not CHROMIUM.exists():
        yield f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
        return
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        yield browser
        browser.close()


def needs(browser: Any) -> Any:
    """The browser; without one, a failure in CI and a skip elsewhere."""
    if isinstance(browser, str):
        if in_ci():
            pytest.fail(f"the browser tests cannot run in CI: {browser}", pytrace=False)
        pytest.skip(browser)
    return browser
