"""Candles: trades -> 1s and 1m candles equal to the exchange's klines, and the trade store.

- `engine`: the kline rules as pure code (no Bytewax, no I/O).
- `trade_ids`: each trade once, by its raw trade id per symbol, in bounded memory.
- `flow`: md.trades.v1 -> candles_1s/1m + md.candles.v1; `settings`: its knobs
  (`TICKSCAN_CANDLES__*`).
- `trade_store`: md.trades.v1 -> the ClickHouse `trades` table.
"""
