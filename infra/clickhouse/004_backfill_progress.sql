-- What `tickscan backfill` has finished: REST kline chunks (symbol, interval, UTC day, time
-- range) and data.binance.vision archive files (by SHA-256), so that a rerun after a crash
-- or a ban skips them. Rows are only written once a chunk's candles are all in ClickHouse.

CREATE TABLE IF NOT EXISTS {database:Identifier}.backfill_progress
(
    exchange LowCardinality(String) COMMENT 'Exchange, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: spot, or usdm for USD-margined perpetual futures.',
    kind LowCardinality(String) COMMENT 'What was backfilled: klines (a chunk of the exchange''s klines over REST) or archive (a data.binance.vision trades/aggTrades file replayed through the candle flow).',
    symbol LowCardinality(String) COMMENT 'Exchange symbol, e.g. BTCUSDT (for an archive, the one its file name gives).',
    interval LowCardinality(String) DEFAULT '' COMMENT 'klines: the kline interval written, 1m (candles_1m) or 1s (candles_1s); empty for an archive.',
    day Date COMMENT 'UTC day of the chunk; for an archive, the day (or first day of the month) its file name gives.',
    from_time DateTime64(3, 'UTC') COMMENT 'klines: first open time covered (inclusive); archive: start of its day or month.',
    to_time DateTime64(3, 'UTC') COMMENT 'klines: end of the time covered (exclusive); archive: end of its day or month.',
    sha256 String DEFAULT '' COMMENT 'archive: SHA-256 of the file, which identifies it (the same file under another path is done too); empty for klines.',
    path String DEFAULT '' COMMENT 'archive: the file as it was read (absolute path); empty for klines.',
    rows UInt64 COMMENT 'klines: candles written; archive: trades read from the file.',
    completed_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When the chunk or file was finished (UTC); a forced rerun writes a newer row.'
)
ENGINE = ReplacingMergeTree(completed_at)
PARTITION BY toYYYYMM(day)
ORDER BY (exchange, market, kind, symbol, interval, day, from_time, to_time, sha256)
COMMENT 'Chunks and archive files that tickscan backfill has completed, one row per chunk or file; a rerun skips them. Query with FINAL.';
