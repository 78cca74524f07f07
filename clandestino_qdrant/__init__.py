"""The Qdrant backend (`CLANDESTINO_MIGRATION_REPO=QDRANT`) on qdrant-client, the original's client.

The public names are the original `clandestino-qdrant` package's, so migration files it generated
(`async with self.infra.get_client() as client`) keep working. Importing this package does not
import qdrant-client; using it does.
"""

from clandestino_qdrant import ref
from clandestino_qdrant.infra import QdrantInfra
from clandestino_qdrant.repository import QdrantMigrateRepository

__all__ = ["QdrantInfra", "QdrantMigrateRepository", "ref"]
