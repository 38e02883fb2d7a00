"""What every command shares: settings that stop the process when wrong, `--types`, /metrics,
the web servers' access log."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from govpulse.schemas.catalog import EVENT_TYPES
from govpulse.settings import Settings, SettingsError, get_settings

Command = TypeVar("Command", bound=Callable[..., Any])

DEFAULT_METRICS_PORTS = {
    "simulator": 9101,
    "streams": 9102,
    "serve": 9103,
    "sink": 9103,  # `govpulse sink` is the sink half of `serve`
    "dashboard": 9104,
}


def access_logger(level: str) -> logging.Logger | None:
    """What `web.run_app(access_log=...)` gets at GOVPULSE_LOG_LEVEL `level`: aiohttp's access
    logger at DEBUG, else None (no access log at all).

    A line per request is debugging output: a hundred wall screens polling wrote 5.3 MB of it
    in 29 minutes at INFO, formatted and written on the event loop that answers them. Request
    counts and latency stay in /metrics (the dashboard's middleware records every request).
    """
    return logging.getLogger("aiohttp.access") if level == "DEBUG" else None


def settings_or_exit() -> Settings:
    """Settings for this process; a bad value stops it here with the variable named."""
    try:
        return get_settings()
    except SettingsError as exc:
        click.echo(f"govpulse: {exc}", err=True)
        sys.exit(2)


def parse_types(value: str | tuple[str, ...]) -> tuple[str, ...]:
    """Comma-separated event types → a tuple; unknown or none is a usage error naming --types."""
    if isinstance(value, tuple):  # already parsed (a default passed through the callback)
        return value
    chosen = tuple(dict.fromkeys(t.strip() for t in value.split(",") if t.strip()))
    if unknown := [t for t in chosen if t not in EVENT_TYPES]:
        raise click.BadParameter(
            f"unknown event types {unknown}; expected some of {', '.join(EVENT_TYPES)}",
            param_hint="--types",
        )
    if not chosen:
        raise click.BadParameter(
            f"no event type given; expected some of {', '.join(EVENT_TYPES)}",
            param_hint="--types",
        )
    return chosen


def types_option(help: str) -> Callable[[Command], Command]:
    """The one `--types` option: comma-separated, validated, passed on as a tuple."""
    return click.option(
        "--types",
        default=",".join(EVENT_TYPES),
        show_default=True,
        callback=lambda _context, _param, value: parse_types(value),
        help=help,
    )


def start_metrics(settings: Settings, component: str, port: int | None = None) -> int:
    """Serve this process's /metrics; a taken port stops the process naming the setting.

    `port` (a command's own option) wins over GOVPULSE_METRICS_PORT, which wins over the
    component's default.
    """
    from govpulse.monitoring.server import serve_metrics

    chosen = port if port is not None else settings.metrics_port
    try:
        return serve_metrics(
            DEFAULT_METRICS_PORTS[component] if chosen is None else chosen,
            settings.bind_host,  # 0.0.0.0 in a container, so Prometheus can scrape it
            component=component,
        )
    except SettingsError as exc:  # the port is taken: say which command could not start
        command = click.get_current_context(silent=True)
        name = command.command_path if command is not None else "govpulse"
        click.echo(f"{name}: {exc}", err=True)
        sys.exit(2)
