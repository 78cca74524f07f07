"""The PostgreSQL backend on asyncpg.

The public names are the original `clandestino-postgres` package's, so migration files it generated
(`from clandestino_postgres.infra import PostgresInfra`) keep working. Importing this package does
not import asyncpg; using it does.
"""

from clandestino_postgres import ref
from clandestino_postgres.infra import PostgresInfra
from clandestino_postgres.repository import PostgresMigrateRepository

__all__ = ["PostgresInfra", "PostgresMigrateRepository", "ref"]
