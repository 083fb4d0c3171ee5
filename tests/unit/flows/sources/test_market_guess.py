"""Telling spot from USDⓈ-M trades by how Binance prints their decimals, on real data."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from flows.sources.files import read_trades
from flows.sources.market_guess import SAMPLE, MarketEvidence
from schemas.trades import Market, Trade
from tests.shared_data import SHARED_DATA

DATA = SHARED_DATA
USDM_CAPTURE = DATA / "binance-um-btcusdt-20240808" / "hftbacktest_usdm_btcusdt_20240808.gz"
SPOT_WS = DATA / "ws-samples" / "cryptofeed_BINANCE.ws.1.0"
USDM_WS = DATA / "ws-samples" / "cryptofeed_BINANCE_FUTURES.ws.1.0"
SPOT_REST = DATA / "ws-samples" / "nautilus_http_spot_market_trades.json"


def evidence_of(trades: list[Trade]) -> MarketEvidence:
    evidence = MarketEvidence()
    for trade in trades:
        evidence.add(trade)
    return evidence


def trades_in(path: Path, market: Market) -> list[Trade]:
    # Read with the other market on purpose: the guess must come from the data.
    return [t for t in read_trades(path, market=market) if isinstance(t, Trade)]


@pytest.mark.parametrize(
    ("path", "truth"),
    [(USDM_CAPTURE, "usdm"), (USDM_WS, "usdm"), (SPOT_WS, "spot")],
    ids=["usdm-capture", "usdm-aggtrades", "spot-aggtrades"],
)
def test_real_captures_are_told_apart(path: Path, truth: Market) -> None:
    other: Market = "spot" if truth == "usdm" else "usdm"
    evidence = evidence_of(trades_in(path, other))
    assert evidence.guess() == truth
    assert evidence.contradiction(truth) is None
    why = evidence.contradiction(other)
    assert why is not None and why.startswith(f"its trades look like {truth}")


def test_spot_rest_trades_print_8_decimals() -> None:
    rows = json.loads(SPOT_REST.read_text())
    trades = [
        Trade("binance", "spot", "BTCUSDT", r["id"], Decimal(r["price"]), Decimal(r["qty"]),
              r["time"] * 1000, r["isBuyerMaker"])
        for r in rows
    ] * 10  # fmt: skip
    assert evidence_of(trades).guess() == "spot"


def test_no_trades_or_mixed_trades_say_nothing() -> None:
    usdm = trades_in(USDM_CAPTURE, "usdm")
    spot = trades_in(SPOT_WS, "spot")
    assert evidence_of([]).guess() is None
    assert evidence_of(usdm[:50] + spot).guess() is None
    assert evidence_of(usdm[:50] + spot).contradiction("spot") is None


def test_only_a_sample_is_looked_at() -> None:
    evidence = evidence_of(trades_in(USDM_CAPTURE, "spot"))
    assert evidence.seen == SAMPLE
