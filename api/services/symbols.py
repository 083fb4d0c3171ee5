"""The symbol directory: every symbol's metadata from ClickHouse ``symbols``, kept in memory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Literal, cast

from pydantic import BaseModel, Field

from api.store import Store
from schemas.symbols import SymbolInfo
from schemas.trades import Market

logger = logging.getLogger(__name__)

_SELECT = """
SELECT exchange, market, symbol, base_asset, quote_asset, status, kind, tick_size, step_size,
       toUnixTimestamp64Milli(updated), min_qty, max_qty, market_max_qty, min_notional
FROM {database:Identifier}.symbols FINAL
"""


class SymbolDirectory:
    """Symbol metadata by key (``exchange:market:symbol``), refreshed from ClickHouse.

    Lookups are dictionary reads on the event loop; `refresh` swaps in a whole new
    dictionary, so a reader never sees a half-read table.
    """

    def __init__(self, infos: Iterable[SymbolInfo] = ()) -> None:
        self._by_key: dict[str, SymbolInfo] = {info.key: info for info in infos}
        self._quotes: list[str] = _quotes(self._by_key.values())

    async def refresh(self, store: Store) -> int:
        """Re-read every symbol from ClickHouse ``symbols`` (latest row of each).

        Args:
            store: The process's ClickHouse store.

        Returns:
            How many symbols the directory now holds.
        """
        _, rows = await store.query(_SELECT, {"database": store.database})
        by_key = {}
        for row in rows:
            exchange, market, symbol, base, quote, status, kind, tick, step, updated = row[:10]
            min_qty, max_qty, market_max_qty, min_notional = row[10:]
            info = SymbolInfo(
                exchange=exchange,
                market=cast(Market, market),
                symbol=symbol,
                base_asset=base,
                quote_asset=quote,
                status=status,
                kind=kind,
                tick_size=tick,
                step_size=step,
                updated_ms=updated,
                min_qty=min_qty,
                max_qty=max_qty,
                market_max_qty=market_max_qty,
                min_notional=min_notional,
            )
            by_key[info.key] = info
        self._by_key = by_key
        self._quotes = _quotes(by_key.values())
        return len(by_key)

    def get(self, key: str, /) -> SymbolInfo | None:
        """The metadata of ``exchange:market:symbol``, or None when unknown."""
        return self._by_key.get(key)

    def all(self) -> list[SymbolInfo]:
        """Every symbol, sorted by exchange, market and symbol."""
        return sorted(self._by_key.values(), key=_order)

    def quote_assets(self) -> list[str]:
        """The quote assets of every symbol, sorted: what a quote-currency toggle offers."""
        return list(self._quotes)

    def find(
        self,
        *,
        exchange: str | None = None,
        market: Market | None = None,
        quote: str | None = None,
        status: str | None = None,
    ) -> list[SymbolInfo]:
        """The symbols that match every criterion given, sorted like `all`.

        Args:
            exchange: Only this exchange (``binance``).
            market: Only this market (``spot`` or ``usdm``).
            quote: Only this quote asset, any case (``usdt``).
            status: Only this status, any case (``trading``).
        """
        quote = quote.upper() if quote else None
        status = status.upper() if status else None
        return [
            info
            for info in self.all()
            if (exchange is None or info.exchange == exchange)
            and (market is None or info.market == market)
            and (quote is None or info.quote_asset == quote)
            and (status is None or info.status == status)
        ]

    def __len__(self) -> int:
        return len(self._by_key)


def _order(info: SymbolInfo) -> tuple[str, str, str]:
    return (info.exchange, info.market, info.symbol)


def _quotes(infos: Iterable[SymbolInfo]) -> list[str]:
    return sorted({info.quote_asset for info in infos})


async def run_refresher(directory: SymbolDirectory, store: Store, every_s: float) -> None:
    """Refresh `directory` now and then every `every_s` seconds, until cancelled.

    A failed refresh is logged and the directory keeps what it had: stale metadata
    serves better than none.

    Args:
        directory: The process's directory (what `api.deps.SymbolsDep` hands out).
        store: The process's ClickHouse store.
        every_s: Seconds between refreshes (``settings.api.symbols_refresh_s``).
    """
    while True:
        try:
            count = await directory.refresh(store)
        except Exception as exc:  # any driver or engine failure: keep the old directory
            logger.warning("symbol refresh failed, keeping %d symbols: %s", len(directory), exc)
        else:
            logger.debug("symbol directory holds %d symbols", count)
        await asyncio.sleep(every_s)


class SymbolOut(BaseModel):
    """One symbol as the API shows it."""

    key: str = Field(description="`exchange:market:symbol`, the key of its live messages.")
    exchange: str
    market: Literal["spot", "usdm"]
    symbol: str
    base_asset: str
    quote_asset: str
    status: str = Field(description="The exchange's trading status, e.g. TRADING, BREAK.")
    kind: str = Field(description="spot, or on usdm the contract type: perpetual, ...")
    tick_size: str | None = Field(
        description="Smallest price step as an exact decimal string; null if none."
    )
    step_size: str | None = Field(
        description="Smallest quantity step as an exact decimal string; null if none."
    )
    updated_ms: int = Field(description="When the exchange described it so (ms since epoch).")
    min_qty: str | None = Field(
        default=None,
        description="Smallest order quantity (LOT_SIZE minQty), exact decimal; null if none.",
    )
    max_qty: str | None = Field(
        default=None,
        description="Largest limit-order quantity (LOT_SIZE maxQty), exact decimal; null if none.",
    )
    market_max_qty: str | None = Field(
        default=None,
        description="Largest market-order quantity (MARKET_LOT_SIZE maxQty); null if none.",
    )
    min_notional: str | None = Field(
        default=None,
        description=(
            "Smallest order value, price x quantity in the quote asset (NOTIONAL / "
            "MIN_NOTIONAL); an order below it is rejected. Null if none."
        ),
    )

    @classmethod
    def of(cls, info: SymbolInfo) -> SymbolOut:
        """The API's view of one symbol."""
        return cls(
            key=info.key,
            exchange=info.exchange,
            market=info.market,
            symbol=info.symbol,
            base_asset=info.base_asset,
            quote_asset=info.quote_asset,
            status=info.status,
            kind=info.kind,
            tick_size=plain(info.tick_size),
            step_size=plain(info.step_size),
            updated_ms=info.updated_ms,
            min_qty=plain(info.min_qty),
            max_qty=plain(info.max_qty),
            market_max_qty=plain(info.market_max_qty),
            min_notional=plain(info.min_notional),
        )


def plain(value: Decimal | None) -> str | None:
    """A size as the shortest exact decimal string: ``0.01``, ``1``, never ``1E-8``."""
    if value is None:
        return None
    return format(value.normalize(), "f")
