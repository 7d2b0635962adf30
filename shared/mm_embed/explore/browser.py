"""Headless Chromium through Playwright, as the tests and the README screenshot use it.

It drives the system's Chromium (Debian's ``chromium`` package, ``/usr/bin/chromium``),
never a browser downloaded by Playwright, with the flags that keep it off the network.
Needs ``playwright`` (in the ``dev`` extra).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .providers import SetupError

if TYPE_CHECKING:
    from playwright.sync_api import Browser

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "chromium"]

CHROMIUM = "/usr/bin/chromium"
#: No background fetches, updates, sync or first-run pages: the page under test is the
#: only thing the browser talks to.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


@contextlib.contextmanager
def chromium(executable: str = CHROMIUM, *, timeout_ms: float = 30_000) -> Iterator[Browser]:
    """A headless Chromium browser (each launch gets a new, empty profile folder)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise SetupError("browser checks need playwright: pip install 'mm-embed[dev]'") from None
    if not os.access(executable, os.X_OK):
        raise SetupError(f"no Chromium at {executable} (Debian: apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=list(CHROMIUM_ARGS),
            timeout=timeout_ms,
        )
        try:
            yield browser
        finally:
            browser.close()
