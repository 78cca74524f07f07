"""A psycopg-style async cursor over an asyncpg connection, for files the original generated.

The original handed migrations a psycopg 3 cursor: `await cursor.execute(sql, [params])` with `%s`
placeholders, then `await cursor.fetchone()` / `fetchall()`. This keeps that surface on asyncpg.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncpg

__all__ = ["CompatCursor", "count_statements", "to_dollar_params"]

_PLACEHOLDER = re.compile(r"%%|%s|%\((\w+)\)s")
_STATUS_COUNT = re.compile(r"(\d+)$")

Params = Sequence[Any] | Mapping[str, Any] | None


def to_dollar_params(sql: str, params: Params) -> tuple[str, list[Any]]:
    """psycopg's `%s` / `%(name)s` placeholders as asyncpg's `$1`, with the values in order."""
    if params is None:
        return sql, []
    values: list[Any] = []
    named: dict[str, int] = {}
    positional = iter(params) if not isinstance(params, Mapping) else None

    def replace(match: re.Match[str]) -> str:
        token, name = match.group(0), match.group(1)
        if token == "%%":
            return "%"
        if name is None:
            if positional is None:
                raise TypeError("the query uses %s but the parameters are a mapping")
            values.append(next(positional))
            return f"${len(values)}"
        if not isinstance(params, Mapping):
            raise TypeError(f"the query uses %({name})s but the parameters are a sequence")
        if name not in named:
            values.append(params[name])
            named[name] = len(values)
        return f"${named[name]}"

    return _PLACEHOLDER.sub(replace, sql), values


def count_statements(sql: str) -> int:
    """How many statements `sql` holds, minding quotes, dollar quotes and comments."""
    count, index, length, content = 0, 0, len(sql), False
    while index < length:
        char = sql[index]
        if sql.startswith("--", index):
            index = _end_of(sql, "\n", index + 2)
        elif sql.startswith("/*", index):
            index = _end_of(sql, "*/", index + 2)
        elif char in "'\"":
            content = True
            index = _end_of(sql, char, index + 1)
        elif char == "$" and (tag := re.match(r"\$\w*\$", sql[index:])):
            content = True
            index = _end_of(sql, tag.group(0), index + len(tag.group(0)))
        elif char == ";":
            count += content
            content = False
            index += 1
        else:
            content = content or not char.isspace()
            index += 1
    return count + content


def _end_of(sql: str, closer: str, start: int) -> int:
    found = sql.find(closer, start)
    return len(sql) if found == -1 else found + len(closer)


class CompatCursor:
    """What `async with self.infra.get_cursor() as cursor` yields."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection
        self._rows: list[tuple[Any, ...]] = []
        self._position = 0
        self.rowcount = -1

    async def execute(self, query: str, params: Params = None) -> CompatCursor:
        sql, values = to_dollar_params(query, params)
        if params is None and count_statements(sql) > 1:
            # Several statements go through the simple protocol, as psycopg sends them.
            status = await self.connection.execute(sql)
            self._set_result([], status)
            return self
        statement = await self.connection.prepare(sql)
        rows = await statement.fetch(*values)
        self._set_result([tuple(row) for row in rows], statement.get_statusmsg())
        return self

    async def executemany(self, query: str, params_seq: Iterable[Params]) -> None:
        for params in params_seq:
            await self.execute(query, params)

    def _set_result(self, rows: list[tuple[Any, ...]], status: str | None) -> None:
        self._rows, self._position = rows, 0
        match = _STATUS_COUNT.search(status or "")
        self.rowcount = int(match.group(1)) if match else -1

    async def fetchone(self) -> tuple[Any, ...] | None:
        if self._position >= len(self._rows):
            return None
        self._position += 1
        return self._rows[self._position - 1]

    async def fetchmany(self, size: int = 1) -> list[tuple[Any, ...]]:
        rows = self._rows[self._position : self._position + size]
        self._position += len(rows)
        return rows

    async def fetchall(self) -> list[tuple[Any, ...]]:
        rows = self._rows[self._position :]
        self._position = len(self._rows)
        return rows

    def __aiter__(self) -> AsyncIterator[tuple[Any, ...]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[tuple[Any, ...]]:
        while (row := await self.fetchone()) is not None:
            yield row

    async def close(self) -> None:
        self._rows = []
