"""The original package's five-method repository, kept for code that calls it directly.

The engine does not use it: it reads every record in one request through `ElasticsearchStore`,
and hands migrations a view of the run's own store as `migration_repository`.
"""

from __future__ import annotations

from clandestino_interfaces import IMigrateRepository

from clandestino_elasticsearch.infra import ElasticsearchInfra

__all__ = ["ElasticsearchMigrateRepository"]


def _index() -> str:
    from clandestino.config import load_settings

    return load_settings().control_table


class ElasticsearchMigrateRepository(IMigrateRepository):  # type: ignore[misc]
    @classmethod
    async def create_control_table(cls) -> None:
        async with ElasticsearchInfra().get_client() as es:
            await es.index(index=_index(), id="init", document={"name": "clandestino init"})

    @classmethod
    async def control_table_exists(cls) -> bool:
        async with ElasticsearchInfra().get_client() as es:
            return bool(await es.indices.exists(index=_index()))

    @classmethod
    async def register_migration_execution(cls, migration_name: str) -> None:
        from clandestino_elasticsearch.store import record_document

        async with ElasticsearchInfra().get_client() as es:
            document = record_document(migration_name, None, None)
            await es.index(index=_index(), id=migration_name, document=document, refresh=True)

    @classmethod
    async def migration_already_executed(cls, migration_name: str) -> bool:
        async with ElasticsearchInfra().get_client() as es:
            return bool(await es.exists(index=_index(), id=migration_name))

    @classmethod
    async def remove_migration_execution(cls, migration_name: str) -> None:
        async with ElasticsearchInfra().get_client() as es:
            await es.delete(index=_index(), id=migration_name, refresh=True)
