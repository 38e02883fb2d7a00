"""A `govpulse sink` killed like kill -9 between an insert and its commit, then restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from govpulse.embedded.process import free_port
from tests.support.pipeline import FAST_GROUPS, sink_caught_up, wait_until

COMMAND = [sys.executable, "-m", "govpulse", "sink", "--progress-every", "1"]


def sink_env(tmp_path: Path, bootstrap: str, registry_url: str, store: Path, **settings: str):
    """The environment of a `govpulse sink` on its own chdb directory `store`."""
    return dict(
        os.environ,
        GOVPULSE_DATA_DIR=str(tmp_path / "data"),
        GOVPULSE_BOOTSTRAP_SERVERS=bootstrap,
        GOVPULSE_REGISTRY_URL=registry_url,
        GOVPULSE_CLICKHOUSE_DSN=f"chdb://{store}",
        GOVPULSE_METRICS_PORT=str(free_port()),
        **settings,
        **FAST_GROUPS,
    )


def crash_then_restart(env: dict[str, str], log: Path, crash_after: int) -> tuple[str, str]:
    """Run the sink until its crash hook ends it after insert `crash_after` (exit 137, before
    the commit), then again until it committed every partition, and stop it (exit 0).

    Returns the output of the crashed run and of the restarted one.
    """
    with open(log, "ab") as out:
        crashed = subprocess.run(
            COMMAND,
            env={**env, "GOVPULSE_SINK_CRASH_AFTER_INSERTS": str(crash_after)},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=120,
        )
    assert crashed.returncode == 137, log.read_text()
    first_run = log.read_text()
    with open(log, "ab") as out:
        restarted = subprocess.Popen(COMMAND, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        bootstrap = env["GOVPULSE_BOOTSTRAP_SERVERS"]
        wait_until(lambda: sink_caught_up(bootstrap), 120,
                   "the restarted sink to commit every partition to its end")  # fmt: skip
    finally:
        restarted.send_signal(signal.SIGTERM)
        try:
            restarted.wait(60)
        except subprocess.TimeoutExpired:
            restarted.kill()
            restarted.wait()
    assert restarted.returncode == 0, log.read_text()[-3000:]
    return first_run, log.read_text()[len(first_run) :]
