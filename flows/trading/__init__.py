"""Trading: the paper venue's engine, its accounts and margin, and its flow.

`state` holds an account as the fold of its events leaves it; `settings` the engine's
fees, leverage cap, margin tiers and book freshness. USDⓈ-M margin rules are pure
functions reached through `futures` (account margin, liquidation checks, views), which
re-exports `tiers` (maintenance and initial margin, leverage limits), `position` (fills,
P&L, funding of one position) and `liquidation` (liquidation and bankruptcy prices);
`amounts` says how that arithmetic is kept exact and where it is rounded.
"""
