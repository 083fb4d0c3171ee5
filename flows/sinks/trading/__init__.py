"""ClickHouse and Kafka output of the paper engine.

- `rows`: its events (and minute valuations) as rows of ``paper_events``, ``paper_orders``,
  ``paper_fills`` and ``paper_ledger``, and which table each goes to (ledger last, see
  `flows.trading.resume`).
- `store`: the inserts of those rows, synchronously (`PaperStore`) or in a thread of their
  own (`DerivedRows`).
- `output`: each batch of events committed (to the journal or ``paper_events``) before it
  is published, in a thread of its own (`PaperOutput`).
"""
