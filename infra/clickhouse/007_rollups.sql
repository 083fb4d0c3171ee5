-- Candles of 5m, 15m, 1h, 4h and 1d, rolled up from candles_1m when they are read.
--
-- Views, not insert-time materialized views: a revision is a new candles_1m row with a
-- higher version, which an insert-time aggregate would add to the old one. Reading
-- candles_1m FINAL makes every rollup revision-consistent by construction. Measured on
-- chDB with bench/history.py (2 cores), 1,000 candles read in p50 about 18 ms (5m), 27 ms
-- (1h), 46 ms (4h) and 160 ms (1d, 1.44 M minutes). A materialized rollup that stays
-- consistent (per bucket, the latest version of each minute: argMaxResample states) read
-- 11-18x slower and took 4x longer to insert into: it has to keep every minute too.
--
-- The rollup rule is the exchange's: a 1m candle with no trades (count = 0) carries the
-- previous close, which is not a trade of the longer interval, so open, high, low and
-- close come from the traded minutes only; a wholly quiet interval is flat at the close
-- its flat minutes carry. Sums are exact Decimals. Buckets are aligned to the Unix
-- epoch as Binance aligns them (every one of these intervals divides a UTC day).
--
-- View bodies name candles_1m unqualified: ClickHouse would keep a {database:Identifier}
-- there as a view parameter, and `tickscan migrate` runs these statements in the
-- database migrated, so the name resolves to it (and is stored qualified). Columns are
-- read as m.<name> so that no output alias (open, count, ...) shadows a column it sums.

CREATE VIEW IF NOT EXISTS {database:Identifier}.candles_5m
(
    exchange LowCardinality(String) COMMENT 'Exchange, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: spot, or usdm for USD-margined perpetual futures.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol as the exchange spells it, e.g. BTCUSDT.',
    open_time DateTime64(3, 'UTC') COMMENT 'Start of the 5-minute interval (UTC, exchange trade time), a multiple of 5 minutes.',
    open Decimal(38, 8) COMMENT 'Open of the first 1m candle with trades; the previous close when the interval had none.',
    high Decimal(38, 8) COMMENT 'Highest high of the 1m candles with trades.',
    low Decimal(38, 8) COMMENT 'Lowest low of the 1m candles with trades.',
    close Decimal(38, 8) COMMENT 'Close of the last 1m candle with trades.',
    volume Decimal(38, 8) COMMENT 'Sum of the 1m volumes (base asset), exact.',
    close_time DateTime64(3, 'UTC') COMMENT 'Last millisecond of the interval: open_time + 5 min - 1 ms.',
    quote_volume Decimal(38, 16) COMMENT 'Sum of the 1m quote volumes, exact.',
    count UInt64 COMMENT 'Exchange trades in the interval; 0 for a wholly quiet (flat) interval.',
    taker_buy_volume Decimal(38, 8) COMMENT 'Sum of the 1m taker-buy base volumes.',
    taker_buy_quote_volume Decimal(38, 16) COMMENT 'Sum of the 1m taker-buy quote volumes.',
    first_trade_id Nullable(Int64) COMMENT 'Smallest first trade id of the 1m candles; NULL for a flat interval.',
    last_trade_id Nullable(Int64) COMMENT 'Largest last trade id of the 1m candles; NULL for a flat interval.',
    version UInt64 COMMENT 'Sum of the versions of the 1m candles: rises whenever one of them is revised.',
    source LowCardinality(String) COMMENT 'trades or exchange when every 1m candle has that source, else mixed.'
)
COMMENT '5-minute candles rolled up from candles_1m (latest versions) when read; a flat 1m candle gives no open, high, low or close. Filter on exchange, market, symbol and open_time.'
AS
SELECT
    m.exchange AS exchange,
    m.market AS market,
    m.symbol AS symbol,
    toStartOfInterval(m.open_time, INTERVAL 5 MINUTE) AS open_time,
    if(countIf(m.count > 0) > 0, argMinIf(m.open, m.open_time, m.count > 0), argMin(m.open, m.open_time)) AS open,
    if(countIf(m.count > 0) > 0, maxIf(m.high, m.count > 0), argMin(m.open, m.open_time)) AS high,
    if(countIf(m.count > 0) > 0, minIf(m.low, m.count > 0), argMin(m.open, m.open_time)) AS low,
    if(countIf(m.count > 0) > 0, argMaxIf(m.close, m.open_time, m.count > 0), argMax(m.close, m.open_time)) AS close,
    sum(m.volume) AS volume,
    open_time + INTERVAL 299999 MILLISECOND AS close_time,
    sum(m.quote_volume) AS quote_volume,
    sum(m.count) AS count,
    sum(m.taker_buy_volume) AS taker_buy_volume,
    sum(m.taker_buy_quote_volume) AS taker_buy_quote_volume,
    min(m.first_trade_id) AS first_trade_id,
    max(m.last_trade_id) AS last_trade_id,
    sum(m.version) AS version,
    if(min(m.source) = max(m.source), min(m.source), 'mixed') AS source
