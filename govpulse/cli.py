"""The `govpulse` command: one CLI in front of every process of the pipeline."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from govpulse.settings import Settings, SettingsError, env_name, get_settings, shown
from schemas.catalog import EVENT_TYPES


def settings_or_exit() -> Settings:
    """Settings for this process; a bad value stops it here with the variable named."""
    try:
        return get_settings()
    except SettingsError as exc:
        click.echo(f"govpulse: {exc}", err=True)
        sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="govpulse")
def main() -> None:
    """Live activity of Thai government agencies: agency events in, live dashboards out.

    Every command reads its configuration from GOVPULSE_* environment variables whose
    defaults point at the embedded stack on 127.0.0.1 (see `govpulse settings`).
    """


@main.command()
def up() -> None:
    """Run the whole pipeline on one machine; Ctrl-C or SIGTERM stops every process.

    Starts the embedded broker and schema registry, a streams worker, `serve` (sink +
    dashboard), Prometheus when Debian's package is installed, and simulated agencies
    (GOVPULSE_SIMULATE_RATE; 0 for none). Addresses come from the GOVPULSE_* settings;
    state and logs go under GOVPULSE_DATA_DIR.
    """
    from embedded.stack import embedded_stack, hold_data_dir, run_until_signalled

    settings = settings_or_exit()
    try:
        stack = embedded_stack(settings)
        held = hold_data_dir(settings.data_dir)  # noqa: F841 - the lock lives while it is open
    except Exception as exc:  # binary missing, bad address, directory in use: say so
        click.echo(f"govpulse up: {exc}", err=True)
        sys.exit(2)
    click.echo(f"Starting the embedded stack (data and logs in {settings.data_dir}):")
    sys.exit(run_until_signalled(stack, click.echo))


@main.command()
def settings() -> None:
    """Print every setting, its environment variable and its current value (secrets masked)."""
    current = settings_or_exit()
    for name, info in Settings.model_fields.items():
        value = shown(name, getattr(current, name))
        click.echo(f"{env_name(name):<38} {value:<40} {info.description or ''}")


@main.group()
def schemas() -> None:
    """Register the Avro contracts, or check a changed .avsc before it ships."""


def _registry_client(url: str | None):
    from govpulse.registry import registry_client

    return registry_client(url or settings_or_exit().registry_url)


@schemas.command("register")
@click.option("--registry-url", help="Schema registry (default: GOVPULSE_REGISTRY_URL).")
def schemas_register(registry_url: str | None) -> None:
    """Register every raw and clean schema (subject = <topic>-value), in version order.

    Sets each subject's compatibility to BACKWARD_TRANSITIVE. Safe to run again.
    """
    from schemas.registration import register_all

    try:
        done = register_all(_registry_client(registry_url))
    except Exception as exc:  # registry away or refusing: say which and why
        click.echo(f"govpulse schemas register: {exc}", err=True)
        sys.exit(1)
    for item in done:
        click.echo(f"{item.subject:<42} version {item.version:<3} id {item.schema_id}")


@schemas.command("check")
@click.option(
    "--offline",
    is_flag=True,
    help="Check each type's newest file against its older files, without a registry.",
)
@click.option(
    "--schema-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of .avsc files to check (default: the packaged schemas/avro).",
)
@click.option("--registry-url", help="Schema registry (default: GOVPULSE_REGISTRY_URL).")
def schemas_check(offline: bool, schema_dir: Path | None, registry_url: str | None) -> None:
    """Exit 1, naming the field, when a schema is incompatible with what it must follow.

    Online (default): the newest file of each subject against every version registered,
    under the subject's compatibility level. A CI gate for schema changes.
    """
    from schemas.registration import check_against_registry, check_on_disk

    try:
        if offline:
            results = check_on_disk(schema_dir)
        else:
            results = check_against_registry(_registry_client(registry_url), schema_dir)
    except Exception as exc:
        click.echo(f"govpulse schemas check: {exc}", err=True)
        sys.exit(2)
    failed = 0
    for result in results:
        verdict = "incompatible" if result.problems else "ok"
        click.echo(
            f"{result.subject:<42} {verdict:<13} {result.level} vs {result.compared_with} "
            "version(s)"
        )
        for problem in result.problems:
            click.echo(f"    {problem}")
        failed += bool(result.problems)
    if failed:
        click.echo(f"{failed} subject(s) incompatible", err=True)
        sys.exit(1)


@main.command()
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
@click.option(
    "--types",
    default=",".join(EVENT_TYPES),
    show_default=True,
    help="Comma-separated event types to send.",
)
@click.option("--seed", type=int, help="Random seed, for a reproducible run.")
@click.option(
    "--flat", is_flag=True, help="Constant rate (no daily rhythm of Bangkok office hours)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the final report as JSON on stdout.")
def simulate(
    rate: float,
    duration: float,
    dirty_share: float,
    types: str,
    seed: int | None,
    flat: bool,
    as_json: bool,
) -> None:
    """Send realistic agency traffic to raw.<type> and print the ground truth of what was sent.

    Progress goes to stderr every 2 s; the final report counts events per type and per defect
    kind — what the streams, sink and audit must account for.
    """
    from producers.agency_producer import AgencyProducer
    from producers.simulator import report_json
    from producers.simulator import simulate as run
    from producers.traffic import TrafficGenerator

    settings = settings_or_exit()
    try:
        generator = TrafficGenerator(
            dirty_share=dirty_share,
            seed=seed,
            event_types=[t.strip() for t in types.split(",") if t.strip()],
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


DEFAULT_METRICS_PORTS = {"simulator": 9101, "streams": 9102, "serve": 9103, "dashboard": 9104}


def start_metrics(settings: Settings, component: str) -> int:
    """Serve this process's /metrics; a taken port stops the process naming the setting."""
    from monitoring.server import serve_metrics

    port = settings.metrics_port
    try:
        return serve_metrics(
            DEFAULT_METRICS_PORTS[component] if port is None else port,
            settings.bind_host,  # 0.0.0.0 in a container, so Prometheus can scrape it
            component=component,
        )
    except SettingsError as exc:
        click.echo(f"govpulse: {exc}", err=True)
        sys.exit(2)


