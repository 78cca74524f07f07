"""The MongoDB backend as the `clandestino.backends` entry point sees it. Imports no driver."""

from __future__ import annotations

from clandestino.backends import Backend
from clandestino.config import Settings
from clandestino.store import ControlStore

__all__ = ["MONGO_CONNECTION_STRING", "backend", "connection_string"]

MONGO_CONNECTION_STRING = "CLANDESTINO_MONGO_CONNECTION_STRING"


def connection_string(settings: Settings) -> str:
    return settings.require(
        MONGO_CONNECTION_STRING, "set it to a mongodb://user:password@host:27017/database URL"
    )


def _create_store(settings: Settings, read_only: bool) -> ControlStore:
    from clandestino_mongo.connect import MongoTarget
    from clandestino_mongo.store import MongoStore

    target = MongoTarget.parse(connection_string(settings), settings.connect_timeout)
    return MongoStore(target, settings.control_table, settings.lock_lease)


backend = Backend(
    name="mongo",
    url_setting=MONGO_CONNECTION_STRING,
    template_module="clandestino_mongo.ref",
    fleet="clandestino_mongo.fleet:adapter",
    create_store=_create_store,
)
