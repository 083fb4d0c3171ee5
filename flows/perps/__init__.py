"""Perpetual futures data in ClickHouse: marks, liquidations, open interest and funding.

- `store`: the perpetuals store flow, md.marks.v1, md.liquidations.v1, md.open_interest.v1
  and md.funding.v1 -> ``marks_1s``, ``liquidations``, ``open_interest`` and ``funding``
  (through `flows.sinks.perps.PerpWriter`), rejects to the dead letters.
- `funding`: the settled funding rate from the live mark stream (the last estimate before
  each funding time), one ``funding`` row of source ``stream`` per funding time.
- `resume`: that derivation's state rebuilt from ClickHouse at start.
- `retention`: the ``marks_1s`` TTL, set from `settings.PerpStoreSettings.marks_ttl_days`.
- `settings`: the ``perps`` settings section (``TICKSCAN_PERPS__*``).
"""
