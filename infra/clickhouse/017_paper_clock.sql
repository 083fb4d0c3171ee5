-- The paper engine's market time (`tickscan paper`): the latest exchange time it had
-- applied, written once a market-time minute and when it stops, each time after the events
-- it had caused by then are in paper_events. A restart replays the market data after it
-- (flows/trading/catchup.py), so a resting order fills on what traded while it was down.

CREATE TABLE IF NOT EXISTS {database:Identifier}.paper_clock
(
    time DateTime64(6, 'UTC') COMMENT 'Market time the paper engine had applied everything up to (the latest exchange time of the market data it had read).',
    written_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When the engine wrote the row (UTC).'
)
ENGINE = ReplacingMergeTree
ORDER BY time
TTL toDateTime(written_at) + INTERVAL 7 DAY
COMMENT 'The paper engine''s market time, one row a market-time minute: max(time) is where a restart''s catch-up of missed market data begins. Rows expire after 7 days (a catch-up reaches back at most paper.catchup_max_h).';
