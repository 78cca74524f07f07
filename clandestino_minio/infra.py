"""What a MinIO migration uses to reach the server, under the original package's names.

    async with self.infra.get_client() as client:   # a miniopy_async.Minio
        await client.put_object("my-bucket", "key", io.BytesIO(b"data"), 4)

During a run the engine binds the migration's infra to the run's client, so nothing opens a
client of its own. Used on its own, the infra opens a client from the CLANDESTINO_BUCKET_*
settings for the block and closes its session after (the original left it open).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from miniopy_async.api import Minio

__all__ = ["MinioInfra"]


class MinioInfra:
    def __init__(self) -> None:
        self._client: Minio | None = None

    @classmethod
    def bound_to(cls, client: Minio) -> MinioInfra:
        infra = cls()
        infra._client = client
        return infra

    @asynccontextmanager
    async def get_client(self) -> AsyncIterator[Minio]:
        if self._client is not None:
            yield self._client
            return
        from clandestino.config import load_settings
        from clandestino_minio.connect import MinioTarget

        settings = load_settings()
        client = MinioTarget.from_settings(settings).client()
        try:
            yield client
        finally:
            await client.close_session()  # type: ignore[no-untyped-call]
