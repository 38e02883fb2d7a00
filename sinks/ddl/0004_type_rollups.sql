-- Per-type rollups for the dashboard panels that activity_minute cannot answer, each filled by
-- one materialized view, each at minute grain with the same geography/agency dimensions
-- (province, agency, plus ministry and region, which add no rows) and each deduplicating
-- replayed batches like activity_minute (see 0003_activity_minute.sql).
-- dataset_update has none: a few updates a day, its raw table answers every question.

-- Service outcomes: requests by service and status ("completed vs rejected per service"),
-- and citizen satisfaction (avg = satisfaction_sum / satisfaction_count).
CREATE TABLE IF NOT EXISTS ${db}.service_request_minute${local} ${on_cluster}
(
    minute DateTime('UTC'),
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
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, province_code, agency_code, service_code, status, ministry_code, region_code)
SETTINGS non_replicated_deduplication_window = 1000;

-- @cluster-only
CREATE TABLE IF NOT EXISTS ${db}.service_request_minute ${on_cluster}
AS ${db}.service_request_minute_local
ENGINE = Distributed(${cluster}, ${db}, service_request_minute_local);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_service_request_minute ${on_cluster}
TO ${db}.service_request_minute${local}
AS SELECT
    toStartOfMinute(occurred_at) AS minute,
    province_code, agency_code, service_code, status, ministry_code, region_code,
    count() AS requests,
    sum(ifNull(satisfaction_score, 0)) AS satisfaction_sum,
    count(satisfaction_score) AS satisfaction_count
FROM ${db}.events_service_request${local}
GROUP BY minute, province_code, agency_code, service_code, status, ministry_code, region_code;

-- Complaints by category, triage severity, case status and 1111-or-direct; resolution time.
CREATE TABLE IF NOT EXISTS ${db}.complaint_minute${local} ${on_cluster}
(
    minute DateTime('UTC'),
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
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, province_code, agency_code, category, severity, status, via_1111,
    ministry_code, region_code)
SETTINGS non_replicated_deduplication_window = 1000;

-- @cluster-only
CREATE TABLE IF NOT EXISTS ${db}.complaint_minute ${on_cluster}
AS ${db}.complaint_minute_local
ENGINE = Distributed(${cluster}, ${db}, complaint_minute_local);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_complaint_minute ${on_cluster}
TO ${db}.complaint_minute${local}
AS SELECT
    toStartOfMinute(occurred_at) AS minute,
    province_code, agency_code, category, severity, status, via_1111, ministry_code, region_code,
    count() AS complaints,
    quantileTDigestStateIf(toFloat32(assumeNotNull(resolution_days)), isNotNull(resolution_days))
        AS resolution_days
FROM ${db}.events_complaint${local}
GROUP BY minute, province_code, agency_code, category, severity, status, via_1111,
    ministry_code, region_code;

-- Net Pracharat village broadband: reports, reporting access points, sessions, traffic,
-- latency. Bucketed by occurred_at like every rollup, so it lines up with activity_minute.
-- devices_sum adds per-access-point distinct devices: an upper bound of distinct devices.
CREATE TABLE IF NOT EXISTS ${db}.net_pracharat_minute${local} ${on_cluster}
(
    minute DateTime('UTC'),
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
    latency_ms AggregateFunction(quantileTDigest, Float32)
)
ENGINE = ${AggregatingMergeTree}
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, province_code, agency_code, ministry_code, region_code)
SETTINGS non_replicated_deduplication_window = 1000;

-- @cluster-only
CREATE TABLE IF NOT EXISTS ${db}.net_pracharat_minute ${on_cluster}
AS ${db}.net_pracharat_minute_local
ENGINE = Distributed(${cluster}, ${db}, net_pracharat_minute_local);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_net_pracharat_minute ${on_cluster}
TO ${db}.net_pracharat_minute${local}
AS SELECT
    toStartOfMinute(occurred_at) AS minute,
    province_code, agency_code, ministry_code, region_code,
    count() AS reports,
    uniqState(access_point_id) AS access_points,
    sum(sessions) AS sessions,
    sum(unique_devices) AS devices_sum,
    sum(bytes_down) AS bytes_down,
    sum(bytes_up) AS bytes_up,
    quantileTDigestStateIf(assumeNotNull(avg_latency_ms), isNotNull(avg_latency_ms))
        AS latency_ms
FROM ${db}.events_net_pracharat_usage${local}
GROUP BY minute, province_code, agency_code, ministry_code, region_code;

-- Community digital centres: activities by kind and product category (orders have one),
-- people trained or served, and online-order baht.
CREATE TABLE IF NOT EXISTS ${db}.digital_center_minute${local} ${on_cluster}
(
    minute DateTime('UTC'),
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
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, province_code, agency_code, activity, product_category, ministry_code,
    region_code)
SETTINGS non_replicated_deduplication_window = 1000;

-- @cluster-only
CREATE TABLE IF NOT EXISTS ${db}.digital_center_minute ${on_cluster}
AS ${db}.digital_center_minute_local
ENGINE = Distributed(${cluster}, ${db}, digital_center_minute_local);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_digital_center_minute ${on_cluster}
TO ${db}.digital_center_minute${local}
AS SELECT
    toStartOfMinute(occurred_at) AS minute,
    province_code, agency_code, activity,
    ifNull(product_category, '') AS product_category,
    ministry_code, region_code,
    count() AS activities,
    sum(participants) AS participants,
    sum(ifNull(order_amount_thb, 0)) AS order_amount_thb
FROM ${db}.events_digital_center_activity${local}
GROUP BY minute, province_code, agency_code, activity, product_category, ministry_code,
    region_code;
