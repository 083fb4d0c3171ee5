"""Signals: md.candles.v1 + md.quotes.v1 + md.tickers.v1 (+ perpetuals' marks, open
interest, liquidations, funding) -> ranks, signals and snapshots.

- `history`: each symbol's recent 1s and 1m candles in rings (`columns`: a candle's
  figures as they take them, and stored candles as columns); `metrics`: the rank row
  computed from them.
- `rules`: signals as pluggable pure functions of closed bars; `bars`: the 5m..1d bars
  they read, rolled up by `schemas.bars`.
- `perps`: a perpetual's mark, funding, open interest and liquidations, and the row's
  metrics from them.
- `warm_start`, `warm_bars`, `warm_perps`: the rings, bars and perpetuals state refilled
  from ClickHouse at start.
- `scanner`: every symbol of one partition, folding candles, quotes, tickers and
  perpetuals records into rows and signals; `flow`: the Bytewax flow around it
  (md.ranks.v1, md.signals.v1, ClickHouse `signals` and `rank_snapshots`); `settings`:
  its batching and the rules' parameters (`TICKSCAN_SIGNALS__*`).
"""
