"""The system's headless Chromium, driven by Playwright (never a downloaded browser).

`.ci/run` installs Debian's `chromium` and sets CS_HEALTH_REQUIRE_BROWSER=1, so that there a
missing browser fails the browser tests instead of skipping them. Screenshots and other files a
reviewer may want to look at go to `test-artifacts/` (or $CS_HEALTH_TEST_ARTIFACTS).
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cs_assets import settings

CHROMIUM = Path(os.environ.get("CS_HEALTH_CHROMIUM", "/usr/bin/chromium"))
# as root in a container, and on a machine with no network beyond the package registries
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("CS_HEALTH_TEST_ARTIFACTS") or settings.REPO_ROOT / "test-artifacts")


def require_browser():
    """Playwright's sync API, or a skip (a failure where CS_HEALTH_REQUIRE_BROWSER=1)."""
    if not CHROMIUM.exists():
        if os.environ.get("CS_HEALTH_REQUIRE_BROWSER") == "1":
            raise RuntimeError(f"the browser test needs Chromium at {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api")


@contextmanager
def browser_page(width: int = 1600, height: int = 1000) -> Iterator:
    """A page of a fresh headless Chromium, closed afterwards."""
    api = require_browser()
    with api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
