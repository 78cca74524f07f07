"""The control table read for a no-op `cdt -m` without asyncio or asyncpg (see wire.py).

Whatever this read cannot do exactly as the store would, it leaves to the store by returning
None: the cost is one more connection, on a run that has work to do or an error to report.
"""

from __future__ import annotations

import os
import struct
from importlib.util import find_spec

from clandestino.config import Settings
from clandestino.store import Snapshot
from clandestino_postgres.backend import connection_string, schema
from clandestino_postgres.connect import ConnectionTarget, application_name, no_answer
from clandestino_postgres.records import (
    UNDEFINED_COLUMN,
    UNDEFINED_TABLE,
    applied_query,
    describe,
    quoted_table,
    to_applied,
)
from clandestino_postgres.wire import Connection, Endpoint, NotHere, QueryFailed, connect

__all__ = ["read_snapshot"]

# What a reply that is not PostgreSQL's (another service on the port) raises while being parsed.
_GARBLED = (ValueError, struct.error)


def read_snapshot(settings: Settings) -> Snapshot | None:
    # Without the driver the store must say so, even when there is nothing to do.
    if find_spec("asyncpg") is None:
        return None
    target = ConnectionTarget.parse(connection_string(settings), settings.connect_timeout)
    table = quoted_table(schema(settings), settings.control_table)
    try:
        endpoint = Endpoint.from_url(target.url, os.environ)
        startup = {"application_name": application_name(), "client_encoding": "UTF8"}
        connection = connect(endpoint, target.timeout, startup)
    except TimeoutError as exc:
        # Asking asyncpg would only wait as long again.
        raise no_answer(target) from exc
    except (NotHere, OSError, *_GARBLED):
        return None
    # The connect timeout bounds each read from here on too; a query that outlasts it (the table
    # locked by a schema change elsewhere) is left to asyncpg, which waits as it always has.
    with connection:
        try:
            rows = _records(connection, table)
        except (NotHere, QueryFailed, OSError, *_GARBLED):
            return None
    return Snapshot(describe(target.masked, table), [to_applied(row) for row in rows])


def _records(connection: Connection, table: str) -> list[tuple[str | None, ...]]:
    try:
        return connection.simple_query(applied_query(table))
    except QueryFailed as exc:
        if exc.sqlstate == UNDEFINED_TABLE:
            return []
        if exc.sqlstate == UNDEFINED_COLUMN:
            return connection.simple_query(applied_query(table, legacy=True))
        raise
