-- Raw detail tables, one per event type: every field of schemas.catalog.clean_schema(<type>)
-- (the drift guard in tests/integration/test_migrations.py fails when one has no column).
--
-- Types: LowCardinality(String) for codes, names and Avro enums (enums stay strings so a new
-- symbol needs no ALTER); DateTime64(3, 'UTC') for timestamp-millis; Decimal(12, 2) for baht;
-- Nullable only where the Avro field is a union with null; UUID for event_id.
--
-- ORDER BY (province_code, agency_code, occurred_at): the dashboard's drill-down is
-- "province → agency → latest events / per-district counts", a prefix range of this key.
-- Time-only scans are pruned by the per-part min/max of occurred_at (the partition key
-- column) and by the monthly partitions. Per-minute counts come from the rollups, not here.
-- The bloom filter on event_id serves "did event X arrive?" look-ups by support staff.
--
-- TTL: rows older than raw_ttl_days (a migrate() parameter) are dropped; ttl_only_drop_parts
-- drops whole parts, so with monthly partitions retention is raw_ttl_days plus at most a month,
-- and no part is ever rewritten. migrate() also re-applies a changed raw_ttl_days (MODIFY TTL).
--
-- non_replicated_deduplication_window: the sink's insert_deduplication_token (topic, partition,
-- offset range) only deduplicates on a non-replicated MergeTree when the window is > 0
-- (default 0 = off); 1000 recent blocks covers any replay after a crash or rebalance.
-- Replicated tables keep replicated_deduplication_window (default on) for the same purpose.
--
-- With a cluster these are the shard-local <name>_local tables and <name> is a Distributed
-- table sharded by cityHash64(event_id): deterministic, so a replayed batch splits into the
-- same per-shard blocks and each shard's deduplication recognises its block (rand() would not).

