-- Dead letters: input lines and Kafka records a stage could not use, kept whole with the
-- reason. The dead-letter topic alone does not keep them: the embedded broker holds its
-- messages in memory, so they would vanish when the process that wrote them exits.

CREATE TABLE IF NOT EXISTS {database:Identifier}.dead_letters
(
    at DateTime64(3, 'UTC') COMMENT 'When the stage rejected it (UTC).',
    run_id String DEFAULT '' COMMENT 'The run that rejected it, e.g. replay-<uuid> for a tickscan replay (its summary names it).',
    stage LowCardinality(String) COMMENT 'The rejecting stage: ingest (a line of a file or an exchange message), candles or trade_store (a record of the trades topic).',
    reason LowCardinality(String) COMMENT 'Short machine reason, e.g. bad_json, bad_columns, invalid_trade, unstorable; for a whole file: missing, unreadable, empty, truncated, corrupt, unnamed.',
    detail String COMMENT 'What exactly was wrong, for a human; for input read from a file it ends with (at <path>:<line>) or (at <path>).',
    source_topic Nullable(String) COMMENT 'Kafka topic the rejected record was read from; NULL for input read from a file or an exchange.',
    source_partition Nullable(Int32) COMMENT 'Partition of source_topic the record was in.',
    source_offset Nullable(Int64) COMMENT 'Offset of the record in source_partition.',
    key Nullable(String) COMMENT 'Kafka key of the record, e.g. binance:spot:BTCUSDT.',
    value String COMMENT 'The rejected line or record exactly as it was: text when it was UTF-8, else base64 (see value_encoding); empty for a whole file that could not be read.',
    value_encoding LowCardinality(String) COMMENT 'utf-8 or base64.'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (run_id, stage, reason, at)
TTL toDateTime(at) + INTERVAL 90 DAY
COMMENT 'Rejected input and records, one row per rejection (a rerun that rejects the same line again adds a row with its own run_id). Kept 90 days.';
