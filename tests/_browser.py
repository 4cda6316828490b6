"""A real browser for the tests of web pages: Chromium from the system's packages (``apt-get install chromium``),
driven by Playwright. Without either, a test skips locally and fails in CI (``.ci/run`` installs both)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A launched Chromium (Playwright's ``Browser``), closed afterwards."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or CHROMIUM is None:
        why = "these tests need Playwright (PyPI) and Chromium (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(why + ": .ci/run installs both")
        pytest.skip(why)
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()
