-- Bookkeeping of applied migrations; created by migrate() before it reads what was applied.
-- Plain MergeTree, not Replacing: two migrate runs racing may both record a version, and
-- migrate() reads it GROUP BY version. In replicated mode the path has no {shard}, so every
-- node of every shard shares one list (replica names must then be unique cluster-wide).
CREATE TABLE IF NOT EXISTS ${db}.schema_migrations ${on_cluster}
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ${GlobalMergeTree}
ORDER BY version;
