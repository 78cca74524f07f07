"""A PostgreSQL fleet's last outcome per target, in the table `clandestino_fleet` of the
configured schema (CLANDESTINO_POSTGRES_SCHEMA, else the connection's search path): on the server
every runner of the fleet works against, apart from every target's control table."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from clandestino.fleet.report import TargetOutcome
from clandestino.fleet.state import STATE_TABLE

if TYPE_CHECKING:
    import asyncpg

    from clandestino_postgres.connect import ConnectionTarget

__all__ = ["PostgresFleetState"]


class PostgresFleetState:
    def __init__(self, where: ConnectionTarget, schema: str | None) -> None:
        self._where = where
        self._table = f'"{schema}".{STATE_TABLE}' if schema else STATE_TABLE
        self.description = f"the table {self._table} on PostgreSQL at {where.where}"
        self._connection: asyncpg.Connection | None = None
        self._ready = False
        # One connection for the run's writes, which come from K workers at once.
        self._turn = asyncio.Lock()

    async def _connected(self) -> asyncpg.Connection:
        if self._connection is None:
            self._connection = await self._where.connect()
        return self._connection

    async def failed(self) -> dict[str, str]:
        from clandestino_postgres.connect import database_error

        async with self._turn:
            connection = await self._connected()
            try:
                if await connection.fetchval("SELECT to_regclass($1)", self._table) is None:
                    return {}
                rows = await connection.fetch(
                    f"SELECT target, error FROM {self._table} WHERE outcome = 'failed'"
                )
            except Exception as exc:
                raise database_error(exc, self._where, "read the fleet's outcomes from") from exc
        return {row["target"]: row["error"] or "failed" for row in rows}

    async def record(self, outcome: TargetOutcome, runner: str) -> None:
        async with self._turn:
            connection = await self._connected()
            if not self._ready:
                await self._create(connection)
            await connection.execute(
                f"INSERT INTO {self._table} (target, outcome, error, at, runner)"
                " VALUES ($1, $2, $3, now(), $4) ON CONFLICT (target) DO UPDATE SET"
                " outcome = excluded.outcome, error = excluded.error, at = excluded.at,"
                " runner = excluded.runner",
                outcome.target,
                outcome.status,
                outcome.error,
                runner,
            )

    async def _create(self, connection: asyncpg.Connection) -> None:
        import contextlib

        import asyncpg

        # Another runner may create it at the same moment: IF NOT EXISTS does not cover that.
        with contextlib.suppress(asyncpg.UniqueViolationError, asyncpg.DuplicateTableError):
            await connection.execute(
                f"CREATE TABLE IF NOT EXISTS {self._table} (target text PRIMARY KEY,"
                " outcome text NOT NULL, error text, at timestamptz NOT NULL,"
                " runner text NOT NULL)"
            )
        self._ready = True

    async def aclose(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                await asyncio.wait_for(connection.close(), 2)
            except Exception:
                connection.terminate()
