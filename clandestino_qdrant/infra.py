"""What a Qdrant migration uses to reach the database, under the original package's names.

    async with self.infra.get_client() as client:   # a qdrant_client.AsyncQdrantClient

During a run the engine binds the migration's infra to the run's client. Used on its own, the
infra opens a client from CLANDESTINO_QDRANT_* for the block and closes it after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient

__all__ = ["QdrantInfra"]


class QdrantInfra:
    def __init__(self) -> None:
        self._client: AsyncQdrantClient | None = None

    @classmethod
    def bound_to(cls, client: AsyncQdrantClient) -> QdrantInfra:
        infra = cls()
        infra._client = client
        return infra

    @asynccontextmanager
    async def get_client(self) -> AsyncIterator[AsyncQdrantClient]:
        if self._client is not None:
            yield self._client
            return
        from clandestino.config import load_settings
        from clandestino_qdrant.connect import QdrantTarget

        client = QdrantTarget.from_settings(load_settings()).client()
        try:
            yield client
        finally:
            await client.close()
