"""The control table in a SQLite file.

The lock between deployers is SQLite's own write lock, taken on a file of its own beside the
database (`<database>.lock`), held for the whole run and dropped by SQLite when the process
dies. The database itself is not held between steps, so a migration may open its own connection
to it and write, as the original told its users to.

Each step is one transaction, begun by the first use of `self.infra` (or by the record), and
committed with the record when the step ends: a migration that works only through `self.infra`
and does not commit itself is applied and recorded together, or not at all. A migration that
commits itself (`cursor.connection.commit()`) or writes through its own connection keeps what it
committed, as in the original; its record follows in a transaction of its own. Every database
call of the store runs on one worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from clandestino.errors import ClandestinoError, DatabaseUnavailable, LockTimeout
from clandestino.legacy import StoreRepository
from clandestino.store import AppliedMigration, LockHolder, WaitCallback
from clandestino_sqlite.infra import SQLiteInfra
from clandestino_sqlite.records import describe, read_records

__all__ = ["SqliteStore"]

T = TypeVar("T")

# How long one BEGIN IMMEDIATE waits inside SQLite before we look at the deadline again.
_BUSY_SLICE_SECONDS = 0.2
# How long a statement of a step waits for a writer outside the run (the application, or a
# connection the migration opened and has not committed yet): SQLite's own default.
_STEP_BUSY_SECONDS = 5.0
_ADDED_COLUMNS = {"checksum": "TEXT", "duration_ms": "INTEGER"}


class SqliteStore:
    locking = True
    # The whole run is one write transaction (the lock), so there is no outside to run in.
    runs_outside_transactions = False

    def __init__(self, path: Path, table: str, read_only: bool) -> None:
        self.description = describe(path)
        self._path = path
        self._table = f'"{table}"'
        self._read_only = read_only
        self._connection: sqlite3.Connection | None = None
        self._lock_connection: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="clandestino-sqlite")
        # A missing file stays missing until something must be written, so a no-op, a dry run
        # or a broken migration file leaves no empty database behind.
        if self._path.exists():
            await self._connect()

    async def aclose(self) -> None:
        if self._lock_connection is not None:
            await self._run(self._lock_connection.close)
            self._lock_connection = None
        if self._connection is not None:
            await self._run(self._connection.close)
            self._connection = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def _connect(self) -> None:
        if self._read_only:
            target, uri = f"{self._path.absolute().as_uri()}?mode=ro", True
        else:
            target, uri = str(self._path), False
        self._connection = await self._run(
            partial(
                sqlite3.connect,
                target,
                uri=uri,
                timeout=_STEP_BUSY_SECONDS,
                isolation_level=None,
                check_same_thread=False,
                factory=_RunConnection,
            )
        )

    def _open_lock_file(self) -> sqlite3.Connection:
        return sqlite3.connect(
            f"{self._path}.lock",
            timeout=_BUSY_SLICE_SECONDS,
            isolation_level=None,
            check_same_thread=False,
        )

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, partial(call, *args))
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(
                f"SQLite database {self._path}: {exc}",
                "check CLANDESTINO_SQLITE_DB_PATH and the file's permissions",
            ) from exc

    def _sql(self, statement: str, *params: object) -> list[tuple[Any, ...]]:
        assert self._connection is not None
        return self._connection.execute(statement, params).fetchall()

    def _columns(self) -> set[str]:
        return {row[1] for row in self._sql(f"PRAGMA table_info({self._table})")}

    async def ensure(self) -> None:
        await self._run(self._ensure)

    def _ensure(self) -> None:
        # The original's columns, so a table made by it is adopted as it is, plus ours.
        self._sql(
            f"CREATE TABLE IF NOT EXISTS {self._table} ("
            " id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " migration_name TEXT UNIQUE NOT NULL,"
            " created_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,"
            " checksum TEXT,"
            " duration_ms INTEGER)"
        )
        for column in _ADDED_COLUMNS.keys() - self._columns():
            self._sql(f"ALTER TABLE {self._table} ADD COLUMN {column} {_ADDED_COLUMNS[column]}")

    async def applied(self) -> list[AppliedMigration]:
        if self._connection is None:
            return []
        return await self._run(self._applied)

    def _applied(self) -> list[AppliedMigration]:
        assert self._connection is not None
        return read_records(self._connection, self._table)

    async def record(self, name: str, checksum: str | None, duration_ms: int) -> None:
        await self._run(
            self._sql,
            f"INSERT INTO {self._table} (migration_name, checksum, duration_ms) VALUES (?, ?, ?)",
            name,
            checksum,
            duration_ms,
        )

    async def remove(self, name: str) -> None:
        await self._run(self._sql, f"DELETE FROM {self._table} WHERE migration_name = ?", name)

    async def update_checksum(self, name: str, checksum: str) -> None:
        await self._run(
            self._sql,
            f"UPDATE {self._table} SET checksum = ? WHERE migration_name = ?",
            checksum,
            name,
        )

    async def mark_started(self, name: str, direction: str, owner: str) -> None:
        # A step and its record commit together, so no crash can come between them.
        return None

    async def clear_marker(self, name: str) -> None:
        return None

    @asynccontextmanager
    async def lock(self, timeout: float, on_wait: WaitCallback) -> AsyncIterator[None]:
        if self._connection is None:
            await self._connect()
        assert self._connection is not None
        self._lock_connection = await self._run(self._open_lock_file)
        deadline = time.monotonic() + timeout
        waiting = _Waiting(on_wait, f"another process writing to {self._path}")
        # First the deployers' lock, then a moment of the database's own write lock: a writer
        # outside clandestino (or an older clandestino, which held it for its whole run) is
        # waited for as another deployer is.
        await self._take(self._lock_connection, deadline, timeout, waiting)
        try:
            await self._run(self._sql, f"PRAGMA busy_timeout = {_BUSY_SLICE_SECONDS * 1000:.0f}")
            await self._take(self._connection, deadline, timeout, waiting)
            await self._run(self._sql, "COMMIT")
            await self._run(self._sql, f"PRAGMA busy_timeout = {_STEP_BUSY_SECONDS * 1000:.0f}")
            yield
        finally:
            await self._run(self._release_lock)

    async def _take(
        self, connection: sqlite3.Connection, deadline: float, timeout: float, waiting: _Waiting
    ) -> None:
        while not await self._run(_try_begin, connection):
            waiting.tell()
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"another process kept {self._path} locked for more than {timeout:g} s",
                    "wait for it to finish, or raise CLANDESTINO_LOCK_TIMEOUT",
                )

    def _release_lock(self) -> None:
        assert self._connection is not None and self._lock_connection is not None
        if self._connection.in_transaction:
            self._sql("ROLLBACK")
        self._lock_connection.close()
        self._lock_connection = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        # Nothing begins here: the step's first use of self.infra does (SQLiteInfra), so a
        # migration that only writes through a connection of its own never waits for ours.
        completed = False
        try:
            yield
            completed = True
        finally:
            await self._run(self._end_step, completed)

    def _end_step(self, completed: bool) -> None:
        assert self._connection is not None
        if self._connection.in_transaction:
            self._sql("COMMIT" if completed else "ROLLBACK")

    def bind_infra(self, declared: object) -> object | None:
        connection = self._connection
        if connection is None or not isinstance(declared, SQLiteInfra):
            return None
        if not declared.targets(self._path):
            return None
        return SQLiteInfra.bound_to(connection, self._path)

    def connection_lost(self, error: BaseException) -> ClandestinoError | None:
        return None

    def legacy_repository(self) -> object:
        return StoreRepository(self)


class _RunConnection(sqlite3.Connection):
    """The run's connection, which migrations reach as `cursor.connection`.

    A migration's own commit() makes what it did so far durable, as in the original; what it
    does afterwards is again one transaction with its record, so a failure later in up() does
    not leave it half recorded. The store itself ends transactions with SQL, never commit().
    """

    def commit(self) -> None:
        was_open = self.in_transaction
        super().commit()
        if was_open:
            self.execute("BEGIN IMMEDIATE")


def _try_begin(connection: sqlite3.Connection) -> bool:
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return False
        raise
    return True


class _Waiting:
    """Says once that the run waits for the lock."""

    def __init__(self, on_wait: WaitCallback, holder: str) -> None:
        self._on_wait = on_wait
        self._holder = holder
        self._told = False

    def tell(self) -> None:
        if not self._told:
            self._on_wait(LockHolder(self._holder))
            self._told = True
