"""`govpulse settings`, `schemas`, `topics`: the configuration and the contracts."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from govpulse.commands.common import settings_or_exit, types_option
from govpulse.settings import Settings, SettingsError, env_name, shown


@click.command()
def settings() -> None:
    """Print every setting, its environment variable and its current value (secrets masked)."""
    current = settings_or_exit()
    for name, info in Settings.model_fields.items():
        value = shown(name, getattr(current, name))
        click.echo(f"{env_name(name):<38} {value:<40} {info.description or ''}")


@click.group()
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
    from govpulse.schemas.registration import register_all

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
    from govpulse.schemas.registration import check_against_registry, check_on_disk

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


@click.group()
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
@types_option("Comma-separated event types whose topics to apply.")
@click.option("--timeout", type=click.FloatRange(min=1), default=30.0, show_default=True)
def topics_apply(
    topics_file: Path | None,
    dry_run: bool,
    bootstrap_servers: str | None,
    partitions: int | None,
    replication_factor: int | None,
    types: tuple[str, ...],
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
    chosen = types
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


COMMANDS = [settings, schemas, topics]
