"""A sink started while `govpulse serve` is down waits for it instead of taking the store.

On the embedded stack the chdb directory opens in one process only. A `govpulse sink` that
opened it while serve was down (killed, restarting) would keep serve from coming back.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from govpulse.embedded.process import answers, free_port
from tests.support.pipeline import Child, wait_until

pytestmark = pytest.mark.integration


def test_a_sink_started_while_serve_is_down_waits_and_serve_comes_back(
    isolated_pipeline, tmp_path: Path
):
    _, env = isolated_pipeline(tmp_path)
    http_port = free_port()
    env["GOVPULSE_CLICKHOUSE_HTTP_PORT"] = str(http_port)
    ping = f"http://127.0.0.1:{http_port}/ping"

    def serve(name: str) -> Child:
        extra = {"GOVPULSE_DASHBOARD_PORT": str(free_port()), "GOVPULSE_METRICS_PORT": "0"}
        return Child(["serve"], {**env, **extra}, tmp_path / f"{name}.log")

    first = serve("serve1")
    sink = second = None
    try:
        wait_until(lambda: answers(ping), 90, "serve's ClickHouse HTTP endpoint")
        first.stop(signal.SIGKILL)  # as a crash would: the store was shared, not closed
        sink_log = tmp_path / "sink.log"
        sink = Child(["sink"], {**env, "GOVPULSE_METRICS_PORT": "0"}, sink_log)
        wait_until(lambda: "waiting for `govpulse serve`" in sink_log.read_text(), 30,
                   "the sink to say it waits for serve")  # fmt: skip
        assert sink.proc.poll() is None

        second = serve("serve2")  # would fail to open the store if the sink held it
        wait_until(lambda: answers(ping), 90, "the restarted serve's endpoint")
        wait_until(lambda: f"using http://127.0.0.1:{http_port}" in sink_log.read_text(), 30,
                   "the sink to use serve's endpoint")  # fmt: skip
        assert sink.proc.poll() is None and second.proc.poll() is None
    finally:
        for child in (sink, second):
            if child is not None:
                child.stop()