CREATE TABLE IF NOT EXISTS ${db}.events_service_request${local} ${on_cluster}
(
    event_id UUID,
    event_type LowCardinality(String),
    agency_code LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    produced_at DateTime64(3, 'UTC'),
    province_code LowCardinality(String),
    district_code LowCardinality(Nullable(String)),
    channel LowCardinality(String),
    source_system LowCardinality(String),
    service_code LowCardinality(String),
    service_name LowCardinality(String),
    reference_no String,
    status LowCardinality(String),
    applicant_type LowCardinality(String),
    citizen_id_pseudonym Nullable(String),
    applicant_phone_pseudonym Nullable(String),
    fee_thb Decimal(12, 2),
    processing_seconds Nullable(Int64),
    satisfaction_score Nullable(Int32),
    pseudonym_key_id LowCardinality(Nullable(String)),
    agency_name_th LowCardinality(String),
    agency_name_en LowCardinality(String),
    ministry_code LowCardinality(String),
    ministry_name_th LowCardinality(String),
    ministry_name_en LowCardinality(String),
    province_name_th LowCardinality(String),
    province_name_en LowCardinality(String),
    district_name_th LowCardinality(Nullable(String)),
    district_name_en LowCardinality(Nullable(String)),
    region_code LowCardinality(String),
    region_name_th LowCardinality(String),
    region_name_en LowCardinality(String),
    defects_fixed Array(String),
    processed_at DateTime64(3, 'UTC'),
    source_partition Int32,
    source_offset Int64,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX event_id_bloom event_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ${MergeTree}
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (province_code, agency_code, occurred_at)
TTL toDateTime(occurred_at) + INTERVAL ${raw_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;

-- @cluster-only
CREATE TABLE IF NOT EXISTS ${db}.events_service_request ${on_cluster}
AS ${db}.events_service_request_local
ENGINE = Distributed(${cluster}, ${db}, events_service_request_local, cityHash64(event_id));

CREATE TABLE IF NOT EXISTS ${db}.events_complaint${local} ${on_cluster}
(
    event_id UUID,
    event_type LowCardinality(String),
    agency_code LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    produced_at DateTime64(3, 'UTC'),
    province_code LowCardinality(String),
    district_code LowCardinality(Nullable(String)),
    channel LowCardinality(String),
    source_system LowCardinality(String),
    complaint_no String,
    category LowCardinality(String),
    subject String,
    severity LowCardinality(String),
    status LowCardinality(String),
    via_1111 Bool,
    complainant_id_pseudonym Nullable(String),
    complainant_phone_pseudonym Nullable(String),
    resolution_days Nullable(Int32),
    pseudonym_key_id LowCardinality(Nullable(String)),
    agency_name_th LowCardinality(String),
    agency_name_en LowCardinality(String),
    ministry_code LowCardinality(String),
    ministry_name_th LowCardinality(String),
    ministry_name_en LowCardinality(String),
    province_name_th LowCardinality(String),
    province_name_en LowCardinality(String),
    district_name_th LowCardinality(Nullable(String)),
    district_name_en LowCardinality(Nullable(String)),
    region_code LowCardinality(String),
    region_name_th LowCardinality(String),
    region_name_en LowCardinality(String),
    defects_fixed Array(String),
    processed_at DateTime64(3, 'UTC'),
    source_partition Int32,
    source_offset Int64,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX event_id_bloom event_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ${MergeTree}
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (province_code, agency_code, occurred_at)
TTL toDateTime(occurred_at) + INTERVAL ${raw_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;

-- @cluster-only
CREATE TABLE IF NOT EXISTS ${db}.events_complaint ${on_cluster}
AS ${db}.events_complaint_local
ENGINE = Distributed(${cluster}, ${db}, events_complaint_local, cityHash64(event_id));

CREATE TABLE IF NOT EXISTS ${db}.events_net_pracharat_usage${local} ${on_cluster}
(
    event_id UUID,
    event_type LowCardinality(String),
    agency_code LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    produced_at DateTime64(3, 'UTC'),
    province_code LowCardinality(String),
    district_code LowCardinality(Nullable(String)),
    channel LowCardinality(String),
    source_system LowCardinality(String),
    access_point_id String,
    village_code String,
    village_name String,
    interval_start DateTime64(3, 'UTC'),
    interval_minutes Int32,
    sessions Int32,
    unique_devices Int32,
    bytes_down Int64,
    bytes_up Int64,
    avg_latency_ms Nullable(Float32),
    pseudonym_key_id LowCardinality(Nullable(String)),
    agency_name_th LowCardinality(String),
    agency_name_en LowCardinality(String),
    ministry_code LowCardinality(String),
    ministry_name_th LowCardinality(String),
    ministry_name_en LowCardinality(String),
    province_name_th LowCardinality(String),
    province_name_en LowCardinality(String),
    district_name_th LowCardinality(Nullable(String)),
    district_name_en LowCardinality(Nullable(String)),
    region_code LowCardinality(String),
    region_name_th LowCardinality(String),
    region_name_en LowCardinality(String),
    defects_fixed Array(String),
    processed_at DateTime64(3, 'UTC'),
    source_partition Int32,
    source_offset Int64,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX event_id_bloom event_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ${MergeTree}
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (province_code, agency_code, occurred_at)
TTL toDateTime(occurred_at) + INTERVAL ${raw_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;

-- @cluster-only
CREATE TABLE IF NOT EXISTS ${db}.events_net_pracharat_usage ${on_cluster}
AS ${db}.events_net_pracharat_usage_local
ENGINE = Distributed(${cluster}, ${db}, events_net_pracharat_usage_local, cityHash64(event_id));

CREATE TABLE IF NOT EXISTS ${db}.events_digital_center_activity${local} ${on_cluster}
(
    event_id UUID,
    event_type LowCardinality(String),
    agency_code LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    produced_at DateTime64(3, 'UTC'),
    province_code LowCardinality(String),
    district_code LowCardinality(Nullable(String)),
    channel LowCardinality(String),
    source_system LowCardinality(String),
    center_id String,
    activity LowCardinality(String),
    title String,
    participants Int32,
    order_amount_thb Nullable(Decimal(12, 2)),
    product_category LowCardinality(Nullable(String)),
    participant_id_pseudonym Nullable(String),
    buyer_province_code LowCardinality(Nullable(String)),
    pseudonym_key_id LowCardinality(Nullable(String)),
    agency_name_th LowCardinality(String),
    agency_name_en LowCardinality(String),
    ministry_code LowCardinality(String),
    ministry_name_th LowCardinality(String),
    ministry_name_en LowCardinality(String),
    province_name_th LowCardinality(String),
    province_name_en LowCardinality(String),
    district_name_th LowCardinality(Nullable(String)),
    district_name_en LowCardinality(Nullable(String)),
    region_code LowCardinality(String),
    region_name_th LowCardinality(String),
    region_name_en LowCardinality(String),
    defects_fixed Array(String),
    processed_at DateTime64(3, 'UTC'),
    source_partition Int32,
    source_offset Int64,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX event_id_bloom event_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ${MergeTree}
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (province_code, agency_code, occurred_at)
TTL toDateTime(occurred_at) + INTERVAL ${raw_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;

-- @cluster-only
CREATE TABLE IF NOT EXISTS ${db}.events_digital_center_activity ${on_cluster}
AS ${db}.events_digital_center_activity_local
ENGINE = Distributed(${cluster}, ${db}, events_digital_center_activity_local, cityHash64(event_id));

CREATE TABLE IF NOT EXISTS ${db}.events_dataset_update${local} ${on_cluster}
(
    event_id UUID,
    event_type LowCardinality(String),
    agency_code LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    produced_at DateTime64(3, 'UTC'),
    province_code LowCardinality(String),
    district_code LowCardinality(Nullable(String)),
    channel LowCardinality(String),
    source_system LowCardinality(String),
    dataset_id String,
    title String,
    action LowCardinality(String),
    record_count Int64,
    format LowCardinality(String),
    licence LowCardinality(String),
    data_year Int32,
    catalog_url Nullable(String),
    pseudonym_key_id LowCardinality(Nullable(String)),
    agency_name_th LowCardinality(String),
    agency_name_en LowCardinality(String),
    ministry_code LowCardinality(String),
    ministry_name_th LowCardinality(String),
    ministry_name_en LowCardinality(String),
    province_name_th LowCardinality(String),
    province_name_en LowCardinality(String),
    district_name_th LowCardinality(Nullable(String)),
    district_name_en LowCardinality(Nullable(String)),
    region_code LowCardinality(String),
    region_name_th LowCardinality(String),
    region_name_en LowCardinality(String),
    defects_fixed Array(String),
    processed_at DateTime64(3, 'UTC'),
    source_partition Int32,
    source_offset Int64,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX event_id_bloom event_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ${MergeTree}
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (province_code, agency_code, occurred_at)
TTL toDateTime(occurred_at) + INTERVAL ${raw_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;

-- @cluster-only
CREATE TABLE IF NOT EXISTS ${db}.events_dataset_update ${on_cluster}
AS ${db}.events_dataset_update_local
ENGINE = Distributed(${cluster}, ${db}, events_dataset_update_local, cityHash64(event_id));
