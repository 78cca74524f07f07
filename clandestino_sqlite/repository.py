"""The original package's five-method repository, kept for code that calls it directly.

The engine does not use it: it reads every record in one query through `SqliteStore`, and hands
migrations a view of the run's own store as `migration_repository`. This one opens its own
connection per call, as the original did, so it must not be used inside a running migration.
"""

from __future__ import annotations

from clandestino_interfaces import IMigrateRepository

from clandestino_sqlite.infra import SQLiteInfra

__all__ = ["SQLiteMigrateRepository"]


class SQLiteMigrateRepository(IMigrateRepository):  # type: ignore[misc]
    @classmethod
    def _table(cls) -> str:
        from clandestino.config import load_settings

        return load_settings().control_table

    @classmethod
    async def create_control_table(cls) -> None:
        async with SQLiteInfra().get_cursor() as cursor:
            cursor.execute(
                f'CREATE TABLE IF NOT EXISTS "{cls._table()}" ('
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
                [cls._table()],
            )
            return cursor.fetchone() is not None

    @classmethod
    async def register_migration_execution(cls, migration_name: str) -> None:
        async with SQLiteInfra().get_cursor() as cursor:
            cursor.execute(
                f'INSERT INTO "{cls._table()}" (migration_name) VALUES (?)', [migration_name]
            )

    @classmethod
    async def migration_already_executed(cls, migration_name: str) -> bool:
        async with SQLiteInfra().get_cursor() as cursor:
            cursor.execute(
                f'SELECT 1 FROM "{cls._table()}" WHERE migration_name = ?', [migration_name]
            )
            return cursor.fetchone() is not None

    @classmethod
    async def remove_migration_execution(cls, migration_name: str) -> None:
        async with SQLiteInfra().get_cursor() as cursor:
            cursor.execute(
                f'DELETE FROM "{cls._table()}" WHERE migration_name = ?', [migration_name]
            )
