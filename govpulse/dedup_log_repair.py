"""Deduplication records left without their part by a killed engine, dropped before the next open.

A MergeTree table with non_replicated_deduplication_window keeps `deduplication_logs/`: one
`1<TAB>part<TAB>block_id` line per inserted block. ClickHouse (26.9, MergeTreeSink::commitPart)
writes that line *before* it renames `tmp_insert_<part>` to `<part>`, and never fsyncs either.
A process killed between the two (tens of microseconds per table per insert) leaves the line
but not the part: the tmp directory is removed at the next start, while the block id is loaded
from the log. A re-insert under the same insert_deduplication_token is then dropped in that one
table as a duplicate of a part that does not exist (issue 18: activity_minute missed a replayed
block every other rollup got). Found by delaying that write under strace and killing the
process meanwhile; no setting closes the gap (fsync_after_insert, parallel_view_processing,
deduplicate_blocks_in_dependent_materialized_views=0 all measured: bench/RESULTS.md).

Such a line is always the last record of the table's newest log (block numbers are allocated,
recorded and renamed under the table's parts lock, one insert at a time) and names a block
number above every part on disk. `repair()` appends a DROP record for it in a new log file, the
format the engine itself writes for dropped parts, so the engine forgets the block on load.
It must run before the process opens the directory, and only when no process has it open:
it takes the flock the engine holds on `<dir>/status`, and does nothing when that is taken.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from pathlib import Path

log = logging.getLogger("govpulse.clickhouse")

_PART = re.compile(
    r"^(?P<partition>[^_]+)_(?P<min>[0-9]+)_(?P<max>[0-9]+)_(?P<level>[0-9]+)(?:_[0-9]+)?$"
)
_LOG = re.compile(r"^deduplication_log_(?P<n>[0-9]+)\.txt$")
_TAIL_BYTES = 1 << 16


def _logs(logs_dir: Path) -> list[tuple[int, Path]]:
    return sorted(
        ((int(m["n"]), p) for p in logs_dir.iterdir() if (m := _LOG.match(p.name))),
        reverse=True,
    )


def _last_insert(logs_dir: Path) -> list[tuple[str, str]]:
    """(part, block_id) of the newest insert's records, if the newest record is an ADD."""
    for _, path in _logs(logs_dir):
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - _TAIL_BYTES))
            tail = f.read().decode("utf-8", "replace")
        records = [r for r in (line.split("\t") for line in tail.split("\n")[:-1]) if len(r) == 3]
        if not records:
            continue  # a log just rotated to: the newest record is in the one before
        if records[-1][0] != "1":
            return []
        part = records[-1][1]
        found = []
        for op, name, block_id in reversed(records):
            if op != "1" or name != part:
                break
            found.append((name, block_id))
        return found
    return []


def _repair_table(table_dir: Path) -> list[tuple[str, str]]:
    logs_dir = table_dir / "deduplication_logs"
    top = max(
        (int(m["max"]) for p in table_dir.iterdir() if (m := _PART.match(p.name))), default=-1
    )
    orphans = [
        (part, block_id)
        for part, block_id in _last_insert(logs_dir)
        if (m := _PART.match(part)) and int(m["min"]) > top
    ]
    if orphans:
        number = max((n for n, _ in _logs(logs_dir)), default=0) + 1
        staging = table_dir / "deduplication_repair.tmp"
        with staging.open("w") as f:
            f.writelines(f"2\t{part}\t{block_id}\n" for part, block_id in orphans)
            f.flush()
            os.fsync(f.fileno())
        os.rename(staging, logs_dir / f"deduplication_log_{number}.txt")
        fd = os.open(logs_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return orphans


def repair(chdb_dir: str | os.PathLike[str]) -> dict[str, list[tuple[str, str]]]:
    """Drop the deduplication records of parts a killed engine never committed, per table
    directory; nothing when the directory is open (in this process or another)."""
    root = Path(chdb_dir)
    if not (root / "store").is_dir():
        return {}
    # The engine holds an flock on <dir>/status while the directory is open (left behind by a
    # kill, removed by a clean close); taking it keeps an engine from opening mid-repair.
    status = root / "status"
    created = not status.exists()
    with status.open("ab") as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return {}  # open: its newest records may belong to an insert in flight
        try:
            found = {}
            for logs_dir in root.glob("store/*/*/deduplication_logs"):
                if orphans := _repair_table(logs_dir.parent):
                    found[str(logs_dir.parent)] = orphans
                    log.warning(
                        "%s: dropped deduplication records of %d block(s) whose part %s was "
                        "never committed (engine killed mid-insert)",
                        logs_dir.parent,
                        len(orphans),
                        orphans[0][0],
                    )
            return found
        finally:
            if created:
                status.unlink(missing_ok=True)
            fcntl.flock(held, fcntl.LOCK_UN)