FROM candles_1m AS m FINAL
GROUP BY m.exchange, m.market, m.symbol, toStartOfInterval(m.open_time, INTERVAL 5 MINUTE);

CREATE VIEW IF NOT EXISTS {database:Identifier}.candles_15m
(
    exchange LowCardinality(String) COMMENT 'Exchange, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: spot, or usdm for USD-margined perpetual futures.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol as the exchange spells it, e.g. BTCUSDT.',
    open_time DateTime64(3, 'UTC') COMMENT 'Start of the 15-minute interval (UTC, exchange trade time), a multiple of 15 minutes.',
    open Decimal(38, 8) COMMENT 'Open of the first 1m candle with trades; the previous close when the interval had none.',
    high Decimal(38, 8) COMMENT 'Highest high of the 1m candles with trades.',
    low Decimal(38, 8) COMMENT 'Lowest low of the 1m candles with trades.',
    close Decimal(38, 8) COMMENT 'Close of the last 1m candle with trades.',
    volume Decimal(38, 8) COMMENT 'Sum of the 1m volumes (base asset), exact.',
    close_time DateTime64(3, 'UTC') COMMENT 'Last millisecond of the interval: open_time + 15 min - 1 ms.',
    quote_volume Decimal(38, 16) COMMENT 'Sum of the 1m quote volumes, exact.',
    count UInt64 COMMENT 'Exchange trades in the interval; 0 for a wholly quiet (flat) interval.',
    taker_buy_volume Decimal(38, 8) COMMENT 'Sum of the 1m taker-buy base volumes.',
    taker_buy_quote_volume Decimal(38, 16) COMMENT 'Sum of the 1m taker-buy quote volumes.',
    first_trade_id Nullable(Int64) COMMENT 'Smallest first trade id of the 1m candles; NULL for a flat interval.',
    last_trade_id Nullable(Int64) COMMENT 'Largest last trade id of the 1m candles; NULL for a flat interval.',
    version UInt64 COMMENT 'Sum of the versions of the 1m candles: rises whenever one of them is revised.',
    source LowCardinality(String) COMMENT 'trades or exchange when every 1m candle has that source, else mixed.'
)
COMMENT '15-minute candles rolled up from candles_1m (latest versions) when read; a flat 1m candle gives no open, high, low or close. Filter on exchange, market, symbol and open_time.'
AS
SELECT
    m.exchange AS exchange,
    m.market AS market,
    m.symbol AS symbol,
    toStartOfInterval(m.open_time, INTERVAL 15 MINUTE) AS open_time,
    if(countIf(m.count > 0) > 0, argMinIf(m.open, m.open_time, m.count > 0), argMin(m.open, m.open_time)) AS open,
    if(countIf(m.count > 0) > 0, maxIf(m.high, m.count > 0), argMin(m.open, m.open_time)) AS high,
    if(countIf(m.count > 0) > 0, minIf(m.low, m.count > 0), argMin(m.open, m.open_time)) AS low,
    if(countIf(m.count > 0) > 0, argMaxIf(m.close, m.open_time, m.count > 0), argMax(m.close, m.open_time)) AS close,
    sum(m.volume) AS volume,
    open_time + INTERVAL 899999 MILLISECOND AS close_time,
    sum(m.quote_volume) AS quote_volume,
    sum(m.count) AS count,
    sum(m.taker_buy_volume) AS taker_buy_volume,
    sum(m.taker_buy_quote_volume) AS taker_buy_quote_volume,
    min(m.first_trade_id) AS first_trade_id,
    max(m.last_trade_id) AS last_trade_id,
    sum(m.version) AS version,
    if(min(m.source) = max(m.source), min(m.source), 'mixed') AS source
