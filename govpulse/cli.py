"""The `govpulse` command: one CLI in front of every process of the pipeline."""

from __future__ import annotations

import sys

import click

from govpulse.settings import Settings, SettingsError, env_name, get_settings


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
    """Start the embedded stack (broker, schema registry, …) and stop it all on Ctrl-C.

    Addresses come from GOVPULSE_BOOTSTRAP_SERVERS and GOVPULSE_REGISTRY_URL; state and
    logs go under GOVPULSE_DATA_DIR.
    """
    from embedded.stack import embedded_stack, run_until_signalled

    settings = settings_or_exit()
    try:
        stack = embedded_stack(settings)
    except Exception as exc:  # binary missing, bad address: say so, no traceback
        click.echo(f"govpulse up: {exc}", err=True)
        sys.exit(2)
    click.echo(f"Starting the embedded stack (data and logs in {settings.data_dir}):")
    sys.exit(run_until_signalled(stack, click.echo))


@main.command()
def settings() -> None:
    """Print every setting, its environment variable and its current value."""
    current = settings_or_exit()
    for name, info in Settings.model_fields.items():
        click.echo(f"{env_name(name):<36} {getattr(current, name)!s:<40} {info.description or ''}")
