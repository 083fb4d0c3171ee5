"""Candles: trades -> 1s and 1m candles equal to the exchange's klines, and the trade store.

- `engine`: the kline rules as pure code (no Bytewax, no I/O): a partition's event time,
  windows and revisions; `symbol_state`: one symbol's sums, series and candles.
- `trade_ids`: each trade once, by its raw trade id per symbol, in bounded memory.
- `flow`: md.trades.v1 -> candles_1s/1m + md.candles.v1; `resume`: its state rebuilt
  from the stored candles after a crash; `settings`: its knobs (`TICKSCAN_CANDLES__*`).
- `trade_store`: md.trades.v1 -> the ClickHouse `trades` table.
- `replay`: files -> md.trades.v1 as one bounded run, then the flow and the store over it.
- `backfill`: a backfill's plan (range, chunks per UTC day, verified archives) and records;
  `kline_backfill`: the exchange's own klines over REST into the candle tables;
  `perp_backfill`: a USDⓈ-M perpetual's funding, open interest and mark klines likewise.
- `reports`: what a replay and a backfill did; `progress`: how they report progress.
"""
