"""simulator → streams → sink → ClickHouse, reconciled by `govpulse audit`.

One broker, one stream worker and one `govpulse sink` for the module, all as child processes;
the sink owns its own chdb directory, so ClickHouse is read after it stopped — by
`govpulse audit` itself (its JSON carries the ClickHouse counts).
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime

import pytest

from govpulse.embedded.broker import EmbeddedBroker
from govpulse.embedded.process import free_port
from govpulse.producers.defects import Defect, Outcome
from govpulse.schemas import catalog
from tests.support.pipeline import GOVPULSE, Child, audit, routed, sink_caught_up, wait_until

pytestmark = pytest.mark.integration
TYPES = catalog.EVENT_TYPES


@pytest.fixture(scope="module")
def pipeline(isolated_pipeline, tmp_path_factory):
    """Simulated dirty traffic through one stream worker and one sink, then the sink stopped."""
    workdir = tmp_path_factory.mktemp("audit")
    broker, env = isolated_pipeline(workdir)
    env["GOVPULSE_CLICKHOUSE_DSN"] = f"chdb://{workdir / 'clickhouse'}"
    children = []
    try:
        children.append(
            Child(["streams"], {**env, "GOVPULSE_METRICS_PORT": str(free_port())}, workdir / "w")
        )
        sink = Child(["sink"], {**env, "GOVPULSE_METRICS_PORT": str(free_port())}, workdir / "s")
        children.append(sink)
        before = datetime.now(UTC)
        time.sleep(1)
        run = subprocess.run(
            [*GOVPULSE, "simulate", "--flat", "--json", "--rate", "2000", "--duration", "4",
             "--dirty-share", "0.3", "--seed", "7"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        report = json.loads(run.stdout)
        wait_until(
            lambda: all(
                c["clean"] + c["dlq"] + c["dup"] >= c["raw"] > 0
                for c in routed(broker.bootstrap).values()
            ),
            120,
            "the stream worker to route every record",
        )
        # the sink is caught up when its group committed every clean/dlq partition to the end
        wait_until(lambda: sink_caught_up(broker.bootstrap), 60, "the sink to commit everything")
        assert sink.stop() == 0, sink.log.read_text()[-2000:]
        yield broker, env, report, before, children[0]
    finally:
        for child in children:
            child.stop()


def expected(report: dict, event_type: str, outcome: Outcome) -> int:
    defects = report["by_type"][event_type]["defects"]
    return sum(n for kind, n in defects.items() if Defect(kind).outcome is outcome)


def test_audit_balances_and_clickhouse_holds_each_clean_event_once(pipeline):
    _, env, report, _, _ = pipeline
    code, result, stderr = audit(env)
    assert code == 0, stderr
    assert result["ok"]
    for event_type in TYPES:
        counts, sent = result["types"][event_type], report["by_type"][event_type]["sent"]
        assert counts["produced"] == sent
        assert counts["dead_lettered"] == expected(report, event_type, Outcome.DEAD_LETTER)
        assert counts["duplicates"] == report["by_type"][event_type]["defects"].get("duplicate", 0)
        assert counts["clean"] + counts["dead_lettered"] + counts["duplicates"] == sent
        # ClickHouse distinct event ids = rows = clean events
        assert counts["stored_ids"] == counts["stored_rows"] == counts["clean"] > 0
        assert counts["stored_dead_letters"] == counts["dead_lettered"]
        assert counts["stored_dead_letter_rows"] == counts["dead_letter_records"] > 0
    assert "MISMATCH" not in stderr


def test_audit_refuses_what_would_audit_nothing(pipeline, tmp_path):
    """No type, an empty time range or a broker without the raw topics is an error, not an
    "ok" over zero records."""
    _, env, _, _, _ = pipeline
    code, _, stderr = audit(env, "--types", " ")
    assert code == 2 and "no event type given" in stderr
    code, _, stderr = audit(env, "--since", "1h", "--until", "2h")
    assert code == 2 and "is not before --until" in stderr
    elsewhere = EmbeddedBroker("127.0.0.1", free_port(), tmp_path).start()
    try:
        code, _, stderr = audit({**env, "GOVPULSE_BOOTSTRAP_SERVERS": elsewhere.bootstrap})
    finally:
        elsewhere.stop()
    assert code == 2 and "no topic raw." in stderr and "GOVPULSE_BOOTSTRAP_SERVERS" in stderr


def test_audit_of_a_time_range_before_any_traffic_is_empty_and_balanced(pipeline):
    _, env, _, before, _ = pipeline
    code, result, stderr = audit(env, "--until", before.isoformat())
    assert code == 0, stderr
    assert all(t["produced"] == t["stored_rows"] == 0 for t in result["types"].values())
    code, whole, _ = audit(env)
    code_since, result, _ = audit(env, "--since", "1d")  # read from each topic's offset for then
    assert code == code_since == 0 and sum(t["produced"] for t in result["types"].values()) > 0
    for event_type, counts in result["types"].items():
        expected = whole["types"][event_type]
        for name in ("produced", "clean", "clean_records", "dead_lettered", "stored_rows"):
            assert counts[name] == expected[name], (event_type, name)


def test_audit_exits_non_zero_naming_what_does_not_balance(pipeline):
    broker, env, _, _, worker = pipeline
    assert worker.proc.poll() is None  # the stream worker still runs; the sink does not
    before = routed(broker.bootstrap)
    run = subprocess.run(
        [*GOVPULSE, "simulate", "--flat", "--rate", "200", "--duration", "1", "--seed", "8",
         "--dirty-share", "0"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr

    def all_routed() -> bool:
        now = routed(broker.bootstrap)
        grew = sum(c["raw"] for c in now.values()) > sum(c["raw"] for c in before.values())
        return grew and all(c["clean"] + c["dlq"] + c["dup"] >= c["raw"] for c in now.values())

    wait_until(all_routed, 60, "the new records routed")
    code, result, stderr = audit(env, "--types", "service_request,complaint,net_pracharat_usage")
    assert code == 1
    assert not result["ok"]
    assert "MISMATCH" in stderr and "sink behind" in stderr
