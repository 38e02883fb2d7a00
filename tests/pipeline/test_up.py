"""`govpulse up` starts the stack, prints where to look, and leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from govpulse.embedded.broker import kafka_answers
from govpulse.embedded.process import free_port
from govpulse.embedded.registry.service import registry_answers
from tests.support.stack_process import GOVPULSE, UpProcess, metric

pytestmark = pytest.mark.e2e


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_gone(pids: list[int], timeout: float = 15) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def test_up_runs_the_pipeline_and_sigterm_stops_every_child(tmp_path):
    up = UpProcess(tmp_path)
    try:
        up.wait_for("govpulse is up")
        assert kafka_answers(up.broker)
        assert registry_answers(up.registry)
        assert any(up.broker in line for line in up.lines)
        assert any(up.registry in line for line in up.lines)
        children = up.child_pids()
        assert len(children) >= 5  # broker, registry, streams, serve, simulator (+ prometheus)
        streams = f"http://127.0.0.1:{up.metrics_base + 2}/metrics"
        deadline = time.monotonic() + 90
        while metric(streams, "govpulse_streams_clean_total") == 0:
            assert time.monotonic() < deadline, "no clean record within 90 s:\n" + "\n".join(
                up.lines
            )
            time.sleep(1)
        serve = f"http://127.0.0.1:{up.metrics_base + 3}/metrics"
        while metric(serve, "govpulse_sink_rows_inserted_total") == 0:
            assert time.monotonic() < deadline, "no row in ClickHouse within 90 s"
            time.sleep(1)
        with urllib.request.urlopen(f"{up.dashboard}/api/freshness", timeout=5) as response:
            assert response.status == 200
        if shutil.which("prometheus"):
            with urllib.request.urlopen(f"{up.prometheus}/-/ready", timeout=5) as response:
                assert response.status == 200
    finally:
        up.proc.send_signal(signal.SIGTERM)
        code = up.proc.wait(30)
    assert code == 0, "\n".join(up.lines)
    assert _wait_gone(children) == []
    assert not kafka_answers(up.broker, timeout=0.5)


def test_children_die_with_up_even_when_it_is_killed_hard(tmp_path):
    up = UpProcess(tmp_path)
    try:
        up.wait_for("govpulse is up")
        children = up.child_pids()
    finally:
        up.proc.kill()
        up.proc.wait(10)
    assert _wait_gone(children) == []


def test_up_on_a_taken_port_exits_non_zero_naming_the_port(tmp_path, broker):
    env = dict(
        os.environ,
        GOVPULSE_DATA_DIR=str(tmp_path),
        GOVPULSE_BOOTSTRAP_SERVERS=broker.bootstrap,
        GOVPULSE_REGISTRY_URL=f"http://127.0.0.1:{free_port()}",
    )
    result = subprocess.run([*GOVPULSE, "up"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"{broker.bootstrap} is already in use" in result.stdout + result.stderr


def test_bad_setting_stops_up_at_start_naming_the_variable(tmp_path):
    env = dict(os.environ, GOVPULSE_BOOTSTRAP_SERVERS="no-port-here")
    result = subprocess.run([*GOVPULSE, "up"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "GOVPULSE_BOOTSTRAP_SERVERS" in result.stderr
