"""A fake Binance exchange (spot or USDⓈ-M) serving real HTTP and WebSocket on 127.0.0.1.

`FakeBinance` generates trades for its symbols while it runs and serves them the way
Binance does: market streams (``trade``, ``aggTrade``, ``bookTicker``, ``kline_1m``) as
raw or combined streams with live SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS, and the
REST market-data endpoints (``exchangeInfo``, ``klines``, ``aggTrades``, ``trades``,
``historicalTrades``, and ``ticker/24hr`` from `ticker`) with
Binance's field names, decimal strings, error JSON, request weights and
``X-MBX-USED-WEIGHT-1M`` header. Everything it sends is computed from one
list of trades per symbol, so REST agrees with the sockets and `trades` is ground truth.

It also misbehaves on request, like the real exchange does on a bad day: abrupt
disconnects, ``serverShutdown``, connections closed after `max_connection_s`, stalled
sockets, one symbol's streams gone quiet (`silence`), trades that never reach a socket
(`skip_ids`), 429/418 answers, delistings.

Payloads are byte-for-byte in Binance's shapes, e.g. a USDⓈ-M aggTrade on
``/market/stream``::

    {"stream":"ctkusdt@aggTrade","data":{"e":"aggTrade","E":1626992741575,"a":16599292,
     "s":"CTKUSDT","p":"1.01100","q":"10","f":23961322,"l":23961322,"T":1626992741421,
     "m":false}}

Use it from async code (``async with FakeBinance("spot") as fake``) or from a sync test,
where it runs its own event loop in a daemon thread (``with FakeBinance("usdm") as fake``).
Trade contents (ids, prices, quantities, sides) are a pure function of the seed and the
symbol; trade times follow the fake's clock (wall time, or `start_ms` plus elapsed time).

Its parts: `market` (per-market facts, symbols and their trades), `exchange` (the
`FakeBinance` object: state, lifecycle, clock), `streams` (each tick's trades and events),
`ws` (sockets and their control protocol), `rest` with `params`, `exchange_info` and
`ticker` (the REST endpoints), `failures` (misbehaviour on request).

On USDⓈ-M, `perp_history` also serves a perpetual's history: ``fundingRate``,
``/futures/data/openInterestHist`` (the last 30 days only) and ``markPriceKlines``.
"""

from tests.fakes.binance.exchange import FakeBinance
from tests.fakes.binance.market import Market

__all__ = ["FakeBinance", "Market"]
