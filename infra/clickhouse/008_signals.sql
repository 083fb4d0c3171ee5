-- Signal occurrences from the signals flow: one row per (symbol, rule, timeframe, candle close).

CREATE TABLE IF NOT EXISTS {database:Identifier}.signals
(
    exchange LowCardinality(String) COMMENT 'Exchange, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: spot, or usdm for USD-margined perpetual futures.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol as the exchange spells it, e.g. BTCUSDT.',
    name LowCardinality(String) COMMENT 'Signal rule: volume_spike, breakout, ema_cross, or another registered rule.',
    timeframe LowCardinality(String) COMMENT 'Candle interval the rule ran on: 1m, 5m, 15m, 1h, 4h or 1d (longer ones rolled up from 1m, flat minutes skipped).',
    time DateTime64(3, 'UTC') COMMENT 'Close of the candle that fired the signal: its close_time + 1 ms (UTC, exchange time).',
    direction LowCardinality(String) COMMENT 'up or down: volume_spike follows the candle body, breakout the side broken, ema_cross the side the fast EMA crossed to.',
    price Float64 COMMENT 'Close of the candle that fired the signal.',
    value Float64 COMMENT 'The signal''s headline figure: volume / mean volume (volume_spike), percent beyond the level (breakout), (fast - slow) / slow in percent (ema_cross).',
    details Map(String, Float64) COMMENT 'The rule''s other figures, e.g. volume and mean_volume, level, ema_fast and ema_slow.'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (exchange, market, symbol, name, timeframe, time)
COMMENT 'Signal occurrences, each fired once when its candle closed; a rerun over the same candles writes the same rows, merged away on the key. Query with FINAL for exact counts.';
