-- Not a migration: how long raw rows are kept is a migrate() parameter, so migrate() compares
-- each table's TTL with the wanted days after applying migrations and runs the statement
-- for a table only when they differ (0001 and 0002 set the TTL at creation).
ALTER TABLE ${db}.events_service_request${local} ${on_cluster}
MODIFY TTL toDateTime(occurred_at) + INTERVAL ${raw_ttl_days} DAY;

ALTER TABLE ${db}.events_complaint${local} ${on_cluster}
MODIFY TTL toDateTime(occurred_at) + INTERVAL ${raw_ttl_days} DAY;

ALTER TABLE ${db}.events_net_pracharat_usage${local} ${on_cluster}
MODIFY TTL toDateTime(occurred_at) + INTERVAL ${raw_ttl_days} DAY;

ALTER TABLE ${db}.events_digital_center_activity${local} ${on_cluster}
MODIFY TTL toDateTime(occurred_at) + INTERVAL ${raw_ttl_days} DAY;

ALTER TABLE ${db}.events_dataset_update${local} ${on_cluster}
MODIFY TTL toDateTime(occurred_at) + INTERVAL ${raw_ttl_days} DAY;

ALTER TABLE ${db}.dead_letters${local} ${on_cluster}
MODIFY TTL toDateTime(first_seen) + INTERVAL ${dead_letter_ttl_days} DAY;
