"""Dataflows, a wing per concept: candles, signals, perpetuals, the live ingest, and their
connectors.

Bytewax stays behind this package. Each wing keeps its pure rules on top (no Bytewax, no
I/O, table-tested) and its Bytewax wiring at the bottom:

- `candles`: trades -> 1s and 1m candles, and the trade store.
- `signals`: candles, quotes and 24h tickers -> metrics, ranks and signals.
- `ingest`: live Binance sockets -> Kafka, sequenced, gap-repaired and watched.
- `perps`: perpetuals data (marks, liquidations, open interest, funding) -> ClickHouse,
  and settled funding derived from the mark stream.
- `sources`, `sinks`: what brings data in (Binance, files, Kafka, the simulator) and takes
  it out (ClickHouse, Kafka, dead letters).

Shared by the wings: `batching` (how a Kafka -> ClickHouse flow batches), `recovery`
(Bytewax snapshots), `dead_letters` (rejects and their Kafka form), `count_log` (a
running count said at INFO now and then), `errors` (`FlowError`, the base of every error
raised here).
"""
