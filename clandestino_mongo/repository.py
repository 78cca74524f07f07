"""The original package's five-method repository, kept for code that calls it directly.

The engine does not use it: it reads every record in one query through `MongoStore`, and hands
migrations a view of the run's own store as `migration_repository`. This one opens a client per
call, as the original did.
"""

from __future__ import annotations

from datetime import UTC, datetime

from clandestino_interfaces import IMigrateRepository

from clandestino_mongo.infra import MongoInfra

__all__ = ["MongoMigrateRepository"]

INIT_DOCUMENT = {"name": "clandestino init"}


def _collection() -> str:
    from clandestino.config import load_settings

    return load_settings().control_table


class MongoMigrateRepository(IMigrateRepository):  # type: ignore[misc]
    @classmethod
    async def create_control_table(cls) -> None:
        async with MongoInfra().get_database() as db:
            await db[_collection()].insert_one(dict(INIT_DOCUMENT))

    @classmethod
    async def control_table_exists(cls) -> bool:
        async with MongoInfra().get_database() as db:
            return _collection() in await db.list_collection_names()

    @classmethod
    async def register_migration_execution(cls, migration_name: str) -> None:
        async with MongoInfra().get_database() as db:
            document = {"name": migration_name, "created_at": datetime.now(UTC)}
            await db[_collection()].insert_one(document)

    @classmethod
    async def migration_already_executed(cls, migration_name: str) -> bool:
        async with MongoInfra().get_database() as db:
            return await db[_collection()].find_one({"name": migration_name}) is not None

    @classmethod
    async def remove_migration_execution(cls, migration_name: str) -> None:
        async with MongoInfra().get_database() as db:
            await db[_collection()].delete_one({"name": migration_name})
