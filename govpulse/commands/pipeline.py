"""`govpulse up`, `serve`, `streams`, `simulate`: the processes of the pipeline."""

from __future__ import annotations

import signal
import sys

import click

from govpulse.commands.common import (
    access_logger,
    settings_or_exit,
    start_metrics,
    types_option,
)
from govpulse.settings import SettingsError


@click.command()
def up() -> None:
    """Run the whole pipeline on one machine; Ctrl-C or SIGTERM stops every process.

    Starts the embedded broker and schema registry, a streams worker, `serve` (sink +
    dashboard), Prometheus when Debian's package is installed, and simulated agencies
    (GOVPULSE_SIMULATE_RATE; 0 for none). Addresses come from the GOVPULSE_* settings;
    state and logs go under GOVPULSE_DATA_DIR.
    """
    from govpulse.embedded.stack import embedded_stack, hold_data_dir, run_until_signalled

    settings = settings_or_exit()
    try:
        stack = embedded_stack(settings)
        held = hold_data_dir(settings.data_dir)  # noqa: F841 - the lock lives while it is open
    except Exception as exc:  # binary missing, bad address, directory in use: say so
        click.echo(f"govpulse up: {exc}", err=True)
        sys.exit(2)
    click.echo(f"Starting the embedded stack (data and logs in {settings.data_dir}):")
    sys.exit(run_until_signalled(stack, click.echo))


@click.command()
def serve() -> None:
    """Run the ClickHouse sink and the dashboard in one process (the store's owner).

    Applies migrations, then consumes clean.* and dlq.* into ClickHouse and serves the
    dashboard on 127.0.0.1:GOVPULSE_DASHBOARD_PORT (8088). With the embedded engine it also
    offers ClickHouse's HTTP interface on 127.0.0.1:GOVPULSE_CLICKHOUSE_HTTP_PORT (8123), so
    more sinks, audit and curl can share the store. Metrics on GOVPULSE_METRICS_PORT
    (default 9103). `govpulse up` starts it; Ctrl-C/SIGTERM flushes, commits and stops.
    """

    from aiohttp import web

    from govpulse import serve as serving
    from govpulse.dashboard.app import SERVER_OPTIONS
    from govpulse.logs import configure as configure_logging
    from govpulse.sinks.migrations import MigrationError

    settings = settings_or_exit()
    configure_logging(settings.log_level)
    try:
        app, close = serving.build(settings, lambda line: click.echo(line, err=True))
    except (SettingsError, MigrationError, ValueError) as exc:
        click.echo(f"govpulse serve: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:  # broker or registry unreachable at start: say so, no traceback
        click.echo(f"govpulse serve: cannot start: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    port = start_metrics(settings, "serve")
    url = f"http://127.0.0.1:{settings.dashboard_port}"
    click.echo(f"sink + dashboard: {url} ; metrics on :{port}/metrics", err=True)
    try:
        web.run_app(
            app,
            host="127.0.0.1",
            port=settings.dashboard_port,
            print=None,
            access_log=access_logger(settings.log_level),
            **SERVER_OPTIONS,
        )
    except SettingsError as exc:  # a port taken at start-up (the setting is named)
        click.echo(f"govpulse serve: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        click.echo(
            f"govpulse serve: cannot listen on {url} ({exc}); set GOVPULSE_DASHBOARD_PORT",
            err=True,
        )
        sys.exit(2)
    finally:
        close()


@click.command()
@types_option("Comma-separated event types this worker processes.")
def streams(types: tuple[str, ...]) -> None:
    """Run a stream worker: raw.<type> → clean.<type> | dlq.<type> | dropped duplicate.

    Start several (same settings) to share the partitions; each needs the pseudonymisation
    key in GOVPULSE_PSEUDONYM_KEY_FILE. Metrics on GOVPULSE_METRICS_PORT (default 9102).
    """
    from faust import Worker

    from govpulse.streams.app import build_app
    from govpulse.streams.keys import load_key
    from govpulse.topics import ensure_topics

    settings = settings_or_exit()
    chosen = types
    try:
        key = load_key(settings.pseudonym_key_file)
        ensure_topics(settings.bootstrap_servers, settings.topic_partitions)
    except SettingsError as exc:
        click.echo(f"govpulse streams: {exc}", err=True)
        sys.exit(2)
    port = start_metrics(settings, "streams")
    click.echo(f"streams worker for {', '.join(chosen)}; metrics on :{port}/metrics", err=True)
    app = build_app(settings, key, chosen)
    Worker(
        app, loglevel=settings.log_level.lower(), quiet=True, redirect_stdouts=False
    ).execute_from_commandline()


@click.command()
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=500.0,
    show_default=True,
    help="Mean events per second across all types.",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds to run; 0 runs until Ctrl-C.",
)
@click.option(
    "--dirty-share",
    type=click.FloatRange(0, 1),
    default=0.05,
    show_default=True,
    help="Share of records carrying one defect (Thai digits, BE year, bad ID, …).",
)
@types_option("Comma-separated event types to send.")
@click.option("--seed", type=int, help="Random seed, for a reproducible run.")
@click.option(
    "--flat", is_flag=True, help="Constant rate (no daily rhythm of Bangkok office hours)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the final report as JSON on stdout.")
def simulate(
    rate: float,
    duration: float,
    dirty_share: float,
    types: tuple[str, ...],
    seed: int | None,
    flat: bool,
    as_json: bool,
) -> None:
    """Send realistic agency traffic to raw.<type> and print the ground truth of what was sent.

    Progress goes to stderr every 2 s; the final report counts events per type and per defect
    kind — what the streams, sink and audit must account for.
    """
    from govpulse.producers.agency_producer import AgencyProducer
    from govpulse.producers.simulator import report_json
    from govpulse.producers.simulator import simulate as run
    from govpulse.producers.traffic import TrafficGenerator

    settings = settings_or_exit()
    try:
        generator = TrafficGenerator(
            dirty_share=dirty_share,
            seed=seed,
            event_types=list(types),
            daily_rhythm=not flat,
        )
        producer = AgencyProducer(check_rules=False)  # its defects are meant to reach the worker
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    start_metrics(settings, "simulator")
    stopping: list[bool] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.append(True))
    click.echo(
        f"simulating {rate:,.0f} events/s{' (daily rhythm)' if not flat else ''} to "
        f"{settings.bootstrap_servers}, {dirty_share:.0%} dirty; Ctrl-C stops",
        err=True,
    )
    report = run(
        producer,
        generator,
        rate,
        duration or float("inf"),
        progress=lambda line: click.echo(line, err=True),
        should_stop=lambda: bool(stopping),
    )
    click.echo(report.table(), err=as_json)
    if as_json:
        click.echo(report_json(report))
    if report.error:  # registry or broker unreachable, buffer full: the report above is partial
        click.echo(f"govpulse simulate: stopped early: {report.error}", err=True)
        sys.exit(1)
    if report.failed or report.delivered != report.total:
        click.echo(
            f"{report.total - report.delivered:,} of {report.total:,} records were not "
            "acknowledged by the broker (see the producer's failures)",
            err=True,
        )
        sys.exit(1)


COMMANDS = [up, serve, streams, simulate]
