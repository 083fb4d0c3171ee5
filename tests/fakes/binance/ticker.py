"""The fake Binance's ``GET ticker/24hr``: rolling 24h statistics from its own trades.

Binance computes each symbol's figures over the trades of the last 24 hours (a rolling
window, to the minute) and answers every symbol at once when no ``symbol`` is given
(weight 80 on spot, 40 on USDⓈ-M) or one object for one ``symbol`` (weight 2 / 1). A
USDⓈ-M row::

    {"symbol":"BTCUSDT","priceChange":"-94.99999800","priceChangePercent":"-95.960",
     "weightedAvgPrice":"0.29628482","lastPrice":"4.00000200","lastQty":"200.00000000",
     "openPrice":"99.00000000","highPrice":"100.00000000","lowPrice":"0.10000000",
     "volume":"8913.30000000","quoteVolume":"15.30000000","openTime":1499783499040,
     "closeTime":1499869899040,"firstId":28385,"lastId":28460,"count":76}

Spot rows also carry ``prevClosePrice`` and the best bid and ask. A symbol without a
trade in the window answers zeros and ``firstId``/``lastId`` -1, as Binance does.
"""

from __future__ import annotations

import bisect
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.binance.exchange import FakeBinance
    from tests.fakes.binance.market import Symbol

DAY_MS = 86_400_000


def ticker_weight(spot: bool, params: dict[str, str]) -> int:
    """Binance's weight of a ``ticker/24hr`` request."""
    if "symbol" in params:
        return 2 if spot else 1
    return 80 if spot else 40


def ticker_24hr(fake: FakeBinance, params: dict[str, str]) -> Any:
    """The answer to ``ticker/24hr``: one object for ``symbol``, else a list of every one."""
    now = fake.now_ms()
    if "symbol" in params:
        return _row(fake, fake._param_symbol(params), now)
    return [_row(fake, sym, now) for sym in fake._symbols.values()]


def _row(fake: FakeBinance, sym: Symbol, now: int) -> dict[str, Any]:
    open_time = now - DAY_MS
    lo = bisect.bisect_left(sym.times, open_time)
    prints = sym.prints[lo:]
    row: dict[str, Any] = {"symbol": sym.name}
    if prints:
        first, last = prints[0], prints[-1]
        volume = sum(p.qty for p in prints)
        quote = sum(p.price * p.qty for p in prints)
        high = max(p.price for p in prints)
        low = min(p.price for p in prints)
        change = last.price - first.price
        ids = (
            (first.first_id, last.last_id) if fake.market == "spot" else (first.agg_id, last.agg_id)
        )
        count = (
            sum(p.last_id - p.first_id + 1 for p in prints)
            if fake.market == "spot"
            else len(prints)
        )
        row.update(
            priceChange=sym.px(change),
            priceChangePercent=f"{Decimal(change * 100) / Decimal(first.price):.3f}",
            weightedAvgPrice=sym.px(quote // volume) if volume else sym.px(0),
            lastPrice=sym.px(last.price),
            lastQty=sym.qty(last.qty),
            openPrice=sym.px(first.price),
            highPrice=sym.px(high),
            lowPrice=sym.px(low),
            volume=sym.qty(volume),
            quoteVolume=sym.quote_amount(quote),
            openTime=first.time_ms,
            closeTime=now,
            firstId=ids[0],
            lastId=ids[1],
            count=count,
        )
    else:
        zero = sym.px(0)
        row.update(
            priceChange=zero, priceChangePercent="0.000", weightedAvgPrice=zero,
            lastPrice=zero, lastQty=sym.qty(0), openPrice=zero, highPrice=zero, lowPrice=zero,
            volume=sym.qty(0), quoteVolume=sym.quote_amount(0), openTime=open_time,
            closeTime=now, firstId=-1, lastId=-1, count=0,
        )  # fmt: skip
    if fake.market == "spot":
        price = row["lastPrice"]
        row.update(
            prevClosePrice=price, bidPrice=price, bidQty=sym.qty(1), askPrice=price,
            askQty=sym.qty(1),
        )  # fmt: skip
    return row
