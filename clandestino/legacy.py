"""The original's five-method `IMigrateRepository`, in both directions.

`RepositoryAdapter` lets a user's own `migrations/repository.py` stand in for a control store;
`StoreRepository` is what migrations receive as `migration_repository`: the run's own store seen
through the original interface, so it works inside the run's transaction and lock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from clandestino_interfaces import IMigrateRepository

from clandestino.errors import ClandestinoError
from clandestino.store import AppliedMigration, ControlStore, WaitCallback

__all__ = ["RepositoryAdapter", "StoreRepository"]


class RepositoryAdapter:
    """A user's `migrations/repository.py` seen as a control store.

    The five-method interface has no lock, no transaction and no way to list records, so this
    asks once per migration file and runs without a lock (the engine says so).
    """

    locking = False
    runs_outside_transactions = True

    def __init__(self, repository: Any, names: Sequence[str], source: str) -> None:
        self._repository = repository
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

    async def update_checksum(self, name: str, checksum: str) -> None:
        # The five-method interface keeps no checksum.
        return None

    async def mark_started(self, name: str, direction: str, owner: str) -> None:
        # The five-method interface has nowhere to keep a marker.
        return None

    async def clear_marker(self, name: str) -> None:
        return None

    @asynccontextmanager
    async def lock(self, timeout: float, on_wait: WaitCallback) -> AsyncIterator[None]:
        yield

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    def bind_infra(self, declared: object) -> object | None:
        return None

    def connection_lost(self, error: BaseException) -> ClandestinoError | None:
        return None

    def legacy_repository(self) -> object:
        return self._repository


class StoreRepository(IMigrateRepository):  # type: ignore[misc]
    """A control store behind the original interface. Within a run the control table exists."""

    def __init__(self, store: ControlStore) -> None:
        self._store = store

    async def create_control_table(self) -> None:
        await self._store.ensure()

    async def control_table_exists(self) -> bool:
        return True

    async def register_migration_execution(self, migration_name: str) -> None:
        await self._store.record(migration_name, None, 0)

    async def migration_already_executed(self, migration_name: str) -> bool:
        return any(record.name == migration_name for record in await self._store.applied())

    async def remove_migration_execution(self, migration_name: str) -> None:
        await self._store.remove(migration_name)
