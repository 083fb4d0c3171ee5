"""Connectors that take flow output out.

- `clickhouse`: rows buffered per table, inserted as TabSeparated batches; `symbols` and
  `scanner_tables` use it for their tables.
- `kafka`: candles and dead letters produced keyed.
- `dead_letters`: rejects kept beyond a run (a JSON-lines file and ClickHouse).
- `trading/`, `journal`: the paper engine's tables (`rows`, `store`) and its output
  (`output`), and the write-ahead journal its events are committed to before they are
  published.
"""
