-- Progress of the history a live ingest fetches at start (the last day of 1m klines the
-- store lacks), so that every API process can say the board is warming up and how far.
-- One row per (exchange, market) after merges; a few rows a minute while it runs.

CREATE TABLE IF NOT EXISTS {database:Identifier}.history_progress
(
    exchange LowCardinality(String) COMMENT 'Exchange, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: spot, or usdm for USD-margined perpetual futures.',
    started_at DateTime64(3, 'UTC') COMMENT 'When this fetch of history started (UTC).',
    done UInt32 COMMENT 'Symbols whose missing minutes are fetched and stored (or could not be: see failed).',
    total UInt32 COMMENT 'Symbols that lacked minutes when the fetch started.',
    failed UInt32 COMMENT 'Of done, symbols whose klines could not be fetched; a restart tries them again.',
    candles UInt64 COMMENT 'Candles written to candles_1m so far (source exchange, version 0).',
    weight_1m UInt32 COMMENT 'REST request weight used in the current minute, history and live requests together.',
    finished UInt8 COMMENT '1 once the fetch has ended (done, stopped or refused); 0 while it runs.',
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When this row was written (UTC, by the ClickHouse server clock); a running fetch writes one every few seconds, so an old unfinished row means its process stopped.'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (exchange, market)
TTL toDateTime(updated_at) + INTERVAL 30 DAY
COMMENT 'Progress of the history fetched at start of live ingest, the latest row per (exchange, market) wins: query with FINAL or argMax(..., updated_at).';
