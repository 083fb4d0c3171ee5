"""What the API does, without FastAPI: queries, filters, boards. Routes stay thin.

`board` chooses a request's live, delayed or past board, whose `columns` a filter names
and a sort orders by; the scanner filter is `filters` (the model), `filter_query` (query
parameters), `filter_eval` (live) and `filter_sql` (ClickHouse); `candles`, `symbols`,
`signals` and `perps` (a perpetual's open interest, funding, liquidations per chart bar)
read history, their time bounds parsed by `times`; `paper/` is paper trading (`reads`:
views and history; `commands` to the engine and their `answers`; `models`: its bodies and
wire-form answers).
"""
