-- Dead letters per minute by event type × reason: the "what is being rejected, and why" panel
-- and its alert, kept after the detail rows in dead_letters expire.
CREATE TABLE IF NOT EXISTS ${db}.dead_letters_minute${local} ${on_cluster}
(
    minute DateTime('UTC'),
    event_type LowCardinality(String),
    reason LowCardinality(String),
    dead_letters SimpleAggregateFunction(sum, UInt64)
)
ENGINE = ${AggregatingMergeTree}
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, event_type, reason)
SETTINGS non_replicated_deduplication_window = 1000;

-- @cluster-only
CREATE TABLE IF NOT EXISTS ${db}.dead_letters_minute ${on_cluster}
AS ${db}.dead_letters_minute_local
ENGINE = Distributed(${cluster}, ${db}, dead_letters_minute_local);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.mv_dead_letters_minute ${on_cluster}
TO ${db}.dead_letters_minute${local}
AS SELECT
    toStartOfMinute(first_seen) AS minute,
    event_type, reason,
    count() AS dead_letters
FROM ${db}.dead_letters${local}
GROUP BY minute, event_type, reason;
