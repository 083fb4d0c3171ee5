-- The scanner board's perpetuals metrics in its minute snapshots (schemas.ranks.RankRow,
-- computed by flows.signals.perps), so the historical scan filters and sorts on them as
-- the live board does. NULL on spot rows and until the symbol's perpetuals data arrived.
-- premium_bps is not stored: it needs the spot pair's row too, and the historical scan
-- computes it from both snapshots. ADD COLUMN IF NOT EXISTS makes a rerun a no-op.

ALTER TABLE {database:Identifier}.rank_snapshots
    ADD COLUMN IF NOT EXISTS mark_price Nullable(Float64) COMMENT 'Mark price of the newest mark-price update (Binance markPrice@1s p): what positions are valued at.' AFTER spread_bps,
    ADD COLUMN IF NOT EXISTS index_price Nullable(Float64) COMMENT 'Index price of the newest mark-price update (Binance i): the spot index the mark tracks.' AFTER mark_price,
    ADD COLUMN IF NOT EXISTS basis_bps Nullable(Float64) COMMENT '(mark_price - index_price) / index_price, in basis points.' AFTER index_price,
    ADD COLUMN IF NOT EXISTS funding_rate_pct Nullable(Float64) COMMENT 'Current funding-rate estimate of the newest mark-price update (Binance r), in percent per funding interval (0.01 = Binance 0.0001).' AFTER basis_bps,
    ADD COLUMN IF NOT EXISTS funding_last_pct Nullable(Float64) COMMENT 'Rate of the last settled funding time (table funding), in percent.' AFTER funding_rate_pct,
    ADD COLUMN IF NOT EXISTS funding_annual_pct Nullable(Float64) COMMENT 'funding_rate_pct x fundings per year: 365 days over the funding interval (next funding time - last settled one when a whole number of hours up to 8, else 8 h).' AFTER funding_last_pct,
    ADD COLUMN IF NOT EXISTS next_funding_s Nullable(Float64) COMMENT 'Seconds from time to the next funding time.' AFTER funding_annual_pct,
    ADD COLUMN IF NOT EXISTS open_interest Nullable(Float64) COMMENT 'Open interest of the newest sample, in contracts (base asset).' AFTER next_funding_s,
    ADD COLUMN IF NOT EXISTS open_interest_value Nullable(Float64) COMMENT 'open_interest x mark_price, in the quote asset.' AFTER open_interest,
    ADD COLUMN IF NOT EXISTS oi_change_pct_5m Nullable(Float64) COMMENT 'Percent change of the newest open-interest sample against the newest one at or before its time - 5m (NULL if that one is more than 5 min older than that: a gap).' AFTER open_interest_value,
    ADD COLUMN IF NOT EXISTS oi_change_pct_1h Nullable(Float64) COMMENT 'Percent change of the newest open-interest sample against the newest one at or before its time - 1h (NULL if that one is more than 5 min older than that: a gap).' AFTER oi_change_pct_5m,
    ADD COLUMN IF NOT EXISTS oi_change_pct_4h Nullable(Float64) COMMENT 'Percent change of the newest open-interest sample against the newest one at or before its time - 4h (NULL if that one is more than 5 min older than that: a gap).' AFTER oi_change_pct_1h,
    ADD COLUMN IF NOT EXISTS oi_change_pct_24h Nullable(Float64) COMMENT 'Percent change of the newest open-interest sample against the newest one at or before its time - 24h (NULL if that one is more than 5 min older than that: a gap).' AFTER oi_change_pct_4h,
    ADD COLUMN IF NOT EXISTS liq_long_5m Nullable(Float64) COMMENT 'Quote volume of the liquidations of longs (orders that sell) in [time - 5m, time). Binance sends at most one liquidation per symbol per second: an UNDERCOUNT.' AFTER oi_change_pct_24h,
    ADD COLUMN IF NOT EXISTS liq_long_1h Nullable(Float64) COMMENT 'Quote volume of the liquidations of longs (orders that sell) in [time - 1h, time). Binance sends at most one liquidation per symbol per second: an UNDERCOUNT.' AFTER liq_long_5m,
    ADD COLUMN IF NOT EXISTS liq_long_24h Nullable(Float64) COMMENT 'Quote volume of the liquidations of longs (orders that sell) in [time - 24h, time). Binance sends at most one liquidation per symbol per second: an UNDERCOUNT.' AFTER liq_long_1h,
    ADD COLUMN IF NOT EXISTS liq_short_5m Nullable(Float64) COMMENT 'Quote volume of the liquidations of shorts (orders that buy) in [time - 5m, time). Binance sends at most one liquidation per symbol per second: an UNDERCOUNT.' AFTER liq_long_24h,
    ADD COLUMN IF NOT EXISTS liq_short_1h Nullable(Float64) COMMENT 'Quote volume of the liquidations of shorts (orders that buy) in [time - 1h, time). Binance sends at most one liquidation per symbol per second: an UNDERCOUNT.' AFTER liq_short_5m,
    ADD COLUMN IF NOT EXISTS liq_short_24h Nullable(Float64) COMMENT 'Quote volume of the liquidations of shorts (orders that buy) in [time - 24h, time). Binance sends at most one liquidation per symbol per second: an UNDERCOUNT.' AFTER liq_short_1h;
