"""A fleet's PostgreSQL connections: one asyncpg pool per server (URL), at most as many
connections as the fleet runs targets at once, however many targets it has.

A schema target borrows a connection, sets its `search_path` to the schema alone, takes its
advisory lock on it and runs; the store lets go of the lock, and the pool's reset on release
(asyncpg's: ROLLBACK of anything open, `pg_advisory_unlock_all()`, `RESET ALL`) leaves no lock
and no search path behind for the next target. A database target with a URL of its own borrows
from that URL's pool, which is closed once no target of it runs, so a fleet of databases holds
no idle connection per database it has finished.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import asyncpg

from clandestino.config import Settings
from clandestino.fleet.targets import Target
from clandestino.store import ControlStore
from clandestino_postgres.backend import connection_string, schema
from clandestino_postgres.connect import ConnectionTarget, application_name, database_error
from clandestino_postgres.timeouts import TrafficSettings

if TYPE_CHECKING:
    from asyncpg import Connection, Pool

__all__ = ["ConnectionSource", "PostgresServers", "SchemaConnections"]

_RELEASE_SECONDS = 5.0


class ConnectionSource(Protocol):
    """Where a store gets the run's connection from, and gives it back to."""

    async def acquire(self) -> Connection: ...

    async def release(self, connection: Connection) -> None: ...


@dataclass
class _Server:
    pool: Pool
    borrowers: int = 0
    keep: bool = False


@dataclass
class PostgresServers:
    """The pools of one fleet run; `aclose()` closes them all."""

    settings: Settings
    concurrency: int
    _servers: dict[str, _Server] = field(default_factory=dict)
    _guard: asyncio.Lock = field(default_factory=asyncio.Lock)

    def create_store(self, settings: Settings, target: Target, read_only: bool) -> ControlStore:
        from clandestino_postgres.store import PostgresStore

        where = ConnectionTarget.parse(connection_string(settings), settings.connect_timeout)
        if target.url:
            pooled = ConnectionTarget.parse(target.url, settings.connect_timeout)
            search_path = None
        else:
            # The configured database's pool, shared by every schema target.
            pooled = ConnectionTarget.parse(
                connection_string(self.settings), settings.connect_timeout
            )
            search_path = target.name
        return PostgresStore(
            where,
            schema=schema(settings),
            table=settings.control_table,
            read_only=read_only,
            traffic=TrafficSettings.from_settings(settings),
            connections=SchemaConnections(self, pooled, search_path, keep=not target.url),
        )

    async def borrow(self, where: ConnectionTarget, keep: bool) -> Connection:
        async with self._guard:
            server = self._servers.get(where.url)
            if server is None:
                pool = asyncpg.create_pool(
                    where.url,
                    min_size=0,
                    max_size=self.concurrency,
                    timeout=where.timeout,
                    server_settings={"application_name": application_name()},
                )
                # min_size 0: creating the pool connects nothing yet.
                server = _Server(await pool, keep=keep)
                self._servers[where.url] = server
            server.borrowers += 1
        try:
            connection: Connection = await server.pool.acquire(timeout=where.timeout)
        except Exception as exc:
            await self._done_with(where.url, server)
            raise database_error(exc, where, "connect to") from exc
        return connection

    async def give_back(self, where: ConnectionTarget, connection: Connection) -> None:
        server = self._servers[where.url]
        try:
            await server.pool.release(connection, timeout=_RELEASE_SECONDS)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
            # A session that cannot be reset is not reused: ending it frees its lock too.
            connection.terminate()
        await self._done_with(where.url, server)

    async def _done_with(self, url: str, server: _Server) -> None:
        async with self._guard:
            server.borrowers -= 1
            if server.borrowers or server.keep:
                return
            del self._servers[url]
        await _close(server.pool)

    async def aclose(self) -> None:
        async with self._guard:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            await _close(server.pool)


@dataclass
class SchemaConnections:
    """A target's connection from its server's pool, with `search_path` set to its schema."""

    servers: PostgresServers
    where: ConnectionTarget
    search_path: str | None
    keep: bool

    async def acquire(self) -> Connection:
        connection = await self.servers.borrow(self.where, self.keep)
        if self.search_path is not None:
            try:
                # The name passed the identifier check (PostgresFleet.target).
                await connection.execute(f'SET search_path TO "{self.search_path}"')
            except Exception as exc:
                await self.servers.give_back(self.where, connection)
                raise database_error(exc, self.where, "configure") from exc
        return connection

    async def release(self, connection: Connection) -> None:
        await self.servers.give_back(self.where, connection)


async def _close(pool: Pool) -> None:
    try:
        await asyncio.wait_for(pool.close(), _RELEASE_SECONDS)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
        pool.terminate()
