"""Binance market data: REST and WebSockets within its limits, and its messages normalised.

- `rest`: spot `/api/v3` and USDⓈ-M `/fapi/v1` REST within the weight budget of `weight`;
  `klines`: a symbol's klines page by page; `symbols`: `exchangeInfo` as `SymbolInfo`.
- `ws`: the pool of WebSocket connections (sharding, rotation, reconnects); `socket`: one
  connection; `streams`: which streams a live ingest follows.
- `trades`, `book`: raw trade/aggTrade and bookTicker messages -> `Trade`, `Quote`.
"""
