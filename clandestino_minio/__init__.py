"""The MinIO backend (`CLANDESTINO_MIGRATION_REPO=MINIO`) on miniopy-async, the original's client.

The public names are the original `clandestino-minio` package's, so migration files it generated
(`async with self.infra.get_client() as client`) keep working. Importing this package does not
import miniopy-async; using it does.
"""

from clandestino_minio import ref
from clandestino_minio.infra import MinioInfra
from clandestino_minio.repository import MinIOMigrateRepository

__all__ = ["MinIOMigrateRepository", "MinioInfra", "ref"]
