"""Trading: the paper venue's engine, its accounts and margin, and its flow.

`state` holds an account as the fold of its events leaves it; `settings` the engine's
fees, leverage cap, margin tiers and book freshness.
"""
