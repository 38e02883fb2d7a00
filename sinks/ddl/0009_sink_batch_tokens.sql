-- The deduplication token of the insert each recorded range went into. A crash can stop an
-- insert half-way through its materialized views (events_<type> stored, a rollup not yet),
-- so "the first record is stored" does not prove the rollups are. With the token, the next
-- owner of the partition re-inserts the original insert whole (the other partitions' ranges
-- read back from Kafka by offset) under the same token: every table that already holds the
-- block drops it as a duplicate (deduplicate_blocks_in_dependent_materialized_views, on by
-- default, and non_replicated_deduplication_window on each table), every table that missed
-- it gets it. Rows written before this migration have '' and are replayed as before.
ALTER TABLE ${db}.sink_batches ${on_cluster} ADD COLUMN IF NOT EXISTS token String DEFAULT '';
