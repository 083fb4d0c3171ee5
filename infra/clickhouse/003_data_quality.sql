-- Data quality: every gap found in a trade stream and what repaired it, every mismatch
-- between our candles and the exchange's own klines, every stale stream.

CREATE TABLE IF NOT EXISTS {database:Identifier}.data_quality
(
    exchange LowCardinality(String) COMMENT 'Exchange, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: spot, or usdm for USD-margined perpetual futures.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol, e.g. BTCUSDT.',
    kind LowCardinality(String) COMMENT 'What was found: gap (trade ids missing from the stream), kline_mismatch (our candle differs from the exchange''s kline), stale (no message for longer than expected).',
    status LowCardinality(String) COMMENT 'open (found, not yet repaired), repaired (filled from the exchange), unrepairable (the exchange could not fill it), or info.',
    detected_at DateTime64(3, 'UTC') COMMENT 'When tickscan found it (UTC).',
    resolved_at Nullable(DateTime64(3, 'UTC')) COMMENT 'When it was repaired or given up (UTC); NULL while open.',
    first_id Nullable(Int64) COMMENT 'gap: first missing trade id (inclusive).',
    last_id Nullable(Int64) COMMENT 'gap: last missing trade id (inclusive).',
    missing UInt64 DEFAULT 0 COMMENT 'gap: trade ids missing (last_id - first_id + 1).',
    recovered UInt64 DEFAULT 0 COMMENT 'gap: trades fetched from the exchange to fill it.',
    open_time Nullable(DateTime64(3, 'UTC')) COMMENT 'kline_mismatch: open time of the candle compared.',
    interval LowCardinality(String) DEFAULT '' COMMENT 'kline_mismatch: candle interval, e.g. 1m.',
    cause LowCardinality(String) DEFAULT '' COMMENT 'Why it happened when known: reconnect, rotation, server_shutdown, stall, sequence.',
    detail String DEFAULT '' COMMENT 'Human-readable detail: the differing fields, the error that stopped a repair.',
    version UInt64 COMMENT 'Row revision: the repaired row of a gap replaces its open row.'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(detected_at)
ORDER BY (exchange, market, symbol, kind, detected_at, ifNull(first_id, 0))
COMMENT 'Gaps, repairs and kline mismatches, one row per finding; query with FINAL to see each finding''s latest status.';
