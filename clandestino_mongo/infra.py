"""What a MongoDB migration uses to reach the database.

    async with self.infra.get_database() as db:   # a pymongo AsyncDatabase (the URL's default),
                                                  # whose aggregate()/list_indexes()/watch() also
                                                  # work unawaited, as Motor's did
    self.infra.client                             # the run's AsyncMongoClient
    self.infra.session                            # the migration's transaction, or None

During a run the engine binds the migration's infra to the run's client, so nothing opens a
client of its own. On a replica set each migration runs in a transaction that also writes its
record; a write joins it when given `session=self.infra.session`. Used on its own, the infra
opens a client from CLANDESTINO_MONGO_CONNECTION_STRING for the block and closes it after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pymongo import AsyncMongoClient
    from pymongo.asynchronous.client_session import AsyncClientSession
    from pymongo.asynchronous.database import AsyncDatabase

__all__ = ["MongoInfra"]


class MongoInfra:
    def __init__(self, connection_string: str | None = None) -> None:
        self.connection_string = connection_string
        self._client: AsyncMongoClient[dict[str, Any]] | None = None
        self._database_name: str | None = None
        self._session_source: Any = None

    @classmethod
    def bound_to(
        cls, client: AsyncMongoClient[dict[str, Any]], database: str, session_source: Any
    ) -> MongoInfra:
        infra = cls()
        infra._client, infra._database_name = client, database
        infra._session_source = session_source
        return infra

    def targets_configured_database(self) -> bool:
        return self.connection_string is None

    @property
    def client(self) -> AsyncMongoClient[dict[str, Any]]:
        if self._client is None:
            raise RuntimeError("MongoInfra.client is only set during a run; use get_database()")
        return self._client

    @property
    def session(self) -> AsyncClientSession | None:
        """The running migration's transaction on a replica set; None elsewhere."""
        return self._session_source.current_session() if self._session_source else None

    @asynccontextmanager
    async def get_database(self) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
        from clandestino_mongo.motor_style import motor_style

        if self._client is not None and self._database_name is not None:
            yield motor_style(self._client[self._database_name])
            return
        from clandestino_mongo.connect import MongoTarget

        target = MongoTarget.parse(self._standalone_url(), timeout=10.0)
        client = target.client()
        try:
            yield motor_style(client[target.database])
        finally:
            await client.close()

    def _standalone_url(self) -> str:
        if self.connection_string is not None:
            return self.connection_string
        from clandestino.config import load_settings
        from clandestino_mongo.backend import connection_string

        return connection_string(load_settings())
