"""The psycopg 3 connection that the original's `get_cursor()` migrations share during a run.

The original handed migrations a real psycopg 3 async cursor, and migrations use psycopg's own
API with it: `psycopg.sql` composition, `cursor.description`, `except psycopg.errors.X`. So they
get one here, not an imitation. psycopg is imported when a migration first asks for a cursor,
never before: a run whose migrations use asyncpg (or nothing) does not pay for it.

One connection per run, opened at the first `get_cursor()`, reused, closed with the store. Inside
a step's transaction the cursor's work is not committed by the block: the step's record is
written on this same connection, in the same transaction, and both commit when the step ends
(`step()`), or neither does. Outside one (`transactional = False`) each statement commits as it
runs, which is what such a step asks for (CREATE INDEX CONCURRENTLY).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from clandestino.errors import ClandestinoError, DatabaseUnavailable

if TYPE_CHECKING:
    from psycopg import AsyncConnection, AsyncCursor

    from clandestino_postgres.connect import ConnectionTarget

__all__ = ["CursorSession", "RecordStatement"]

# The record's statement in psycopg's style and its arguments: (sql, args).
RecordStatement = tuple[str, tuple[Any, ...]]


class CursorSession:
    """`session_settings`: SET statements run once when the connection opens, for what runs
    outside a step's transaction (the same session timeouts as the run's asyncpg connection)."""

    def __init__(self, target: ConnectionTarget, session_settings: str = "") -> None:
        self._target = target
        self._session_settings = session_settings
        self._connection: AsyncConnection[Any] | None = None
        self._in_step = False
        # The SET LOCAL statements of the step in progress, run where its transaction begins.
        self._step_settings = ""
        # Whether the step in progress did its work here: then its record goes here too.
        self.in_use = False

    @property
    def pid(self) -> int | None:
        """The backend pid of the psycopg connection, once it is open."""
        connection = self._connection
        if connection is None or connection.closed:
            return None
        return connection.info.backend_pid

    @asynccontextmanager
    async def cursor(self) -> AsyncIterator[AsyncCursor[Any]]:
        connection = await self._connect()
        if self._in_step:
            if not self.in_use and self._step_settings:
                # The step's transaction begins here: the same lock_timeout, statement_timeout
                # and commit mode as every step's transaction on the run's asyncpg connection.
                await connection.execute(self._step_settings)
            self.in_use = True
        elif not connection.autocommit:
            await connection.set_autocommit(True)
        async with connection.cursor() as cursor:
            yield cursor

    @asynccontextmanager
    async def step(self, settings: str = "") -> AsyncIterator[None]:
        """A step's transaction: what cursors do inside it commits as the block ends.
        `settings` (SET LOCAL statements) run first in it, if a cursor is asked for."""
        if self._connection is not None:
            await self._connection.set_autocommit(False)
        self._in_step, self.in_use, self._step_settings = True, False, settings
        try:
            yield
            if self.in_use and self._connection is not None:
                await self._connection.commit()
        except BaseException:
            await self._rollback()
            raise
        finally:
            self._in_step, self.in_use, self._step_settings = False, False, ""

    @staticmethod
    def lock_not_available(error: BaseException) -> bool:
        """Whether `error` is psycopg's lock_not_available (55P03): a lock_timeout ran out."""
        import sys

        # Only a run whose migrations asked for a cursor has psycopg loaded, and only such a
        # run can have a psycopg error to judge.
        psycopg = sys.modules.get("psycopg")
        return psycopg is not None and isinstance(error, psycopg.errors.LockNotAvailable)

    async def record(self, statement: RecordStatement, check: Callable[[int], None]) -> None:
        """Write the step's record with its work; `check` is handed the rows it changed."""
        check(await self.write(statement))

    async def write(self, statement: RecordStatement) -> int:
        """Run a control-table write in the step's transaction here; the rows it changed."""
        import psycopg

        assert self._connection is not None and self.in_use
        sql, args = statement
        try:
            async with self._connection.cursor() as cursor:
                await cursor.execute(sql, args)
                return cursor.rowcount
        except psycopg.Error as exc:
            raise DatabaseUnavailable(
                f"cannot write to the control table on PostgreSQL at {self._target.where}"
                f" (psycopg connection): {type(exc).__name__}: {exc}",
                "check that the server is up and reachable, then run again",
            ) from exc

    async def aclose(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                await connection.close()
            except Exception:  # closing is best effort; the server cleans up
                return

    def connection_lost(self, error: BaseException) -> ClandestinoError | None:
        """The one-line error when `error` says this connection is gone, else None."""
        if isinstance(error, DatabaseUnavailable):
            return error
        if self._connection is not None and self._connection.closed:
            return DatabaseUnavailable(
                f"the psycopg connection to PostgreSQL at {self._target.where} was lost:"
                f" {type(error).__name__}",
                "check that the server is up and reachable, then run again",
            )
        return None

    async def _connect(self) -> AsyncConnection[Any]:
        if self._connection is not None:
            return self._connection
        import psycopg

        from clandestino_postgres.connect import application_name

        try:
            connection = await psycopg.AsyncConnection.connect(
                self._target.conninfo.reveal(),
                autocommit=True,
                connect_timeout=max(1, round(self._target.timeout)),
                application_name=application_name(),
            )
        except psycopg.Error as exc:
            # libpq's text names the host and what failed, never the password.
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise DatabaseUnavailable(
                f"cannot connect psycopg (get_cursor) to PostgreSQL at {self._target.where}:"
                f" {reason}",
                "check that the server is up and reachable",
            ) from exc
        self._connection = connection
        if self._session_settings:
            await connection.execute(self._session_settings)
        if self._in_step:
            await connection.set_autocommit(False)
        return connection

    async def _rollback(self) -> None:
        if self._connection is None or self._connection.closed:
            return
        try:
            await self._connection.rollback()
        except Exception:  # a dead connection has rolled back already
            return
