-- The scanner board once a minute: every symbol's metric row (schemas.ranks.RankRow) as of
-- each whole minute, for analysts and the API's historical scan ("the board as of minute M").
-- The TTL runs on written_at, not the row time: a TTL on `time` expires a replay of 2024
-- candles on arrival (FINAL already hides expired rows), as 001_trades.sql found too.

CREATE TABLE IF NOT EXISTS {database:Identifier}.rank_snapshots
(
    exchange LowCardinality(String) COMMENT 'Exchange, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: spot, or usdm for USD-margined perpetual futures.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol as the exchange spells it, e.g. BTCUSDT.',
    time DateTime64(3, 'UTC') COMMENT 'The whole minute the metrics are as of: the close of the symbol''s 1s candle ending then (UTC, exchange time). Windows end here.',
    price Float64 COMMENT 'Close of the latest 1s candle.',
    change_pct_1m Nullable(Float64) COMMENT 'Percent change of price over the last 1m: against the close of the 1s candle that closed at time - 1m. NULL until the history reaches back that far.',
    change_pct_5m Nullable(Float64) COMMENT 'Percent change of price over the last 5m: against the close of the 1s candle that closed at time - 5m. NULL until the history reaches back that far.',
    change_pct_15m Nullable(Float64) COMMENT 'Percent change of price over the last 15m: against the close of the 1s candle that closed at time - 15m. NULL until the history reaches back that far.',
    change_pct_1h Nullable(Float64) COMMENT 'Percent change of price over the last 1h: against the close of the 1s candle that closed at time - 1h. NULL until the history reaches back that far.',
    change_pct_4h Nullable(Float64) COMMENT 'Percent change of price over the last 4h: against the close of the 1m candle that closed at the last whole minute at or before time - 4h (minute resolution). NULL until the history reaches back that far.',
    change_pct_24h Nullable(Float64) COMMENT 'Percent change of price over the last 24h: against the close of the 1m candle that closed at the last whole minute at or before time - 24h (minute resolution). NULL until the history reaches back that far.',
    quote_volume_1m Nullable(Float64) COMMENT 'Quote volume (sum of price * qty) of the 1s candles in [time - 1m, time). NULL until the history covers it.',
    quote_volume_5m Nullable(Float64) COMMENT 'Quote volume (sum of price * qty) of the 1s candles in [time - 5m, time). NULL until the history covers it.',
    quote_volume_15m Nullable(Float64) COMMENT 'Quote volume (sum of price * qty) of the 1s candles in [time - 15m, time). NULL until the history covers it.',
    quote_volume_1h Nullable(Float64) COMMENT 'Quote volume (sum of price * qty) of the 1s candles in [time - 1h, time). NULL until the history covers it.',
    quote_volume_4h Nullable(Float64) COMMENT 'Quote volume (sum of price * qty) of the whole minutes of the last 4h plus the seconds of the forming minute (the window starts at the first whole minute at or after time - 4h). NULL until the history covers it.',
    quote_volume_24h Nullable(Float64) COMMENT 'Quote volume (sum of price * qty) of the whole minutes of the last 24h plus the seconds of the forming minute (the window starts at the first whole minute at or after time - 24h). NULL until the history covers it.',
    rvol_1m Nullable(Float64) COMMENT 'Relative volume (TradingView): base volume of the 1m bar holding the latest second over the mean volume of the 10 1m bars before it. NULL with fewer than 10 bars or a zero mean.',
    rvol_5m Nullable(Float64) COMMENT 'Relative volume (TradingView): base volume of the 5m bar holding the latest second over the mean volume of the 10 5m bars before it. NULL with fewer than 10 bars or a zero mean.',
    rvol_15m Nullable(Float64) COMMENT 'Relative volume (TradingView): base volume of the 15m bar holding the latest second over the mean volume of the 10 15m bars before it. NULL with fewer than 10 bars or a zero mean.',
    rvol_1h Nullable(Float64) COMMENT 'Relative volume (TradingView): base volume of the 1h bar holding the latest second over the mean volume of the 10 1h bars before it. NULL with fewer than 10 bars or a zero mean.',
    volatility_1h Nullable(Float64) COMMENT 'Sample standard deviation of the last 60 one-minute log returns of closed 1m closes, in percent.',
    rsi_14 Nullable(Float64) COMMENT 'RSI(14) of closed 1m closes, Wilder smoothing seeded with the mean of the first 14 changes (TradingView), 0..100.',
    vwap_24h Nullable(Float64) COMMENT 'Volume-weighted average price of the 24h window (quote volume / volume).',
    vwap_distance_pct Nullable(Float64) COMMENT 'Percent distance of price from vwap_24h.',
    high_24h Nullable(Float64) COMMENT 'Highest trade price of the 24h window (flat candles are not trades). NULL if nothing traded.',
    low_24h Nullable(Float64) COMMENT 'Lowest trade price of the 24h window (flat candles are not trades). NULL if nothing traded.',
    from_high_pct Nullable(Float64) COMMENT 'Percent of price below high_24h: 0 at the high, negative below it.',
    from_low_pct Nullable(Float64) COMMENT 'Percent of price above low_24h: 0 at the low, positive above it.',
    new_high Bool COMMENT 'The latest second traded above every trade of the 24h before it (or of all history held, at least 1 h).',
    new_low Bool COMMENT 'The latest second traded below every trade of the 24h before it (or of all history held, at least 1 h).',
    trades_per_min Nullable(Float64) COMMENT 'Exchange trades in the last 60 seconds.',
    bid Nullable(Float64) COMMENT 'Best bid of the newest book ticker.',
    ask Nullable(Float64) COMMENT 'Best ask of the newest book ticker.',
    spread_bps Nullable(Float64) COMMENT '(ask - bid) / mid price, in basis points.',
    written_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When the signals flow wrote the row (UTC); a rerun writes a newer one.'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(time)
ORDER BY (exchange, market, symbol, time)
TTL toDateTime(written_at) + INTERVAL 90 DAY
COMMENT 'The scanner metric row of every symbol at every whole minute it traded or carried a flat candle. Metrics are floats for ranking, NULL while the history is too short to compute them. A rerun writes the same key: query with FINAL. Rows expire 90 days after they were written (written_at).';
