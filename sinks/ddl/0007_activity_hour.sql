-- Hourly rollups for the dashboard's day and week views. Over 7 days, activity_minute holds up
-- to 10,080 minutes × the dimension combinations seen each minute (~8M rows at 10M events):
-- merging that many uniq and t-digest states per request took 78-1,121 ms. An hour of the same
-- dimensions holds at most 1/60 as many rows. The 15 min and 1 h views keep reading the
-- per-minute tables; the 24 h and 7 d views read these, in whole-hour buckets.
--
-- Filled like the minute rollups, by one materialized view per events_<type> table on every
-- insert, reading the raw block (not activity_minute: the two grains stay independent, and
-- the sink's deduplication token reaches each view directly). Same dimensions as the minute
-- tables, so a minute answer summed over whole hours equals the hourly answer.
-- non_replicated_deduplication_window as in 0003_activity_minute.sql: a replayed sink batch
-- (same insert_deduplication_token) is dropped here as in events_<type>.
--
-- Views fill from the moment they exist: events stored before this migration are not in the
-- hourly tables (no backfill; a database with history would need one, from events_*).
--
-- Not carried over from activity_minute: pipeline_latency_ms and last_inserted_at, which
-- serve the live-health figures (freshness, last five minutes) and are read per minute only.
--
-- Quantiles: a t-digest of a few values stays uncompressed, so merging a week of them costs
-- about one step per event whatever the grain. processing_seconds and Net Pracharat
-- latency_ms, whose hourly states hold many values, are kept as quantileBFloat16 states
-- (equal values counted once; relative error under 1%): over 7 days at 10M events their merge
-- took 30 and 22 ms instead of 50 and 60 ms with t-digest. Complaint resolution_days stays a
-- t-digest: its hourly states hold one or two values, where t-digest merged faster (23 ms
-- against 49 ms). Read them with quantileBFloat16Merge / quantileTDigestMerge accordingly.

CREATE TABLE IF NOT EXISTS ${db}.activity_hour${local} ${on_cluster}
(
    hour DateTime('UTC'),
    event_type LowCardinality(String),
    province_code LowCardinality(String),
    agency_code LowCardinality(String),
    channel LowCardinality(String),
    ministry_code LowCardinality(String),
    region_code LowCardinality(String),
    events SimpleAggregateFunction(sum, UInt64),
    citizens AggregateFunction(uniq, String),
    amount_thb SimpleAggregateFunction(sum, Decimal(38, 2)),
    processing_seconds AggregateFunction(quantileBFloat16, Float32)
)
ENGINE = ${AggregatingMergeTree}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, event_type, province_code, agency_code, channel, ministry_code, region_code)
SETTINGS non_replicated_deduplication_window = 1000;

-- @cluster-only
CREATE TABLE IF NOT EXISTS ${db}.activity_hour ${on_cluster}
AS ${db}.activity_hour_local
ENGINE = Distributed(${cluster}, ${db}, activity_hour_local);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_activity_hour_service_request ${on_cluster}
TO ${db}.activity_hour${local}
AS SELECT
    toStartOfHour(occurred_at) AS hour,
    'service_request' AS event_type,
    province_code, agency_code, channel, ministry_code, region_code,
    count() AS events,
    uniqStateIf(assumeNotNull(citizen_id_pseudonym), isNotNull(citizen_id_pseudonym))
        AS citizens,
    sum(fee_thb) AS amount_thb,
    quantileBFloat16StateIf(toFloat32(assumeNotNull(processing_seconds)),
        isNotNull(processing_seconds)) AS processing_seconds
FROM ${db}.events_service_request${local}
GROUP BY hour, province_code, agency_code, channel, ministry_code, region_code;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_activity_hour_complaint ${on_cluster}
TO ${db}.activity_hour${local}
AS SELECT
    toStartOfHour(occurred_at) AS hour,
    'complaint' AS event_type,
    province_code, agency_code, channel, ministry_code, region_code,
    count() AS events,
    uniqStateIf(assumeNotNull(complainant_id_pseudonym), isNotNull(complainant_id_pseudonym))
        AS citizens
