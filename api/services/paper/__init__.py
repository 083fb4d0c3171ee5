"""Paper trading for signed-in users: their accounts, orders, fills, positions and equity.

- `reads`: the accounts, and an account's latest view (what the engine last published)
  and history (orders, fills, equity curve from ClickHouse).
- `commands`: `Paper`, the reads plus the commands sent to the engine.
- `answers`: what the engine's answer to a command means (the orders, or the error).
- `models`: the request bodies and the wire-form answers.
"""
