-- data_quality records one more finding of the live ingest: a USDⓈ-M perpetual without
-- mark price (kind no_mark_price: its markPrice@1s stream silent while its connection
-- flowed, open until marks arrive). Only the column comments change; rewriting a comment
-- is idempotent.

ALTER TABLE {database:Identifier}.data_quality
    COMMENT COLUMN kind 'What was found: gap (trade ids missing from the stream), kline_mismatch (our candle differs from the exchange''s kline), stale (a symbol''s streams silent while its connection flowed), no_mark_price (a perpetual''s mark price silent while its connection flowed).';

ALTER TABLE {database:Identifier}.data_quality
    COMMENT COLUMN status 'open (found, not yet repaired; stale, no_mark_price: still silent), repaired (gap: filled from the exchange; stale, no_mark_price: data resumed), unrepairable (the exchange could not fill it, or a restart gap too large or too old, left to tickscan backfill), or info.';
