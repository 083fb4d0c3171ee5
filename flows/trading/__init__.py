"""Trading: the paper venue's engine, its accounts and margin, and its flow.

`state` holds an account as the fold of its events leaves it; `settings` the engine's
fees, leverage cap, margin tiers and book freshness. USDⓈ-M margin rules are pure
functions reached through `futures` (account margin, liquidation checks, views), which
re-exports `tiers` (maintenance and initial margin, leverage limits), `position` (fills,
P&L, funding of one position) and `liquidation` (liquidation and bankruptcy prices);
`amounts` says how that arithmetic is kept exact and where it is rounded.

The paper venue itself is `engine.PaperEngine` (commands and market data in, account
events out, in market time), built by concept: `rules` (symbol filters and every
refusal in Binance's words), `book` (quote + depth20, freshness, what an account
took from it), `matching` (walking the book, queue position, one trade shared among an
account's resting orders), `orders` (an order's values), `venue` (state and `_emit`),
`vetting`, `execution`, `marks` (funding, mark stops, liquidation), `commands`, `views`
(`AccountView`), and `ledger` (the fold: `apply`) with `spot` (locks, spot fills).

The engine as a process (`tickscan paper`) is `flow.PaperFlow`: Kafka in, the engine,
ClickHouse (`flows.sinks.trading`) and Kafka out; `process` holds its topics, counters
and the steps of its start, `resume` brings it back from the stored log, `catchup`
replays the market it missed while down (read by `backlog` from the topics or ClickHouse),
`intake` takes
what it reads to the engine (`interest` says which symbols' market data is decoded),
`outbox` what the engine says out (`pacing`: when views and depth watches go out).
"""