FROM candles_1m AS m FINAL
GROUP BY m.exchange, m.market, m.symbol, toStartOfInterval(m.open_time, INTERVAL 15 MINUTE);

CREATE VIEW IF NOT EXISTS {database:Identifier}.candles_1h
(
    exchange LowCardinality(String) COMMENT 'Exchange, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: spot, or usdm for USD-margined perpetual futures.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol as the exchange spells it, e.g. BTCUSDT.',
    open_time DateTime64(3, 'UTC') COMMENT 'Start of the hour (UTC, exchange trade time).',
    open Decimal(38, 8) COMMENT 'Open of the first 1m candle with trades; the previous close when the hour had none.',
    high Decimal(38, 8) COMMENT 'Highest high of the 1m candles with trades.',
    low Decimal(38, 8) COMMENT 'Lowest low of the 1m candles with trades.',
    close Decimal(38, 8) COMMENT 'Close of the last 1m candle with trades.',
    volume Decimal(38, 8) COMMENT 'Sum of the 1m volumes (base asset), exact.',
    close_time DateTime64(3, 'UTC') COMMENT 'Last millisecond of the hour: open_time + 1 h - 1 ms.',
    quote_volume Decimal(38, 16) COMMENT 'Sum of the 1m quote volumes, exact.',
    count UInt64 COMMENT 'Exchange trades in the hour; 0 for a wholly quiet (flat) hour.',
    taker_buy_volume Decimal(38, 8) COMMENT 'Sum of the 1m taker-buy base volumes.',
    taker_buy_quote_volume Decimal(38, 16) COMMENT 'Sum of the 1m taker-buy quote volumes.',
    first_trade_id Nullable(Int64) COMMENT 'Smallest first trade id of the 1m candles; NULL for a flat hour.',
    last_trade_id Nullable(Int64) COMMENT 'Largest last trade id of the 1m candles; NULL for a flat hour.',
    version UInt64 COMMENT 'Sum of the versions of the 1m candles: rises whenever one of them is revised.',
    source LowCardinality(String) COMMENT 'trades or exchange when every 1m candle has that source, else mixed.'
)
COMMENT '1-hour candles rolled up from candles_1m (latest versions) when read; a flat 1m candle gives no open, high, low or close. Filter on exchange, market, symbol and open_time.'
AS
SELECT
    m.exchange AS exchange,
    m.market AS market,
    m.symbol AS symbol,
    toStartOfInterval(m.open_time, INTERVAL 1 HOUR) AS open_time,
    if(countIf(m.count > 0) > 0, argMinIf(m.open, m.open_time, m.count > 0), argMin(m.open, m.open_time)) AS open,
    if(countIf(m.count > 0) > 0, maxIf(m.high, m.count > 0), argMin(m.open, m.open_time)) AS high,
    if(countIf(m.count > 0) > 0, minIf(m.low, m.count > 0), argMin(m.open, m.open_time)) AS low,
    if(countIf(m.count > 0) > 0, argMaxIf(m.close, m.open_time, m.count > 0), argMax(m.close, m.open_time)) AS close,
    sum(m.volume) AS volume,
    open_time + INTERVAL 3599999 MILLISECOND AS close_time,
    sum(m.quote_volume) AS quote_volume,
    sum(m.count) AS count,
    sum(m.taker_buy_volume) AS taker_buy_volume,
    sum(m.taker_buy_quote_volume) AS taker_buy_quote_volume,
    min(m.first_trade_id) AS first_trade_id,
    max(m.last_trade_id) AS last_trade_id,
    sum(m.version) AS version,
    if(min(m.source) = max(m.source), min(m.source), 'mixed') AS source
