-- The paper engine empties its write-ahead journal once paper_events holds what the
-- journal held (flows/sinks/journal.py). Without an fsync ClickHouse's new parts sit in
-- the page cache for a while, so a power cut right after could lose events that were
-- already published and are gone from the journal. fsync_after_insert makes each insert
-- durable before it returns (it is off the path to a fill: the insert runs in its own
-- thread), fsync_part_directory makes the part's directory entry durable too. Only the
-- log needs it: every other paper table is derived from it and rewritten at start.

ALTER TABLE {database:Identifier}.paper_events
    MODIFY SETTING fsync_after_insert = 1, fsync_part_directory = 1;
