"""A bounded kill loop: 45 s of traffic, SIGKILL a worker, the extra sink and serve; every
clean event stored exactly once, every rollup equal to its events table, `govpulse audit` ok.

The short form of `bench/faults.py` (same driver and measures: bench/_fault_harness.py):
serve, one extra sink and two stream workers as child processes on an isolated broker, the
simulator at a modest rate with its default defects, each victim started again a second
after its kill, then drained and counted.
"""

from __future__ import annotations

import json

import pytest

from bench._fault_harness import (
    Kill,
    Pipeline,
    Plan,
    fault_report,
    measure,
    run_faults,
    wait_drained,
)

pytestmark = pytest.mark.integration
RATE, SECONDS = 400, 45
PLAN = (("worker0", 8), ("sink", 18), ("serve", 28))  # victim, seconds into the traffic


def test_kill_loop_loses_and_doubles_nothing(isolated_pipeline, tmp_path):
    broker, env = isolated_pipeline(tmp_path)
    pipe = Pipeline(tmp_path, env, broker_pid=broker.process.pid, log=print)
    try:
        pipe.start(timeout=120)
        pipe.start_simulator(RATE, SECONDS, seed=18)
        faults = run_faults(
            pipe, Plan([Kill(victim, at, pause_s=1.0) for victim, at in PLAN]), resume_timeout=60
        )
        drained_s = wait_drained(pipe, 60)
        figures = measure(pipe, audit_wait=5)
    finally:
        pipe.close()
    report = {**figures, "faults": fault_report(faults), "drained_s": drained_s}
    print(json.dumps(report, default=str))  # the figures, also when an assertion fails

    assert [k.victim for k in faults.kills] == [victim for victim, _ in PLAN], report["faults"]
    assert all(k.resume_s is not None for k in faults.kills), report["faults"]
    assert drained_s is not None, "the pipeline did not drain within 60 s of the traffic"
    problems = {
        event_type: {
            name: value
            for name, value in figures_of_type.items()
            if name in ("lost", "doubled", "clean_doubles", "rollups_differing") and value
        }
        for event_type, figures_of_type in figures["types"].items()
    }
    problems = {t: found for t, found in problems.items() if found}
    audit = figures["audit"]
    audit_problems = {
        t: f.get("problems") for t, f in audit["json"].get("types", {}).items() if f.get("problems")
    }
    assert not problems and audit["exit_code"] == 0, json.dumps(
        {
            "problems": problems,
            "totals": figures["totals"],
            "audit_exit_code": audit["exit_code"],
            "audit_problems": audit_problems,
            "audit_stderr": audit["stderr_tail"],
        },
        indent=1,
        default=str,
    )
