"""What a search-engine migration uses: `async with self.infra.get_client() as es`.

During a run the engine binds the migration's infra to the run's one client. Used on its own,
the infra opens a client from the settings for the block and closes it after. SearchInfra is
shared with OpenSearch (clandestino_opensearch.infra), whose client is opensearch-py's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar

if TYPE_CHECKING:
    # Named in a string below (a base class is evaluated at run time, without the driver).
    from elasticsearch import AsyncElasticsearch  # noqa: F401

    from clandestino_elasticsearch.connect import SearchTarget

__all__ = ["ElasticsearchInfra", "SearchInfra"]

C = TypeVar("C")


class SearchInfra(Generic[C]):
    """Hands a migration the engine library's own async client (C)."""

    engine: ClassVar[str] = "search engine"

    def __init__(self) -> None:
        self._client: C | None = None

    @classmethod
    def target_type(cls) -> type[SearchTarget]:
        raise NotImplementedError

    @classmethod
    def bound_to(cls, client: C) -> Self:
        infra = cls()
        infra._client = client
        return infra

    @property
    def client(self) -> C:
        if self._client is None:
            raise RuntimeError(f"{type(self).__name__}.client is only set during a run")
        return self._client

    @asynccontextmanager
    async def get_client(self) -> AsyncIterator[C]:
        if self._client is not None:
            yield self._client
            return
        from clandestino.config import load_settings

        raw: Any = self.target_type().from_settings(load_settings()).client()
        try:
            yield raw
        finally:
            await raw.close()


class ElasticsearchInfra(SearchInfra["AsyncElasticsearch"]):
    engine = "Elasticsearch"

    @classmethod
    def target_type(cls) -> type[SearchTarget]:
        from clandestino_elasticsearch.connect import ElasticsearchTarget

        return ElasticsearchTarget
