-- The deduplication token of the insert each recorded range went into. A crash can stop an
-- insert half-way through its materialized views (events_<type> stored, a rollup not yet),
-- so "the first record is stored" does not prove the rollups are. With the token, the next
-- owner of the partition re-inserts the original insert whole (the other partitions' ranges
-- read back from Kafka by offset) under the same token: every table that already holds the
-- block drops it as a duplicate (deduplicate_blocks_in_dependent_materialized_views, on by
-- default, and non_replicated_deduplication_window on each table), every table that missed
-- it gets it. Rows written before this migration have '' and are replayed as before.
ALTER TABLE ${db}.sink_batches ${on_cluster} ADD COLUMN IF NOT EXISTS token String DEFAULT '';

-- How far back a token is remembered, per table: a re-insert is only exact while its block is
-- among the last N each target table saw. Every table gets one block per event type per sink
-- cycle (several a second per sink), so the 1000 of 0001-0008 covered about a minute with one
-- sink and seconds with several; 10000 covers a crash, the session timeout and the
-- rebalance with room to spare, at the cost of a longer deduplication log (hashes only).
ALTER TABLE ${db}.events_service_request${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.events_complaint${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.events_net_pracharat_usage${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.events_digital_center_activity${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.events_dataset_update${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.dead_letters${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.activity_minute${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.service_request_minute${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.complaint_minute${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.net_pracharat_minute${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.digital_center_minute${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.dead_letters_minute${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.activity_hour${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.service_request_hour${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.complaint_hour${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.net_pracharat_hour${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.digital_center_hour${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.activity_day${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.service_request_day${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.complaint_day${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.net_pracharat_day${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.digital_center_day${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.activity_national_hour${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.service_request_national_hour${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.complaint_national_hour${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.net_pracharat_national_hour${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.activity_national_day${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.service_request_national_day${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.complaint_national_day${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.net_pracharat_national_day${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
ALTER TABLE ${db}.district_hour${local} ${on_cluster}
MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;
