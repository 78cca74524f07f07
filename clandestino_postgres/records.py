"""The control table's read: every record and every in-progress marker in one query.

The table is the original tool's (id, migration_name, created_on) with our columns added as runs
need them: checksum and duration_ms, and the marker of a step that runs outside a transaction
(in_progress, started_by, started_at). A table that lacks some of them (made by the original, or
by an older Clandestino, and not adopted yet) is read again without them: only such a table pays
a second round trip, and only until a run with work adopts it. (Reading each row through
to_jsonb, whatever its columns, was one round trip always, but 20 times slower at 1,000 rows.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clandestino.store import AppliedMigration, Interruption

__all__ = [
    "GENERATIONS",
    "MARKER_COLUMNS",
    "applied_query",
    "describe",
    "quoted_table",
    "to_applied",
]

# What `ensure()` adds to a table made by the original, in the order it adds them.
MARKER_COLUMNS = {
    "checksum": "text",
    "duration_ms": "integer",
    # 'up' or 'down' while a step that cannot commit with its record runs; NULL otherwise.
    "in_progress": "text",
    "started_by": "text",
    "started_at": "timestamptz",
}

# created_on holds the session time zone's wall-clock time (the original's default), so it is read
# back through the same zone, then given in UTC.
_CREATED_ON_UTC = (
    "to_char(created_on AT TIME ZONE current_setting('TimeZone') AT TIME ZONE 'UTC',"
    ' \'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\')'
)
_STARTED_AT_UTC = "to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
# Each generation of the table, newest first, and what it lacks read as NULL.
GENERATIONS = (
    f"checksum, duration_ms, in_progress, started_by, {_STARTED_AT_UTC}",
    "checksum, duration_ms, NULL, NULL, NULL",
    "NULL, NULL, NULL, NULL, NULL",
)


def quoted_table(schema: str | None, table: str) -> str:
    return f'"{schema}"."{table}"' if schema else f'"{table}"'


def applied_query(table: str, generation: int = 0) -> str:
    """Every row of `table` (quoted), oldest first, as a table of GENERATIONS[generation] has it."""
    columns = f"migration_name, {_CREATED_ON_UTC}, {GENERATIONS[generation]}"
    return f"SELECT {columns} FROM {table} ORDER BY id"


def to_applied(row: Any) -> AppliedMigration:
    name, created, checksum, duration, direction, owner, since = row
    interrupted = None
    if direction is not None:
        started = datetime.fromisoformat(since) if since else None
        interrupted = Interruption(direction, owner or "an unknown deployer", started)
    return AppliedMigration(
        name,
        datetime.fromisoformat(created) if created else None,
        checksum,
        None if duration is None else int(duration),
        interrupted,
    )


def describe(where: str, table: str) -> str:
    return f"POSTGRES ({where}, table {table.replace(chr(34), '')})"
