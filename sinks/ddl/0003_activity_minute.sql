-- activity_minute: what the live dashboard reads every few seconds -- per-minute counts by
-- event type × agency × province (× channel), without scanning the raw tables.
-- One materialized view per events_<type> table fills it on every insert.
--
-- Dimensions: ministry_code and region_code are functions of agency and province, so keeping
-- them in the key adds no rows and lets the dashboard group by ministry or region without a
-- join. district_code is left out (it would multiply rows ~12×); district drill-down reads
-- the raw table, whose key starts with province_code. channel (8 values) is in because the
-- shift from counters to online channels is what the programme is measured by.
--
-- Metrics (read with sum(), uniqMerge(), quantileTDigestMerge(0.5)(…), max()):
--   events               rows inserted
--   citizens             uniq state of pseudonyms of the fields tagged "pii": "national_id"
--                        (service_request.citizen_id, complaint.complainant_id,
--                        digital_center_activity.participant_id); approximate, and a citizen
--                        counts twice across a pseudonym key rotation
--   amount_thb           baht: service_request.fee_thb, digital_center_activity.order_amount_thb
--   pipeline_latency_ms  t-digest of processed_at - produced_at (agency publish → clean topic)
--   processing_seconds   t-digest of service_request.processing_seconds (finished requests)
--   last_inserted_at     newest inserted_at: the dashboard's freshness figure, cheaply
--
-- ORDER BY starts with minute: the dashboard's main query is "the last N minutes, everything";
-- a province filter is then a narrow range inside each minute.
--
-- non_replicated_deduplication_window is needed here too (measured on 26.9): without it, a
-- batch the events table deduplicates by its token is still counted again by the view.
-- With it, the view's block carries a token derived from the sink's, and is dropped as well.
CREATE TABLE IF NOT EXISTS ${db}.activity_minute${local} ${on_cluster}
(
    minute DateTime('UTC'),
    event_type LowCardinality(String),
    province_code LowCardinality(String),
    agency_code LowCardinality(String),
    channel LowCardinality(String),
    ministry_code LowCardinality(String),
    region_code LowCardinality(String),
    events SimpleAggregateFunction(sum, UInt64),
    citizens AggregateFunction(uniq, String),
    amount_thb SimpleAggregateFunction(sum, Decimal(38, 2)),
    pipeline_latency_ms AggregateFunction(quantileTDigest, Float32),
    processing_seconds AggregateFunction(quantileTDigest, Float32),
    last_inserted_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = ${AggregatingMergeTree}
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, event_type, province_code, agency_code, channel, ministry_code, region_code)
SETTINGS non_replicated_deduplication_window = 1000;

-- @cluster-only
CREATE TABLE IF NOT EXISTS ${db}.activity_minute ${on_cluster}
AS ${db}.activity_minute_local
ENGINE = Distributed(${cluster}, ${db}, activity_minute_local);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_activity_minute_service_request ${on_cluster}
TO ${db}.activity_minute${local}
AS SELECT
    toStartOfMinute(occurred_at) AS minute,
    'service_request' AS event_type,
    province_code, agency_code, channel, ministry_code, region_code,
    count() AS events,
    uniqStateIf(assumeNotNull(citizen_id_pseudonym), isNotNull(citizen_id_pseudonym))
        AS citizens,
    sum(fee_thb) AS amount_thb,
    quantileTDigestState(toFloat32(dateDiff('millisecond', produced_at, processed_at)))
        AS pipeline_latency_ms,
    quantileTDigestStateIf(toFloat32(assumeNotNull(processing_seconds)),
        isNotNull(processing_seconds)) AS processing_seconds,
    max(inserted_at) AS last_inserted_at
FROM ${db}.events_service_request${local}
GROUP BY minute, province_code, agency_code, channel, ministry_code, region_code;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_activity_minute_complaint ${on_cluster}
TO ${db}.activity_minute${local}
AS SELECT
    toStartOfMinute(occurred_at) AS minute,
    'complaint' AS event_type,
    province_code, agency_code, channel, ministry_code, region_code,
    count() AS events,
    uniqStateIf(assumeNotNull(complainant_id_pseudonym), isNotNull(complainant_id_pseudonym))
        AS citizens,
    quantileTDigestState(toFloat32(dateDiff('millisecond', produced_at, processed_at)))
        AS pipeline_latency_ms,
    max(inserted_at) AS last_inserted_at
FROM ${db}.events_complaint${local}
GROUP BY minute, province_code, agency_code, channel, ministry_code, region_code;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_activity_minute_net_pracharat_usage ${on_cluster}
TO ${db}.activity_minute${local}
AS SELECT
    toStartOfMinute(occurred_at) AS minute,
    'net_pracharat_usage' AS event_type,
    province_code, agency_code, channel, ministry_code, region_code,
    count() AS events,
    quantileTDigestState(toFloat32(dateDiff('millisecond', produced_at, processed_at)))
        AS pipeline_latency_ms,
    max(inserted_at) AS last_inserted_at
FROM ${db}.events_net_pracharat_usage${local}
GROUP BY minute, province_code, agency_code, channel, ministry_code, region_code;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_activity_minute_digital_center_activity
${on_cluster}
TO ${db}.activity_minute${local}
AS SELECT
    toStartOfMinute(occurred_at) AS minute,
    'digital_center_activity' AS event_type,
    province_code, agency_code, channel, ministry_code, region_code,
    count() AS events,
    uniqStateIf(assumeNotNull(participant_id_pseudonym), isNotNull(participant_id_pseudonym))
        AS citizens,
    sum(ifNull(order_amount_thb, 0)) AS amount_thb,
    quantileTDigestState(toFloat32(dateDiff('millisecond', produced_at, processed_at)))
        AS pipeline_latency_ms,
    max(inserted_at) AS last_inserted_at
FROM ${db}.events_digital_center_activity${local}
GROUP BY minute, province_code, agency_code, channel, ministry_code, region_code;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_activity_minute_dataset_update ${on_cluster}
TO ${db}.activity_minute${local}
AS SELECT
    toStartOfMinute(occurred_at) AS minute,
    'dataset_update' AS event_type,
    province_code, agency_code, channel, ministry_code, region_code,
    count() AS events,
    quantileTDigestState(toFloat32(dateDiff('millisecond', produced_at, processed_at)))
        AS pipeline_latency_ms,
    max(inserted_at) AS last_inserted_at
FROM ${db}.events_dataset_update${local}
GROUP BY minute, province_code, agency_code, channel, ministry_code, region_code;
