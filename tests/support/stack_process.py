"""`govpulse up` as a child process, shared by the e2e tests (not a test module)."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

from govpulse.embedded.pipeline import COMPONENT_OFFSET
from govpulse.embedded.process import free_port_block
from govpulse.monitoring.scrape import sample_total
from tests.support.pipeline import FAST_GROUPS, GOVPULSE


class UpProcess:
    """`govpulse up` as a child, its output collected line by line."""

    def __init__(self, tmp_path: Path, **extra_env: str) -> None:
        # One block of ports below the ephemeral range: nothing else can take one meanwhile.
        metrics_count = max(COMPONENT_OFFSET.values()) + 1
        base = free_port_block(metrics_count + 5)
        broker, registry, prometheus, dashboard, clickhouse_http = range(base, base + 5)
        self.broker = f"127.0.0.1:{broker}"
        self.registry = f"http://127.0.0.1:{registry}"
        env = dict(
            os.environ,
            GOVPULSE_DATA_DIR=str(tmp_path / "data"),
            GOVPULSE_BOOTSTRAP_SERVERS=self.broker,
            GOVPULSE_REGISTRY_URL=self.registry,
            GOVPULSE_METRICS_PORT_BASE=str(base + 5),
            GOVPULSE_PROMETHEUS_PORT=str(prometheus),
            GOVPULSE_DASHBOARD_PORT=str(dashboard),
            GOVPULSE_CLICKHOUSE_HTTP_PORT=str(clickhouse_http),
            **{**FAST_GROUPS, **extra_env},
        )
        self.dashboard = f"http://127.0.0.1:{env['GOVPULSE_DASHBOARD_PORT']}"
        self.clickhouse_http = f"http://127.0.0.1:{env['GOVPULSE_CLICKHOUSE_HTTP_PORT']}"
        self.metrics_base = int(env["GOVPULSE_METRICS_PORT_BASE"])
        self.prometheus = f"http://127.0.0.1:{env['GOVPULSE_PROMETHEUS_PORT']}"
        self.proc = subprocess.Popen(
            [*GOVPULSE, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not printed; output:\n" + "\n".join(self.lines))

    def child_pids(self) -> list[int]:
        return [int(pid) for line in self.lines for pid in re.findall(r"\(pid (\d+)\)", line)]


def metric(url: str, name: str) -> float:
    """Sum of the samples called `name` at a /metrics URL (0 while it does not answer)."""
    return sample_total(url, name)
