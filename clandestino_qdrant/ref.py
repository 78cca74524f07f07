from clandestino_interfaces import AbstractMigration

from clandestino_qdrant.infra import QdrantInfra


class Migration(AbstractMigration):
    infra = QdrantInfra()

    async def up(self) -> None:
        """Do modifications in database"""
        async with self.infra.get_client() as client:
            # client is the run's qdrant_client.AsyncQdrantClient
            await client.get_collections()

    async def down(self) -> None:
        """Undo modifications in database"""
