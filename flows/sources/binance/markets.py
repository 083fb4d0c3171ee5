"""Binance's markets described once each: endpoints, stream names, id kind, limits, pages.

Spot and USDⓈ-M speak the same protocol with different facts: other hosts and paths,
another trade stream, other weights and page sizes. Each market's facts are one frozen
value, `SPOT` or `USDM` (a `UsdmMarket`: the rules that differ are methods overridden
there), found by `binance_market`; the REST client, the WebSocket pool, the stream
choice, the symbol reader and the archive reader take what they need from it. The URLs
are Binance's production defaults; a caller given another base URL (the fake exchange
of the tests) uses that one instead.

Sources, developers.binance.com: General API Information and Market Data Endpoints of
Spot and USDⓈ-M Futures (weights, page limits, ``REQUEST_WEIGHT``), WebSocket Streams
(hosts, per-connection limits) and the USDⓈ-M URL split of 2026-03-06; data.binance.vision
(the trade archives' columns).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from schemas.trades import Market

__all__ = [
    "MARKETS",
    "SPOT",
    "USDM",
    "BinanceMarket",
    "TradeKind",
    "UsdmMarket",
    "binance_market",
]

TradeKind = Literal["trade", "aggTrade"]
"""What the ids of a trade range count: raw trade ids or aggregate trade ids."""


@dataclass(frozen=True, slots=True, eq=False)
class BinanceMarket:
    """The fixed facts of one Binance market; the rules here are spot's.

    Attributes:
        market: Our name for it, ``spot`` or ``usdm``.
        rest_url: Production REST scheme and host.
        rest_prefix: Path of the REST API below the host, e.g. ``/api/v3``.
        ws_url: Production WebSocket scheme and host (and port).
        trade_kind: The trade stream followed live, which is also what the ids of a gap
            count: ``trade`` (raw ids, repaired from ``historicalTrades``) or
            ``aggTrade`` (aggregate ids, repaired from ``aggTrades``).
        weight_limit_1m: ``REQUEST_WEIGHT`` per minute per IP, as ``exchangeInfo``
            publishes it.
        weights: Request weight of each REST endpoint we call (``klines`` may depend on
            the page size: see `klines_weight`).
        max_klines: Most rows one ``klines`` request returns.
        max_trades: Most rows of one ``trades`` (most recent) request.
        max_historical_trades: Most rows of one ``historicalTrades`` request.
        max_agg_trades: Most rows of one ``aggTrades`` request.
        kline_page: Klines asked for per page when paging through history: the most
            klines per unit of weight.
        ws_max_streams: Streams per connection by default (Binance allows 1024): a
            reconnect re-subscribes, and loses, little at a time.
        ws_messages_per_s: Messages a client may send per second per connection.
        archive_columns: Columns of a data.binance.vision ``trades`` and ``aggTrades``
            CSV row. The leading columns line up in every layout; spot adds a trailing
            ``is_best_match``.
    """

    market: Market
    rest_url: str
    rest_prefix: str
    ws_url: str
    trade_kind: TradeKind
    weight_limit_1m: int
    weights: Mapping[str, int]
    max_klines: int
    max_trades: int
    max_historical_trades: int
    max_agg_trades: int
    kline_page: int
    ws_max_streams: int
    ws_messages_per_s: float
    archive_columns: Mapping[str, int]

    def klines_weight(self, limit: int) -> int:
        """Request weight of a ``klines`` call of `limit` rows: fixed on spot."""
        return self.weights["klines"]

    def stream_path(self, stream: str) -> str:
        """The URL path below `ws_url` a stream is served under: ``/stream`` for all on spot."""
        return "/stream"

    def symbol_kind(self, contract_type: str | None) -> str:
        """What a symbol of ``exchangeInfo`` trades: on spot always ``spot``."""
        return "spot"


@dataclass(frozen=True, slots=True, eq=False)
class UsdmMarket(BinanceMarket):
    """USDⓈ-M perpetuals and futures: where their rules differ from spot's."""

    def klines_weight(self, limit: int) -> int:
        """Request weight of a ``klines`` call: by `limit` (1 below 100, 2 below 500, 5 up
        to 1000, 10 above)."""
        if limit < 100:
            return 1
        if limit < 500:
            return 2
        if limit <= 1000:
            return 5
        return 10

    def stream_path(self, stream: str) -> str:
        """``/market/stream`` for ``aggTrade``, ``kline``, ``markPrice`` (and continuous
        klines) and the liquidation orders (``forceOrder``, ``!forceOrder@arr``);
        ``/public/stream`` for the high-frequency ``bookTicker``, ``depth`` and ``trade``,
        and for anything else (the URL split of 2026-03-06)."""
        name, _, kind = stream.partition("@")
        if name == "!forceOrder" or kind.startswith(
            ("aggTrade", "kline", "markPrice", "continuousKline", "forceOrder")
        ):
            return "/market/stream"
        return "/public/stream"

    def symbol_kind(self, contract_type: str | None) -> str:
        """The contract type lower-cased (``perpetual``, ``current_quarter``), or
        ``unknown`` when the exchange gives none (a delivered contract)."""
        return (contract_type or "unknown").lower()


