"""The `govpulse` command: one CLI in front of every process of the pipeline.

The one registry of commands: each lives in `govpulse.commands.<area>` and is listed here.
"""

from __future__ import annotations

import click

from govpulse.commands import contracts, dashboard, pipeline, store


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="govpulse")
def main() -> None:
    """Live activity of Thai government agencies: agency events in, live dashboards out.

    Every command reads its configuration from GOVPULSE_* environment variables whose
    defaults point at the embedded stack on 127.0.0.1 (see `govpulse settings`).
    """


for module in (pipeline, contracts, store, dashboard):
    for command in module.COMMANDS:
        main.add_command(command)
