"""Symbol metadata: what the exchange says a symbol is (assets, status, tick sizes)."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from schemas.trades import Market


class SymbolInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """One symbol of one market, as the exchange's ``exchangeInfo`` describes it.

    Ingest writes these to ClickHouse ``symbols`` each time it reads the universe; the
    API joins them to the live board (quote-currency filters, display precision).
    `status` is the exchange's (``TRADING``, ``BREAK``, ...); a delisted symbol keeps
    its last row with its last status. The filters (``PRICE_FILTER`` tick size,
    ``LOT_SIZE`` step size, min and max quantity, ``MARKET_LOT_SIZE`` max quantity,
    ``NOTIONAL`` / ``MIN_NOTIONAL`` minimum) are None when the exchange sets none.
    `kind` is ``spot`` or, on USDⓈ-M, the ``contractType`` lower-cased (``perpetual``,
    ``current_quarter``, ...).
    """

    exchange: str
    market: Market
    symbol: str
    base_asset: str
    quote_asset: str
    status: str
    kind: str
    tick_size: Decimal | None = None
    step_size: Decimal | None = None
    updated_ms: int = 0
    min_qty: Decimal | None = None
    max_qty: Decimal | None = None
    market_max_qty: Decimal | None = None
    min_notional: Decimal | None = None

    @property
    def key(self) -> str:
        """The symbol's key, the same as its messages'."""
        return f"{self.exchange}:{self.market}:{self.symbol}"
