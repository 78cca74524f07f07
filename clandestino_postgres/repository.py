"""The original package's five-method repository, kept for code that calls it directly.

The engine does not use it: it reads every record in one query through `PostgresStore`, and hands
migrations a view of the run's own store as `migration_repository`. This one opens its own
connection per call, as the original did.
"""

from __future__ import annotations

from clandestino_interfaces import IMigrateRepository

from clandestino_postgres.infra import PostgresInfra

__all__ = ["PostgresMigrateRepository"]


class PostgresMigrateRepository(IMigrateRepository):  # type: ignore[misc]
    @classmethod
    def _table(cls) -> str:
        from clandestino.config import load_settings

        return f'"{load_settings().control_table}"'

    @classmethod
    async def create_control_table(cls) -> None:
        async with PostgresInfra().connection() as conn:
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {cls._table()} ("
                " id serial PRIMARY KEY,"
                " migration_name varchar(255) UNIQUE NOT NULL,"
                " created_on timestamp NOT NULL DEFAULT current_timestamp,"
                " checksum text, duration_ms integer)"
            )

    @classmethod
    async def control_table_exists(cls) -> bool:
        async with PostgresInfra().connection() as conn:
            found = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", cls._table())
            return bool(found)

    @classmethod
    async def register_migration_execution(cls, migration_name: str) -> None:
        async with PostgresInfra().connection() as conn:
            await conn.execute(
                f"INSERT INTO {cls._table()} (migration_name) VALUES ($1)", migration_name
            )

    @classmethod
    async def migration_already_executed(cls, migration_name: str) -> bool:
        async with PostgresInfra().connection() as conn:
            found = await conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM {cls._table()} WHERE migration_name = $1)",
                migration_name,
            )
            return bool(found)

    @classmethod
    async def remove_migration_execution(cls, migration_name: str) -> None:
        async with PostgresInfra().connection() as conn:
            await conn.execute(
                f"DELETE FROM {cls._table()} WHERE migration_name = $1", migration_name
            )
