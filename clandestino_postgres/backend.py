"""The PostgreSQL backend as the `clandestino.backends` entry point sees it. Imports no driver."""

from __future__ import annotations

from clandestino.backends import Backend
from clandestino.config import Settings, check_identifier
from clandestino.store import ControlStore

__all__ = [
    "POSTGRES_CONNECTION_STRING",
    "POSTGRES_SCHEMA",
    "backend",
    "connection_string",
    "schema",
]

POSTGRES_CONNECTION_STRING = "CLANDESTINO_POSTGRES_CONNECTION_STRING"
POSTGRES_SCHEMA = "CLANDESTINO_POSTGRES_SCHEMA"


def connection_string(settings: Settings) -> str:
    return settings.require(
        POSTGRES_CONNECTION_STRING, "set it to a postgresql://user:password@host:5432/database URL"
    )


def schema(settings: Settings) -> str | None:
    """The control table's schema, if one is set (else the search path's first)."""
    given = settings.get(POSTGRES_SCHEMA)
    return check_identifier(given, POSTGRES_SCHEMA) if given else None


def _create_store(settings: Settings, read_only: bool) -> ControlStore:
    from clandestino_postgres.connect import ConnectionTarget
    from clandestino_postgres.store import PostgresStore
    from clandestino_postgres.timeouts import TrafficSettings

    return PostgresStore(
        ConnectionTarget.parse(connection_string(settings), settings.connect_timeout),
        schema=schema(settings),
        table=settings.control_table,
        read_only=read_only,
        traffic=TrafficSettings.from_settings(settings),
    )


backend = Backend(
    name="postgres",
    url_setting=POSTGRES_CONNECTION_STRING,
    template_module="clandestino_postgres.ref",
    fleet="clandestino_postgres.fleet:adapter",
    create_store=_create_store,
)
