"""`govpulse dashboard`: the live operations dashboard on its own, against a ClickHouse DSN.

On the embedded stack the dashboard runs inside `govpulse serve`, next to the sink, on the one
chdb client of that process; this command is for a ClickHouse server, where the dashboard
connects as a read-only user (see dashboard/README.md).
"""

from __future__ import annotations

import sys

import click

from govpulse.commands.common import (
    DEFAULT_METRICS_PORTS,
    access_logger,
    settings_or_exit,
    start_metrics,
)

DEFAULT_PORT = 8088
DSN_VARIABLE = "GOVPULSE_DASHBOARD_CLICKHOUSE_DSN"


@click.command("dashboard")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help=f"Port of the page and the API (default: GOVPULSE_DASHBOARD_PORT, {DEFAULT_PORT}).",
)
@click.option(
    "--dsn",
    help="ClickHouse DSN of a read-only user, e.g. http://dashboard:pw@clickhouse:8123/govpulse "
    f"(default: {DSN_VARIABLE}, else GOVPULSE_CLICKHOUSE_DSN).",
)
@click.option("--database", help="Database holding the govpulse tables (default: the DSN's).")
@click.option(
    "--freshness-threshold",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Data age (seconds since the newest stored event was produced) above which the "
    "badge shows red.",
)
@click.option(
    "--dead-letter-threshold",
    type=click.FloatRange(0, 1),
    default=0.05,
    show_default=True,
    help="Share of dead-lettered events (last 5 minutes) above which the rate shows red.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Prometheus /metrics port (default: GOVPULSE_METRICS_PORT, else "
    f"{DEFAULT_METRICS_PORTS['dashboard']}).",
)
def dashboard(
    host: str,
    port: int | None,
    dsn: str | None,
    database: str | None,
    freshness_threshold: float,
    dead_letter_threshold: float,
    metrics_port: int | None,
) -> None:
    """Serve the live operations dashboard (page and JSON API) until Ctrl-C."""
    from aiohttp import web

    from govpulse.clickhouse import make_client
    from govpulse.dashboard.app import SERVER_OPTIONS, build_app, options_from
    from govpulse.dashboard.queries import DashboardQueries
    from govpulse.logs import configure as configure_logging
    from govpulse.settings import SettingsError

    settings = settings_or_exit()
    configure_logging(settings.log_level)
    port = port or settings.dashboard_port
    try:
        client = make_client(dsn or settings.dashboard_clickhouse_dsn or settings.clickhouse_dsn)
        missing = DashboardQueries(client, database).missing_tables()
        if missing:
            raise SettingsError(
                f"database {database or client.database or 'default'!r} lacks "
                f"{', '.join(missing)}; run `govpulse migrate` against it first"
            )
        bound = start_metrics(settings, "dashboard", metrics_port)
        app = build_app(
            client,
            database,
            freshness_threshold_seconds=freshness_threshold,
            dead_letter_threshold=dead_letter_threshold,
            **options_from(settings),
        )
    except (SettingsError, ValueError) as exc:
        click.echo(f"govpulse dashboard: {exc}", err=True)
        sys.exit(2)
    click.echo(f"dashboard on http://{host}:{port}/ ; metrics on :{bound}/metrics", err=True)
    try:
        web.run_app(
            app,
            host=host,
            port=port,
            print=None,
            handle_signals=True,
            access_log=access_logger(settings.log_level),
            **SERVER_OPTIONS,
        )
    except OSError as exc:  # port taken, address not ours
        click.echo(f"govpulse dashboard: cannot listen on {host}:{port}: {exc}", err=True)
        sys.exit(2)
    finally:
        client.close()


COMMANDS = [dashboard]
