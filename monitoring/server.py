"""`serve_metrics()`: the /metrics endpoint every govpulse process exposes to Prometheus.

prometheus_client's own HTTP server in a daemon thread; this module only picks the address,
labels the process and turns a taken port into an error that names the setting.
"""

from __future__ import annotations

import errno
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import start_http_server

from govpulse.monitoring.metrics import BUILD_INFO
from govpulse.settings import SettingsError

PORT_SETTING = "GOVPULSE_METRICS_PORT"
# The label values of govpulse_build_info{component}; `serve` is sink + dashboard in one process.
COMPONENTS = ("simulator", "producer", "streams", "sink", "dashboard", "serve")


class MetricsPortInUse(SettingsError):
    """The metrics port is taken; the message names GOVPULSE_METRICS_PORT."""


def _version() -> str:
    try:
        return version("govpulse")
    except PackageNotFoundError:
        return "unknown"


def serve_metrics(port: int, host: str = "127.0.0.1", *, component: str) -> int:
    """Serve /metrics on host:port (port 0 picks a free one) and return the bound port."""
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}; expected one of {COMPONENTS}")
    try:
        server, _thread = start_http_server(port, addr=host)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise MetricsPortInUse(
                f"{PORT_SETTING}={port}: {host}:{port} is already in use (another govpulse "
                f"process?); set {PORT_SETTING} to a free port for {component}"
            ) from exc
        raise
    BUILD_INFO.labels(component).info({"version": _version()})
    return server.server_port
