"""The web servers' access log: a line per request only at GOVPULSE_LOG_LEVEL=DEBUG.

No server is started: `web.run_app` is replaced by a recorder, and what `govpulse serve` and
`govpulse dashboard` would have built or connected to by stand-ins.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.log import access_logger as aiohttp_access_logger
from click.testing import CliRunner

from govpulse.commands import dashboard as dashboard_command
from govpulse.commands import pipeline
from govpulse.commands.common import access_logger
from govpulse.settings import load_settings

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def test_only_debug_gets_aiohttp_access_logger():
    assert access_logger("DEBUG") is aiohttp_access_logger
    for level in ("INFO", "WARNING", "ERROR"):
        assert access_logger(level) is None


@pytest.fixture
def run_app(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Record the keywords `web.run_app` is called with instead of serving."""
    called: dict[str, Any] = {}
    monkeypatch.setattr(web, "run_app", lambda app, **kwargs: called.update(kwargs))
    return called


def _fail_on_error(result: Any) -> None:
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"


@pytest.mark.parametrize("level", LEVELS)
def test_serve_logs_requests_only_at_debug(
    level: str, run_app: dict[str, Any], monkeypatch: pytest.MonkeyPatch
):
    import govpulse.logs
    import govpulse.serve

    monkeypatch.setattr(pipeline, "settings_or_exit", lambda: load_settings(log_level=level))
    monkeypatch.setattr(pipeline, "start_metrics", lambda *args, **kwargs: 0)
    monkeypatch.setattr(govpulse.logs, "configure", lambda level: None)
    monkeypatch.setattr(govpulse.serve, "build", lambda settings, echo: (object(), lambda: None))

    _fail_on_error(CliRunner().invoke(pipeline.serve, []))

    assert run_app["access_log"] is access_logger(level)


@pytest.mark.parametrize("level", LEVELS)
def test_dashboard_logs_requests_only_at_debug(
    level: str, run_app: dict[str, Any], monkeypatch: pytest.MonkeyPatch
):
    import govpulse.clickhouse
    import govpulse.dashboard.app
    import govpulse.dashboard.queries

    class Queries:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def missing_tables(self) -> list[str]:
            return []

    client = SimpleNamespace(database="govpulse", close=lambda: None)
    monkeypatch.setattr(
        dashboard_command, "settings_or_exit", lambda: load_settings(log_level=level)
    )
    monkeypatch.setattr(dashboard_command, "start_metrics", lambda *args, **kwargs: 0)
    monkeypatch.setattr(govpulse.clickhouse, "make_client", lambda dsn: client)
    monkeypatch.setattr(govpulse.dashboard.queries, "DashboardQueries", Queries)
    monkeypatch.setattr(govpulse.dashboard.app, "build_app", lambda *args, **kwargs: object())

    _fail_on_error(CliRunner().invoke(dashboard_command.dashboard, []))

    assert run_app["access_log"] is access_logger(level)
