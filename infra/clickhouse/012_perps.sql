-- Perpetual futures data (USD-M): mark prices, funding, open interest, liquidations and
-- mark-price klines. Every table is a ReplacingMergeTree on its natural key, so a rerun
-- (a replay, a backfill, a restart that re-reads a topic) writes identical rows that
-- merge into one: query with FINAL for exact counts.

CREATE TABLE IF NOT EXISTS {database:Identifier}.marks_1s
(
    exchange LowCardinality(String) COMMENT 'Exchange, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: usdm for USD-margined futures.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol as the exchange spells it, e.g. BTCUSDT.',
    time DateTime64(3, 'UTC') COMMENT 'Start of the second (UTC) the mark price belongs to, by the exchange event time.',
    event_time DateTime64(3, 'UTC') COMMENT 'Exchange event time of the last update in the second (Binance E); the latest wins.',
    mark_price Decimal(38, 8) COMMENT 'Mark price (Binance p): what positions are valued and liquidated at.',
    index_price Decimal(38, 8) COMMENT 'Index price (Binance i): the spot price index the mark tracks.',
    estimated_settle_price Decimal(38, 8) COMMENT 'Estimated settle price (Binance P); meaningful in the last hour before a funding time.',
    funding_rate Nullable(Decimal(38, 8)) COMMENT 'Current funding-rate estimate per funding interval, a fraction (0.0001 = 0.01 %); NULL for a delivery contract.',
    next_funding_time Nullable(DateTime64(3, 'UTC')) COMMENT 'Next funding time (UTC); NULL for a delivery contract.',
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When tickscan wrote the row (UTC).'
)
ENGINE = ReplacingMergeTree(event_time)
PARTITION BY toYYYYMMDD(time)
ORDER BY (exchange, market, symbol, time)
TTL toDateTime(time) + INTERVAL 30 DAY
COMMENT 'The last mark price, index price and funding estimate of each second per symbol, from the markPrice@1s stream. Rows older than the TTL (30 days unless configured) are dropped.';

CREATE TABLE IF NOT EXISTS {database:Identifier}.funding
(
    exchange LowCardinality(String) COMMENT 'Exchange, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: usdm for USD-margined futures.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol, e.g. BTCUSDT.',
    funding_time DateTime64(3, 'UTC') COMMENT 'The settled funding time (UTC).',
    funding_rate Decimal(38, 8) COMMENT 'The funding rate that applied, a fraction of the position value: longs pay shorts when positive.',
    mark_price Nullable(Decimal(38, 8)) COMMENT 'Mark price at the funding time when known.',
    source LowCardinality(String) COMMENT 'exchange (Binance funding history, authoritative), stream (the last live estimate before the funding time), or sim (the simulated market).',
    version UInt8 COMMENT 'Row revision by source: stream 1, exchange and sim 2; the exchange''s own rate replaces the live estimate.',
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When tickscan wrote the row (UTC).'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(funding_time)
ORDER BY (exchange, market, symbol, funding_time)
COMMENT 'One row per settled funding time per symbol: the rate that applied. Query with FINAL.';

CREATE TABLE IF NOT EXISTS {database:Identifier}.open_interest
(
    exchange LowCardinality(String) COMMENT 'Exchange, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: usdm for USD-margined futures.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol, e.g. BTCUSDT.',
    time DateTime64(3, 'UTC') COMMENT 'Exchange time of the sample (UTC).',
    open_interest Decimal(38, 8) COMMENT 'Open contracts, in the base asset.',
    open_interest_value Nullable(Decimal(38, 16)) COMMENT 'Value of the open contracts in the quote asset, when the exchange gives it (history does, the live poll does not).',
    source LowCardinality(String) COMMENT 'poll (GET /fapi/v1/openInterest, live), history (/futures/data/openInterestHist, which Binance keeps for 30 days only), or sim.',
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When tickscan wrote the row (UTC); a rerun writes a newer one.'
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(time)
ORDER BY (exchange, market, symbol, time)
COMMENT 'Open interest samples per symbol, polled live or read from the exchange''s 30-day history. Query with FINAL.';

CREATE TABLE IF NOT EXISTS {database:Identifier}.liquidations
(
    exchange LowCardinality(String) COMMENT 'Exchange, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: usdm for USD-margined futures.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol, e.g. BTCUSDT.',
    time DateTime64(3, 'UTC') COMMENT 'Trade time of the liquidation order (Binance o.T, UTC).',
    side LowCardinality(String) COMMENT 'Side of the liquidation order: SELL liquidated a long, BUY a short.',
    price Decimal(38, 8) COMMENT 'Order price (Binance o.p), the bankruptcy price.',
    avg_price Decimal(38, 8) COMMENT 'Average fill price (Binance o.ap).',
    qty Decimal(38, 8) COMMENT 'Original quantity of the order, base asset (Binance o.q).',
    filled_qty Decimal(38, 8) COMMENT 'Accumulated filled quantity (Binance o.z).',
    last_filled_qty Decimal(38, 8) COMMENT 'Quantity of the last fill (Binance o.l).',
    quote_volume Decimal(38, 16) COMMENT 'filled_qty * avg_price, exact: the liquidated value in the quote asset.',
    status LowCardinality(String) COMMENT 'Order status (Binance o.X), e.g. FILLED.',
    order_type LowCardinality(String) COMMENT 'Order type (Binance o.o), LIMIT for liquidations.',
    time_in_force LowCardinality(String) COMMENT 'Time in force (Binance o.f), IOC for liquidations.',
    event_time DateTime64(3, 'UTC') COMMENT 'Exchange event time (Binance E, UTC).',
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When tickscan wrote the row (UTC).'
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(time)
ORDER BY (exchange, market, symbol, time, side)
COMMENT 'Liquidation orders as Binance samples them (!forceOrder@arr): at most one per symbol per second, the latest of that second, so sums UNDERCOUNT the true liquidations. Query with FINAL.';

CREATE TABLE IF NOT EXISTS {database:Identifier}.mark_klines_1m
(
    exchange LowCardinality(String) COMMENT 'Exchange, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: usdm for USD-margined futures.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol, e.g. BTCUSDT.',
    open_time DateTime64(3, 'UTC') COMMENT 'Start of the 1-minute interval (UTC).',
    open Decimal(38, 8) COMMENT 'Mark price at the start of the minute.',
    high Decimal(38, 8) COMMENT 'Highest mark price in the minute.',
    low Decimal(38, 8) COMMENT 'Lowest mark price in the minute.',
    close Decimal(38, 8) COMMENT 'Mark price at the end of the minute.',
    close_time DateTime64(3, 'UTC') COMMENT 'Last millisecond of the interval: open_time + 60 s - 1 ms.',
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When tickscan wrote the row (UTC); a rerun writes a newer one.'
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(open_time)
ORDER BY (exchange, market, symbol, open_time)
COMMENT 'Mark-price klines (1m) from Binance /fapi/v1/markPriceKlines, backfilled by tickscan backfill. Query with FINAL.';
