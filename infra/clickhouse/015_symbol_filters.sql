-- The exchangeInfo filters an order must pass besides tick and step size (schemas.symbols
-- SymbolInfo min_qty, max_qty, market_max_qty, min_notional): the paper engine and the
-- order ticket reject with them as the exchange would. NULL when the exchange sets none
-- (or a row written before these columns existed). ADD COLUMN IF NOT EXISTS makes a
-- rerun a no-op.

ALTER TABLE {database:Identifier}.symbols
    ADD COLUMN IF NOT EXISTS min_qty Nullable(Decimal(38, 18)) COMMENT 'Smallest order quantity (LOT_SIZE minQty); NULL when the exchange sets none.' AFTER step_size,
    ADD COLUMN IF NOT EXISTS max_qty Nullable(Decimal(38, 18)) COMMENT 'Largest limit order quantity (LOT_SIZE maxQty); NULL when the exchange sets none.' AFTER min_qty,
    ADD COLUMN IF NOT EXISTS market_max_qty Nullable(Decimal(38, 18)) COMMENT 'Largest market order quantity (MARKET_LOT_SIZE maxQty); NULL when the exchange sets none.' AFTER max_qty,
    ADD COLUMN IF NOT EXISTS min_notional Nullable(Decimal(38, 18)) COMMENT 'Smallest order value price x quantity in the quote asset (spot NOTIONAL or MIN_NOTIONAL minNotional, usdm MIN_NOTIONAL notional); NULL when the exchange sets none.' AFTER market_max_qty;
