"""The original package's five-method repository, kept for code that calls it directly.

The engine does not use it (see `QdrantStore`). "Already applied" is a retrieve by the point's id
here: the original's filtered `search` is gone from qdrant-client since 1.16.
"""

from __future__ import annotations

from datetime import UTC, datetime

from clandestino_interfaces import IMigrateRepository

from clandestino_qdrant.infra import QdrantInfra
from clandestino_qdrant.points import COLLECTION, point_id

__all__ = ["QdrantMigrateRepository"]


class QdrantMigrateRepository(IMigrateRepository):  # type: ignore[misc]
    @classmethod
    def get_control_collection(cls) -> str:
        return COLLECTION

    @staticmethod
    def hash_name(name: str) -> str:
        return point_id(name)

    @classmethod
    async def create_control_table(cls) -> None:
        from qdrant_client.models import Distance, VectorParams

        async with QdrantInfra().get_client() as client:
            vectors = VectorParams(size=1, distance=Distance.COSINE)
            await client.create_collection(COLLECTION, vectors_config=vectors)

    @classmethod
    async def control_table_exists(cls) -> bool:
        async with QdrantInfra().get_client() as client:
            return bool(await client.collection_exists(COLLECTION))

    @classmethod
    async def register_migration_execution(cls, migration_name: str) -> None:
        from qdrant_client.models import PointStruct

        async with QdrantInfra().get_client() as client:
            payload = {"name": migration_name, "created_at": str(datetime.now(UTC))}
            point = PointStruct(id=point_id(migration_name), vector=[1.0], payload=payload)
            await client.upsert(COLLECTION, points=[point])

    @classmethod
    async def remove_migration_execution(cls, migration_name: str) -> None:
        async with QdrantInfra().get_client() as client:
            await client.delete(COLLECTION, points_selector=[point_id(migration_name)])

    @classmethod
    async def migration_already_executed(cls, migration_name: str) -> bool:
        async with QdrantInfra().get_client() as client:
            return bool(await client.retrieve(COLLECTION, ids=[point_id(migration_name)]))