FROM ${db}.events_complaint${local}
GROUP BY hour, province_code, agency_code, channel, ministry_code, region_code;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_activity_hour_net_pracharat_usage ${on_cluster}
TO ${db}.activity_hour${local}
AS SELECT
    toStartOfHour(occurred_at) AS hour,
    'net_pracharat_usage' AS event_type,
    province_code, agency_code, channel, ministry_code, region_code,
    count() AS events
FROM ${db}.events_net_pracharat_usage${local}
GROUP BY hour, province_code, agency_code, channel, ministry_code, region_code;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_activity_hour_digital_center_activity
${on_cluster}
TO ${db}.activity_hour${local}
AS SELECT
    toStartOfHour(occurred_at) AS hour,
    'digital_center_activity' AS event_type,
    province_code, agency_code, channel, ministry_code, region_code,
    count() AS events,
    uniqStateIf(assumeNotNull(participant_id_pseudonym), isNotNull(participant_id_pseudonym))
        AS citizens,
    sum(ifNull(order_amount_thb, 0)) AS amount_thb
FROM ${db}.events_digital_center_activity${local}
GROUP BY hour, province_code, agency_code, channel, ministry_code, region_code;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_activity_hour_dataset_update ${on_cluster}
TO ${db}.activity_hour${local}
AS SELECT
    toStartOfHour(occurred_at) AS hour,
    'dataset_update' AS event_type,
    province_code, agency_code, channel, ministry_code, region_code,
    count() AS events
FROM ${db}.events_dataset_update${local}
GROUP BY hour, province_code, agency_code, channel, ministry_code, region_code;

-- Hourly versions of the per-type rollups of 0004_type_rollups.sql, same columns and keys.
-- Each was measured necessary (the panel's queries over 7 days at 10M events, per-minute →
-- hourly table, median): service outcomes 144 → 70 ms (17 ms once parts are merged),
-- complaints 59 → 39 ms, Net Pracharat totals 140 → 76 ms (still t-digest latency),
-- digital centres 44 → 15 ms. Figures per endpoint: dashboard/README.md.
CREATE TABLE IF NOT EXISTS ${db}.service_request_hour${local} ${on_cluster}
(
    hour DateTime('UTC'),
    province_code LowCardinality(String),
    agency_code LowCardinality(String),
    service_code LowCardinality(String),
    status LowCardinality(String),
    ministry_code LowCardinality(String),
    region_code LowCardinality(String),
    requests SimpleAggregateFunction(sum, UInt64),
    satisfaction_sum SimpleAggregateFunction(sum, Int64),
    satisfaction_count SimpleAggregateFunction(sum, UInt64)
)
ENGINE = ${AggregatingMergeTree}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, province_code, agency_code, service_code, status, ministry_code, region_code)
SETTINGS non_replicated_deduplication_window = 1000;

-- @cluster-only
CREATE TABLE IF NOT EXISTS ${db}.service_request_hour ${on_cluster}
AS ${db}.service_request_hour_local
ENGINE = Distributed(${cluster}, ${db}, service_request_hour_local);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_service_request_hour ${on_cluster}
TO ${db}.service_request_hour${local}
AS SELECT
    toStartOfHour(occurred_at) AS hour,
    province_code, agency_code, service_code, status, ministry_code, region_code,
    count() AS requests,
    sum(ifNull(satisfaction_score, 0)) AS satisfaction_sum,
    count(satisfaction_score) AS satisfaction_count
FROM ${db}.events_service_request${local}
GROUP BY hour, province_code, agency_code, service_code, status, ministry_code, region_code;

CREATE TABLE IF NOT EXISTS ${db}.complaint_hour${local} ${on_cluster}
(
    hour DateTime('UTC'),
    province_code LowCardinality(String),
    agency_code LowCardinality(String),
    category LowCardinality(String),
    severity LowCardinality(String),
    status LowCardinality(String),
    via_1111 Bool,
    ministry_code LowCardinality(String),
    region_code LowCardinality(String),
    complaints SimpleAggregateFunction(sum, UInt64),
    resolution_days AggregateFunction(quantileTDigest, Float32)
)
ENGINE = ${AggregatingMergeTree}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, province_code, agency_code, category, severity, status, via_1111,
    ministry_code, region_code)
SETTINGS non_replicated_deduplication_window = 1000;

