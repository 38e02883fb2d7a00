"""Driving `govpulse` child processes in tests: start, stop, wait, read what they routed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from govpulse.offsets import committed_at_ends, record_counts
from govpulse.schemas import catalog

GOVPULSE = [sys.executable, "-m", "govpulse"]
TYPES = catalog.EVENT_TYPES
# Consumer-group session timeout of the tests' workers and sinks (the product's default is
# 6 s). A group's first join waits about half of it on the embedded broker, and a member
# killed with -9 is noticed only after it: 3 s saves ~1.5 s per join and ~3 s per kill, and
# the heartbeats (every 0.75 s, from a thread of their own) keep a busy worker in the group.
SESSION_TIMEOUT_MS = 3000
FAST_GROUPS = {"GOVPULSE_KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS)}


class Child:
    """A `govpulse …` child process, stopped by its pid at teardown."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [*GOVPULSE, *args], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.log = log

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def routed(bootstrap: str) -> dict[str, dict[str, int]]:
    """type → stage (raw, clean, dlq, dup) → records in `<stage>.<type>` now."""
    counts = record_counts(bootstrap, [catalog.topic(s, t) for t in TYPES for s in catalog.STAGES])
    return {t: {s: counts[catalog.topic(s, t)] for s in catalog.STAGES} for t in TYPES}


def wait_until(predicate, timeout: float, what: str, every: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def audit(env: dict[str, str], *args: str) -> tuple[int, dict, str]:
    run = subprocess.run(
        [*GOVPULSE, "audit", "--json", *args], env=env, capture_output=True, text=True, timeout=180
    )
    return run.returncode, json.loads(run.stdout) if run.stdout else {}, run.stderr


def sink_caught_up(bootstrap: str) -> bool:
    topics = [f"{stage}.{t}" for stage in ("clean", "dlq") for t in TYPES]
    return committed_at_ends(bootstrap, "govpulse-sink", topics)
