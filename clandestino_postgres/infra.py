"""What a PostgreSQL migration uses to reach the database.

    async with self.infra.connection() as conn:   # an asyncpg connection
    async with self.infra.get_cursor() as cursor:  # a psycopg 3 async cursor, as the original's

During a run the engine hands each migration an infra bound to the run: `connection()` is the
run's asyncpg connection inside the step's transaction, and `get_cursor()` a cursor on the run's
one psycopg connection, whose transaction also carries the step's record (see cursor.py). Either
way a step's changes and its record commit or roll back together.

Used on its own, each block opens a connection from CLANDESTINO_POSTGRES_CONNECTION_STRING (or
the string given), runs in a transaction that commits when the block ends, and closes it, as the
original's did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncpg
    from psycopg import AsyncCursor

    from clandestino_postgres.connect import ConnectionTarget
    from clandestino_postgres.cursor import CursorSession

__all__ = ["PostgresInfra"]


class PostgresInfra:
    def __init__(self, connection_string: str | None = None) -> None:
        self.connection_string = connection_string
        self._connection: asyncpg.Connection | None = None
        self._cursors: CursorSession | None = None

    @classmethod
    def bound_to(
        cls, connection: asyncpg.Connection, cursors: CursorSession | None = None
    ) -> PostgresInfra:
        infra = cls()
        infra._connection = connection
        infra._cursors = cursors
        return infra

    def bound_connection(self) -> object | None:
        """The run's connection this infra is bound to, if any."""
        return self._connection

    def targets_configured_database(self) -> bool:
        """No connection string of its own means the one the run is configured with."""
        return self.connection_string is None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        if self._connection is not None:
            yield self._connection
            return
        connection = await self._target().connect()
        try:
            async with connection.transaction():
                yield connection
        finally:
            await connection.close()

    @asynccontextmanager
    async def get_cursor(self) -> AsyncIterator[AsyncCursor[Any]]:
        if self._cursors is not None:
            async with self._cursors.cursor() as cursor:
                yield cursor
            return
        import psycopg

        from clandestino_postgres.connect import application_name

        target = self._target()
        # The original's block: its own connection, committed when the block ends without error.
        async with (
            await psycopg.AsyncConnection.connect(
                target.conninfo.reveal(),
                connect_timeout=max(1, round(target.timeout)),
                application_name=application_name(),
            ) as connection,
            connection.cursor() as cursor,
        ):
            yield cursor

    def _target(self) -> ConnectionTarget:
        from clandestino_postgres.connect import ConnectionTarget

        if self.connection_string is not None:
            return ConnectionTarget.parse(self.connection_string, timeout=10.0)
        from clandestino.config import load_settings
        from clandestino_postgres.backend import connection_string

        settings = load_settings()
        return ConnectionTarget.parse(connection_string(settings), settings.connect_timeout)
