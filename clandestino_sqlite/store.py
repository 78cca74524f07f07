"""The control table in a SQLite file.

The lock is SQLite's own write lock: `BEGIN IMMEDIATE` at the start of a run, held until the run
ends. Each migration runs in a savepoint with its record, so a failing one is undone alone while
those before it commit; a killed process leaves nothing half-done, since SQLite rolls back the
open transaction. Every database call runs on one worker thread, off the event loop.
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
        self._executor: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="clandestino-sqlite")
        # A missing file stays missing until something must be written, so a no-op, a dry run
        # or a broken migration file leaves no empty database behind.
        if self._path.exists():
            await self._connect()

    async def aclose(self) -> None:
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
                timeout=_BUSY_SLICE_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
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
        deadline = time.monotonic() + timeout
        told = False
        while not await self._run(self._try_begin):
            if not told:
                on_wait(LockHolder(f"another process writing to {self._path}"))
                told = True
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"another process kept {self._path} locked for more than {timeout:g} s",
                    "wait for it to finish, or raise CLANDESTINO_LOCK_TIMEOUT",
                )
        try:
            yield
        finally:
            # Every migration before a failure was released from its savepoint whole, so what
            # is left in the transaction is complete and is kept.
            await self._run(self._end_transaction)

    def _try_begin(self) -> bool:
        try:
            self._sql("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return False
            raise
        return True

    def _end_transaction(self) -> None:
        assert self._connection is not None
        if self._connection.in_transaction:
            self._sql("COMMIT")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        await self._run(self._sql, "SAVEPOINT clandestino_step")
        completed = False
        try:
            yield
            completed = True
        finally:
            if not completed:
                await self._run(self._sql, "ROLLBACK TO clandestino_step")
            await self._run(self._sql, "RELEASE clandestino_step")

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
