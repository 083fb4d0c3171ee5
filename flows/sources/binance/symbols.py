"""Symbol metadata from Binance's ``exchangeInfo`` (spot and USDⓈ-M) as `SymbolInfo` rows."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from flows.sources.binance.markets import binance_market
from schemas.symbols import SymbolInfo
from schemas.trades import Market

logger = logging.getLogger(__name__)


class _Filter(msgspec.Struct, rename="camel"):
    """One entry of a symbol's ``filters``; only the two sizes we keep are read."""

    filter_type: str
    tick_size: str | None = None
    step_size: str | None = None


class _Symbol(msgspec.Struct, rename="camel"):
    """The fields of one ``symbols`` entry we keep (every other field is ignored)."""

    symbol: str
    status: str
    base_asset: str
    quote_asset: str
    contract_type: str | None = None
    filters: list[_Filter] = msgspec.field(default_factory=list)


def symbol_infos(
    exchange: str, market: Market, exchange_info: Mapping[str, Any]
) -> list[SymbolInfo]:
    """Every symbol an ``exchangeInfo`` response lists, whatever its status.

    A real USDⓈ-M entry (``GET /fapi/v1/exchangeInfo``, abridged to what is read)::

        {"serverTime": 1645233611962, "symbols": [{"symbol": "BTCUSDT", "pair": "BTCUSDT",
         "contractType": "PERPETUAL", "status": "TRADING", "baseAsset": "BTC",
         "quoteAsset": "USDT", "marginAsset": "USDT", "pricePrecision": 2,
         "filters": [{"minPrice": "402", "maxPrice": "1246396.60",
                      "filterType": "PRICE_FILTER", "tickSize": "0.10"},
                     {"stepSize": "0.001", "filterType": "LOT_SIZE", "maxQty": "1000",
                      "minQty": "0.001"}, ...]}, ...]}

    Spot entries have the same fields but no ``contractType``, and print sizes with
    eight decimals (``"tickSize": "0.01000000"``).

    Args:
        exchange: The `exchange` of every row, e.g. ``binance``.
        market: ``spot`` or ``usdm``; the kind of a spot row is ``spot``, of a USDⓈ-M
            row its ``contractType`` lower-cased (``perpetual``, ``current_quarter``),
            or ``unknown`` when the exchange gives none (a delivered contract).
        exchange_info: The decoded response.

    Returns:
        One `SymbolInfo` per well-formed entry, in the response's order, each stamped
        with the response's ``serverTime`` (0 when absent). A size of zero (Binance's
        "no rule") or a missing filter is None. Malformed entries are logged and left out.
    """
    facts = binance_market(market)
    updated_ms = exchange_info.get("serverTime")
    if not isinstance(updated_ms, int) or isinstance(updated_ms, bool):
        updated_ms = 0
    out: list[SymbolInfo] = []
    for raw in exchange_info.get("symbols") or ():
        try:
            entry = msgspec.convert(raw, _Symbol)
            tick = _size(entry.filters, "PRICE_FILTER")
            step = _size(entry.filters, "LOT_SIZE")
        except (msgspec.ValidationError, InvalidOperation) as exc:
            logger.warning("exchangeInfo of %s %s: skipped %.200r: %s", exchange, market, raw, exc)
            continue
        out.append(
            SymbolInfo(
                exchange=exchange,
                market=market,
                symbol=entry.symbol,
                base_asset=entry.base_asset,
                quote_asset=entry.quote_asset,
                status=entry.status,
                kind=facts.symbol_kind(entry.contract_type),
                tick_size=tick,
                step_size=step,
                updated_ms=updated_ms,
            )
        )
    return out


def _size(filters: list[_Filter], filter_type: str) -> Decimal | None:
    """The tick size of PRICE_FILTER or the step size of LOT_SIZE, None if absent or 0."""
    for f in filters:
        if f.filter_type == filter_type:
            text = f.tick_size if filter_type == "PRICE_FILTER" else f.step_size
            if text is None:
                return None
            value = Decimal(text)
            if not value.is_finite() or value < 0:
                raise InvalidOperation(f"{filter_type} size {text!r} is not a size")
            return value or None
    return None
