"""Debian's chromium driven by Playwright's driver (never a browser `playwright install`s)."""

from __future__ import annotations

from playwright.sync_api import Browser, Playwright

CHROMIUM = "/usr/bin/chromium"
"""Installed by `make browser` (apt-get install chromium)."""

ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root, where chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Nothing but the page under test on the network or the CPU.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch(playwright: Playwright) -> Browser:
    """Headless chromium with the flags a container needs."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
