-- data_quality records two more findings of the live ingest: the gap a restart leaves
-- (cause restart: ids printed while ingest was down), and stale symbols (kind stale: a
-- symbol's streams silent while its connection flowed, open until its data resumes).
-- Only the column comments change; rewriting a comment is idempotent.

ALTER TABLE {database:Identifier}.data_quality
    COMMENT COLUMN cause 'Why it happened when known: reconnect, rotation, server_shutdown, stall, sequence, or restart (ids printed while ingest was down).';

ALTER TABLE {database:Identifier}.data_quality
    COMMENT COLUMN status 'open (found, not yet repaired; stale: still silent), repaired (gap: filled from the exchange; stale: data resumed), unrepairable (the exchange could not fill it, or a restart gap too large or too old, left to tickscan backfill), or info.';

ALTER TABLE {database:Identifier}.data_quality
    COMMENT COLUMN detail 'Human-readable detail: the differing fields, the error that stopped a repair, the tickscan backfill to run for a restart gap, the streams silent and for how long.';
