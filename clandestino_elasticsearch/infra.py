"""What an Elasticsearch migration uses: `async with self.infra.get_client() as es`.

During a run the engine binds the migration's infra to the run's one client. Used on its own,
the infra opens a client from the settings for the block and closes it after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from elasticsearch import AsyncElasticsearch

__all__ = ["ElasticsearchInfra"]


class ElasticsearchInfra:
    def __init__(self) -> None:
        self._client: AsyncElasticsearch | None = None

    @classmethod
    def bound_to(cls, client: AsyncElasticsearch) -> ElasticsearchInfra:
        infra = cls()
        infra._client = client
        return infra

    @property
    def client(self) -> AsyncElasticsearch:
        if self._client is None:
            raise RuntimeError("ElasticsearchInfra.client is only set during a run")
        return self._client

    @asynccontextmanager
    async def get_client(self) -> AsyncIterator[AsyncElasticsearch]:
        if self._client is not None:
            yield self._client
            return
        from clandestino.config import load_settings
        from clandestino_elasticsearch.connect import ElasticsearchTarget

        client = ElasticsearchTarget.from_settings(load_settings()).client()
        try:
            yield client
        finally:
            await client.close()
