"""Fixtures of the explorer tests: a demo store, a running ``mm-embed explore`` process
over it, and headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from mm_embed.config import EnvVar
from mm_embed.demo import DemoReport, run_demo
from mm_embed.explore.browser import chromium

START_TIMEOUT_S = 60.0
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)$")
#: Provider credentials and endpoints: unset, so the emulator answers.
PROVIDER_VARIABLES = tuple(f"{v}" for v in EnvVar if v is not EnvVar.MM_EMBED_BUDGET)


def offline_env() -> dict[str, str]:
    """This process's environment without provider credentials."""
    return {k: v for k, v in os.environ.items() if k not in PROVIDER_VARIABLES}


@contextlib.contextmanager
def explorer_process(store: Path, *extra: str) -> Iterator[tuple[str, list[str]]]:
    """Run ``mm-embed explore --store STORE --port 0`` and yield its URL and the lines it
    printed on start; stopped with Ctrl-C (SIGINT) on exit, which must end it with
    status 0."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mm_embed", "explore", "--store", str(store), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=offline_env(),
    )
    try:
        first = _first_line(process)
        match = LISTENING.match(first)
        assert match, f"first line {first!r}; stderr: {_rest(process)}"
        yield match.group(1), [first]
    except BaseException:
        process.kill()
        process.wait(timeout=30)
        raise
    process.send_signal(signal.SIGINT)  # Ctrl-C: a graceful stop, exit status 0
    try:
        status = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert status == 0, _rest(process)


def _first_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if selector.select(timeout=0.5):
                return process.stdout.readline().rstrip("\n")
    return ""


def _rest(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        return "(still running)"
    assert process.stderr is not None
    return process.stderr.read()[-2000:]


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoReport]:
    """A store written by the demo (emulator vectors) and the demo's report."""
    store = tmp_path_factory.mktemp("explore") / "store"
    with pytest.MonkeyPatch.context() as patch:
        for name in PROVIDER_VARIABLES:
            patch.delenv(name, raising=False)
        report = run_demo(store=str(store), plot=None, html=None, progress=False)
    return store, report


@pytest.fixture(scope="module")
def demo_explorer(demo_store: tuple[Path, DemoReport]) -> Iterator[tuple[str, list[str]]]:
    """A running explorer over the demo's store: its URL and start lines."""
    with explorer_process(demo_store[0]) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium, one per test module."""
    with chromium() as launched:
        yield launched
