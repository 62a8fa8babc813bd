"""Real headless Chromium (the system's, never a downloaded one) driven by Playwright's sync API.

One browser per session; a fresh context (cookies, storage) per test. This directory is a
package (see __init__.py) so that this conftest does not shadow tests/conftest.py, whose helpers
the other test modules import as `from conftest import ...`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless system Chromium for the whole session."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            headless=True,
            args=CHROMIUM_ARGS,
        )
        yield launched
        launched.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Make browser contexts (Playwright's new_context options); all closed after the test."""
    made: list[BrowserContext] = []

    def make(**options) -> BrowserContext:
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


@pytest.fixture
def context(new_context) -> BrowserContext:
    """A fresh browser context for one test."""
    return new_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A page in the test's fresh context."""
    return context.new_page()
