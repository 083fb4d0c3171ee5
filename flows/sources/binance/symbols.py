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
    """One entry of a symbol's ``filters``; only the fields we keep are read."""

    filter_type: str
    tick_size: str | None = None
    step_size: str | None = None
    min_qty: str | None = None
    max_qty: str | None = None
    min_notional: str | None = None
    notional: str | None = None


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
                      "minQty": "0.001"},
                     {"notional": "10", "filterType": "MIN_NOTIONAL"}, ...]}, ...]}

    ``MARKET_LOT_SIZE`` (``minQty``, ``maxQty``, ``stepSize``) caps a market order.
    Spot entries have the same fields but no ``contractType``, print sizes with eight
    decimals (``"tickSize": "0.01000000"``), and give the minimum order value as
    ``{"filterType": "NOTIONAL", "minNotional": "5.00000000", ...}`` (older listings:
    ``MIN_NOTIONAL`` with ``minNotional``).

    Args:
        exchange: The `exchange` of every row, e.g. ``binance``.
        market: ``spot`` or ``usdm``; the kind of a spot row is ``spot``, of a USDⓈ-M
            row its ``contractType`` lower-cased (``perpetual``, ``current_quarter``),
            or ``unknown`` when the exchange gives none (a delivered contract).
        exchange_info: The decoded response.

    Returns:
        One `SymbolInfo` per well-formed entry, in the response's order, each stamped
        with the response's ``serverTime`` (0 when absent). A value of zero (Binance's
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
            filters = _filters(entry.filters)
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
                tick_size=filters["tick_size"],
                step_size=filters["step_size"],
                updated_ms=updated_ms,
                min_qty=filters["min_qty"],
                max_qty=filters["max_qty"],
                market_max_qty=filters["market_max_qty"],
                min_notional=filters["min_notional"],
            )
        )
    return out


_FIELDS: tuple[tuple[str, str, str], ...] = (
    # (SymbolInfo field, filterType, _Filter attribute), in order of preference per field
    ("tick_size", "PRICE_FILTER", "tick_size"),
    ("step_size", "LOT_SIZE", "step_size"),
    ("min_qty", "LOT_SIZE", "min_qty"),
    ("max_qty", "LOT_SIZE", "max_qty"),
    ("market_max_qty", "MARKET_LOT_SIZE", "max_qty"),
    ("min_notional", "NOTIONAL", "min_notional"),  # spot today
    ("min_notional", "MIN_NOTIONAL", "min_notional"),  # spot, older listings
    ("min_notional", "MIN_NOTIONAL", "notional"),  # USDⓈ-M
)


def _filters(filters: list[_Filter]) -> dict[str, Decimal | None]:
    """The `SymbolInfo` filter fields of one entry's ``filters``: None if absent or 0.

    Raises:
        InvalidOperation: A value that is not a non-negative finite decimal.
    """
    by_type = {f.filter_type: f for f in filters}
    out: dict[str, Decimal | None] = {}
    for field, filter_type, attribute in _FIELDS:
        if out.get(field) is not None:
            continue
        found = by_type.get(filter_type)
        text = None if found is None else getattr(found, attribute)
        if text is None:
            out.setdefault(field, None)
            continue
        value = Decimal(text)
        if not value.is_finite() or value < 0:
            raise InvalidOperation(f"{filter_type} {attribute} {text!r} is not a size")
        out[field] = value or None
    return out
