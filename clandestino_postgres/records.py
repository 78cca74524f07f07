"""The control table's read, in one place for the store (asyncpg) and the snapshot (wire.py).

Times come back as text in UTC, so that both clients, one with asyncpg's codecs and one with
the server's text output, turn the same row into the same record whatever the session's
DateStyle.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clandestino.store import AppliedMigration

__all__ = [
    "UNDEFINED_COLUMN",
    "UNDEFINED_TABLE",
    "applied_query",
    "describe",
    "quoted_table",
    "to_applied",
]

UNDEFINED_TABLE = "42P01"
# The table the original made, not adopted yet: it lacks our columns.
UNDEFINED_COLUMN = "42703"

# created_on holds the session time zone's wall-clock time (the original's default), so it is read
# back through the same zone, then given in UTC.
_CREATED_ON_UTC = (
    "to_char(created_on AT TIME ZONE current_setting('TimeZone') AT TIME ZONE 'UTC',"
    ' \'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\')'
)


def quoted_table(schema: str | None, table: str) -> str:
    return f'"{schema}"."{table}"' if schema else f'"{table}"'


def applied_query(table: str, legacy: bool = False) -> str:
    """Every record of `table` (quoted), oldest first; `legacy` for a table the original made."""
    ours = "NULL AS checksum, NULL AS duration_ms" if legacy else "checksum, duration_ms"
    return f"SELECT migration_name, {_CREATED_ON_UTC}, {ours} FROM {table} ORDER BY id"


def to_applied(row: Any) -> AppliedMigration:
    name, created, checksum, duration = row
    applied_at = datetime.fromisoformat(created) if created else None
    return AppliedMigration(name, applied_at, checksum, None if duration is None else int(duration))


def describe(where: str, table: str) -> str:
    return f"POSTGRES ({where}, table {table.replace(chr(34), '')})"
