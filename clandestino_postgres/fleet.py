"""PostgreSQL targets: a schema of the configured database, or a database of its own.

A schema target keeps its control table in the schema and runs its migrations with
`search_path` set to it alone, so a tenant's unqualified names are the tenant's. The search path
travels as a server setting in the URL (asyncpg sends unknown query parameters as such), so the
store needs no fleet code of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from clandestino.config import Settings, check_identifier
from clandestino.fleet.adapter import with_values
from clandestino.fleet.targets import Target
from clandestino_postgres.backend import POSTGRES_CONNECTION_STRING, POSTGRES_SCHEMA
from clandestino_postgres.backend import connection_string as configured_url

if TYPE_CHECKING:
    from clandestino.fleet.sources import FleetChoice
    from clandestino_postgres.fleet_state import PostgresFleetState
    from clandestino_postgres.pool import PostgresServers

__all__ = ["PostgresFleet", "adapter", "with_search_path"]

SCHEMA = "postgres-schema"
DATABASE = "postgres-database"


def with_search_path(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "search_path"]
    query.append(("search_path", f'"{schema}"'))
    return urlunsplit(parts._replace(query=urlencode(query)))


class PostgresFleet:
    def target(self, settings: Settings, name: str, url: str | None) -> Target:
        if url is None:
            check_identifier(name, "a PostgreSQL schema target")
        return Target(name, DATABASE if url else SCHEMA, url)

    def settings_for(self, settings: Settings, target: Target) -> Settings:
        if target.kind == DATABASE and target.url:
            return with_values(settings, **{POSTGRES_CONNECTION_STRING: target.url})
        url = with_search_path(configured_url(settings), target.name)
        return with_values(
            settings, **{POSTGRES_CONNECTION_STRING: url, POSTGRES_SCHEMA: target.name}
        )

    def single(self, settings: Settings) -> Target:
        from clandestino_postgres.backend import schema
        from clandestino_postgres.connect import ConnectionTarget

        url = configured_url(settings)
        given = schema(settings)
        if given:
            return Target(given, SCHEMA, url)
        where = ConnectionTarget.parse(url, settings.connect_timeout).where
        return Target(where.rpartition("/")[2], DATABASE, url)

    def servers(self, settings: Settings, concurrency: int) -> PostgresServers:
        """One pool per server for the fleet's run, at most `concurrency` connections each."""
        from clandestino_postgres.pool import PostgresServers

        return PostgresServers(settings, concurrency)

    def state(self, settings: Settings, source: FleetChoice | None) -> PostgresFleetState:
        """The fleet's outcomes, in a table of the configured schema on the configured server."""
        from clandestino_postgres.backend import schema
        from clandestino_postgres.connect import ConnectionTarget
        from clandestino_postgres.fleet_state import PostgresFleetState

        where = ConnectionTarget.parse(configured_url(settings), settings.connect_timeout)
        return PostgresFleetState(where, schema(settings))

    async def find(self, settings: Settings, pattern: str) -> list[Target]:
        """Schemas whose name is LIKE `pattern` (`tenant_%`), PostgreSQL's own ones left out."""
        from clandestino_postgres.connect import ConnectionTarget, database_error

        where = ConnectionTarget.parse(configured_url(settings), settings.connect_timeout)
        connection = await where.connect()
        try:
            rows = await connection.fetch(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1"
                " AND nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
                " ORDER BY nspname",
                pattern,
            )
        except Exception as exc:
            raise database_error(exc, where, "list the schemas of") from exc
        finally:
            await connection.close()
        return [Target(row["nspname"], SCHEMA) for row in rows]


adapter = PostgresFleet()
