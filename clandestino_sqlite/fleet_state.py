"""A SQLite fleet's last outcome per target, in `.clandestino-fleet.sqlite3` beside the targets
file (or in the folder a `--targets-query` glob looks in): where the target files are, so runners
that share the files share it. SQLite's own locking serialises runners' upserts."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from clandestino.fleet.report import TargetOutcome
from clandestino.fleet.state import STATE_TABLE

__all__ = ["STATE_FILE", "SqliteFleetState"]

STATE_FILE = ".clandestino-fleet.sqlite3"


class SqliteFleetState:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"the file {path}"

    async def failed(self) -> dict[str, str]:
        return await asyncio.to_thread(self._failed)

    async def record(self, outcome: TargetOutcome, runner: str) -> None:
        await asyncio.to_thread(self._record, outcome, runner)

    def _failed(self) -> dict[str, str]:
        if not self.path.is_file():
            return {}
        with _connected(self.path) as connection:
            rows = connection.execute(
                f"SELECT target, error FROM {STATE_TABLE} WHERE outcome = 'failed'"
            ).fetchall()
        return {str(target): str(error or "failed") for target, error in rows}

    def _record(self, outcome: TargetOutcome, runner: str) -> None:
        with _connected(self.path) as connection:
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (target text PRIMARY KEY,"
                " outcome text NOT NULL, error text, at text NOT NULL, runner text NOT NULL)"
            )
            connection.execute(
                f"INSERT INTO {STATE_TABLE} VALUES (?, ?, ?, datetime('now'), ?)"
                " ON CONFLICT (target) DO UPDATE SET outcome = excluded.outcome,"
                " error = excluded.error, at = excluded.at, runner = excluded.runner",
                (outcome.target, outcome.status, outcome.error, runner),
            )

    async def aclose(self) -> None:
        return None


class _connected:
    """A connection for one transaction, committed and closed on leaving."""

    def __init__(self, path: Path) -> None:
        self._connection = sqlite3.connect(path, timeout=30)

    def __enter__(self) -> sqlite3.Connection:
        return self._connection

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self._connection.commit()
        finally:
            self._connection.close()
