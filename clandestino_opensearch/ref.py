from clandestino_interfaces import AbstractMigration

from clandestino_opensearch.infra import OpenSearchInfra


class Migration(AbstractMigration):
    infra = OpenSearchInfra()

    async def up(self) -> None:
        """Do modifications in database"""
        async with self.infra.get_client() as client:
            # client is the run's AsyncOpenSearch (opensearch-py). OpenSearch has no
            # transactions: write up() so that running it again after a crash does no harm.
            await client.info()

    async def down(self) -> None:
        """Undo modifications in database"""
