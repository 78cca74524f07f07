"""The PostgreSQL backend on asyncpg.

The public names are the original `clandestino-postgres` package's, so migration files it generated
(`from clandestino_postgres.infra import PostgresInfra`) keep working. Importing this package does
not import asyncpg; using it does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clandestino.lazy import lazy_names

if TYPE_CHECKING:
    from clandestino_postgres import ref
    from clandestino_postgres.infra import PostgresInfra
    from clandestino_postgres.repository import PostgresMigrateRepository

__all__ = ["PostgresInfra", "PostgresMigrateRepository", "ref"]

__getattr__ = lazy_names(
    __name__,
    {
        "PostgresInfra": "clandestino_postgres.infra",
        "PostgresMigrateRepository": "clandestino_postgres.repository",
        "ref": "clandestino_postgres.ref",
    },
)
