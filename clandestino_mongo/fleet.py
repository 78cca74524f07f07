"""MongoDB targets: a database, on the configured server or at a URL of its own.

The records, the lock and the migrations' collections of a target all live in its database.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from clandestino.config import Settings
from clandestino.errors import ConfigurationError
from clandestino.fleet.adapter import with_values
from clandestino.fleet.targets import Target
from clandestino_mongo.backend import MONGO_CONNECTION_STRING
from clandestino_mongo.backend import connection_string as configured_url

if TYPE_CHECKING:
    from clandestino.fleet.sources import FleetChoice
    from clandestino.store import ControlStore
    from clandestino_mongo.fleet_state import MongoFleetState

__all__ = ["MongoFleet", "MongoServers", "adapter", "with_database"]

DATABASE = "mongo-database"


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + quote(database)))


class MongoFleet:
    def target(self, settings: Settings, name: str, url: str | None) -> Target:
        return Target(name, DATABASE, url)

    def settings_for(self, settings: Settings, target: Target) -> Settings:
        url = target.url or with_database(configured_url(settings), target.name)
        return with_values(settings, **{MONGO_CONNECTION_STRING: url})

    def single(self, settings: Settings) -> Target:
        from clandestino_mongo.connect import MongoTarget

        url = configured_url(settings)
        return Target(MongoTarget.parse(url, settings.connect_timeout).database, DATABASE, url)

    def servers(self, settings: Settings, concurrency: int) -> MongoServers:
        return MongoServers(settings, concurrency)

    def state(self, settings: Settings, source: FleetChoice | None) -> MongoFleetState:
        """The fleet's outcomes, in a collection of the configured database."""
        from clandestino_mongo.connect import MongoTarget
        from clandestino_mongo.fleet_state import MongoFleetState

        return MongoFleetState(
            MongoTarget.parse(configured_url(settings), settings.connect_timeout)
        )

    async def find(self, settings: Settings, pattern: str) -> list[Target]:
        """Databases whose whole name matches the regular expression `pattern`."""
        from clandestino_mongo.connect import MongoTarget, database_error

        try:
            wanted = re.compile(pattern)
        except re.error as exc:
            raise ConfigurationError(
                f"--targets-query {pattern!r} is not a regular expression: {exc}",
                "for MongoDB the query is a regular expression over database names",
            ) from exc
        where = MongoTarget.parse(configured_url(settings), settings.connect_timeout)
        client = where.client()
        try:
            names = await client.list_database_names()
        except Exception as exc:
            raise database_error(exc, where, "list the databases of") from exc
        finally:
            await client.close()
        return [Target(name, DATABASE) for name in sorted(names) if wanted.fullmatch(name)]


class MongoServers:
    """One client per server for a fleet run: targets named alone share the configured URL's
    client (each works in its own database of it), a target with a URL of its own its URL's.
    The client's pool holds at most `concurrency` connections per server."""

    def __init__(self, settings: Settings, concurrency: int) -> None:
        from clandestino.fleet.clients import SharedClients

        self._settings = settings
        self._concurrency = concurrency
        self.clients: SharedClients[Any] = SharedClients(self._client, _close)

    def _client(self, url: str) -> Any:
        from clandestino_mongo.connect import MongoTarget

        where = MongoTarget.parse(url, self._settings.connect_timeout)
        return where.client(maxPoolSize=self._concurrency)

    def create_store(self, settings: Settings, target: Target, read_only: bool) -> ControlStore:
        from clandestino_mongo.connect import MongoTarget
        from clandestino_mongo.store import MongoStore

        where = MongoTarget.parse(configured_url(settings), settings.connect_timeout)
        client = self.clients.client(target.url or configured_url(self._settings))
        return MongoStore(where, settings.control_table, settings.lock_lease, client=client)

    async def aclose(self) -> None:
        await self.clients.aclose()


async def _close(client: Any) -> None:
    import asyncio
    import contextlib

    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.close(), 5)


adapter = MongoFleet()
