"""The run's connection for a step outside a transaction (`transactional = False`).

A string of several statements sent at once runs as one implicit transaction, where CREATE
INDEX CONCURRENTLY and its kind refuse to run. Here `execute()` of such a string (without
arguments) sends its statements one by one, split by sqlparse; everything else is the asyncpg
connection's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncpg

__all__ = ["OneStatementAtATime", "split_statements"]


def split_statements(sql: str) -> list[str]:
    """The statements of `sql`, minding quotes, dollar quotes and comments."""
    import sqlparse

    return [statement for statement in sqlparse.split(sql) if statement.strip(" \t\r\n;")]


class OneStatementAtATime:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        status: str = ""
        if args:
            status = await self._connection.execute(query, *args, timeout=timeout)
            return status
        for statement in split_statements(query):
            status = await self._connection.execute(statement, timeout=timeout)
        return status

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)
