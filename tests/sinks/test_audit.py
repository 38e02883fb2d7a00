"""simulator → streams → sink → ClickHouse, reconciled by `govpulse audit`.

One broker, one stream worker and one `govpulse sink` for the module, all as child processes;
the sink owns its own chdb directory, so ClickHouse is read after it stopped — by
`govpulse audit` itself (its JSON carries the ClickHouse counts). Tests that damage the store
do it on a copy of that directory, from a child process (a directory opens in one process).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from govpulse.clickhouse import chdb_directory
from govpulse.embedded.broker import EmbeddedBroker
from govpulse.embedded.process import free_port
from govpulse.producers.defects import Defect, Outcome
from govpulse.schemas import catalog
from govpulse.sinks.dead_letters import STORE_REJECTED
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
        # ClickHouse distinct event ids = rows = clean events, each written once
        assert counts["stored_ids"] == counts["stored_rows"] == counts["clean"] > 0
        assert counts["clean_records"] == counts["clean_ids"] == counts["clean"]
        assert counts["stored_dead_letters"] == counts["dead_lettered"]
        assert counts["stored_dead_letter_rows"] == counts["dead_letter_records"] > 0
        # every rollup counts what events_<type> holds in the buckets it is compared over: the
        # minute tier, filled on insert, every stored event; the hour and day tiers the buckets
        # the sink's tier job had completed when the sink stopped (closed hours, but for those
        # holding rows inserted since INSERT_SKEW_SECONDS before its last run began: pending).
        # The sink stops seconds after the traffic, so that may be none: the next test lets
        # the job complete them
        rollups = counts["rollups"]
        assert {r["grain"] for r in rollups} == {"minute", "hour", "day"}, event_type
        assert counts["rollups_off"] == 0
        assert all(r["differing"] == 0 for r in rollups)
        assert all(r["rollup_events"] == r["table_events"] for r in rollups)
        minutes = [r for r in rollups if r["grain"] == "minute"]
        assert {r["table"] for r in minutes} >= {"activity_minute"}
        assert all(r["table_events"] == counts["stored_rows"] for r in minutes)
    assert "MISMATCH" not in stderr


def test_once_the_tier_job_merged_the_traffic_every_tier_counts_it(pipeline, tmp_path):
    """The sink stopped before its tier job could complete the traffic's hour (it closes a
    minute after its end) or compare the late events it merged last. On a copy of its store
    the job runs as it would two hours later: every hour tier then counts every stored event,
    and every day tier every one of the days before the job's complete day."""
    _, env, _, _, _ = pipeline
    env = store_copy(env, tmp_path / "clickhouse")
    run = run_tier_job(env, later_s=2 * 3600)
    assert run["hours"]  # it merged the traffic's hour(s) at least
    code, result, stderr = audit(env)
    assert code == 0, stderr
    days_end = run["complete_until"] // 86_400 * 86_400  # its complete days end there
    statements = [
        f"SELECT count() FROM events_{t} WHERE occurred_at < toDateTime({days_end:d})"
        for t in TYPES
    ]
    in_days = {t: n for t, [[n]] in zip(TYPES, run_sql(env, *statements), strict=True)}
    assert sum(in_days.values()) > 0  # late events, up to 3 days old: days are compared too
    for event_type in TYPES:
        counts = result["types"][event_type]
        tiers = [r for r in counts["rollups"] if r["grain"] != "minute"]
        assert {r["grain"] for r in tiers} == {"hour", "day"}, event_type
        assert all(r["differing"] == 0 for r in tiers), event_type
        for tier in tiers:
            held = counts["stored_rows"] if tier["grain"] == "hour" else in_days[event_type]
            assert tier["rollup_events"] == tier["table_events"] == held, (event_type, tier)


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


def store_copy(env: dict[str, str], destination: Path) -> dict[str, str]:
    """The env of `govpulse audit` on a copy of the pipeline's store, to damage it freely."""
    source = chdb_directory(env["GOVPULSE_CLICKHOUSE_DSN"])
    assert source
    shutil.copytree(source, destination, symlinks=True)  # its links are relative, inside it
    return {**env, "GOVPULSE_CLICKHOUSE_DSN": f"chdb://{destination}"}


_RUN_SQL = """
import json, sys
from govpulse.clickhouse import make_client
client = make_client(sys.argv[1])
print(json.dumps([client.query(sql).result_rows for sql in sys.argv[2:]]))
"""


