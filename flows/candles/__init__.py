"""Candles: trades -> 1s and 1m candles equal to the exchange's klines, and the trade store.

- `engine`: the kline rules as pure code (no Bytewax, no I/O): a partition's event time,
  windows and revisions; `symbol_state`: one symbol's sums, series and candles.
- `trade_ids`: each trade once, by its raw trade id per symbol, in bounded memory.
- `flow`: md.trades.v1 -> candles_1s/1m + md.candles.v1; `resume`: its state rebuilt
  from the stored candles after a crash.
- `trade_store`: md.trades.v1 -> the ClickHouse `trades` table.
"""
