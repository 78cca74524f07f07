from clandestino_interfaces import AbstractMigration

from clandestino_elasticsearch.infra import ElasticsearchInfra


class Migration(AbstractMigration):
    infra = ElasticsearchInfra()

    async def up(self) -> None:
        """Do modifications in database"""
        async with self.infra.get_client() as es:
            # es is the run's AsyncElasticsearch client. Elasticsearch has no transactions:
            # write up() so that running it again after a crash does no harm.
            await es.info()

    async def down(self) -> None:
        """Undo modifications in database"""
