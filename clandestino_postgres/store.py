"""The control table in PostgreSQL.

One connection carries the migrations and their records, one transaction per migration. The lock
is a session-level advisory lock keyed on the control table's schema and name, taken on a second
connection of its own and held for the whole run: the server drops it when that session ends, so
a killed deployer never keeps it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from clandestino.errors import ClandestinoError, LockTimeout
from clandestino.legacy import StoreRepository
from clandestino.store import AppliedMigration, LockHolder, WaitCallback
from clandestino_postgres.connect import ConnectionTarget, database_error
from clandestino_postgres.infra import PostgresInfra
from clandestino_postgres.records import applied_query, describe, quoted_table, to_applied

if TYPE_CHECKING:
    from asyncpg import Connection

__all__ = ["PostgresStore"]

T = TypeVar("T")

_ADDED_COLUMNS = {"checksum": "text", "duration_ms": "integer"}
# The lock's key: the schema (the search path's first when none is set) and the table name.
_KEY = "hashtextextended(coalesce($1::text, current_schema()) || '.' || $2::text, 0)"
_HOLDER = """
SELECT a.pid, a.application_name, a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.classid::bigint = ($1::bigint >> 32) & 4294967295
  AND l.objid::bigint = $1::bigint & 4294967295
LIMIT 1
"""


class PostgresStore:
    locking = True
    runs_outside_transactions = True

    def __init__(
        self, target: ConnectionTarget, schema: str | None, table: str, read_only: bool
    ) -> None:
        self._target = target
        self._schema = schema
        self._table_name = table
        self._table = quoted_table(schema, table)
        self._read_only = read_only
        self._connection: Connection | None = None
        self.description = describe(target.masked, self._table)

    async def open(self) -> None:
        self._connection = await self._target.connect()

    async def aclose(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await _close_quietly(connection)

    @property
    def _conn(self) -> Connection:
        assert self._connection is not None, "the store is not open"
        return self._connection

    async def _db(self, doing: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise database_error(exc, self._target, doing) from exc

    async def ensure(self) -> None:
        await self._db("create", self._ensure)

    async def _ensure(self) -> None:
        if self._schema:
            await self._conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
        # The original's columns, so a table made by it is adopted in place, plus ours.
        await self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self._table} ("
            " id serial PRIMARY KEY,"
            " migration_name varchar(255) UNIQUE NOT NULL,"
            " created_on timestamp NOT NULL DEFAULT current_timestamp,"
            " checksum text,"
            " duration_ms integer)"
        )
        present = await self._conn.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = coalesce($1, current_schema()) AND table_name = $2",
            self._schema,
            self._table_name,
        )
        missing = _ADDED_COLUMNS.keys() - {row["column_name"] for row in present}
        if missing:
            added = ", ".join(
                f"ADD COLUMN IF NOT EXISTS {name} {_ADDED_COLUMNS[name]}"
                for name in sorted(missing)
            )
            await self._conn.execute(f"ALTER TABLE {self._table} {added}")

    async def applied(self) -> list[AppliedMigration]:
        return await self._db("read", self._applied)

    async def _applied(self) -> list[AppliedMigration]:
        try:
            rows = await self._conn.fetch(applied_query(self._table))
        except asyncpg.UndefinedTableError:
            return []
        except asyncpg.UndefinedColumnError:
            # A table the original made, not adopted yet: nothing has run since the switch.
            rows = await self._conn.fetch(applied_query(self._table, legacy=True))
        return [to_applied(row) for row in rows]

    async def record(self, name: str, checksum: str | None, duration_ms: int) -> None:
        await self._db(
            "write to",
            lambda: self._conn.execute(
                f"INSERT INTO {self._table} (migration_name, checksum, duration_ms)"
                " VALUES ($1, $2, $3)",
                name,
                checksum,
                duration_ms,
            ),
        )

    async def remove(self, name: str) -> None:
        await self._db(
            "write to",
            lambda: self._conn.execute(
                f"DELETE FROM {self._table} WHERE migration_name = $1", name
            ),
        )

    async def update_checksum(self, name: str, checksum: str) -> None:
        await self._db(
            "write to",
            lambda: self._conn.execute(
                f"UPDATE {self._table} SET checksum = $1 WHERE migration_name = $2", checksum, name
            ),
        )

    async def mark_started(self, name: str, direction: str, owner: str) -> None:
        # A step and its record commit together, so no crash can come between them.
        return None

    async def clear_marker(self, name: str) -> None:
        return None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        transaction = self._conn.transaction()
        await self._db("start a transaction on", transaction.start)
        committed = False
        try:
            yield
            await self._db("commit to", transaction.commit)
            committed = True
        finally:
            if not committed:
                await _rollback_quietly(transaction)

    @asynccontextmanager
    async def lock(self, timeout: float, on_wait: WaitCallback) -> AsyncIterator[None]:
        connection = await self._target.connect()
        try:
            await self._db("lock", lambda: self._acquire(connection, timeout, on_wait))
            yield
        finally:
            # Closing the session frees the lock even if the unlock cannot be sent.
            await _close_quietly(connection, unlock=True)

    async def _acquire(self, connection: Connection, timeout: float, on_wait: WaitCallback) -> None:
        row = await connection.fetchrow(
            f"SELECT pg_try_advisory_lock(k) AS taken, k FROM (SELECT {_KEY} AS k) AS key",
            self._schema,
            self._table_name,
        )
        assert row is not None
        if row["taken"]:
            return
        on_wait(await self._holder(connection, row["k"]))
        # Wait in the server, which wakes us the moment the holder lets go. This connection is
        # the lock's alone, so its lock_timeout needs no resetting.
        await connection.execute(f"SET lock_timeout = {max(1, round(timeout * 1000))}")
        try:
            await connection.execute("SELECT pg_advisory_lock($1)", row["k"])
        except asyncpg.LockNotAvailableError as exc:
            holder = await self._holder(connection, row["k"])
            raise LockTimeout(
                f"the migration lock on {self._target.where} stayed held by {holder.description}"
                f" for more than {timeout:g} s",
                "wait for that deployer to finish, or raise CLANDESTINO_LOCK_TIMEOUT",
            ) from exc

    async def _holder(self, connection: Connection, key: int) -> LockHolder:
        holder = await connection.fetchrow(_HOLDER, key)
        if holder is None:
            return LockHolder("another deployer (it just let go)")
        name = holder["application_name"] or "no application_name"
        return LockHolder(f"pid {holder['pid']} ({name})", holder["backend_start"])

    def bind_infra(self, declared: object) -> object | None:
        if isinstance(declared, PostgresInfra) and declared.targets_configured_database():
            return PostgresInfra.bound_to(self._conn)
        return None

    def connection_lost(self, error: BaseException) -> ClandestinoError | None:
        lost = (
            asyncpg.ConnectionDoesNotExistError,
            asyncpg.PostgresConnectionError,
            asyncpg.AdminShutdownError,
            asyncpg.CrashShutdownError,
            OSError,
        )
        # asyncpg raises InterfaceError("connection is closed") on a connection that died while
        # idle; InterfaceError also means misuse, so only with the run's connection closed.
        closed = (
            isinstance(error, asyncpg.InterfaceError)
            and self._connection is not None
            and self._connection.is_closed()
        )
        if isinstance(error, lost) or closed:
            return database_error(error, self._target, "talk to")
        return None

    def legacy_repository(self) -> object:
        return StoreRepository(self)


async def _rollback_quietly(transaction: Any) -> None:
    # When the connection is gone, the server rolls the transaction back by itself.
    with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        await transaction.rollback()


async def _close_quietly(connection: Connection, unlock: bool = False) -> None:
    try:
        if unlock and not connection.is_closed():
            await asyncio.wait_for(connection.execute("SELECT pg_advisory_unlock_all()"), 5)
        await asyncio.wait_for(connection.close(), 5)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
        connection.terminate()
