"""Signals: md.candles.v1 + md.quotes.v1 + md.tickers.v1 -> ranks, signals and snapshots.

- `history`: each symbol's recent 1s and 1m candles in rings (`columns`: a candle's
  figures as they take them, and stored candles as columns); `metrics`: the rank row
  computed from them.
- `rules`: signals as pluggable pure functions of closed bars; `bars`: the 5m..1d bars
  they read, rolled up by `schemas.bars`.
- `warm_start`, `warm_bars`: the rings and bars refilled from ClickHouse at start.
- `scanner`: every symbol of one partition, folding candles, quotes and tickers into
  rows and signals; `flow`: the Bytewax flow around it (md.ranks.v1, md.signals.v1,
  ClickHouse `signals` and `rank_snapshots`); `settings`: its batching and the rules'
  parameters (`TICKSCAN_SIGNALS__*`).
"""
