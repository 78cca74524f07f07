"""The database `get_database()` hands out, so that the original's Motor migrations run unchanged.

Motor's `aggregate()`, `list_indexes()` and `watch()` return their cursor at once
(`await coll.aggregate(p).to_list(None)`, `async for d in coll.aggregate(p)`, `async with
coll.watch() as stream`); PyMongo's async API makes them coroutines (`await coll.aggregate(p)`).
The classes here are PyMongo's own (isinstance holds) with those methods returning a cursor in
waiting that serves both spellings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Generator
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

__all__ = ["LatentCursor", "motor_style"]


class LatentCursor:
    """A cursor still to be opened: awaited, it is PyMongo's cursor; used as Motor's, it opens
    itself on first use."""

    def __init__(self, opening: Coroutine[Any, Any, Any]) -> None:
        self._opening: Coroutine[Any, Any, Any] | None = opening
        self._cursor: Any = None

    async def _open(self) -> Any:
        if self._opening is not None:
            opening, self._opening = self._opening, None
            self._cursor = await opening
        return self._cursor

    def __await__(self) -> Generator[Any, None, Any]:
        return self._open().__await__()

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for document in await self._open():
            yield document

    async def to_list(self, length: int | None = None) -> list[Any]:
        return list(await (await self._open()).to_list(length))

    async def next(self) -> Any:
        return await (await self._open()).next()

    async def close(self) -> None:
        if self._opening is not None:
            self._opening.close()  # never started: nothing on the server to close
            self._opening = None
        elif self._cursor is not None:
            await self._cursor.close()

    async def __aenter__(self) -> Any:
        return await (await self._open()).__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self._cursor.__aexit__(*exc)

    def __del__(self) -> None:
        if self._opening is not None:
            self._opening.close()  # no "coroutine was never awaited" warning for an unused one


class MotorStyleCollection(AsyncCollection[Any]):
    def aggregate(self, *args: Any, **kwargs: Any) -> Any:
        return LatentCursor(super().aggregate(*args, **kwargs))

    def list_indexes(self, *args: Any, **kwargs: Any) -> Any:
        return LatentCursor(super().list_indexes(*args, **kwargs))

    def watch(self, *args: Any, **kwargs: Any) -> Any:
        return LatentCursor(super().watch(*args, **kwargs))

    def __getitem__(self, name: str) -> Any:
        return _restyled(super().__getitem__(name), MotorStyleCollection)

    def with_options(self, *args: Any, **kwargs: Any) -> Any:
        return _restyled(super().with_options(*args, **kwargs), MotorStyleCollection)


class MotorStyleDatabase(AsyncDatabase[Any]):
    def aggregate(self, *args: Any, **kwargs: Any) -> Any:
        return LatentCursor(super().aggregate(*args, **kwargs))

    def watch(self, *args: Any, **kwargs: Any) -> Any:
        return LatentCursor(super().watch(*args, **kwargs))

    def __getitem__(self, name: str) -> Any:
        return _restyled(super().__getitem__(name), MotorStyleCollection)

    def get_collection(self, *args: Any, **kwargs: Any) -> Any:
        return _restyled(super().get_collection(*args, **kwargs), MotorStyleCollection)

    def with_options(self, *args: Any, **kwargs: Any) -> Any:
        return _restyled(super().with_options(*args, **kwargs), MotorStyleDatabase)


def _restyled(instance: Any, cls: type) -> Any:
    instance.__class__ = cls
    return instance


def motor_style(database: AsyncDatabase[Any]) -> AsyncDatabase[Any]:
    """The same database, its cursor-returning methods usable as Motor's and as PyMongo's."""
    return _restyled(database, MotorStyleDatabase)  # type: ignore[no-any-return]
