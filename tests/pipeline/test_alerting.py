"""A real Prometheus, started by `govpulse up`, sees the pipeline stall and recover.

The sink is "stopped" by making ClickHouse refuse its inserts (the fault file the sink
honours): records keep arriving, nothing reaches ClickHouse, freshness grows past the alert
threshold — PipelineStalled must fire through Prometheus's HTTP API within the rule's `for:`
plus two scrape intervals of crossing it, and resolve once inserts work again.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.request

import pytest

from tests.support.stack_process import UpProcess, metric

pytestmark = pytest.mark.e2e
THRESHOLD_S = 30  # min(govpulse_sink_freshness_seconds) > 30 in alerts.yml
FOR_S, SCRAPE_S = 10, 2


def _alert_state(prometheus: str, name: str) -> str | None:
    with urllib.request.urlopen(f"{prometheus}/api/v1/alerts", timeout=5) as response:
        alerts = json.load(response)["data"]["alerts"]
    states = {a["state"] for a in alerts if a["labels"].get("alertname") == name}
    return "firing" if "firing" in states else ("pending" if states else None)


def _wait(condition, timeout: float, what: str, up: UpProcess) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what} within {timeout:.0f} s:\n" + (
            "\n".join(up.lines[-20:])
        )
        time.sleep(1)
    return time.monotonic() - started


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="`make test` installs prometheus")
def test_pipeline_stalled_fires_when_the_sink_stores_nothing_and_resolves_after(tmp_path):
    fault = tmp_path / "clickhouse-down"
    up = UpProcess(tmp_path, GOVPULSE_SINK_FAULT_FILE=str(fault), GOVPULSE_SIMULATE_RATE="100")
    try:
        up.wait_for("govpulse is up")
        serve = f"http://127.0.0.1:{up.metrics_base + 3}/metrics"
        _wait(lambda: metric(serve, "govpulse_sink_rows_inserted_total") > 0, 90, "rows", up)
        assert _alert_state(up.prometheus, "PipelineStalled") is None

        fault.touch()  # ClickHouse "down" for the sink
        stalled_at = time.monotonic()
        _wait(
            lambda: metric(serve, "govpulse_sink_freshness_seconds") > THRESHOLD_S,
            90,
            "freshness past the threshold",
            up,
        )
        crossed = time.monotonic()
        _wait(
            lambda: _alert_state(up.prometheus, "PipelineStalled") == "firing",
            FOR_S + 2 * SCRAPE_S + 10,  # + rule evaluation (2 s) and this loop's polling
            "PipelineStalled firing",
            up,
        )
        print(f"firing {time.monotonic() - crossed:.1f} s after freshness crossed {THRESHOLD_S} s")
        assert metric(serve, "govpulse_sink_paused") == 1  # backpressure, not buffering

        fault.unlink()
        _wait(
            lambda: _alert_state(up.prometheus, "PipelineStalled") is None,
            90,
            "PipelineStalled resolved",
            up,
        )
        assert time.monotonic() - stalled_at < 300
    finally:
        up.proc.terminate()
        up.proc.wait(60)
