"""The live ingest: Binance WebSocket trades and quotes to Kafka, repaired and watched.

- `run`: what the ingest is, and its public names; `market`: one market's lifecycle,
  from its symbol universe to shutdown, on the `parts` `tickscan.ingest` opens for it
  (clients, publishers, and the Kafka consumers it reads through); `status`: its counts
  and report.
- `frames`: messages off the sockets, decoded, sequenced and published by `trades` and
  `quotes`; `delivery`: what the broker acknowledged, and the ingest's errors.
- `sequence`: per-symbol trade ids (duplicates, gaps); `gaps`: repair from REST;
  `resume`: where a restart picks up; `staleness`: symbols gone silent.
- `history`: the day of 1m klines and the 24h tickers a fresh store lacks (`coverage`:
  which minutes, symbol by symbol).
- `depth_watch`: which symbols' 20-level depth to follow (``md.depth_watch.v1``, read
  like our candles through `topic_feed`), published by `quotes`' `DepthPublisher`.
- `crosscheck`: our 1m candles (read by `candle_feed`) against the exchange's closed
  klines, each disagreement a `mismatch`; `data_quality`: where gaps, mismatches,
  stale symbols and perpetuals without mark price are written.
- `perps`: USDⓈ-M mark prices, liquidations and open interest published (through the
  `quotes` module's sampled-record publisher); `open_interest`: the poll, spread over
  each round within its share of the REST weight budget.
- `settings`: its timings and limits (`TICKSCAN_INGEST__*`).
"""
