"""A MongoDB fleet's last outcome per target, in the collection `clandestino_fleet` of the
configured database (the connection string's): on the server every runner works against, apart
from every target's control collection."""

from __future__ import annotations

import datetime
from typing import Any

from clandestino.fleet.report import TargetOutcome
from clandestino.fleet.state import STATE_TABLE
from clandestino_mongo.connect import MongoTarget

__all__ = ["MongoFleetState"]


class MongoFleetState:
    def __init__(self, where: MongoTarget) -> None:
        self._where = where
        self.description = f"the collection {STATE_TABLE} of MongoDB {where.where}"
        self._client: Any = None

    def _collection(self) -> Any:
        if self._client is None:
            self._client = self._where.client(maxPoolSize=1)
        return self._client[self._where.database][STATE_TABLE]

    async def failed(self) -> dict[str, str]:
        from clandestino_mongo.connect import database_error

        try:
            found = self._collection().find({"outcome": "failed"}, {"error": 1})
            return {str(d["_id"]): str(d.get("error") or "failed") async for d in found}
        except Exception as exc:
            raise database_error(exc, self._where, "read the fleet's outcomes from") from exc

    async def record(self, outcome: TargetOutcome, runner: str) -> None:
        await self._collection().replace_one(
            {"_id": outcome.target},
            {
                "outcome": outcome.status,
                "error": outcome.error,
                "at": datetime.datetime.now(datetime.UTC),
                "runner": runner,
            },
            upsert=True,
        )

    async def aclose(self) -> None:
        import asyncio
        import contextlib

        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 5)
