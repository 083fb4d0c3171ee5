-- 1-second and 1-minute candles (klines), column for column as Binance's kline files name them.
-- Both tables have the same shape; only the interval and the partitioning differ.

CREATE TABLE IF NOT EXISTS {database:Identifier}.candles_1s
(
    exchange LowCardinality(String) COMMENT 'Exchange, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: spot, or usdm for USD-margined perpetual futures.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol as the exchange spells it, e.g. BTCUSDT.',
    open_time DateTime64(3, 'UTC') COMMENT 'Start of the 1-second interval (UTC, exchange trade time).',
    open Decimal(38, 8) COMMENT 'Price of the first trade in the interval; previous close for a flat candle.',
    high Decimal(38, 8) COMMENT 'Highest trade price in the interval.',
    low Decimal(38, 8) COMMENT 'Lowest trade price in the interval.',
    close Decimal(38, 8) COMMENT 'Price of the last trade in the interval.',
    volume Decimal(38, 8) COMMENT 'Sum of traded quantity in the base asset.',
    close_time DateTime64(3, 'UTC') COMMENT 'Last millisecond of the interval: open_time + 1 s - 1 ms.',
    quote_volume Decimal(38, 16) COMMENT 'Sum of price * qty in the quote asset; quote_volume / volume is the VWAP.',
    count UInt64 COMMENT 'Number of exchange trades (an aggregated trade counts last_trade_id - first_trade_id + 1); 0 for a flat candle.',
    taker_buy_volume Decimal(38, 8) COMMENT 'Base volume of trades where the taker bought (buyer not the maker).',
    taker_buy_quote_volume Decimal(38, 16) COMMENT 'Quote volume of trades where the taker bought.',
    first_trade_id Nullable(Int64) COMMENT 'First exchange trade id in the interval; NULL for a flat candle.',
    last_trade_id Nullable(Int64) COMMENT 'Last exchange trade id in the interval; NULL for a flat candle.',
    version UInt32 COMMENT 'Revision of the candle, from 1; a late trade or a repair writes a higher version and the highest wins.',
    source LowCardinality(String) DEFAULT 'trades' COMMENT 'How the candle was made: trades (built by tickscan from the trade stream) or exchange (the exchange''s own kline, backfilled over REST).'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMMDD(open_time)
ORDER BY (exchange, market, symbol, open_time)
COMMENT '1-second candles per (exchange, market, symbol), bucketed on exchange trade time. Revisions replace older versions at merge time: query with FINAL to see only the latest version of each candle. Quiet seconds after a symbol''s first trade are flat candles (zero count).';

CREATE TABLE IF NOT EXISTS {database:Identifier}.candles_1m
(
    exchange LowCardinality(String) COMMENT 'Exchange, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: spot, or usdm for USD-margined perpetual futures.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol as the exchange spells it, e.g. BTCUSDT.',
    open_time DateTime64(3, 'UTC') COMMENT 'Start of the 1-minute interval (UTC, exchange trade time).',
    open Decimal(38, 8) COMMENT 'Price of the first trade in the interval; previous close for a flat candle.',
    high Decimal(38, 8) COMMENT 'Highest trade price in the interval.',
    low Decimal(38, 8) COMMENT 'Lowest trade price in the interval.',
    close Decimal(38, 8) COMMENT 'Price of the last trade in the interval.',
    volume Decimal(38, 8) COMMENT 'Sum of traded quantity in the base asset.',
    close_time DateTime64(3, 'UTC') COMMENT 'Last millisecond of the interval: open_time + 60 s - 1 ms.',
    quote_volume Decimal(38, 16) COMMENT 'Sum of price * qty in the quote asset; quote_volume / volume is the VWAP.',
    count UInt64 COMMENT 'Number of exchange trades (an aggregated trade counts last_trade_id - first_trade_id + 1); 0 for a flat candle.',
    taker_buy_volume Decimal(38, 8) COMMENT 'Base volume of trades where the taker bought (buyer not the maker).',
    taker_buy_quote_volume Decimal(38, 16) COMMENT 'Quote volume of trades where the taker bought.',
    first_trade_id Nullable(Int64) COMMENT 'First exchange trade id in the interval; NULL for a flat candle.',
    last_trade_id Nullable(Int64) COMMENT 'Last exchange trade id in the interval; NULL for a flat candle.',
    version UInt32 COMMENT 'Revision of the candle, from 1; a late trade or a repair writes a higher version and the highest wins.',
    source LowCardinality(String) DEFAULT 'trades' COMMENT 'How the candle was made: trades (built by tickscan from the trade stream) or exchange (the exchange''s own kline, backfilled over REST).'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(open_time)
ORDER BY (exchange, market, symbol, open_time)
COMMENT '1-minute candles per (exchange, market, symbol), bucketed on exchange trade time; should equal the exchange''s own 1m klines. Revisions replace older versions at merge time: query with FINAL to see only the latest version of each candle. Quiet minutes after a symbol''s first trade are flat candles (zero count).';
