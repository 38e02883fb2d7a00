"""The pipeline's own processes as services of `govpulse up`: streams, simulator, Prometheus.

Each is the same `govpulse <command>` (or binary) a production deployment runs, started with
an environment that points it at the embedded stack — `up` adds nothing the commands lack.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from importlib.resources import files
from pathlib import Path

from govpulse.embedded.process import ManagedProcess, ServiceError, port_in_use, python_module_argv
from govpulse.settings import Settings

COMPONENT_OFFSET = {"simulator": 1, "streams": 2, "serve": 3}


def metrics_port(settings: Settings, component: str) -> int:
    return settings.metrics_port_base + COMPONENT_OFFSET[component]


class GovpulseCommand:
    """`python -m govpulse <args>` with GOVPULSE_* set for the embedded stack."""

    def __init__(
        self,
        name: str,
        component: str,
        args: list[str],
        settings: Settings,
        extra_env: dict,
        grace: float = 10.0,
    ) -> None:
        """`grace`: how long a stop waits for the process's own orderly shutdown."""
        env = {k: v for k, v in os.environ.items() if k != "GOVPULSE_METRICS_PORT"}
        env.update(
            GOVPULSE_DATA_DIR=str(settings.data_dir),
            GOVPULSE_BOOTSTRAP_SERVERS=settings.bootstrap_servers,
            GOVPULSE_REGISTRY_URL=settings.registry_url,
            GOVPULSE_METRICS_PORT=str(metrics_port(settings, component)),
            **extra_env,
        )
        self.port = metrics_port(settings, component)
        self.process = ManagedProcess(
            name,
            python_module_argv("govpulse", *args),
            settings.data_dir / "logs" / f"{component}.log",
            env,
            grace,
        )

    def start(self, timeout: float = 30.0) -> GovpulseCommand:
        if port_in_use("127.0.0.1", self.port):
            raise ServiceError(
                f"cannot start {self.process.name}: its metrics port 127.0.0.1:{self.port} is "
                "in use (set GOVPULSE_METRICS_PORT_BASE to move all metrics ports)"
            )
        self.process.start()
        self.process.wait_ready(lambda: _answers(f"http://127.0.0.1:{self.port}/metrics"), timeout)
        return self

    def stop(self) -> int | None:
        return self.process.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


class EmbeddedPrometheus:
    """Debian's `prometheus` on loopback, scraping the stack with the project's alert rules."""

    def __init__(self, settings: Settings, binary: str) -> None:
        self.port = settings.prometheus_port
        self.url = f"http://127.0.0.1:{self.port}"
        workdir = settings.data_dir / "prometheus"
        config = _config_for(settings, workdir)
        self.process = ManagedProcess(
            "prometheus",
            [
                binary,
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.path={workdir / 'data'}",
                "--storage.tsdb.retention.time=2d",
            ],
            settings.data_dir / "logs" / "prometheus.log",
        )

    @staticmethod
    def binary() -> str | None:
        return shutil.which("prometheus")

    def start(self, timeout: float = 30.0) -> EmbeddedPrometheus:
        if port_in_use("127.0.0.1", self.port):
            raise ServiceError(
                f"cannot start Prometheus: 127.0.0.1:{self.port} is in use "
                "(set GOVPULSE_PROMETHEUS_PORT to a free port)"
            )
        self.process.start()
        self.process.wait_ready(lambda: _answers(f"{self.url}/-/ready"), timeout)
        return self

    def stop(self) -> int | None:
        return self.process.stop()


def _config_for(settings: Settings, workdir: Path) -> Path:
    """monitoring/prometheus.yml with the metrics ports of these settings, beside its rules."""
    workdir.mkdir(parents=True, exist_ok=True)
    monitoring = files("govpulse.monitoring")
    text = monitoring.joinpath("prometheus.yml").read_text(encoding="utf-8")
    for component in COMPONENT_OFFSET:
        default = f"127.0.0.1:{9100 + COMPONENT_OFFSET[component]}"
        text = text.replace(default, f"127.0.0.1:{metrics_port(settings, component)}")
    (workdir / "alerts.yml").write_text(
        monitoring.joinpath("alerts.yml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    config = workdir / "prometheus.yml"
    config.write_text(text, encoding="utf-8")
    return config
