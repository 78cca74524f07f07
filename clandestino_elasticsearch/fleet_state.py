"""An Elasticsearch fleet's last outcome per target, in the hidden index `clandestino_fleet` of
the configured cluster: hidden, so no index pattern (`--targets-query`) ever takes it for a
prefix, and apart from every prefix's control index."""

from __future__ import annotations

import datetime
from typing import Any

from clandestino.fleet.report import TargetOutcome
from clandestino.fleet.state import STATE_TABLE
from clandestino_elasticsearch.connect import ElasticsearchTarget

__all__ = ["ElasticsearchFleetState"]

_MAPPINGS = {
    "properties": {
        "outcome": {"type": "keyword"},
        "error": {"type": "text", "index": False},
        "at": {"type": "date"},
        "runner": {"type": "keyword"},
    }
}
# Far more than a fleet of prefixes on one cluster can hold (each has its own indices).
_MOST = 10_000


class ElasticsearchFleetState:
    def __init__(self, where: ElasticsearchTarget) -> None:
        self._where = where
        self.description = f"the index {STATE_TABLE} of Elasticsearch at {where.where}"
        self._client: Any = None
        self._ready = False

    def _es(self) -> Any:
        if self._client is None:
            self._client = self._where.client(connections_per_node=1)
        return self._client

    async def failed(self) -> dict[str, str]:
        from clandestino_elasticsearch.connect import database_error

        es = self._es()
        try:
            if not await es.indices.exists(index=STATE_TABLE):
                return {}
            found = await es.search(
                index=STATE_TABLE, query={"term": {"outcome": "failed"}}, size=_MOST
            )
        except Exception as exc:
            raise database_error(exc, self._where, "read the fleet's outcomes from") from exc
        return {
            str(hit["_id"]): str(hit["_source"].get("error") or "failed")
            for hit in found["hits"]["hits"]
        }

    async def record(self, outcome: TargetOutcome, runner: str) -> None:
        es = self._es()
        if not self._ready:
            await self._create(es)
        await es.index(
            index=STATE_TABLE,
            id=outcome.target,
            document={
                "outcome": outcome.status,
                "error": outcome.error,
                "at": datetime.datetime.now(datetime.UTC).isoformat(),
                "runner": runner,
            },
            refresh="wait_for",
        )

    async def _create(self, es: Any) -> None:
        from elasticsearch import BadRequestError

        try:
            await es.indices.create(
                index=STATE_TABLE,
                settings={"index": {"hidden": True, "number_of_replicas": 0}},
                mappings=_MAPPINGS,
            )
        except BadRequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise
        self._ready = True

    async def aclose(self) -> None:
        import contextlib

        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):
                await client.close()
