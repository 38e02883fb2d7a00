"""Registry state in SQLite: global schema ids, subject versions, compatibility levels.

SQLite (stdlib) rather than a JSON file: every change is one transaction, so ids and
versions survive a crash or restart without a hand-written write-rename-fsync protocol.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LEVEL = "BACKWARD"

_DDL = """
CREATE TABLE IF NOT EXISTS schemas (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    canonical TEXT NOT NULL UNIQUE,   -- key-order and whitespace insensitive identity
    schema    TEXT NOT NULL           -- the text as first registered
);
CREATE TABLE IF NOT EXISTS versions (
    subject   TEXT NOT NULL,
    version   INTEGER NOT NULL,
    schema_id INTEGER NOT NULL REFERENCES schemas(id),
    deleted   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, version)
);
CREATE TABLE IF NOT EXISTS config (
    subject TEXT PRIMARY KEY,         -- '' is the global level
    level   TEXT NOT NULL
);
"""


def canonical(schema_text: str) -> str:
    """Identity of a schema: the same JSON whatever its whitespace or key order."""
    return json.dumps(json.loads(schema_text), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Version:
    subject: str
    version: int
    schema_id: int
    schema: str

    def as_json(self) -> dict:
        return {
            "subject": self.subject,
            "version": self.version,
            "id": self.schema_id,
            "schema": self.schema,
            "schemaType": "AVRO",
        }


class RegistryStore:
    """All reads and writes of registry state; one instance per registry process."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(data_dir / "registry.sqlite3", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_DDL)

    def close(self) -> None:
        self.db.close()

    # -- schemas by id --------------------------------------------------------------------
    def schema_by_id(self, schema_id: int) -> str | None:
        row = self.db.execute("SELECT schema FROM schemas WHERE id = ?", (schema_id,)).fetchone()
        return row[0] if row else None

    def subject_versions_of_id(self, schema_id: int) -> list[tuple[str, int]]:
        return self.db.execute(
            "SELECT subject, version FROM versions WHERE schema_id = ? AND deleted = 0 "
            "ORDER BY subject, version",
            (schema_id,),
        ).fetchall()

    def _id_for(self, schema_text: str) -> int:
        key = canonical(schema_text)
        row = self.db.execute("SELECT id FROM schemas WHERE canonical = ?", (key,)).fetchone()
        if row:
            return row[0]
        cursor = self.db.execute(
            "INSERT INTO schemas (canonical, schema) VALUES (?, ?)", (key, schema_text)
        )
        return int(cursor.lastrowid or 0)

    # -- subjects and versions --------------------------------------------------------------
    def subjects(self, include_deleted: bool = False) -> list[str]:
        where = "" if include_deleted else "WHERE deleted = 0"
        rows = self.db.execute(f"SELECT DISTINCT subject FROM versions {where} ORDER BY subject")
        return [row[0] for row in rows]

    def versions(self, subject: str, include_deleted: bool = False) -> list[Version]:
        where = "" if include_deleted else "AND v.deleted = 0"
        rows = self.db.execute(
            "SELECT v.subject, v.version, v.schema_id, s.schema FROM versions v "
            f"JOIN schemas s ON s.id = v.schema_id WHERE v.subject = ? {where} ORDER BY v.version",
            (subject,),
        )
        return [Version(*row) for row in rows]

    def find(self, subject: str, schema_text: str) -> Version | None:
        """The live version of `subject` holding this schema, if any."""
        key = canonical(schema_text)
        for version in self.versions(subject):
            if canonical(version.schema) == key:
                return version
        return None

    def add_version(self, subject: str, schema_text: str) -> Version:
        """Register `schema_text` as the next version of `subject` (caller checked compat)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            schema_id = self._id_for(schema_text)
            row = self.db.execute(
                "SELECT COALESCE(MAX(version), 0) FROM versions WHERE subject = ?", (subject,)
            ).fetchone()
            version = row[0] + 1
            self.db.execute(
                "INSERT INTO versions (subject, version, schema_id) VALUES (?, ?, ?)",
                (subject, version, schema_id),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return Version(subject, version, schema_id, self.schema_by_id(schema_id) or schema_text)

    def delete_subject(self, subject: str, permanent: bool) -> list[int]:
        versions = [v.version for v in self.versions(subject, include_deleted=permanent)]
        if permanent:
            self.db.execute("DELETE FROM versions WHERE subject = ?", (subject,))
        else:
            self.db.execute("UPDATE versions SET deleted = 1 WHERE subject = ?", (subject,))
        return versions

    def delete_version(self, subject: str, version: int, permanent: bool) -> None:
        if permanent:
            self.db.execute(
                "DELETE FROM versions WHERE subject = ? AND version = ?", (subject, version)
            )
        else:
            self.db.execute(
                "UPDATE versions SET deleted = 1 WHERE subject = ? AND version = ?",
                (subject, version),
            )

    # -- compatibility levels ---------------------------------------------------------------
    def level(self, subject: str = "") -> str | None:
        row = self.db.execute("SELECT level FROM config WHERE subject = ?", (subject,)).fetchone()
        return row[0] if row else None

    def effective_level(self, subject: str) -> str:
        return self.level(subject) or self.level("") or DEFAULT_LEVEL

    def set_level(self, level: str, subject: str = "") -> None:
        self.db.execute(
            "INSERT INTO config (subject, level) VALUES (?, ?) "
            "ON CONFLICT(subject) DO UPDATE SET level = excluded.level",
            (subject, level),
        )

    def delete_level(self, subject: str) -> None:
        self.db.execute("DELETE FROM config WHERE subject = ?", (subject,))
