"""Reading the control table: shared by the store and by the blocking snapshot of `cdt -m`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from clandestino.config import Settings
from clandestino.store import AppliedMigration, Snapshot, utc_from_text
from clandestino_sqlite.backend import database_path

__all__ = ["describe", "read_records", "read_snapshot"]

_RECORD_COLUMNS = ("migration_name", "created_on", "checksum", "duration_ms")


def describe(path: Path) -> str:
    return f"SQLITE ({path})"


def read_records(connection: sqlite3.Connection, table: str) -> list[AppliedMigration]:
    """Every record in `table` (quoted), oldest first; none when the table does not exist.

    A table the original made lacks our columns, so each is read only where it exists. Times are
    SQLite's CURRENT_TIMESTAMP: UTC without a zone.
    """
    columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
    if not columns:
        return []
    select = ", ".join(c if c in columns else "NULL" for c in _RECORD_COLUMNS)
    rows = connection.execute(f"SELECT {select} FROM {table} ORDER BY id").fetchall()
    return [
        AppliedMigration(name, utc_from_text(created), checksum, duration)
        for name, created, checksum, duration in rows
    ]


def read_snapshot(settings: Settings) -> Snapshot | None:
    """The records through a read-only connection of their own; None on any SQLite error, which
    the store then reports in its own words."""
    path = database_path(settings)
    if not path.exists():
        return Snapshot(describe(path), [])
    try:
        connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=0.2)
        try:
            records = read_records(connection, f'"{settings.control_table}"')
        finally:
            connection.close()
    except sqlite3.Error:
        return None
    return Snapshot(describe(path), records)
