"""A chdb store driven from a child process (a directory opens in one process only).

`python -m tests.support.store_child DIR RECORDS FIRST LAST [--no-repair]` applies the
migrations, inserts blocks FIRST..LAST-1 of the pickled complaint records (33 rows each, token
`block:<i>`) and prints JSON: events_complaint's rows, the rollups that disagree with it
(`rollup_gaps`) and every table's data directory. `--no-repair` opens the store without
the deduplication log repair (govpulse/dedup_log_repair.py): the engine's behaviour alone.
"""

from __future__ import annotations

import json
import pickle
import sys

BLOCK = 33


def main(directory: str, records_file: str, first: int, last: int, repair: bool) -> None:
    from govpulse import dedup_log_repair
    from govpulse.clickhouse import make_client
    from govpulse.sinks.columns import columns_for, to_columns
    from govpulse.sinks.migrations import migrate
    from tests.support.rollups import rollup_gaps

    with open(records_file, "rb") as f:
        records = pickle.load(f)
    if not repair:
        dedup_log_repair.repair = lambda _: {}
    client = make_client(f"chdb://{directory}")
    migrate(client)
    for block in range(first, last):
        rows = records[block * BLOCK : (block + 1) * BLOCK]
        client.insert(
            "events_complaint_avro",
            to_columns("complaint", rows),
            column_names=columns_for("complaint"),
            column_oriented=True,
            settings={"insert_deduplication_token": f"block:{block}"},
        )
    rows = client.query("SELECT count() FROM events_complaint").result_rows[0][0]
    paths = client.query(
        "SELECT name, data_paths[1] FROM system.tables "
        "WHERE database = currentDatabase() AND length(data_paths) > 0"
    ).result_rows
    print(json.dumps({"rows": rows, "gaps": rollup_gaps(client), "paths": dict(paths)}))


if __name__ == "__main__":
    main(
        sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), "--no-repair" not in sys.argv
    )
