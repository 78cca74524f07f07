"""The Elasticsearch backend on the official async client (`elasticsearch[async]`).

The public names are the original `clandestino-elasticsearch` package's, so migration files it
generated (`async with self.infra.get_client() as es`) keep working. Importing this package does
not import the client; using it does.
"""

from clandestino_elasticsearch import ref
from clandestino_elasticsearch.infra import ElasticsearchInfra
from clandestino_elasticsearch.repository import ElasticsearchMigrateRepository

__all__ = ["ElasticsearchInfra", "ElasticsearchMigrateRepository", "ref"]
