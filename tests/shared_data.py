"""Where the real Binance data the tests replay lives: ``../shared/data`` beside the checkout.

CI keeps it there. A test that needs it fails, not skips, when it is missing: a suite that
silently stops checking our candles against the exchange's would pass for the wrong reason.
"""

from __future__ import annotations

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
