-- Paper trading (the paper engine, `tickscan paper`): its durable event log and, derived
-- from it, the latest state of every order, every fill and every wallet movement for
-- analysts. Every table is a ReplacingMergeTree keyed by what a row describes, so an event
-- written twice (a retry after a crash, a rerun) leaves one row: query with FINAL.

CREATE TABLE IF NOT EXISTS {database:Identifier}.paper_events
(
    account_id String COMMENT 'Paper account id (the Kafka key of its commands and events).',
    seq UInt64 COMMENT 'Position of the event in the account''s log: 1, 2, 3, ... with no gap; the fold applies events in this order.',
    kind LowCardinality(String) COMMENT 'Event kind, the wire tag: opened, reset, accepted, rejected, repeated, updated, fill, leverage, funding, liquidation, refused.',
    time DateTime64(6, 'UTC') COMMENT 'Market time of the event (the exchange time of the last market record the engine had applied), never wall time.',
    command_id String COMMENT 'The command that caused the event (the sender''s id); empty for what the market caused (a resting order''s fill, funding, a liquidation).',
    payload String COMMENT 'The event''s wire JSON as published on tr.events.v1 (schemas.trading.AccountEvent, decimals as strings): the engine restores every account from these at start.'
)
ENGINE = ReplacingMergeTree
ORDER BY (account_id, seq)
COMMENT 'The paper engine''s durable log: every account event, in order per account. An account''s balances, positions and orders are the fold of its events. Query with FINAL.';

CREATE TABLE IF NOT EXISTS {database:Identifier}.paper_orders
(
    account_id String COMMENT 'Paper account id.',
    order_id UInt64 COMMENT 'The venue''s order id, unique within the account (counting from 1).',
    client_order_id String COMMENT 'The caller''s id of the order: its idempotency key within the account.',
    exchange LowCardinality(String) COMMENT 'Exchange whose market the order trades, e.g. binance or sim.',
    market LowCardinality(String) COMMENT 'spot, or usdm for USD-margined perpetual futures.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol, e.g. BTCUSDT.',
    side Enum8('BUY' = 1, 'SELL' = 2) COMMENT 'BUY or SELL.',
    type Enum8('market' = 1, 'limit' = 2, 'stop_market' = 3, 'stop_limit' = 4, 'take_profit_market' = 5) COMMENT 'market, limit, stop_market, stop_limit or take_profit_market.',
    time_in_force Enum8('GTC' = 1, 'IOC' = 2, 'FOK' = 3, 'GTX' = 4) COMMENT 'GTC, IOC, FOK or GTX (post-only).',
    trigger Enum8('last' = 1, 'mark' = 2) COMMENT 'What a stop or take-profit watches: last (trade price) or mark (USD-M mark price).',
    reduce_only UInt8 COMMENT '1 when the order may only reduce a USD-M position.',
    quantity Decimal(38, 18) COMMENT 'Working base quantity (the request''s, or what a quote-amount order came to; an amend may lower it); 0 for a quote-amount order not yet sized.',
    quote_quantity Nullable(Decimal(38, 18)) COMMENT 'Quote amount a market order asked to spend or receive; NULL when it asked for a base quantity.',
    price Nullable(Decimal(38, 18)) COMMENT 'Working limit price; NULL for market and stop-market orders.',
    stop_price Nullable(Decimal(38, 18)) COMMENT 'Working stop (trigger) price; NULL for orders without one.',
    status Enum8('new' = 1, 'partially_filled' = 2, 'filled' = 3, 'canceled' = 4, 'rejected' = 5, 'expired' = 6) COMMENT 'new, partially_filled, filled, canceled, rejected or expired (Binance''s statuses).',
    filled_qty Decimal(38, 18) COMMENT 'Base quantity filled so far.',
    filled_quote Decimal(38, 18) COMMENT 'Quote amount filled so far (sum of price x quantity, exact).',
    fees Decimal(38, 18) COMMENT 'Fees paid so far, in fee_asset.',
    fee_asset LowCardinality(String) COMMENT 'Asset the fees are in (empty before a fill).',
    triggered UInt8 COMMENT '1 once a stop or take-profit has triggered.',
    reason Nullable(String) COMMENT 'Why it was rejected, canceled or expired, in Binance''s words; NULL otherwise.',
    code Nullable(Int32) COMMENT 'Binance''s error code of a rejection (e.g. -1013); NULL when none.',
    created DateTime64(6, 'UTC') COMMENT 'Market time the order was accepted (or rejected) at.',
    updated DateTime64(6, 'UTC') COMMENT 'Market time of the order''s latest change.',
    seq UInt64 COMMENT 'The account event that left the order so; the row of the highest seq wins.'
)
ENGINE = ReplacingMergeTree(seq)
ORDER BY (account_id, order_id)
COMMENT 'The latest state of every paper order (one row per account and order id once merged): history for the API and analysts. Query with FINAL.';

