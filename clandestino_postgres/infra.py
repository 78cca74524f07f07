"""What a PostgreSQL migration uses to reach the database.

    async with self.infra.connection() as conn:   # an asyncpg connection
    async with self.infra.get_cursor() as cursor:  # the original's psycopg-style cursor

During a run the engine hands each migration an infra bound to the run's connection, inside the
migration's transaction, so its changes and its record commit or roll back together. Used on its
own, it opens a connection from CLANDESTINO_POSTGRES_CONNECTION_STRING, runs the block in a
transaction that commits when the block ends, and closes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from clandestino_postgres.cursor import CompatCursor

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresInfra"]


class PostgresInfra:
    def __init__(self, connection_string: str | None = None) -> None:
        self.connection_string = connection_string
        self._connection: asyncpg.Connection | None = None

    @classmethod
    def bound_to(cls, connection: asyncpg.Connection) -> PostgresInfra:
        infra = cls()
        infra._connection = connection
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
        from clandestino_postgres.connect import ConnectionTarget

        target = ConnectionTarget.parse(self._standalone_url(), timeout=10.0)
        connection = await target.connect()
        try:
            async with connection.transaction():
                yield connection
        finally:
            await connection.close()

    @asynccontextmanager
    async def get_cursor(self) -> AsyncIterator[CompatCursor]:
        async with self.connection() as connection:
            yield CompatCursor(connection)

    def _standalone_url(self) -> str:
        if self.connection_string is not None:
            return self.connection_string
        from clandestino.config import load_settings
        from clandestino_postgres.backend import connection_string

        return connection_string(load_settings())
