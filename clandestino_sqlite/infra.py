"""What a SQLite migration uses to reach the database: `async with self.infra.get_cursor()`."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

__all__ = ["SQLiteInfra", "TransactionSafeCursor"]


class TransactionSafeCursor(sqlite3.Cursor):
    """A plain sqlite3 cursor whose executescript() keeps the open transaction.

    sqlite3's own executescript() commits first, which would end the run's transaction (and with
    it the migration lock) in the middle of a migration.
    """

    def executescript(self, sql_script: str) -> sqlite3.Cursor:
        for statement in split_statements(sql_script):
            self.execute(statement)
        return self


def split_statements(script: str) -> Iterator[str]:
    """Complete SQL statements of a script, as SQLite itself judges completeness."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        while ";" in pending:
            cut = _first_complete(pending)
            if cut is None:
                break
            yield pending[:cut]
            pending = pending[cut:]
    if pending.strip():
        yield pending


def _first_complete(text: str) -> int | None:
    start = 0
    while (end := text.find(";", start)) != -1:
        if sqlite3.complete_statement(text[: end + 1]):
            return end + 1
        start = end + 1
    return None


class SQLiteInfra:
    """A migration's way into the database.

    During a run the engine hands each migration an infra bound to the run's connection, so the
    migration's changes and its control record commit (or roll back) together, unless the
    migration commits itself. Used on its own,
    it opens the configured database file, commits when the block ends and closes it.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    @classmethod
    def bound_to(cls, connection: sqlite3.Connection, path: Path) -> SQLiteInfra:
        infra = cls(path)
        infra._connection = connection
        return infra

    def targets(self, database: Path) -> bool:
        """Whether this infra means `database` (no path means the configured one)."""
        return self.path is None or Path(self.path).absolute() == database.absolute()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[sqlite3.Connection]:
        if self._connection is not None:
            # The step's transaction begins here, not before up(): the record joins it, and
            # the run holds no write lock on the file while a migration uses a connection of
            # its own. A migration that commits (`cursor.connection.commit()`) ends it; what
            # follows runs statement by statement, as committed work did in the original.
            if not self._connection.in_transaction:
                self._connection.execute("BEGIN IMMEDIATE")
            yield self._connection
            return
        connection = sqlite3.connect(self._standalone_path())
        try:
            yield connection
            connection.commit()
        finally:
            connection.close()

    @asynccontextmanager
    async def get_cursor(self) -> AsyncIterator[sqlite3.Cursor]:
        async with self.connection() as connection:
            cursor = connection.cursor(TransactionSafeCursor)
            try:
                yield cursor
            finally:
                cursor.close()

    def _standalone_path(self) -> str:
        if self.path is not None:
            return os.fspath(self.path)
        from clandestino.config import load_settings
        from clandestino_sqlite.backend import database_path

        return str(database_path(load_settings()))
