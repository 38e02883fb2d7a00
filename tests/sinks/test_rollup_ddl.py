"""The storage generated from the rollup spec (schemas/rollups.py, sinks/rollup_ddl.py).

The committed migrations must be what the spec generates (regenerate-and-diff), and the spec
must describe the minute tier the earlier, hand-written migrations created: the tier job and
the dashboard read those tables by the spec's column lists.
"""

from __future__ import annotations

import uuid

import pytest

from govpulse.schemas.catalog import EVENT_TYPES
from govpulse.schemas.rollups import MINUTE_FAMILIES, citizen_field, minute_table, tier_tables
from govpulse.sinks.migrations import migrate
from govpulse.sinks.rollup_ddl import generated, main, merge_statement


def test_the_committed_migrations_are_what_the_spec_generates(capsys):
    assert main(["--check"]) == 0, capsys.readouterr().err


def test_check_fails_and_names_the_file_when_a_generated_migration_was_edited(tmp_path, capsys):
    for filename, text in generated().items():
        (tmp_path / filename).write_text(text + "-- edited by hand\n", "utf-8")
    assert main(["--check", "--directory", str(tmp_path)]) == 1
    assert "0011_tiers_from_minute.sql differ" in capsys.readouterr().err
    assert main(["--directory", str(tmp_path)]) == 0  # regenerated
    assert main(["--check", "--directory", str(tmp_path)]) == 0


def test_the_citizen_field_is_the_one_the_schema_tags_national_id():
    assert [citizen_field(t) for t in EVENT_TYPES] == [
        "citizen_id_pseudonym",
        "complainant_id_pseudonym",
        None,
        "participant_id_pseudonym",
        None,
    ]


def test_every_tier_merges_each_metric_with_the_state_type_of_its_source():
    for table in tier_tables():
        sql = merge_statement(table, "db")
        assert f"FROM db.{table.source}" in sql
        for metric in table.metrics:
            assert f"{metric.merged(metric.name)} AS {metric.name}" in sql
        assert ("FINAL" in sql) == (table.source_grain.name != "minute")


@pytest.mark.integration
def test_the_spec_describes_the_minute_tier_the_migrations_created(clickhouse):
    database = f"gp_spec_{uuid.uuid4().hex[:8]}"
    migrate(clickhouse, database=database)
    for family in MINUTE_FAMILIES:
        columns = clickhouse.query(
            "SELECT name, type FROM system.columns WHERE database = {d:String} "
            "AND table = {t:String} ORDER BY position",
            parameters={"d": database, "t": minute_table(family)},
        ).result_rows
        spec = [("minute", "DateTime('UTC')")]
        spec += [(d.name, d.type) for d in family.dimensions]
        spec += [(m.name, m.column_type) for m in family.metrics]
        assert [tuple(c) for c in columns] == spec, family.name
    for table in tier_tables():
        columns = clickhouse.query(
            "SELECT name FROM system.columns WHERE database = {d:String} "
            "AND table = {t:String} ORDER BY position",
            parameters={"d": database, "t": table.name},
        ).result_rows
        assert [c for (c,) in columns] == [*table.columns, "version"], table.name
