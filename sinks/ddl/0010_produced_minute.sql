-- produced_minute: how old the stored data is, for the dashboard's data-age badge.
-- Per minute of produced_at (when the agency published the event) x event type: the newest
-- produced_at and the newest inserted_at among the stored rows. Data age = now - the newest
-- produced_at stored: the time an event takes from its agency to ClickHouse, plus any
-- backlog in raw.*, clean.* or the sink ahead of it. activity_minute's last_inserted_at only
-- says when the sink last wrote, which stays near zero while a backlog of older events is
-- being stored (issue 18: 0.2 s shown, 7 s behind).
--
-- Keyed by the produced minute, not occurred_at: an event that happened yesterday and was
-- published now is fresh data. A few rows per minute whatever the traffic, so "the newest
-- of the last two hours" reads a few hundred rows. max() is idempotent, so a replayed insert
-- cannot skew it; the deduplication window is set like every other rollup's anyway (0009).
-- One more view per events_<type> (which feed 6-11 already): one more small part of a row or
-- two per insert.
CREATE TABLE IF NOT EXISTS ${db}.produced_minute${local} ${on_cluster}
(
    minute DateTime('UTC'),
    event_type LowCardinality(String),
    last_produced_at SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    last_inserted_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = ${AggregatingMergeTree}
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, event_type)
-- only the badge reads it, at most the last 24 h: two days bound it (~15k rows)
TTL minute + INTERVAL 2 DAY
SETTINGS non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;

-- @cluster-only
CREATE TABLE IF NOT EXISTS ${db}.produced_minute ${on_cluster}
AS ${db}.produced_minute_local
ENGINE = Distributed(${cluster}, ${db}, produced_minute_local);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_produced_minute_service_request ${on_cluster}
TO ${db}.produced_minute${local}
AS SELECT
    toStartOfMinute(produced_at) AS minute,
    'service_request' AS event_type,
    max(produced_at) AS last_produced_at,
    max(inserted_at) AS last_inserted_at
FROM ${db}.events_service_request${local}
GROUP BY minute;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_produced_minute_complaint ${on_cluster}
TO ${db}.produced_minute${local}
AS SELECT
    toStartOfMinute(produced_at) AS minute,
    'complaint' AS event_type,
    max(produced_at) AS last_produced_at,
    max(inserted_at) AS last_inserted_at
FROM ${db}.events_complaint${local}
GROUP BY minute;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_produced_minute_net_pracharat_usage ${on_cluster}
TO ${db}.produced_minute${local}
AS SELECT
    toStartOfMinute(produced_at) AS minute,
    'net_pracharat_usage' AS event_type,
    max(produced_at) AS last_produced_at,
    max(inserted_at) AS last_inserted_at
FROM ${db}.events_net_pracharat_usage${local}
GROUP BY minute;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_produced_minute_digital_center_activity ${on_cluster}
TO ${db}.produced_minute${local}
AS SELECT
    toStartOfMinute(produced_at) AS minute,
    'digital_center_activity' AS event_type,
    max(produced_at) AS last_produced_at,
    max(inserted_at) AS last_inserted_at
FROM ${db}.events_digital_center_activity${local}
GROUP BY minute;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_produced_minute_dataset_update ${on_cluster}
TO ${db}.produced_minute${local}
AS SELECT
    toStartOfMinute(produced_at) AS minute,
    'dataset_update' AS event_type,
    max(produced_at) AS last_produced_at,
    max(inserted_at) AS last_inserted_at
FROM ${db}.events_dataset_update${local}
GROUP BY minute;
