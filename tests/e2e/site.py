"""The tickscan the browser tests run against: its simulated market, its plan, its mailbox."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Locator, Page

from flows.sources.simulator.perps import perp_count
from tests.fakes.sendgrid import FakeSendGrid, link

SYMBOLS = 25
"""Spot symbols of the simulated market."""
PERPETUALS = perp_count(SYMBOLS)
"""The busiest of them are also listed as USDⓈ-M perpetuals of the same names."""
ROWS = SYMBOLS + PERPETUALS
"""Rows of the whole board: few enough that it fits the window, every row in the DOM."""
RATE = 300.0
"""Trades per second: even the quietest symbol trades every few seconds."""
FREE_DELAY_S = 2
"""How far behind the free plan's board runs (every account here is on it)."""
PASSWORD = "correct horse battery staple"
ARTIFACTS = Path(__file__).parent / "artifacts"
"""Screenshots (gitignored)."""
LIVE_S = 30.0
"""How long a live change may take to show: the board and candles update at 1 Hz."""


@dataclass(frozen=True)
class Account:
    """A user's sign-in."""

    email: str
    password: str = PASSWORD


@dataclass(frozen=True)
class Site:
    """The running tickscan and the mailbox its emails land in."""

    url: str
    mail: FakeSendGrid

    def emailed_link(self, to: str, path: str, timeout_s: float = 30.0) -> str:
        """The newest link to `path` (e.g. `/verify-email`) emailed to `to`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for body in reversed(self.mail.bodies):
                if body["personalizations"][0]["to"] == [{"email": to}]:
                    return link(body, f"{self.url}{path}?token=")
            time.sleep(0.1)
        raise AssertionError(f"no email with a {path} link reached {to}")


def eventually(check: Callable[[], object], what: str, timeout_s: float = LIVE_S) -> None:
    """Wait until `check()` is truthy; fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.25)


def save_screenshot(name: str, target: Page | Locator) -> None:
    """Save a screenshot of a page or one element as a test artifact, and say where."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    target.screenshot(path=path)
    print(f"screenshot: {path}")
