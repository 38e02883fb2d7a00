"""`govpulse migrate`, `sink`, `audit`: the store and what is in it."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from govpulse.commands.common import settings_or_exit, start_metrics, types_option

_TTL_HELP = (
    "Days raw event rows are kept (applied to existing tables too; shortening them needs "
    "`govpulse migrate --shrink-retention`)."
)
_DLQ_TTL_HELP = "Days dead-letter rows are kept."


def _reachable_dsn(dsn: str, command: str, wait_for_serve: bool = False) -> str:
    """`dsn`, or the ClickHouse HTTP URL a running `govpulse serve` offers for its directory.

    `wait_for_serve`: when serve shared this directory and did not stop cleanly (killed, or
    still starting), wait for it rather than open the directory here — a long-lived process
    holding it would keep serve from coming back.
    """
    from govpulse.clickhouse import serve_marker, served_engine_url
    from govpulse.settings import get_settings

    port = get_settings().clickhouse_http_port
    waited_since = time.monotonic()
    told = 0.0
    while True:
        marker = serve_marker(dsn)
        ports = [marker["http_port"]] if marker else []
        for each in dict.fromkeys([*ports, port]):
            if url := served_engine_url(dsn, each):
                click.echo(
                    f"govpulse {command}: the store is open in `govpulse serve`; using {url}",
                    err=True,
                )
                return url
        if not (wait_for_serve and marker):
            return dsn
        if time.monotonic() - told >= 10:
            told = time.monotonic()
            click.echo(
                f"govpulse {command}: waiting for `govpulse serve` (pid {marker['pid']}) to "
                f"offer {dsn} on :{marker['http_port']} ({time.monotonic() - waited_since:.0f} s "
                "so far); it shares this store and was not stopped cleanly. Start it, or "
                "remove the govpulse-serve.json in that directory to let this command open "
                "the store itself.",
                err=True,
            )
        time.sleep(0.5)


def _client(dsn: str, command: str, wait_for_serve: bool = False) -> Any:
    """A ClickHouse client, or exit 2 with the DSN setting named (see `_reachable_dsn`)."""
    from govpulse.clickhouse import make_client
    from govpulse.settings import SettingsError

    dsn = _reachable_dsn(dsn, command, wait_for_serve)
    try:
        return make_client(dsn)
    except SettingsError as exc:
        hint = ""
        if dsn.startswith("chdb:"):
            hint = (
                "\n  (a chdb directory opens in one process only: start `govpulse serve` with "
                "GOVPULSE_CLICKHOUSE_HTTP_PORT set to share it, or point --clickhouse-dsn at a "
                "ClickHouse server)"
            )
        click.echo(f"govpulse {command}: {exc}{hint}", err=True)
        sys.exit(2)


def _migrate(
    client: Any,
    raw_ttl_days: int,
    dead_letter_ttl_days: int,
    command: str,
    shrink_retention: bool = False,
) -> list:
    from govpulse.settings import get_settings
    from govpulse.sinks.migrations import MigrationError, migrate

    settings = get_settings()
    try:
        return migrate(
            client,
            raw_ttl_days=raw_ttl_days,
            dead_letter_ttl_days=dead_letter_ttl_days,
            replicated=settings.clickhouse_replicated,
            cluster=settings.clickhouse_cluster or None,
            shrink_retention=shrink_retention,
        )
    except MigrationError as exc:
        click.echo(f"govpulse {command}: {exc}", err=True)
        sys.exit(1)


def _ttl_options(function: Any) -> Any:
    function = click.option(
        "--dead-letter-ttl-days",
        type=click.IntRange(min=1),
        default=None,
        help=_DLQ_TTL_HELP + " [default: GOVPULSE_DEAD_LETTER_TTL_DAYS, 30]",
    )(function)
    return click.option(
        "--raw-ttl-days",
        type=click.IntRange(min=1),
        default=None,
        help=_TTL_HELP + " [default: GOVPULSE_RAW_TTL_DAYS, 400]",
    )(function)


_DSN_OPTION = click.option(
    "--clickhouse-dsn", help="ClickHouse DSN (default: GOVPULSE_CLICKHOUSE_DSN)."
)


@click.command("migrate")
@_ttl_options
@click.option(
    "--shrink-retention",
    is_flag=True,
    help="Apply a retention shorter than the tables have (deletes the older rows for good); "
    "without it a shorter one is only reported.",
)
@_DSN_OPTION
def migrate(
    raw_ttl_days: int | None,
    dead_letter_ttl_days: int | None,
    shrink_retention: bool,
    clickhouse_dsn: str | None,
) -> None:
    """Create or update the ClickHouse tables and views (versioned, safe to run again)."""

    settings = settings_or_exit()
    raw_ttl_days = raw_ttl_days or settings.raw_ttl_days
    dead_letter_ttl_days = dead_letter_ttl_days or settings.dead_letter_ttl_days
    client = _client(clickhouse_dsn or settings.clickhouse_dsn, "migrate")
    try:
        applied = _migrate(client, raw_ttl_days, dead_letter_ttl_days, "migrate", shrink_retention)
    finally:
        client.close()
    for name in applied:
        click.echo(f"applied {name}")
    click.echo(f"database {client.database or 'default'}: up to date")


@click.command("sink")
@types_option("Comma-separated event types whose clean.* and dlq.* topics this sink consumes.")
@click.option(
    "--max-rows",
    type=click.IntRange(min=1, max=1_000_000),
    default=None,
    help="Records held before an insert cycle starts [default: GOVPULSE_SINK_MAX_ROWS, 100000].",
)
@click.option(
    "--max-wait-ms",
    type=click.IntRange(min=1),
    default=None,
    help="Longest a record waits for its insert cycle [default: GOVPULSE_SINK_MAX_WAIT_MS, 100].",
)
@click.option("--progress-every", type=float, default=5.0, show_default=True, help="Seconds.")
@_ttl_options
@_DSN_OPTION
def sink(
    types: tuple[str, ...],
    max_rows: int | None,
    max_wait_ms: int | None,
    progress_every: float,
    raw_ttl_days: int | None,
    dead_letter_ttl_days: int | None,
    clickhouse_dsn: str | None,
) -> None:
    """Run the ClickHouse sink alone: clean.* and dlq.* → ClickHouse, until Ctrl-C.

    Applies migrations first. Ctrl-C or SIGTERM inserts what is held, commits and stops.
    On the embedded stack `govpulse serve` runs the same sink beside the dashboard API.
    """
    import signal
    import threading
    import time

    from govpulse.logs import configure as configure_logging
    from govpulse.settings import SettingsError
    from govpulse.sinks.configured import ConfiguredSink
    from govpulse.topics import ensure_topics

    settings = settings_or_exit()
    raw_ttl_days = raw_ttl_days or settings.raw_ttl_days
    dead_letter_ttl_days = dead_letter_ttl_days or settings.dead_letter_ttl_days
    chosen = types
    configure_logging(settings.log_level)
    dsn = _reachable_dsn(clickhouse_dsn or settings.clickhouse_dsn, "sink")
    client = _client(dsn, "sink", wait_for_serve=True)
    for name in _migrate(client, raw_ttl_days, dead_letter_ttl_days, "sink"):
        click.echo(f"applied migration {name}", err=True)
    try:
        configured = ConfiguredSink(
            settings,
            client,
            dsn=dsn,
            event_types=chosen,
            max_rows=max_rows,
            max_wait_ms=max_wait_ms,
        )
        ensure_topics(settings.bootstrap_servers, settings.topic_partitions)
        port = start_metrics(settings, "sink")
    except (SettingsError, ValueError) as exc:
        click.echo(f"govpulse sink: {exc}", err=True)
        sys.exit(2)
    worker = configured.sink
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(
        f"sink for {', '.join(chosen)} from {settings.bootstrap_servers} into "
        f"{client.database or 'default'}; metrics on :{port}/metrics; Ctrl-C stops",
        err=True,
    )
    last_rows, last_at = 0, time.monotonic()
    configured.start_tiers()
    try:
        while not stop.is_set():
            worker.poll_once()
            if time.monotonic() - last_at >= progress_every:
                stats, now = worker.stats, time.monotonic()
                rate = (stats.rows_total - last_rows) / (now - last_at)
                paused = ", PAUSED (ClickHouse failing)" if stats.paused else ""
                click.echo(
                    f"{stats.rows_total:,} rows stored ({rate:,.0f}/s), lag {stats.lag:,}, "
                    f"{stats.assigned} partitions{paused}",
                    err=True,
                )
                last_rows, last_at = stats.rows_total, now
    finally:
        worker.close()
        configured.close_clients()
        client.close()
    stats = worker.stats
    click.echo(f"stopped: {stats.rows_total:,} rows stored in {stats.inserts:,} inserts", err=True)


@click.command("audit")
@click.option("--since", help="Audit raw records produced at or after this time "
              "(ISO 8601, UTC unless an offset is given, or relative: 30m, 2h, 1d).")  # fmt: skip
@click.option("--until", help="… and before this time (same formats).")
@types_option("Comma-separated event types to audit.")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds to keep re-checking while counts do not balance (pipeline still draining).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@_DSN_OPTION
def audit(
    since: str | None,
    until: str | None,
    types: tuple[str, ...],
    wait: float,
    as_json: bool,
    clickhouse_dsn: str | None,
) -> None:
    """Reconcile every type: produced = clean + dead-lettered + duplicates; each stored once.

    Reads the raw/clean/dlq/dup topics (outcomes per distinct raw record) and ClickHouse, and
    checks: clean.* and dlq.* hold one record per raw record; events_<type> holds one row per
    distinct event id, as many as clean.<type> has; dead_letters one row per raw record; every
    rollup (activity_minute, the per-type, hourly and daily ones) counts, per minute, hour or
    day of occurred_at, what its events table holds. Clean records ClickHouse refused
    (dead_letters, reason store_rejected) count as stored; events that passed the events
    tables' retention (their TTL) since they were stored count as aged out, on neither side.
    --since/--until select raw records by broker time, and rollup buckets by occurred_at.
    Dead letters are listed by reason, rollups with their figures, with --json. Exits 1 on
    any mismatch.

    The embedded broker starts empty on every `govpulse up`, while ClickHouse keeps the rows
    of earlier runs under the same offsets: there, audit with --since the current start.
    """
    import time

    from govpulse.registry import registry_client
    from govpulse.schemas.writer_schemas import WriterSchemas
    from govpulse.sinks import audit as reconcile

    settings = settings_or_exit()
    chosen = types
    try:
        start, end = _when(since, "--since"), _when(until, "--until")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if start is not None and end is not None and start >= end:
        raise click.BadParameter(
            f"--since {start.isoformat()} is not before --until {end.isoformat()}: nothing to audit"
        )
    client = _client(clickhouse_dsn or settings.clickhouse_dsn, "audit")
    schemas = WriterSchemas(registry_client(settings.registry_url))
    deadline = time.monotonic() + wait
    try:
        retention = [reconcile.retention_days(client, t) for t in chosen]
        stored = reconcile.clickhouse_side(client, start, end)
        while True:
            results = reconcile.audit(
                settings.bootstrap_servers,
                stored,
                schemas,
                chosen,
                start,
                end,
                retention=min(filter(None, retention), default=None),
            )
            failed = any(r.problems for r in results)
            if not failed or time.monotonic() >= deadline:
                break
            time.sleep(2)
    except Exception as exc:  # broker, registry or ClickHouse away: say which
        click.echo(f"govpulse audit: {exc}", err=True)
        sys.exit(2)
    finally:
        client.close()
    click.echo(reconcile.table(results), err=as_json)
    if as_json:
        click.echo(reconcile.to_json(results))
    if failed:
        if until is None:
            click.echo(
                "a live pipeline has records in flight: audit up to a recent moment "
                "(--until 30s) or let it drain (--wait 60)",
                err=True,
            )
        sys.exit(1)


def _when(value: str | None, option: str) -> Any:
    """ISO 8601 (naive = UTC) or `<n>[smhd]` ago → aware datetime; None stays None."""
    import re
    from datetime import UTC, datetime, timedelta

    if not value:
        return None
    if match := re.fullmatch(r"([0-9]+)([smhd])", value.strip()):
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
        return datetime.now(UTC) - timedelta(**{unit: int(match[1])})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{option} {value!r}: expected ISO 8601 or e.g. 30m, 2h, 1d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


COMMANDS = [migrate, sink, audit]
