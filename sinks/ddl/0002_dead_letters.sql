-- Records the stream processor could not clean, as read from dlq.<type>: reason code, detail,
-- and the raw topic/partition/offset they came from (lineage, for replays and for the audit).
--
-- payload holds the original message bytes as String. PDPA: a dead letter can hold a raw
-- national ID (an invalid one, or a valid one in a record dead-lettered for another reason),
-- and ARCHITECTURE.md says raw IDs never reach ClickHouse. So the sink must store a payload
-- with personal fields removed (or leave it empty) -- this column does not make that safe.
-- event_id is a String: a malformed event id is itself a reason to dead-letter a record.
--
-- Retention is short (dead_letter_ttl_days, default 30; weekly partitions, so whole parts drop
-- at most a week late): dead letters are for triage and replay, not history; the per-minute
-- counts in dead_letters_minute keep the history.
-- Deduplicated by the sink's insert token like the events tables (see 0001_events.sql).
CREATE TABLE IF NOT EXISTS ${db}.dead_letters${local} ${on_cluster}
(
    event_type LowCardinality(String),
    reason LowCardinality(String),
    detail String,
    source_topic LowCardinality(String),
    source_partition Int32,
    source_offset Int64,
    first_seen DateTime64(3, 'UTC'),
    payload String,
    event_id Nullable(String),
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ${MergeTree}
PARTITION BY toMonday(first_seen)
ORDER BY (event_type, reason, first_seen)
TTL toDateTime(first_seen) + INTERVAL ${dead_letter_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;

-- @cluster-only
CREATE TABLE IF NOT EXISTS ${db}.dead_letters ${on_cluster}
AS ${db}.dead_letters_local
ENGINE = Distributed(${cluster}, ${db}, dead_letters_local,
    cityHash64(source_topic, source_partition, source_offset));
