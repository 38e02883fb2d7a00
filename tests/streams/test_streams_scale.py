"""Two stream workers share the partitions; kill -9 one, the other takes its partitions over."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from govpulse.embedded.process import free_port
from govpulse.monitoring.scrape import sample_total
from govpulse.schemas import catalog
from govpulse.topics import stage_counts
from tests.support.pipeline import GOVPULSE

pytestmark = pytest.mark.integration


def consumed(port: int) -> int:
    url = f"http://127.0.0.1:{port}/metrics"
    return int(sample_total(url, "govpulse_streams_consumed_total"))


def outcomes(bootstrap: str) -> tuple[int, int]:
    """(raw records, records with an outcome in clean/dlq/dup) over every type."""
    count = stage_counts(bootstrap, ("raw", "clean", "dlq", "dup"), catalog.EVENT_TYPES)
    return count["raw"], count["clean"] + count["dlq"] + count["dup"]


def simulate(env: dict[str, str], seconds: int) -> None:
    subprocess.run(
        [*GOVPULSE, "simulate", "--flat", "--rate", "2000", "--duration", str(seconds)],
        env={**env, "GOVPULSE_METRICS_PORT": "0"},
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_two_workers_split_the_partitions_and_one_survives_the_other_being_killed(
    isolated_pipeline, tmp_path
):
    broker, env = isolated_pipeline(tmp_path)
    ports = [free_port(), free_port()]
    workers = [
        subprocess.Popen(
            [*GOVPULSE, "streams"],
            env={**env, "GOVPULSE_METRICS_PORT": str(port)},
            stdout=(tmp_path / f"worker{i}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for i, port in enumerate(ports)
    ]
    try:
        simulate(env, 4)
        deadline = time.monotonic() + 120
        while (counts := outcomes(broker.bootstrap))[1] < counts[0]:
            assert time.monotonic() < deadline, f"not routed: {counts}"
            time.sleep(0.25)
        shares = [consumed(port) for port in ports]
        assert all(share > 0 for share in shares), f"one worker got nothing: {shares}"
        assert sum(shares) >= counts[0]  # replays after the second worker joined may add

        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)
        simulate(env, 4)
        deadline = time.monotonic() + 120
        while (after := outcomes(broker.bootstrap))[1] < after[0]:
            assert time.monotonic() < deadline, f"survivor did not take over: {after}"
            time.sleep(0.25)
        assert after[0] > counts[0]
        assert consumed(ports[1]) > shares[1]  # the survivor routed the new traffic
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(30)