SPOT = BinanceMarket(
    market="spot",
    rest_url="https://api.binance.com",
    rest_prefix="/api/v3",
    ws_url="wss://stream.binance.com:9443",
    trade_kind="trade",  # every raw trade has its own stream event
    weight_limit_1m=6000,
    weights=MappingProxyType(
        {
            "exchangeInfo": 20,  # all symbols
            "klines": 2,  # whatever the limit
            "aggTrades": 4,
            "trades": 25,
            "historicalTrades": 25,
            "ticker/24hr": 80,  # every symbol at once (no `symbol` parameter)
        }
    ),
    max_klines=1000,
    max_trades=1000,
    max_historical_trades=1000,
    max_agg_trades=1000,
    kline_page=1000,  # klines cost 2 whatever the limit: take the most
    ws_max_streams=200,
    ws_messages_per_s=5.0,  # pings and pongs included
    # id,price,qty,quote_qty,time,is_buyer_maker,is_best_match and
    # agg_id,price,qty,first_id,last_id,time,is_buyer_maker,is_best_match
    archive_columns=MappingProxyType({"trades": 7, "aggTrades": 8}),
)
"""Binance spot (``/api/v3``): raw ``@trade`` streams, raw trade ids."""

USDM = UsdmMarket(
    market="usdm",
    rest_url="https://fapi.binance.com",
    rest_prefix="/fapi/v1",
    ws_url="wss://fstream.binance.com",  # /market and /public below it: see stream_path
    trade_kind="aggTrade",  # market trades only, as the klines count them
    weight_limit_1m=2400,
    weights=MappingProxyType(
        {
            "exchangeInfo": 1,
            "aggTrades": 20,
            "trades": 5,
            "historicalTrades": 20,  # a MARKET_DATA endpoint: sent with an API key if any
            "ticker/24hr": 40,  # every symbol at once (no `symbol` parameter)
            "openInterest": 1,  # one symbol's open interest now
        }
    ),
    max_klines=1500,  # weighing 10: see klines_weight
    max_trades=1000,
    max_historical_trades=500,
    max_agg_trades=1000,
    kline_page=499,  # weight 2: the most klines per unit of weight, 2.5x what 1500 for 10 gives
    ws_max_streams=100,
    ws_messages_per_s=10.0,
    # id,price,qty,quote_qty,time,is_buyer_maker and agg_trade_id,price,quantity,
    # first_trade_id,last_trade_id,transact_time,is_buyer_maker
    archive_columns=MappingProxyType({"trades": 6, "aggTrades": 7}),
)
"""Binance USDⓈ-M futures (``/fapi/v1``): ``@aggTrade`` streams, aggregate ids."""

MARKETS: tuple[BinanceMarket, ...] = (SPOT, USDM)
"""Every market described here."""

_BY_NAME: Mapping[str, BinanceMarket] = MappingProxyType({m.market: m for m in MARKETS})


def binance_market(market: str) -> BinanceMarket:
    """The description of a market by its name.

    Args:
        market: ``spot`` or ``usdm``.

    Raises:
        ValueError: Any other name.
    """
    try:
        return _BY_NAME[market]
    except KeyError:
        raise ValueError(f"market must be spot or usdm, not {market!r}") from None
