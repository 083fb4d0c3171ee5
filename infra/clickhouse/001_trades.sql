-- Raw normalised trades, as the ingest flow writes them; kept 30 days after they are written.
-- The TTL runs on ingested_at, not the trade time: a replay of 2024 trades must stay
-- queryable (and usable for candle repairs) for 30 days, not be dropped by the next merge.

CREATE TABLE IF NOT EXISTS {database:Identifier}.trades
(
    exchange LowCardinality(String) COMMENT 'Exchange the trade happened on, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: spot, or usdm for USD-margined perpetual futures.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol, upper case as the exchange spells it, e.g. BTCUSDT.',
    trade_id Int64 COMMENT 'Exchange trade id, unique per (exchange, market, symbol); for an aggregated trade, its aggregate id.',
    price Decimal(38, 8) COMMENT 'Trade price in the quote asset, exact as the exchange published it.',
    qty Decimal(38, 8) COMMENT 'Traded quantity in the base asset.',
    quote_qty Decimal(38, 16) COMMENT 'price * qty, exact: traded value in the quote asset.',
    time DateTime64(6, 'UTC') COMMENT 'Exchange trade time (UTC), not the time we received it; candles bucket on this.',
    buyer_is_maker Bool COMMENT 'True when the buyer was the maker, i.e. the taker sold; false means a taker buy.',
    first_trade_id Nullable(Int64) COMMENT 'For an aggregated trade, the first underlying trade id; NULL for a single trade.',
    last_trade_id Nullable(Int64) COMMENT 'For an aggregated trade, the last underlying trade id (count = last - first + 1); NULL for a single trade.',
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When tickscan wrote the row (UTC); a rerun writes a newer one.'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(time)
ORDER BY (exchange, market, symbol, trade_id)
TTL toDateTime(ingested_at) + INTERVAL 30 DAY
COMMENT 'Normalised trades from every exchange and market, one row per exchange trade. Deduplicated on (exchange, market, symbol, trade_id) at merge time: query with FINAL (or GROUP BY the key) for exact counts. Rows expire 30 days after they were written (ingested_at).';