-- @cluster-only
CREATE TABLE IF NOT EXISTS ${db}.complaint_hour ${on_cluster}
AS ${db}.complaint_hour_local
ENGINE = Distributed(${cluster}, ${db}, complaint_hour_local);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_complaint_hour ${on_cluster}
TO ${db}.complaint_hour${local}
AS SELECT
    toStartOfHour(occurred_at) AS hour,
    province_code, agency_code, category, severity, status, via_1111, ministry_code, region_code,
    count() AS complaints,
    quantileTDigestStateIf(toFloat32(assumeNotNull(resolution_days)), isNotNull(resolution_days))
        AS resolution_days
FROM ${db}.events_complaint${local}
GROUP BY hour, province_code, agency_code, category, severity, status, via_1111,
    ministry_code, region_code;

CREATE TABLE IF NOT EXISTS ${db}.net_pracharat_hour${local} ${on_cluster}
(
    hour DateTime('UTC'),
    province_code LowCardinality(String),
    agency_code LowCardinality(String),
    ministry_code LowCardinality(String),
    region_code LowCardinality(String),
    reports SimpleAggregateFunction(sum, UInt64),
    access_points AggregateFunction(uniq, String),
    sessions SimpleAggregateFunction(sum, Int64),
    devices_sum SimpleAggregateFunction(sum, Int64),
    bytes_down SimpleAggregateFunction(sum, Int64),
    bytes_up SimpleAggregateFunction(sum, Int64),
    latency_ms AggregateFunction(quantileBFloat16, Float32)
)
ENGINE = ${AggregatingMergeTree}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, province_code, agency_code, ministry_code, region_code)
SETTINGS non_replicated_deduplication_window = 1000;

-- @cluster-only
CREATE TABLE IF NOT EXISTS ${db}.net_pracharat_hour ${on_cluster}
AS ${db}.net_pracharat_hour_local
ENGINE = Distributed(${cluster}, ${db}, net_pracharat_hour_local);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_net_pracharat_hour ${on_cluster}
TO ${db}.net_pracharat_hour${local}
AS SELECT
    toStartOfHour(occurred_at) AS hour,
    province_code, agency_code, ministry_code, region_code,
    count() AS reports,
    uniqState(access_point_id) AS access_points,
    sum(sessions) AS sessions,
    sum(unique_devices) AS devices_sum,
    sum(bytes_down) AS bytes_down,
    sum(bytes_up) AS bytes_up,
    quantileBFloat16StateIf(assumeNotNull(avg_latency_ms), isNotNull(avg_latency_ms))
        AS latency_ms
FROM ${db}.events_net_pracharat_usage${local}
GROUP BY hour, province_code, agency_code, ministry_code, region_code;

CREATE TABLE IF NOT EXISTS ${db}.digital_center_hour${local} ${on_cluster}
(
    hour DateTime('UTC'),
    province_code LowCardinality(String),
    agency_code LowCardinality(String),
    activity LowCardinality(String),
    product_category LowCardinality(String),
    ministry_code LowCardinality(String),
    region_code LowCardinality(String),
    activities SimpleAggregateFunction(sum, UInt64),
    participants SimpleAggregateFunction(sum, Int64),
    order_amount_thb SimpleAggregateFunction(sum, Decimal(38, 2))
)
ENGINE = ${AggregatingMergeTree}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, province_code, agency_code, activity, product_category, ministry_code,
    region_code)
SETTINGS non_replicated_deduplication_window = 1000;

-- @cluster-only
CREATE TABLE IF NOT EXISTS ${db}.digital_center_hour ${on_cluster}
AS ${db}.digital_center_hour_local
ENGINE = Distributed(${cluster}, ${db}, digital_center_hour_local);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_digital_center_hour ${on_cluster}
TO ${db}.digital_center_hour${local}
AS SELECT
    toStartOfHour(occurred_at) AS hour,
    province_code, agency_code, activity,
    ifNull(product_category, '') AS product_category,
    ministry_code, region_code,
    count() AS activities,
    sum(participants) AS participants,
    sum(ifNull(order_amount_thb, 0)) AS order_amount_thb
FROM ${db}.events_digital_center_activity${local}
GROUP BY hour, province_code, agency_code, activity, product_category, ministry_code,
    region_code;
