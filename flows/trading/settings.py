"""The paper engine's settings (`paper`): fees, leverage, margin tiers, book freshness."""

from __future__ import annotations

import itertools
from decimal import Decimal

from pydantic import BaseModel, Field, model_validator

from flows.batching import BatchSettings


class Fees(BaseModel, frozen=True):
    """Maker and taker fee rates of one market, as fractions (0.001 is 0.1 %)."""

    maker: Decimal = Field(ge=0, le=Decimal("0.01"))
    taker: Decimal = Field(ge=0, le=Decimal("0.01"))


class MarginTier(BaseModel, frozen=True):
    """One notional bracket of Binance's USDⓈ-M leverage and margin table.

    A position whose notional (|qty| × mark) is at least `floor` and below the next
    tier's floor has maintenance margin ``notional × rate − amount`` and may use at most
    `max_leverage`. `amount` is Binance's "maintenance amount" (cum), which makes the
    margin continuous across tiers.
    """

    floor: Decimal = Field(ge=0)
    max_leverage: int = Field(ge=1, le=125)
    rate: Decimal = Field(gt=0, lt=1)
    amount: Decimal = Field(ge=0)


def _binance_btcusdt_tiers() -> list[MarginTier]:
    """Binance's published USDⓈ-M BTCUSDT brackets (notional floor in USDT, max leverage,
    maintenance margin rate, maintenance amount)."""
    rows = (
        ("0", 125, "0.004", "0"),
        ("50000", 100, "0.005", "50"),
        ("600000", 75, "0.0065", "950"),
        ("3000000", 50, "0.01", "11450"),
        ("12000000", 25, "0.02", "131450"),
        ("70000000", 20, "0.025", "481450"),
        ("100000000", 10, "0.05", "2981450"),
        ("230000000", 5, "0.1", "14481450"),
        ("480000000", 4, "0.125", "26481450"),
        ("600000000", 3, "0.15", "41481450"),
        ("800000000", 2, "0.25", "121481450"),
        ("1200000000", 1, "0.5", "421481450"),
    )
    return [
        MarginTier(floor=Decimal(f), max_leverage=lev, rate=Decimal(r), amount=Decimal(a))
        for f, lev, r, a in rows
    ]


class PaperSettings(BatchSettings):
    """How the paper engine charges, margins and fills.

    Environment: ``TICKSCAN_PAPER__MAX_LEVERAGE=20``, ``TICKSCAN_PAPER__SPOT_FEES='{"maker":
    "0.00075", "taker": "0.00075"}'`` and so on.
    """

    spot_fees: Fees = Field(default=Fees(maker=Decimal("0.001"), taker=Decimal("0.001")))
    """Binance spot's base tier: 0.1 % maker, 0.1 % taker."""

    usdm_fees: Fees = Field(default=Fees(maker=Decimal("0.0002"), taker=Decimal("0.0005")))
    """Binance USDⓈ-M's base tier: 0.02 % maker, 0.05 % taker."""

    max_leverage: int = Field(default=125, ge=1, le=125)
    """The highest leverage a paper account may set (Binance's own cap is 125, and each
    tier's `MarginTier.max_leverage` caps it further)."""

    default_leverage: int = Field(default=20, ge=1, le=125)
    """A USDⓈ-M symbol's leverage until the account sets one (Binance's default is 20)."""

    margin_tiers: list[MarginTier] = Field(default_factory=_binance_btcusdt_tiers)
    """Maintenance-margin tiers by notional, ascending floors from 0 (defaults: Binance's
    BTCUSDT brackets); every USDⓈ-M symbol uses them."""

    book_stale_after_s: float = Field(default=3.0, gt=0)
    """A book (best bid/ask or depth) older than this, in market time, is not filled
    against: a market order waits for a fresh one, or is rejected when none comes within
    `market_order_wait_s`."""

    market_order_wait_s: float = Field(default=5.0, ge=0)
    """How long, in market time, a market order waits for a fresh book before it expires."""

    max_accounts: int = Field(default=100_000, ge=1)
    """Accounts one engine holds; opening more is refused."""

    journal_fsync: bool = True
    """Whether each batch of events appended to the engine's journal (its commit point,
    `flows.sinks.journal`) is fsync'ed before the events are published; off, a power
    cut (not a process crash) may lose events already published."""

    catchup_max_h: float = Field(default=24.0, gt=0)
    """At start, the market data missed since the engine's last market time is replayed
    (`flows.trading.catchup`) when that time is at most this many hours ago; older, the
    catch-up is skipped with a warning: resting orders would fill against a market that
    moved on long ago."""

    @model_validator(mode="after")
    def _check(self) -> PaperSettings:
        tiers = self.margin_tiers
        if not tiers or tiers[0].floor != 0:
            raise ValueError("margin_tiers must start at a floor of 0")
        if any(b.floor <= a.floor for a, b in itertools.pairwise(tiers)):
            raise ValueError("margin_tiers floors must rise")
        if self.default_leverage > self.max_leverage:
            raise ValueError("default_leverage must not exceed max_leverage")
        return self
