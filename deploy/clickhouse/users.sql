-- ClickHouse users of govpulse on a server (docker-compose.yml, or any ClickHouse you run).
-- docker compose applies this file at every start of a ClickHouse container through
-- initdb/10-govpulse-users.sh, which puts the SHA-256 of each Docker secret in place of the
-- {{...}} placeholders (only hashes reach the server, its logs and this text); elsewhere,
-- replace them by hand (`printf %s 'password' | sha256sum`) and run it as an admin:
--   clickhouse-client --multiquery < users.sql
-- Every statement is idempotent, and passwords are re-set each time, so rotating a secret
-- is: change the file in deploy/secrets/, restart the ClickHouse container and the services.
--
-- Three users, least privilege each:
--   govpulse_writer  the sink and `govpulse migrate`: reads and inserts, and creates/alters
--                    tables and views in the govpulse database (`govpulse sink` applies pending
--                    migrations at start, so the sink needs DDL rights too). CLUSTER is for
--                    ON CLUSTER DDL in the replicated profile.
--   dashboard        `govpulse dashboard`: SELECT only, readonly = 1 (cannot even change a
--                    setting), bounded time, memory and result size, one thread per query
--                    (what GOVPULSE_DASHBOARD_QUERY_THREADS would ask; dashboard/README.md).
--   grafana          the Grafana ClickHouse data source: SELECT only; readonly = 2 because the
--                    plugin sets query settings itself, which readonly = 1 forbids.

CREATE DATABASE IF NOT EXISTS govpulse;

CREATE SETTINGS PROFILE IF NOT EXISTS dashboard_profile SETTINGS
    readonly = 1, max_threads = 1, max_execution_time = 10, max_memory_usage = 2000000000,
    max_result_rows = 100000;
CREATE SETTINGS PROFILE IF NOT EXISTS grafana_profile SETTINGS
    readonly = 2, max_execution_time = 60, max_memory_usage = 4000000000;

CREATE USER IF NOT EXISTS govpulse_writer IDENTIFIED WITH sha256_hash BY '{{writer_sha256}}';
ALTER USER govpulse_writer IDENTIFIED WITH sha256_hash BY '{{writer_sha256}}';
-- DROP: a migration may replace tables and views (0011 replaces the insert-fed hour and day
-- rollups with the tier job's tables)
GRANT SELECT, INSERT, CREATE DATABASE, CREATE TABLE, CREATE VIEW, ALTER TABLE, ALTER VIEW,
    DROP TABLE, DROP VIEW ON govpulse.* TO govpulse_writer;
GRANT CLUSTER ON *.* TO govpulse_writer;

CREATE USER IF NOT EXISTS dashboard IDENTIFIED WITH sha256_hash BY '{{dashboard_sha256}}'
    SETTINGS PROFILE dashboard_profile;
ALTER USER dashboard IDENTIFIED WITH sha256_hash BY '{{dashboard_sha256}}'
    SETTINGS PROFILE dashboard_profile;
GRANT SELECT ON govpulse.* TO dashboard;

CREATE USER IF NOT EXISTS grafana IDENTIFIED WITH sha256_hash BY '{{grafana_sha256}}'
    SETTINGS PROFILE grafana_profile;
ALTER USER grafana IDENTIFIED WITH sha256_hash BY '{{grafana_sha256}}'
    SETTINGS PROFILE grafana_profile;
GRANT SELECT ON govpulse.* TO grafana;
