-- The database itself and the ledger of applied migration files.
-- Every file in this directory is idempotent and takes the database name as the query
-- parameter {database:Identifier}; `tickscan migrate` applies them in numeric order.

CREATE DATABASE IF NOT EXISTS {database:Identifier};

CREATE TABLE IF NOT EXISTS {database:Identifier}.schema_migrations
(
    name String COMMENT 'File name of the applied migration, e.g. 001_trades.sql.',
    checksum String COMMENT 'SHA-256 of the file as applied; an edited, already-applied file is refused.',
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When the migration was applied (UTC).'
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY name
COMMENT 'One row per DDL file from infra/clickhouse that has been applied to this database.';
