"""The control store: what a backend must do to keep Clandestino's records, and the adapter that
lets a user's own five-method `IMigrateRepository` stand in for one.

A store is opened once per run (`open()`), used by the engine, and closed (`aclose()`) on every
path. The engine calls `ensure()` only while holding `lock()`, so creating or adopting the control
table never races with another deployer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from clandestino_interfaces import IMigrateRepository

__all__ = [
    "AppliedMigration",
    "ControlStore",
    "LockHolder",
    "RepositoryAdapter",
    "opened",
]


@dataclass(frozen=True)
class AppliedMigration:
    """One control record. Records written by the original tool have no checksum or duration."""

    name: str
    applied_at: datetime | None = None
    checksum: str | None = None
    duration_ms: int | None = None


@dataclass(frozen=True)
class LockHolder:
    """Who holds the lock we wait for, as far as the backend can tell."""

    description: str
    since: datetime | None = None


WaitCallback = Callable[[LockHolder], None]


@runtime_checkable
class ControlStore(Protocol):
    """What the engine needs from a backend. `applied()` is one round trip, whatever N is."""

    description: str
    locking: bool

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def ensure(self) -> None: ...

    async def applied(self) -> list[AppliedMigration]: ...

    async def record(self, name: str, checksum: str | None, duration_ms: int) -> None: ...

    async def remove(self, name: str) -> None: ...

    def lock(self, timeout: float, on_wait: WaitCallback) -> AbstractAsyncContextManager[None]: ...

    def transaction(self) -> AbstractAsyncContextManager[None]: ...

    def bind_infra(self, declared: object) -> object | None:
        """The infra a migration should use instead of `declared`, to share the run's connection
        and transaction; None to leave the migration's own infra alone."""
        ...

    def legacy_repository(self) -> object:
        """What the original passed to `AbstractMigration.__init__` as `migration_repository`."""
        ...


@asynccontextmanager
async def opened(store: ControlStore) -> AsyncIterator[ControlStore]:
    """Open `store` for the duration of the block and close it on every path."""
    await store.open()
    try:
        yield store
    finally:
        await store.aclose()


class RepositoryAdapter:
    """A user's `migrations/repository.py` seen as a control store.

    The five-method interface has no lock, no transaction and no way to list records, so this
    asks once per migration file and runs without a lock (the engine says so).
    """

    locking = False

    def __init__(self, repository: IMigrateRepository, names: Sequence[str], source: str) -> None:
        self._repository: Any = repository
        self._names = list(names)
        self.description = f"LOCAL ({source})"

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def ensure(self) -> None:
        if not await self._repository.control_table_exists():
            await self._repository.create_control_table()

    async def applied(self) -> list[AppliedMigration]:
        if not await self._repository.control_table_exists():
            return []
        return [
            AppliedMigration(name)
            for name in self._names
            if await self._repository.migration_already_executed(migration_name=name)
        ]

    async def record(self, name: str, checksum: str | None, duration_ms: int) -> None:
        await self._repository.register_migration_execution(migration_name=name)

    async def remove(self, name: str) -> None:
        await self._repository.remove_migration_execution(migration_name=name)

    @asynccontextmanager
    async def lock(self, timeout: float, on_wait: WaitCallback) -> AsyncIterator[None]:
        yield

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    def bind_infra(self, declared: object) -> object | None:
        return None

    def legacy_repository(self) -> object:
        return self._repository