@main.command()
@click.option(
    "--types",
    default=",".join(EVENT_TYPES),
    show_default=True,
    help="Comma-separated event types this worker processes.",
)
def streams(types: str) -> None:
    """Run a stream worker: raw.<type> → clean.<type> | dlq.<type> | dropped duplicate.

    Start several (same settings) to share the partitions; each needs the pseudonymisation
    key in GOVPULSE_PSEUDONYM_KEY_FILE. Metrics on GOVPULSE_METRICS_PORT (default 9102).
    """
    from faust import Worker

    from govpulse.topics import ensure_topics
    from streams.app import build_app
    from streams.keys import load_key

    settings = settings_or_exit()
    chosen = tuple(t.strip() for t in types.split(",") if t.strip())
    if unknown := set(chosen) - set(EVENT_TYPES):
        raise click.BadParameter(f"unknown event types {sorted(unknown)}", param_hint="--types")
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


@main.command()
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
    from govpulse.logs import configure as configure_logging
    from sinks.migrations import MigrationError

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
        web.run_app(app, host="127.0.0.1", port=settings.dashboard_port, print=None)
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


def _register_component_commands() -> None:
    """Commands owned by their component's package (`<package>/cli.py` exposing `COMMANDS`)."""
    import importlib

    for package in ("sinks", "dashboard"):
        try:
            module = importlib.import_module(f"{package}.cli")
        except ModuleNotFoundError as error:
            if error.name != f"{package}.cli":
                raise
            continue
        for command in module.COMMANDS:
            main.add_command(command)


_register_component_commands()


@main.group()
def topics() -> None:
    """Kafka topics from the declarative topics file (govpulse/topics.json)."""


@topics.command("apply")
@click.option(
    "--file",
    "topics_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Topics file (default: GOVPULSE_TOPICS_FILE, else the packaged govpulse/topics.json).",
)
@click.option("--dry-run", is_flag=True, help="Print the plan only; change nothing.")
@click.option(
    "--bootstrap-servers", help="Kafka to apply to (default: GOVPULSE_BOOTSTRAP_SERVERS)."
)
@click.option(
    "--partitions",
    type=click.IntRange(1, 1000),
    help="Partitions of topics the file gives none (default: GOVPULSE_TOPIC_PARTITIONS).",
)
@click.option(
    "--replication-factor",
    type=click.IntRange(1, 32),
    help="Replicas of every topic instead of the file's (e.g. 1 on a one-broker development "
    "Kafka); min.insync.replicas is capped at it.",
)
@click.option(
    "--types",
    default=",".join(EVENT_TYPES),
    show_default=True,
    help="Comma-separated event types whose topics to apply.",
)
@click.option("--timeout", type=click.FloatRange(min=1), default=30.0, show_default=True)
def topics_apply(
    topics_file: Path | None,
    dry_run: bool,
    bootstrap_servers: str | None,
    partitions: int | None,
    replication_factor: int | None,
    types: str,
    timeout: float,
) -> None:
    """Make Kafka match the topics file: create, set configs, add partitions; print the plan.

    Idempotent: a second run reports every topic unchanged. Partition counts only grow
    (Kafka cannot remove partitions) and replication factors are never changed (that is a
    replica reassignment); a difference is reported as a note. Exit 1 if a step failed.
    """
    from govpulse import topics as provisioning
    from govpulse.kafka_config import client_config

    settings = settings_or_exit()
    chosen = tuple(t.strip() for t in types.split(",") if t.strip())
    if unknown := set(chosen) - set(EVENT_TYPES):
        raise click.BadParameter(f"unknown event types {sorted(unknown)}", param_hint="--types")
    bootstrap = bootstrap_servers or settings.bootstrap_servers
    try:
        declared = provisioning.read_topics_file(
            topics_file or settings.topics_file,
            partitions=partitions or settings.topic_partitions,
            app_id=settings.streams_app_id,
            event_types=chosen,
        )
        specs = declared.topics
        if replication_factor is not None:
            specs = [spec.with_replication(replication_factor) for spec in specs]
        admin = provisioning.admin_client(bootstrap, client_config(settings))
        plans = provisioning.plan(admin, specs, timeout)
    except SettingsError as exc:
        click.echo(f"govpulse topics apply: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:  # broker unreachable, metadata refused: say which and why
        click.echo(f"govpulse topics apply: cannot read topics from {bootstrap}: {exc}", err=True)
        sys.exit(2)
    click.echo(f"{len(plans)} topics of {declared.source} against {bootstrap}:")
    if not dry_run:
        provisioning.apply(admin, plans, timeout)
    lines, succeeded = provisioning.report(plans, dry_run=dry_run)
    for line in lines:
        click.echo(line)
    if not succeeded:
        sys.exit(1)
