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

from .errors import SetupError

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "chromium",
    "new_page",
    "overlays_outside_images",
    "watch_problems",
]

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


@contextlib.contextmanager
def new_page(
    browser: Browser, *, width: int = 1280, height: int = 900, timeout_ms: float = 20_000
) -> Iterator[Page]:
    """A page in a fresh browser context (no shared cookies or storage), closed on exit;
    every wait on it gives up after ``timeout_ms``."""
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        yield page
    finally:
        context.close()


def watch_problems(page: Page) -> list[str]:
    """A list that fills with ``page``'s console errors, uncaught exceptions and failed
    requests from now on (empty while the page is healthy)."""
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}"))
    return problems


_OVERLAY_CHECK = """() => {
  const outside = [];
  for (const shot of document.querySelectorAll(".shot")) {
    const img = shot.querySelector("img");
    if (!img) continue;
    const frame = img.getBoundingClientRect();
    for (const box of shot.querySelectorAll("svg rect")) {
      const r = box.getBoundingClientRect();
      const slack = 1.5;
      if (r.width <= 0 || r.height <= 0 || r.left < frame.left - slack || r.top < frame.top - slack
          || r.right > frame.right + slack || r.bottom > frame.bottom + slack) {
        outside.push(`${img.alt}: box ${JSON.stringify([r.left, r.top, r.right, r.bottom])} `
                     + `image ${JSON.stringify([frame.left, frame.top, frame.right, frame.bottom])}`);
      }
    }
  }
  return outside;
}"""


def overlays_outside_images(page: Page) -> tuple[int, list[str]]:
    """How many box overlays the page draws over pictures, and those that do not lie
    inside their picture (as laid out on screen)."""
    count = int(page.evaluate("document.querySelectorAll('.shot img ~ svg rect').length"))
    outside: list[str] = page.evaluate(_OVERLAY_CHECK)
    return count, outside
