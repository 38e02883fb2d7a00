"""Versioned, idempotent ClickHouse migrations: `sinks/ddl/NNNN_name.sql`, applied in order.

The DDL lives in SQL files (data, not code) written as `string.Template` text, so one file
serves every deployment: `${db}` is the database; `${MergeTree}` / `${AggregatingMergeTree}`
become Replicated engines with `replicated=True`; with a `cluster`, statements get
`ON CLUSTER`, storage tables become `<name>_local` (`${local}`) and statements marked
`-- @cluster-only` add the Distributed `<name>` tables, so readers and the sink use the same
table names on one machine and on a cluster. A statement ends with `;` at the end of a line
(so never end a comment line with `;`); full-line `--` comments are dropped when rendering.

Bookkeeping is the `schema_migrations` table. A file's checksum is taken over its template
text (line endings normalised), so parameters such as `raw_ttl_days` never make an applied
migration look edited; retention is reconciled separately from `retention.sql`. Every
statement is `IF NOT EXISTS`, so a run that died half-way, or two runs racing, converge.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(?P<name>(?P<version>[0-9]{4})_[a-z0-9_]+)\.sql$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CLUSTER_ONLY = re.compile(r"^\s*--\s*@cluster-only\s*$", re.MULTILINE)
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)
_COMMENT_LINE = re.compile(r"^[ \t]*--.*$", re.MULTILINE)
TTL_DAYS = re.compile(r"\bTTL\b.*?toIntervalDay\((?P<days>[0-9]+)\)", re.DOTALL)
_ALTER_TTL = re.compile(
    r"ALTER TABLE (?P<table>\S+).*?INTERVAL (?P<days>[0-9]+) DAY", re.DOTALL | re.IGNORECASE
)
_BOOTSTRAP = "schema_migrations.sql"
_RETENTION = "retention.sql"
# Replication paths: per shard for data; one path for the bookkeeping shared by all nodes.
_REPLICA_PATH = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"
_GLOBAL_REPLICA_PATH = "'/clickhouse/tables/all/{database}/{table}', '{replica}'"


class MigrationError(RuntimeError):
    """The database and the migration files disagree; a person has to decide what to do."""


@dataclass(frozen=True)
class DdlOptions:
    """What the templates are rendered with; validated because names end up in SQL text."""

    database: str = "default"
    raw_ttl_days: int = 400
    dead_letter_ttl_days: int = 30
    replicated: bool = False
    cluster: str | None = None

    def __post_init__(self) -> None:
        for setting, value in (("database", self.database), ("cluster", self.cluster)):
            if value is not None and not _IDENTIFIER.match(value):
                raise ValueError(
                    f"migrate({setting}={value!r}): expected a plain identifier "
                    "(letters, digits, underscore; not starting with a digit)"
                )
        for setting, days in (
            ("raw_ttl_days", self.raw_ttl_days),
            ("dead_letter_ttl_days", self.dead_letter_ttl_days),
        ):
            if isinstance(days, bool) or not isinstance(days, int) or days < 1:
                raise ValueError(f"migrate({setting}={days!r}): expected a whole number >= 1")
        if self.cluster and not self.replicated:
            # schema_migrations and sink_batches would be one per node: a run or a sink through
            # another node would not see what was applied or which ranges are in flight
            raise ValueError(
                f"migrate(cluster={self.cluster!r}) needs replicated=True "
                "(GOVPULSE_CLICKHOUSE_REPLICATED=true): the bookkeeping tables must be shared"
            )

    def substitutions(self) -> dict[str, str]:
        """Template variable → SQL text."""

        def engine(name: str, path: str = _REPLICA_PATH, args: str = "") -> str:
            """`name(args)`, or its Replicated twin with the replica path before `args`."""
            if self.replicated:
                return f"Replicated{name}({', '.join(a for a in (path, args) if a)})"
            return f"{name}({args})" if args else name

        return {
            "db": self.database,
            "cluster": self.cluster or "",
            "on_cluster": f"ON CLUSTER {self.cluster}" if self.cluster else "",
            "local": "_local" if self.cluster else "",
            "MergeTree": engine("MergeTree"),
            "AggregatingMergeTree": engine("AggregatingMergeTree"),
            "GlobalMergeTree": engine("MergeTree", _GLOBAL_REPLICA_PATH),
            # the tier tables and the tier job's progress: the newest `version` of a key wins
            "VersionedMergeTree": engine("ReplacingMergeTree", args="version"),
            "GlobalVersionedMergeTree": engine(
                "ReplacingMergeTree", _GLOBAL_REPLICA_PATH, args="version"
            ),
            "raw_ttl_days": str(self.raw_ttl_days),
            "dead_letter_ttl_days": str(self.dead_letter_ttl_days),
        }


def render(text: str, options: DdlOptions) -> list[str]:
    """The statements of one SQL template, in order, for these options."""
    sql = Template(text).substitute(options.substitutions())
    statements = []
    for chunk in _STATEMENT_END.split(sql):
        if _CLUSTER_ONLY.search(chunk) and not options.cluster:
            continue
        statement = "\n".join(line for line in _COMMENT_LINE.sub("", chunk).splitlines() if line)
        if statement.strip():  # not only comments or blank lines
            statements.append(statement.strip())
    return statements


@dataclass(frozen=True)
class Migration:
    """One `NNNN_name.sql` file; its checksum pins the text that was applied."""

    version: int
    name: str  # the file name without `.sql`, e.g. 0001_events
    filename: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.replace("\r\n", "\n").encode("utf-8")).hexdigest()

    def statements(self, options: DdlOptions) -> list[str]:
        return render(self.text, options)


def _ddl_dir(directory: Path | Traversable | None) -> Path | Traversable:
    return directory if directory is not None else files("govpulse.sinks.ddl")


def load_migrations(directory: Path | Traversable | None = None) -> list[Migration]:
    """Every `NNNN_name.sql` of `directory` (default: the packaged `sinks/ddl/`), by version."""
    found: dict[int, Migration] = {}
    for entry in _ddl_dir(directory).iterdir():
        match = _FILE.match(entry.name)
        if not match:
            continue
        migration = Migration(
            int(match["version"]), match["name"], entry.name, entry.read_text(encoding="utf-8")
        )
        if (clash := found.get(migration.version)) is not None:
            raise MigrationError(
                f"{clash.filename} and {migration.filename} share version {migration.version}; "
                "give the newer one the next free number"
            )
        found[migration.version] = migration
    return [found[v] for v in sorted(found)]


def _applied(client: Client, database: str) -> dict[int, tuple[str, str]]:
    rows = client.query(
        f"SELECT version, any(name), any(checksum) FROM {database}.schema_migrations "
        "GROUP BY version ORDER BY version"
    ).result_rows
    return {int(version): (name, checksum) for version, name, checksum in rows}


def _check_applied(
    migrations: Iterable[Migration], applied: dict[int, tuple[str, str]], database: str
) -> None:
    known = {m.version: m for m in migrations}
    for version, (name, checksum) in applied.items():
        migration = known.get(version)
        if migration is None:
            raise MigrationError(
                f"database {database!r} has migration {name} applied, which this "
                "govpulse does not have; run a govpulse at least as new as the one that applied it"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"{migration.filename} changed after it was applied to database {database!r} "
                f"(recorded sha256 {checksum[:12]}…, file now {migration.checksum[:12]}…); "
                "restore the file and put the change in a new migration"
            )


def _reconcile_retention(
    client: Client,
    directory: Path | Traversable | None,
    options: DdlOptions,
    shrink_retention: bool,
) -> None:
    """Re-apply the TTL of tables whose retention differs from the wanted number of days.

    Longer retention is applied; shorter only with `shrink_retention` (it deletes rows for
    good): a process started without the setting must not cut what an operator set.
    """
    retention = _ddl_dir(directory).joinpath(_RETENTION)
    if not retention.is_file():
        return
    for statement in render(retention.read_text(encoding="utf-8"), options):
        match = _ALTER_TTL.search(statement)
        if match is None:
            raise MigrationError(f"{_RETENTION}: cannot read table and days from {statement!r}")
        database, table = match["table"].split(".", 1)
        rows = client.query(
            "SELECT create_table_query FROM system.tables WHERE database = {d:String} "
            "AND name = {t:String}",
            parameters={"d": database, "t": table},
        ).result_rows
        current = TTL_DAYS.search(rows[0][0]) if rows else None
        if current is not None and current["days"] == match["days"]:
            continue
        if (
            current is not None
            and int(match["days"]) < int(current["days"])
            and not shrink_retention
        ):
            log.warning(
                "%s keeps rows %s days, more than the %s days configured: kept (shrinking "
                "deletes rows; run `govpulse migrate --shrink-retention` to do it)",
                match["table"], current["days"], match["days"],
            )  # fmt: skip
            continue
        log.info("setting retention of %s to %s days", match["table"], match["days"])
        client.command(statement)


def migrate(
    client: Client,
    *,
    database: str | None = None,
    raw_ttl_days: int = 400,
    dead_letter_ttl_days: int = 30,
    replicated: bool = False,
    cluster: str | None = None,
    directory: Path | Traversable | None = None,
    shrink_retention: bool = False,
) -> list[str]:
    """Apply pending migrations in version order; return their names (empty: up to date).

    `database` defaults to the client's database, so the sink and the dashboard, built from
    the same DSN, find the tables without naming a database. A migration edited after it was
    applied, or applied by a newer govpulse, stops the run with a `MigrationError` before
    anything changes.
    """
    options = DdlOptions(
        database=database or client.database or "default",
        raw_ttl_days=raw_ttl_days,
        dead_letter_ttl_days=dead_letter_ttl_days,
        replicated=replicated,
        cluster=cluster,
    )
    db, on_cluster = options.database, options.substitutions()["on_cluster"]
    migrations = load_migrations(directory)
    client.command(f"CREATE DATABASE IF NOT EXISTS {db} {on_cluster}")
    for statement in render(
        files("govpulse.sinks.ddl").joinpath(_BOOTSTRAP).read_text("utf-8"), options
    ):
        client.command(statement)
    applied = _applied(client, db)
    _check_applied(migrations, applied, db)
    done = []
    for migration in migrations:
        if migration.version in applied:
            continue
        log.info("applying migration %s to %s", migration.filename, db)
        for number, statement in enumerate(migration.statements(options), start=1):
            try:
                client.command(statement)
            except Exception as error:
                raise MigrationError(
                    f"{migration.filename}, statement {number} ({_first_line(statement)}): "
                    f"{error}. The file is not recorded as applied; what its earlier statements "
                    "created stays (IF NOT EXISTS skips it on the next run): drop it first if "
                    "you change those statements"
                ) from error
        client.insert(
            f"{db}.schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        done.append(migration.name)
    _reconcile_retention(client, directory, options, shrink_retention)
    _backfill_tiers(client, db)
    return done


def _backfill_tiers(client: Client, database: str) -> None:
    """Fill the hour and day tiers for the past when the tier job has never run here.

    A store upgraded across 0011 has every event since 0003 in the minute tier: its first run
    merges all of it (progress logged per day of hours). Until that run finishes no progress
    is recorded, so a migrate that died half-way backfills again from the start.
    """
    from govpulse.schemas.rollups import PROGRESS_TABLE
    from govpulse.sinks.tiers import TierJob

    exists = client.query(
        "SELECT count() FROM system.tables WHERE database = {d:String} AND name = {t:String}",
        parameters={"d": database, "t": PROGRESS_TABLE},
    ).result_rows[0][0]
    if not exists:  # a migrations directory without 0011 (tests of the runner)
        return
    job = TierJob(client, database)
    if job.progress() is None:
        run = job.run_once(on_progress=log.info)
        if run.hours:
            log.info(
                "tiers backfilled: %d hours, %d days in %.1f s",
                len(run.hours), len(run.days), run.seconds,
            )  # fmt: skip


def _first_line(statement: str) -> str:
    lines = (ln.strip() for ln in statement.splitlines())
    line = next((ln for ln in lines if ln and not ln.startswith("--")), "")
    return line if len(line) <= 80 else line[:77] + "..."