CREATE TABLE IF NOT EXISTS {database:Identifier}.paper_fills
(
    account_id String COMMENT 'Paper account id.',
    fill_id UInt64 COMMENT 'Fill id, unique within the account (counting from 1).',
    order_id UInt64 COMMENT 'The order that executed.',
    client_order_id String COMMENT 'The caller''s id of that order.',
    exchange LowCardinality(String) COMMENT 'Exchange whose market it executed against.',
    market LowCardinality(String) COMMENT 'spot or usdm.',
    symbol LowCardinality(String) COMMENT 'Exchange symbol, e.g. BTCUSDT.',
    side Enum8('BUY' = 1, 'SELL' = 2) COMMENT 'BUY or SELL.',
    price Decimal(38, 18) COMMENT 'Execution price.',
    qty Decimal(38, 18) COMMENT 'Base quantity executed.',
    quote_qty Decimal(38, 18) COMMENT 'price x qty, exact.',
    fee Decimal(38, 18) COMMENT 'Fee charged, in fee_asset.',
    fee_asset LowCardinality(String) COMMENT 'Asset of the fee: the quote asset on USD-M, on spot the asset received.',
    liquidity Enum8('maker' = 1, 'taker' = 2) COMMENT 'maker when the order rested on the book, taker when it crossed.',
    reference_price Nullable(Decimal(38, 18)) COMMENT 'Best opposite price when a taker order started to execute (NULL for a maker fill): slippage is measured from it.',
    slippage Decimal(38, 18) COMMENT 'How far the price is from reference_price, against the trader, in quote units per base unit (0 at the top of the book).',
    realized_pnl Decimal(38, 18) COMMENT 'P&L this fill realised on a USD-M position, before fees; 0 on spot and on a fill that opens or adds.',
    liquidation UInt8 COMMENT '1 for the fill of a liquidation (the venue closed the position).',
    time DateTime64(6, 'UTC') COMMENT 'Market time of the execution.',
    seq UInt64 COMMENT 'The account event (fill) that carried it.'
)
ENGINE = ReplacingMergeTree
ORDER BY (account_id, fill_id)
COMMENT 'Every paper fill, one row per account and fill id once merged (a fill never changes: a rewrite is the same row). Query with FINAL.';

CREATE TABLE IF NOT EXISTS {database:Identifier}.paper_ledger
(
    account_id String COMMENT 'Paper account id.',
    time DateTime64(6, 'UTC') COMMENT 'Market time of the movement; for a valuation row, the start of its minute.',
    seq UInt64 COMMENT 'The account event that moved the balance; for a valuation row, the last event the account had applied.',
    idx UInt16 COMMENT 'Index of the movement among its event''s ledger entries (0, 1, ...); 65535 for a valuation row, so it never replaces a movement of the same time and seq.',
    kind LowCardinality(String) COMMENT 'Why the balance moved: deposit, reset, trade, fee, realized_pnl, funding, liquidation; or valuation (a minute''s equity, no movement).',
    asset LowCardinality(String) COMMENT 'Asset whose wallet balance moved (for a valuation row, the asset equity is counted in).',
    symbol LowCardinality(String) COMMENT 'Symbol the movement belongs to (a trade, fee, P&L or funding); empty for deposits, resets and valuations.',
    amount Decimal(38, 18) COMMENT 'Signed change of the wallet balance; 0 for a valuation row.',
    balance_after Decimal(38, 18) COMMENT 'Wallet balance of the asset after the movement (for a valuation row, that balance at the time).',
    equity Nullable(Decimal(38, 18)) COMMENT 'Account equity (AccountView.equity) after the event or at the minute, when the engine knew it; NULL otherwise.'
)
ENGINE = ReplacingMergeTree
ORDER BY (account_id, time, seq, idx)
COMMENT 'Every wallet movement of every paper account (one row per ledger entry of an event), plus one valuation row per account per minute while it holds positions or assets besides its deposits: the equity curve is SELECT time, equity FROM paper_ledger FINAL WHERE account_id = ... AND equity IS NOT NULL ORDER BY time.';
