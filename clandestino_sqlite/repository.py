"""The original package's five-method repository, kept for code that calls it directly.

The engine does not use it: it reads every record in one query through `SqliteStore`. It is what
migrations receive as `migration_repository`, as they did from the original.
"""

from __future__ import annotations

from clandestino_interfaces import IMigrateRepository

from clandestino_sqlite.infra import SQLiteInfra

__all__ = ["SQLiteMigrateRepository"]


class SQLiteMigrateRepository(IMigrateRepository):  # type: ignore[misc]
    control_table = "clandestino"

    @classmethod
    async def create_control_table(cls) -> None:
        async with SQLiteInfra().get_cursor() as cursor:
            cursor.execute(
                f'CREATE TABLE IF NOT EXISTS "{cls.control_table}" ('
                " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " migration_name TEXT UNIQUE NOT NULL,"
                " created_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,"
                " checksum TEXT, duration_ms INTEGER)"
            )

    @classmethod
    async def control_table_exists(cls) -> bool:
        async with SQLiteInfra().get_cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                [cls.control_table],
            )
            return cursor.fetchone() is not None

    @classmethod
    async def register_migration_execution(cls, migration_name: str) -> None:
        async with SQLiteInfra().get_cursor() as cursor:
            cursor.execute(
                f'INSERT INTO "{cls.control_table}" (migration_name) VALUES (?)', [migration_name]
            )

    @classmethod
    async def migration_already_executed(cls, migration_name: str) -> bool:
        async with SQLiteInfra().get_cursor() as cursor:
            cursor.execute(
                f'SELECT 1 FROM "{cls.control_table}" WHERE migration_name = ?', [migration_name]
            )
            return cursor.fetchone() is not None

    @classmethod
    async def remove_migration_execution(cls, migration_name: str) -> None:
        async with SQLiteInfra().get_cursor() as cursor:
            cursor.execute(
                f'DELETE FROM "{cls.control_table}" WHERE migration_name = ?', [migration_name]
            )