FROM candles_1m AS m FINAL
GROUP BY m.exchange, m.market, m.symbol, toStartOfInterval(m.open_time, INTERVAL 1 HOUR);

CREATE VIEW IF NOT EXISTS {database:Identifier}.candles_4h
(
    exchange LowCardinality(String) COMMENT 'Exchange, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: spot, or usdm for USD-margined perpetual futures.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol as the exchange spells it, e.g. BTCUSDT.',
    open_time DateTime64(3, 'UTC') COMMENT 'Start of the 4-hour interval (UTC): 00:00, 04:00, ... 20:00, as Binance aligns them.',
    open Decimal(38, 8) COMMENT 'Open of the first 1m candle with trades; the previous close when the interval had none.',
    high Decimal(38, 8) COMMENT 'Highest high of the 1m candles with trades.',
    low Decimal(38, 8) COMMENT 'Lowest low of the 1m candles with trades.',
    close Decimal(38, 8) COMMENT 'Close of the last 1m candle with trades.',
    volume Decimal(38, 8) COMMENT 'Sum of the 1m volumes (base asset), exact.',
    close_time DateTime64(3, 'UTC') COMMENT 'Last millisecond of the interval: open_time + 4 h - 1 ms.',
    quote_volume Decimal(38, 16) COMMENT 'Sum of the 1m quote volumes, exact.',
    count UInt64 COMMENT 'Exchange trades in the interval; 0 for a wholly quiet (flat) interval.',
    taker_buy_volume Decimal(38, 8) COMMENT 'Sum of the 1m taker-buy base volumes.',
    taker_buy_quote_volume Decimal(38, 16) COMMENT 'Sum of the 1m taker-buy quote volumes.',
    first_trade_id Nullable(Int64) COMMENT 'Smallest first trade id of the 1m candles; NULL for a flat interval.',
    last_trade_id Nullable(Int64) COMMENT 'Largest last trade id of the 1m candles; NULL for a flat interval.',
    version UInt64 COMMENT 'Sum of the versions of the 1m candles: rises whenever one of them is revised.',
    source LowCardinality(String) COMMENT 'trades or exchange when every 1m candle has that source, else mixed.'
)
COMMENT '4-hour candles rolled up from candles_1m (latest versions) when read; a flat 1m candle gives no open, high, low or close. Filter on exchange, market, symbol and open_time.'
AS
SELECT
    m.exchange AS exchange,
    m.market AS market,
    m.symbol AS symbol,
    toStartOfInterval(m.open_time, INTERVAL 4 HOUR) AS open_time,
    if(countIf(m.count > 0) > 0, argMinIf(m.open, m.open_time, m.count > 0), argMin(m.open, m.open_time)) AS open,
    if(countIf(m.count > 0) > 0, maxIf(m.high, m.count > 0), argMin(m.open, m.open_time)) AS high,
    if(countIf(m.count > 0) > 0, minIf(m.low, m.count > 0), argMin(m.open, m.open_time)) AS low,
    if(countIf(m.count > 0) > 0, argMaxIf(m.close, m.open_time, m.count > 0), argMax(m.close, m.open_time)) AS close,
    sum(m.volume) AS volume,
    open_time + INTERVAL 14399999 MILLISECOND AS close_time,
    sum(m.quote_volume) AS quote_volume,
    sum(m.count) AS count,
    sum(m.taker_buy_volume) AS taker_buy_volume,
    sum(m.taker_buy_quote_volume) AS taker_buy_quote_volume,
    min(m.first_trade_id) AS first_trade_id,
    max(m.last_trade_id) AS last_trade_id,
    sum(m.version) AS version,
    if(min(m.source) = max(m.source), min(m.source), 'mixed') AS source
