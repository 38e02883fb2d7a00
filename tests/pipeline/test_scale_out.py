"""Two stream workers and two sinks share the partitions; kill -9 one of each mid-run; audit passes.

On the embedded stack the store opens in one process (`govpulse serve`, which runs one sink);
the second sink is a separate `govpulse sink` process that reaches the same engine through
the ClickHouse HTTP interface serve offers — as it would reach a ClickHouse server.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from govpulse.clickhouse import make_client
from govpulse.embedded.process import answers, free_port
from govpulse.monitoring.scrape import sample_total
from tests.support.pipeline import GOVPULSE, wait_until
from tests.support.rollups import rollup_gaps

pytestmark = pytest.mark.integration
RATE, SECONDS = 1000, 14


def start(args: list[str], env: dict[str, str], log: Path, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*GOVPULSE, *args],
        env={**env, **extra},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def metric(port: int, name: str) -> float:
    return sample_total(f"http://127.0.0.1:{port}/metrics", name)


def test_two_workers_and_two_sinks_survive_losing_one_of_each(isolated_pipeline, tmp_path):
    _, env = isolated_pipeline(tmp_path)
    env["GOVPULSE_CLICKHOUSE_HTTP_PORT"] = str(free_port())
    env["GOVPULSE_SINK_MAX_WAIT_MS"] = "100"
    ports = {name: free_port() for name in ("serve", "sink", "streams0", "streams1")}
    processes: list[subprocess.Popen] = []

    def run(name: str, args: list[str], **extra: str) -> subprocess.Popen:
        process = start(
            args,
            env,
            tmp_path / f"{name}.log",
            GOVPULSE_METRICS_PORT=str(ports[name]),
            **extra,
        )
        processes.append(process)
        return process

    try:
        run("serve", ["serve"], GOVPULSE_DASHBOARD_PORT=str(free_port()))
        wait_until(lambda: answers(f"http://127.0.0.1:{env['GOVPULSE_CLICKHOUSE_HTTP_PORT']}/ping"),
                   90, "serve's ClickHouse HTTP endpoint")  # fmt: skip
        sink = run("sink", ["sink"])  # same chdb DSN: it finds serve's endpoint by itself
        workers = [run(f"streams{i}", ["streams"]) for i in range(2)]
        simulator = start(
            ["simulate", "--flat", "--rate", str(RATE), "--duration", str(SECONDS)],
            env,
            tmp_path / "simulate.log",
            GOVPULSE_METRICS_PORT="0",
        )
        processes.append(simulator)

        # Both sinks and both workers take a share before anything is killed.
        wait_until(
            lambda: all(
                metric(ports[name], counter) > 0
                for name, counter in (
                    ("serve", "govpulse_sink_rows_inserted_total"),
                    ("sink", "govpulse_sink_rows_inserted_total"),
                    ("streams0", "govpulse_streams_consumed_total"),
                    ("streams1", "govpulse_streams_consumed_total"),
                )
            ),
            90,
            "all four to work",
        )
        before = metric(ports["serve"], "govpulse_sink_rows_inserted_total")
        for victim in (sink, workers[0]):
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
        assert simulator.poll() is None, "the simulator ended before the kills: not mid-run"

        assert simulator.wait(120) == 0
        audit = subprocess.run(
            [*GOVPULSE, "audit", "--wait", "120"],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert "using http://127.0.0.1" in audit.stderr  # it went through serve's endpoint
        # The rollups too: a sink killed amid its inserts had its batches re-inserted whole.
        client = make_client(f"http://127.0.0.1:{env['GOVPULSE_CLICKHOUSE_HTTP_PORT']}")
        assert rollup_gaps(client) == {}
        assert client.query("SELECT count() FROM events_complaint").result_rows[0][0] > 0
        # The survivors took the orphaned partitions over.
        assert metric(ports["serve"], "govpulse_sink_rows_inserted_total") > before
        assert metric(ports["streams1"], "govpulse_streams_consumed_total") > 0
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
