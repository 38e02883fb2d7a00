"""An engine killed between a table's deduplication record and its part: the replay still
reaches that table (govpulse/dedup_log_repair.py).

The kill is stood in for deterministically: the newest activity_minute part is turned back
into the `tmp_insert_<part>` directory it was a moment before its commit, which is what the
engine finds after a kill in that gap (its deduplication record written, its part not).
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from fastavro import parse_schema

from govpulse.dedup_log_repair import repair
from govpulse.schemas import catalog, wire_format
from tests.support.samples import clean_records
from tests.support.store_child import BLOCK

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _store(directory: Path, records: Path, first: int, last: int, *flags: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.store_child", str(directory), str(records),
         str(first), str(last), *flags],
        cwd=REPO, check=True, capture_output=True, text=True, timeout=300,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def _uncommit_newest_part(table_dir: Path) -> str:
    """Turn the table's newest part back into the tmp directory of an uncommitted insert."""
    parts = [p for p in table_dir.iterdir() if p.is_dir() and p.name[0].isdigit()]
    newest = max(parts, key=lambda p: int(p.name.split("_")[1]))
    newest.rename(table_dir / f"tmp_insert_{newest.name}")
    return newest.name


@pytest.fixture
def records(tmp_path: Path) -> Path:
    schema = parse_schema(catalog.clean_schema("complaint"))
    values = clean_records(2000, seed=3)["complaint"][: 3 * BLOCK]
    path = tmp_path / "records.pickle"
    path.write_bytes(pickle.dumps([wire_format.decode(v, schema) for _, v in values]))
    return path


@pytest.mark.parametrize("repaired", [True, False])
def test_a_replayed_block_reaches_the_rollup_whose_part_a_kill_left_uncommitted(
    tmp_path: Path, records: Path, repaired: bool
):
    directory = tmp_path / "store"
    first = _store(directory, records, 0, 3)
    assert first["rows"] == 3 * BLOCK and first["gaps"] == {}
    table_dir = Path(first["paths"]["activity_minute"])
    part = _uncommit_newest_part(table_dir)
    if repaired:
        # what the child's `make_client` does before the engine opens the directory, here
        # explicitly to see what it found
        found = repair(directory)
        assert [orphan[0] for orphans in found.values() for orphan in orphans] == [part]
    again = _store(directory, records, 2, 3, *([] if repaired else ["--no-repair"]))  # replay
    assert again["rows"] == 3 * BLOCK
    if repaired:
        assert again["gaps"] == {}
    else:  # the engine alone: the rollup misses the block for good
        assert again["gaps"] == {"complaint": [3 * BLOCK, 2 * BLOCK]}


def test_an_open_store_is_left_alone(clickhouse, clickhouse_dir: Path):
    """Its newest records may belong to an insert in flight: the repair only runs before the
    engine opens a directory (it takes the lock the engine holds)."""
    clickhouse.command("SELECT 1")
    logs = sorted(
        p.stat().st_mtime_ns for p in clickhouse_dir.glob("store/*/*/deduplication_logs/*")
    )
    assert repair(clickhouse_dir) == {}
    after = sorted(
        p.stat().st_mtime_ns for p in clickhouse_dir.glob("store/*/*/deduplication_logs/*")
    )
    assert after == logs
