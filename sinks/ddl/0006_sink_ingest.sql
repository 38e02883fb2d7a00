-- What the sink writes through. Two things, both measured on the embedded engine (26.9):
--
-- 1. events_<type>_avro: a Null table per event type that the sink inserts clean records into
--    as Avro (an object container built from the records' own bytes, no decoding in Python),
--    with a materialized view moving each block into events_<type>. The columns are those of
--    events_<type> without LowCardinality and without inserted_at (its default applies in the
--    target). Why not insert into events_<type> directly: ClickHouse's Avro reader fills
--    LowCardinality columns value by value (~120k rows/s for service_request), while parsing
--    into plain String and converting whole columns in the view runs at ~230k rows/s; decoding
--    in Python with fastavro first is slower still (~50k rows/s). Insert deduplication tokens
--    pass through the view: a replayed block is dropped in events_<type> and in its rollups.
--    A column added to events_<type> must be added here too (test_sink checks they match).
--
-- 2. sink_batches: the offset ranges the sink is about to insert, written before each insert.
--    After a crash between insert and offset commit, the next owner of a partition reads the
--    ranges above its committed offset, cuts its first batches at exactly those offsets, and
--    skips a range whose first record is already stored. Kafka commit metadata could carry the
--    same, but the embedded broker (Tansu) drops it. Rows are only needed until their offsets
--    are committed, so they live a day (whole daily parts are dropped).

CREATE TABLE IF NOT EXISTS ${db}.events_service_request_avro ${on_cluster}
(
    event_id UUID,
    event_type String,
    agency_code String,
    occurred_at DateTime64(3, 'UTC'),
    produced_at DateTime64(3, 'UTC'),
    province_code String,
    district_code Nullable(String),
    channel String,
    source_system String,
    service_code String,
    service_name String,
    reference_no String,
    status String,
    applicant_type String,
    citizen_id_pseudonym Nullable(String),
    applicant_phone_pseudonym Nullable(String),
    fee_thb Decimal(12, 2),
    processing_seconds Nullable(Int64),
    satisfaction_score Nullable(Int32),
    pseudonym_key_id Nullable(String),
    agency_name_th String,
    agency_name_en String,
    ministry_code String,
    ministry_name_th String,
    ministry_name_en String,
    province_name_th String,
    province_name_en String,
    district_name_th Nullable(String),
    district_name_en Nullable(String),
    region_code String,
    region_name_th String,
    region_name_en String,
    defects_fixed Array(String),
    processed_at DateTime64(3, 'UTC'),
    source_partition Int32,
    source_offset Int64
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_events_service_request_avro ${on_cluster}
TO ${db}.events_service_request
AS SELECT * FROM ${db}.events_service_request_avro;

CREATE TABLE IF NOT EXISTS ${db}.events_complaint_avro ${on_cluster}
(
    event_id UUID,
    event_type String,
    agency_code String,
    occurred_at DateTime64(3, 'UTC'),
    produced_at DateTime64(3, 'UTC'),
    province_code String,
    district_code Nullable(String),
    channel String,
    source_system String,
    complaint_no String,
    category String,
    subject String,
    severity String,
    status String,
    via_1111 Bool,
    complainant_id_pseudonym Nullable(String),
    complainant_phone_pseudonym Nullable(String),
    resolution_days Nullable(Int32),
    pseudonym_key_id Nullable(String),
    agency_name_th String,
    agency_name_en String,
    ministry_code String,
    ministry_name_th String,
    ministry_name_en String,
    province_name_th String,
    province_name_en String,
    district_name_th Nullable(String),
    district_name_en Nullable(String),
    region_code String,
    region_name_th String,
    region_name_en String,
    defects_fixed Array(String),
    processed_at DateTime64(3, 'UTC'),
    source_partition Int32,
    source_offset Int64
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_events_complaint_avro ${on_cluster}
TO ${db}.events_complaint
AS SELECT * FROM ${db}.events_complaint_avro;

CREATE TABLE IF NOT EXISTS ${db}.events_net_pracharat_usage_avro ${on_cluster}
(
    event_id UUID,
    event_type String,
    agency_code String,
    occurred_at DateTime64(3, 'UTC'),
    produced_at DateTime64(3, 'UTC'),
    province_code String,
    district_code Nullable(String),
    channel String,
    source_system String,
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
    pseudonym_key_id Nullable(String),
    agency_name_th String,
    agency_name_en String,
    ministry_code String,
    ministry_name_th String,
    ministry_name_en String,
    province_name_th String,
    province_name_en String,
    district_name_th Nullable(String),
    district_name_en Nullable(String),
    region_code String,
    region_name_th String,
    region_name_en String,
    defects_fixed Array(String),
    processed_at DateTime64(3, 'UTC'),
    source_partition Int32,
    source_offset Int64
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_events_net_pracharat_usage_avro ${on_cluster}
TO ${db}.events_net_pracharat_usage
AS SELECT * FROM ${db}.events_net_pracharat_usage_avro;

CREATE TABLE IF NOT EXISTS ${db}.events_digital_center_activity_avro ${on_cluster}
(
    event_id UUID,
    event_type String,
    agency_code String,
    occurred_at DateTime64(3, 'UTC'),
    produced_at DateTime64(3, 'UTC'),
    province_code String,
    district_code Nullable(String),
    channel String,
    source_system String,
    center_id String,
    activity String,
    title String,
    participants Int32,
    order_amount_thb Nullable(Decimal(12, 2)),
    product_category Nullable(String),
    participant_id_pseudonym Nullable(String),
    buyer_province_code Nullable(String),
    pseudonym_key_id Nullable(String),
    agency_name_th String,
    agency_name_en String,
    ministry_code String,
    ministry_name_th String,
    ministry_name_en String,
    province_name_th String,
    province_name_en String,
    district_name_th Nullable(String),
    district_name_en Nullable(String),
    region_code String,
    region_name_th String,
    region_name_en String,
    defects_fixed Array(String),
    processed_at DateTime64(3, 'UTC'),
    source_partition Int32,
    source_offset Int64
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_events_digital_center_activity_avro ${on_cluster}
TO ${db}.events_digital_center_activity
AS SELECT * FROM ${db}.events_digital_center_activity_avro;

CREATE TABLE IF NOT EXISTS ${db}.events_dataset_update_avro ${on_cluster}
(
    event_id UUID,
    event_type String,
    agency_code String,
    occurred_at DateTime64(3, 'UTC'),
    produced_at DateTime64(3, 'UTC'),
    province_code String,
    district_code Nullable(String),
    channel String,
    source_system String,
    dataset_id String,
    title String,
    action String,
    record_count Int64,
    format String,
    licence String,
    data_year Int32,
    catalog_url Nullable(String),
    pseudonym_key_id Nullable(String),
    agency_name_th String,
    agency_name_en String,
    ministry_code String,
    ministry_name_th String,
    ministry_name_en String,
    province_name_th String,
    province_name_en String,
    district_name_th Nullable(String),
    district_name_en Nullable(String),
    region_code String,
    region_name_th String,
    region_name_en String,
    defects_fixed Array(String),
    processed_at DateTime64(3, 'UTC'),
    source_partition Int32,
    source_offset Int64
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_events_dataset_update_avro ${on_cluster}
TO ${db}.events_dataset_update
AS SELECT * FROM ${db}.events_dataset_update_avro;

CREATE TABLE IF NOT EXISTS ${db}.sink_batches ${on_cluster}
(
    consumer_group LowCardinality(String),
    topic LowCardinality(String),
    partition Int32,
    first_offset Int64,
    last_offset Int64,
    written_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ${GlobalMergeTree}
PARTITION BY toYYYYMMDD(written_at)
ORDER BY (consumer_group, topic, partition, first_offset)
TTL toDateTime(written_at) + INTERVAL 1 DAY
SETTINGS ttl_only_drop_parts = 1;
