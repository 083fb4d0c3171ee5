"""The simulated exchange's listing: its symbols with their prices, tick and step sizes,
trade sizes, spreads and shares of the trades, drawn from the seed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from schemas.symbols import SymbolInfo
from schemas.trades import Market

_ZIPF_EXPONENT = 1.1
_MIN_PRICE_LOG10 = -4.0  # ~0.0001, a meme coin
_MAX_PRICE_LOG10 = math.log10(60_000)  # ~BTC
_PRICE_SIGNIFICANT_DIGITS = 6
_MAX_DECIMALS = 8  # Binance never quotes finer than 1e-8

# Quoted spread relative to the price: a fraction of a basis point for the busiest
# symbols, tens of basis points for the long tail (widened further by the regime).
_SPREAD_TOP = 0.00002
_SPREAD_EXPONENT = 0.6
_SPREAD_MAX = 0.005

# Order-size filters as Binance sets them: the largest limit order is worth about 100M
# USDT at the listing price (BTCUSDT spot: 9,000 BTC), a market order a hundredth of it
# (MARKET_LOT_SIZE), and an order must be worth at least 5 USDT (NOTIONAL).
_MAX_ORDER_VALUE = 1e8
_MARKET_LOT_SHARE_LOG10 = -2
MIN_NOTIONAL = Decimal(5)


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """What the simulator decided about one symbol.

    Attributes:
        symbol: Its name, e.g. `SYM0001USDT`.
        tick_size: Every price is a multiple of it.
        step_size: Every quantity is a multiple of it.
        initial_price: The price it starts at, and the one its walk is pulled back to.
        activity: Its share of the market's trades in the normal regime (all sum to 1).
        median_steps: Median trade size, in steps.
        spread: Its quoted spread relative to the price in the normal regime.
    """

    symbol: str
    tick_size: Decimal
    step_size: Decimal
    initial_price: Decimal
    activity: float
    median_steps: float
    spread: float

    @property
    def price_decimals(self) -> int:
        """Decimals of a price (the tick size is 1e-price_decimals)."""
        return -self.tick_size.as_tuple().exponent  # type: ignore[operator]

    @property
    def qty_decimals(self) -> int:
        """Decimals of a quantity (the step size is 1e-qty_decimals)."""
        return -self.step_size.as_tuple().exponent  # type: ignore[operator]

    @property
    def max_qty(self) -> Decimal:
        """Largest limit-order quantity: a power of ten worth about 100M USDT, a whole
        number of steps."""
        power = math.floor(math.log10(_MAX_ORDER_VALUE / float(self.initial_price)))
        return Decimal(1).scaleb(max(power, -self.qty_decimals))

    @property
    def market_max_qty(self) -> Decimal:
        """Largest market-order quantity: a hundredth of `max_qty`, at least one step."""
        power = self.max_qty.adjusted() + _MARKET_LOT_SHARE_LOG10
        return Decimal(1).scaleb(max(power, -self.qty_decimals))

    def info(self, exchange: str, market: Market, kind: str, updated_ms: int) -> SymbolInfo:
        """The symbol as ``exchangeInfo`` would describe it: TRADING, quoted in USDT, with
        Binance-like filters (one step the least quantity, 5 USDT the least notional).

        Args:
            exchange: Its exchange (``sim``).
            market: ``spot`` or ``usdm``.
            kind: ``spot`` or ``perpetual``.
            updated_ms: When it was so described.
        """
        return SymbolInfo(
            exchange=exchange,
            market=market,
            symbol=self.symbol,
            base_asset=self.symbol.removesuffix("USDT"),  # every name is SYM<n>USDT
            quote_asset="USDT",
            status="TRADING",
            kind=kind,
            tick_size=self.tick_size,
            step_size=self.step_size,
            updated_ms=updated_ms,
            min_qty=self.step_size,
            max_qty=self.max_qty,
            market_max_qty=self.market_max_qty,
            min_notional=MIN_NOTIONAL,
        )


class Listing(NamedTuple):
    """What `list_symbols` drew.

    Attributes:
        specs: Each symbol, busiest first.
        first_trade_ids: Each symbol's first raw trade id, in the same order.
        first_agg_ids: Each symbol's first aggregate trade id, in the same order.
    """

    specs: tuple[SymbolSpec, ...]
    first_trade_ids: list[int]
    first_agg_ids: list[int]


def list_symbols(rng: random.Random, n: int) -> Listing:
    """List `n` symbols, `SYM0001USDT` the busiest.

    Activity follows a Zipf-like law by rank; prices span ~0.0001 to ~60000 with about
    six significant digits; busy symbols trade bigger tickets and quote tighter spreads.

    Args:
        rng: The market's random stream (its draws are taken in symbol order).
        n: How many symbols.

    Returns:
        The symbols and the trade ids each starts at.
    """
    width = max(4, len(str(n)))
    base = [1.0 / (rank + 1) ** _ZIPF_EXPONENT for rank in range(n)]
    total = sum(base)
    activity = [w / total for w in base]
    top = activity[0]
    specs: list[SymbolSpec] = []
    first_trade_ids: list[int] = []
    first_agg_ids: list[int] = []
    for i in range(n):
        level = rng.uniform(_MIN_PRICE_LOG10, _MAX_PRICE_LOG10)
        magnitude = math.floor(level)
        pdec = min(_MAX_DECIMALS, max(0, _PRICE_SIGNIFICANT_DIGITS - 1 - magnitude))
        qdec = min(_MAX_DECIMALS, max(0, magnitude + 1))
        ticks = max(1, round(10**level * 10**pdec))
        price = Decimal(ticks).scaleb(-pdec)
        # Busy symbols trade bigger tickets, as majors do.
        notional = 20.0 + 2_000.0 * (activity[i] / top) ** 0.5
        first_trade_ids.append(rng.randrange(1, 10_000_000))
        first_agg_ids.append(rng.randrange(1, 1_000_000))
        specs.append(
            SymbolSpec(
                symbol=f"SYM{i + 1:0{width}d}USDT",
                tick_size=Decimal(1).scaleb(-pdec),
                step_size=Decimal(1).scaleb(-qdec),
                initial_price=price,
                activity=activity[i],
                median_steps=max(1.0, notional / float(price) * 10**qdec),
                spread=min(_SPREAD_MAX, _SPREAD_TOP * (top / activity[i]) ** _SPREAD_EXPONENT),
            )
        )
    return Listing(tuple(specs), first_trade_ids, first_agg_ids)
