-- Symbol metadata: what each exchange's exchangeInfo says a symbol is (assets, status,
-- contract kind, tick and lot sizes). Ingest writes every listed symbol each time it reads
-- the universe; a symbol that disappears keeps its last row with its last status.

CREATE TABLE IF NOT EXISTS {database:Identifier}.symbols
(
    exchange LowCardinality(String) COMMENT 'Exchange, lower case, e.g. binance.',
    market LowCardinality(String) COMMENT 'Market of the exchange: spot, or usdm for USD-margined perpetual futures.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol as the exchange spells it, e.g. BTCUSDT.',
    base_asset LowCardinality(String) COMMENT 'Asset bought and sold, e.g. BTC of BTCUSDT (exchangeInfo baseAsset).',
    quote_asset LowCardinality(String) COMMENT 'Asset prices and quote volumes are in, e.g. USDT of BTCUSDT (exchangeInfo quoteAsset).',
    status LowCardinality(String) COMMENT 'Trading status as the exchange gives it: TRADING, BREAK, HALT (spot); TRADING, SETTLING, PENDING_TRADING, CLOSE, DELIVERING (usdm).',
    kind LowCardinality(String) COMMENT 'spot for a spot pair; on usdm the contractType lower-cased: perpetual, current_quarter, next_quarter, ...; unknown when the exchange gives none.',
    tick_size Nullable(Decimal(38, 18)) COMMENT 'Smallest price step (PRICE_FILTER tickSize); NULL when the exchange sets none.',
    step_size Nullable(Decimal(38, 18)) COMMENT 'Smallest quantity step (LOT_SIZE stepSize); NULL when the exchange sets none.',
    updated DateTime64(3, 'UTC') COMMENT 'When the exchange described the symbol so (exchangeInfo serverTime, UTC); the latest row wins.'
)
ENGINE = ReplacingMergeTree(updated)
ORDER BY (exchange, market, symbol)
COMMENT 'One row per (exchange, market, symbol) with the exchange''s latest description of it. Older descriptions are replaced at merge time: query with FINAL.';
