"""What an OpenSearch migration uses: `async with self.infra.get_client() as client`, an
opensearch-py AsyncOpenSearch (the run's one during a run, else one from the settings)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clandestino_elasticsearch.infra import SearchInfra

if TYPE_CHECKING:
    # Named in a string below (a base class is evaluated at run time, without the driver).
    from opensearchpy import AsyncOpenSearch  # noqa: F401

    from clandestino_elasticsearch.connect import SearchTarget

__all__ = ["OpenSearchInfra"]


class OpenSearchInfra(SearchInfra["AsyncOpenSearch"]):
    engine = "OpenSearch"

    @classmethod
    def target_type(cls) -> type[SearchTarget]:
        from clandestino_opensearch.connect import OpenSearchTarget

        return OpenSearchTarget