_RUN_TIER_JOB = """
import json, sys, time
from govpulse.clickhouse import make_client
from govpulse.sinks.tiers import TierJob
later = float(sys.argv[2])
run = TierJob(make_client(sys.argv[1]), clock=lambda: time.time() + later).run_once()
print(json.dumps({"hours": run.hours, "complete_until": run.complete_until}))
"""


def run_tier_job(env: dict[str, str], later_s: float) -> dict:
    """One run of the tier job on the env's store, by a child process, as the sink's would run
    `later_s` seconds from now: its hours and complete_until (epoch seconds)."""
    run = subprocess.run(
        [sys.executable, "-c", _RUN_TIER_JOB, env["GOVPULSE_CLICKHOUSE_DSN"], str(later_s)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


def run_sql(env: dict[str, str], *statements: str) -> list[list]:
    """The rows each statement returns, run on the env's store by a child process."""
    run = subprocess.run(
        [sys.executable, "-c", _RUN_SQL, env["GOVPULSE_CLICKHOUSE_DSN"], *statements],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


def test_a_row_and_a_dead_letter_stored_twice_fail_the_audit_naming_their_table(pipeline, tmp_path):
    """As a sink writing a batch twice would: the minute rollups count the copy too, and the
    tier job merges it into the hour and day tiers (until it ran, the copy's buckets are
    pending there, not compared), so only the rows-per-id checks can see it."""
    _, env, _, _, _ = pipeline
    env = store_copy(env, tmp_path / "clickhouse")
    run_sql(
        env,
        "INSERT INTO events_complaint SELECT * REPLACE (now64(3) AS inserted_at) "
        "FROM events_complaint LIMIT 1 SETTINGS insert_deduplicate = 0",
        "INSERT INTO dead_letters SELECT * FROM dead_letters WHERE event_type = 'complaint' "
        f"AND reason != '{STORE_REJECTED}' LIMIT 1 SETTINGS insert_deduplicate = 0",
    )
    code, result, stderr = audit(env, "--types", "complaint")
    assert code == 1, stderr
    counts = result["types"]["complaint"]
    ids, positions = counts["stored_ids"], counts["stored_dead_letters"]
    assert (
        f"events_complaint holds {ids + 1:,} rows for {ids:,} distinct event ids in "
        "all of raw.complaint: 1 row stored twice"
    ) in counts["problems"]
    assert (
        f"dead_letters holds {positions + 1:,} rows for {positions:,} raw positions in "
        "all of raw.complaint: 1 dead letter stored twice"
    ) in counts["problems"]
    assert counts["rollups_off"] == 0
    assert "complaint: events_complaint holds" in stderr and "MISMATCH" in stderr


def test_a_rollup_block_lost_fails_the_audit_naming_the_rollup_and_the_minute(pipeline, tmp_path):
    _, env, _, _, _ = pipeline
    env = store_copy(env, tmp_path / "clickhouse")
    [[(minute, events)]] = run_sql(
        env,
        "SELECT toUnixTimestamp(minute), sum(events) FROM activity_minute "
        "WHERE event_type = 'complaint' GROUP BY minute ORDER BY minute LIMIT 1",
    )
    run_sql(
        env,
        "ALTER TABLE activity_minute DELETE WHERE event_type = 'complaint' "
        f"AND minute = toDateTime({minute:d}) SETTINGS mutations_sync = 2",
    )
    code, result, stderr = audit(env, "--types", "complaint")
    assert code == 1, stderr
    counts = result["types"]["complaint"]
    label = f"{datetime.fromtimestamp(minute, UTC):%Y-%m-%d %H:%M} UTC"
    assert (
        f"activity_minute counts 0 complaint events in {label}, events_complaint holds "
        f"{events:,}: {events:,} missing"
    ) in counts["problems"]
    # the hour and day tiers are recomputed from the minute tier only when the tier job runs
    # again (none runs on the copy): the lost block is named in its minute alone
    assert [r["table"] for r in counts["rollups"] if r["differing"]] == ["activity_minute"]
    assert not any("stored twice" in problem for problem in counts["problems"])
    assert f"complaint: activity_minute counts 0 complaint events in {label}" in stderr


def test_audit_exits_non_zero_naming_what_does_not_balance(pipeline):
    """Last in the module: it produces records the stopped sink never stores."""
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
