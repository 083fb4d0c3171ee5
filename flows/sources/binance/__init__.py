"""Binance market data: REST and WebSockets within its limits, and its messages normalised.

- `markets`: each market's fixed facts (hosts, paths, stream names, id kind, weights,
  page sizes) as one value, `SPOT` or `USDM`.
- `rest`: the REST client within the weight budget of `weight`; `responses`: its bodies
  as typed rows; `errors`: what it raises; `klines`: a symbol's klines page by page;
  `symbols`: `exchangeInfo` as `SymbolInfo`; `perp_responses`: a perpetual's history
  endpoints (funding, open interest, mark klines) and their bodies as `schemas.perps`
  records; `perp_history`: that history page by page.
- `ws/`: the pool of WebSocket connections (shards, sockets, rotation, reconnects);
  `streams`: which streams a live ingest follows.
- `trades`, `book`, `depth`: raw trade/aggTrade, bookTicker and depth20 messages ->
  `Trade`, `Quote`, `BookDepth`;
  `perps`: USDⓈ-M mark prices, liquidations and open interest -> `schemas.perps` records.
"""