FROM candles_1m AS m FINAL
GROUP BY m.exchange, m.market, m.symbol, toStartOfInterval(m.open_time, INTERVAL 4 HOUR);

CREATE VIEW IF NOT EXISTS {database:Identifier}.candles_1d
(
    exchange LowCardinality(String) COMMENT 'Exchange, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: spot, or usdm for USD-margined perpetual futures.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol as the exchange spells it, e.g. BTCUSDT.',
    open_time DateTime64(3, 'UTC') COMMENT 'Start of the UTC day, 00:00 UTC (as Binance aligns daily klines).',
    open Decimal(38, 8) COMMENT 'Open of the first 1m candle with trades; the previous close when the day had none.',
    high Decimal(38, 8) COMMENT 'Highest high of the 1m candles with trades.',
    low Decimal(38, 8) COMMENT 'Lowest low of the 1m candles with trades.',
    close Decimal(38, 8) COMMENT 'Close of the last 1m candle with trades.',
    volume Decimal(38, 8) COMMENT 'Sum of the 1m volumes (base asset), exact.',
    close_time DateTime64(3, 'UTC') COMMENT 'Last millisecond of the day: open_time + 1 d - 1 ms.',
    quote_volume Decimal(38, 16) COMMENT 'Sum of the 1m quote volumes, exact.',
    count UInt64 COMMENT 'Exchange trades in the day; 0 for a wholly quiet (flat) day.',
    taker_buy_volume Decimal(38, 8) COMMENT 'Sum of the 1m taker-buy base volumes.',
    taker_buy_quote_volume Decimal(38, 16) COMMENT 'Sum of the 1m taker-buy quote volumes.',
    first_trade_id Nullable(Int64) COMMENT 'Smallest first trade id of the 1m candles; NULL for a flat day.',
    last_trade_id Nullable(Int64) COMMENT 'Largest last trade id of the 1m candles; NULL for a flat day.',
    version UInt64 COMMENT 'Sum of the versions of the 1m candles: rises whenever one of them is revised.',
    source LowCardinality(String) COMMENT 'trades or exchange when every 1m candle has that source, else mixed.'
)
COMMENT 'Daily candles (00:00 UTC) rolled up from candles_1m (latest versions) when read; a flat 1m candle gives no open, high, low or close. Filter on exchange, market, symbol and open_time.'
AS
SELECT
    m.exchange AS exchange,
    m.market AS market,
    m.symbol AS symbol,
    toStartOfInterval(m.open_time, INTERVAL 1 DAY) AS open_time,
    if(countIf(m.count > 0) > 0, argMinIf(m.open, m.open_time, m.count > 0), argMin(m.open, m.open_time)) AS open,
    if(countIf(m.count > 0) > 0, maxIf(m.high, m.count > 0), argMin(m.open, m.open_time)) AS high,
    if(countIf(m.count > 0) > 0, minIf(m.low, m.count > 0), argMin(m.open, m.open_time)) AS low,
    if(countIf(m.count > 0) > 0, argMaxIf(m.close, m.open_time, m.count > 0), argMax(m.close, m.open_time)) AS close,
    sum(m.volume) AS volume,
    open_time + INTERVAL 86399999 MILLISECOND AS close_time,
    sum(m.quote_volume) AS quote_volume,
    sum(m.count) AS count,
    sum(m.taker_buy_volume) AS taker_buy_volume,
    sum(m.taker_buy_quote_volume) AS taker_buy_quote_volume,
    min(m.first_trade_id) AS first_trade_id,
    max(m.last_trade_id) AS last_trade_id,
    sum(m.version) AS version,
    if(min(m.source) = max(m.source), min(m.source), 'mixed') AS source
FROM candles_1m AS m FINAL
GROUP BY m.exchange, m.market, m.symbol, toStartOfInterval(m.open_time, INTERVAL 1 DAY);
