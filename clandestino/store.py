"""The control store: what a backend must do to keep Clandestino's records.

A store is opened once per run (`open()`), used by the engine, and closed (`aclose()`) on every
path. The engine calls `ensure()` only while holding `lock()`, so creating or adopting the control
table never races with another deployer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from clandestino.errors import ClandestinoError

__all__ = [
    "AppliedMigration",
    "ControlStore",
    "Interruption",
    "LockConflict",
    "LockHolder",
    "Snapshot",
    "opened",
    "utc_from_text",
]


@dataclass(frozen=True)
class Interruption:
    """A step that started and never finished: its marker outlived the process that wrote it."""

    direction: str
    owner: str
    since: datetime | None = None


@dataclass(frozen=True)
class AppliedMigration:
    """One control record. Records written by the original tool have no checksum or duration.

    `interrupted` is set on the marker of a step that began but never finished, on stores with
    no transactions: an interrupted up() is a marker only, an interrupted down() marks a record.
    """

    name: str
    applied_at: datetime | None = None
    checksum: str | None = None
    duration_ms: int | None = None
    interrupted: Interruption | None = None


@dataclass(frozen=True)
class LockHolder:
    """Who holds the lock we wait for, as far as the backend can tell."""

    description: str
    since: datetime | None = None
    # Set when the holder's lease had expired and this deployer took the lock over.
    taken_over: bool = False


WaitCallback = Callable[[LockHolder], None]


@dataclass(frozen=True)
class LockConflict:
    """A step gave up waiting for a lock that other sessions hold (PostgreSQL's lock_timeout),
    and its transaction was rolled back: the engine tries it again, within these bounds.

    Offered by a store's optional `lock_conflict(error)`; `blockers` describe who held the lock
    as far as the store saw, `hint` names the settings that change the bounds.
    """

    blockers: list[str]
    lock_timeout: float
    attempts: int
    retry_window: float
    backoff: Callable[[int], float]
    hint: str


@dataclass(frozen=True)
class Snapshot:
    """The applied records, read by one blocking call that needs no event loop or async driver.

    `description` and `locking` are what the backend's store would say of itself.
    """

    description: str
    records: list[AppliedMigration]
    locking: bool = True


@runtime_checkable
class ControlStore(Protocol):
    """What the engine needs from a backend. `applied()` is one round trip, whatever N is."""

    description: str
    locking: bool
    # Whether a migration may opt out of the transaction (`transactional = False`) here.
    runs_outside_transactions: bool

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def ensure(self) -> None: ...

    async def applied(self) -> list[AppliedMigration]: ...

    async def record(self, name: str, checksum: str | None, duration_ms: int) -> None:
        """Record `name` as applied, replacing its marker if there is one."""
        ...

    async def remove(self, name: str) -> None:
        """Forget `name`: its record and any marker."""
        ...

    async def update_checksum(self, name: str, checksum: str) -> None:
        """Repair: accept a migration file's current content as the one applied."""
        ...

    async def mark_started(self, name: str, direction: str, owner: str) -> None:
        """Leave a marker that outlives a crash between a step and its record. Stores whose
        transactions make that crash harmless do nothing."""
        ...

    async def clear_marker(self, name: str) -> None:
        """Repair: drop the marker of an interrupted step. An up() marker goes with it (the
        migration is pending again); a down() marker leaves the record applied."""
        ...

    def lock(self, timeout: float, on_wait: WaitCallback) -> AbstractAsyncContextManager[None]: ...

    def transaction(self) -> AbstractAsyncContextManager[None]: ...

    def bind_infra(self, declared: object) -> object | None:
        """The infra a migration should use instead of `declared`, to share the run's connection
        and transaction; None to leave the migration's own infra alone."""
        ...

    def legacy_repository(self) -> object:
        """What the original passed to `AbstractMigration.__init__` as `migration_repository`."""
        ...

    def connection_lost(self, error: BaseException) -> ClandestinoError | None:
        """If `error`, raised inside a migration, means the connection to the database is gone,
        the error to stop the run with (exit 3) instead of blaming the migration."""
        ...


def utc_from_text(value: object) -> datetime | None:
    """A time a store kept as ISO text; one without a zone is UTC, as the original wrote them.
    None for anything else, so that an odd record is shown without a time rather than fatal."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@asynccontextmanager
async def opened(store: ControlStore) -> AsyncIterator[ControlStore]:
    """Open `store` for the duration of the block and close it on every path."""
    try:
        # Inside the try: an open() that fails half way still has its client closed.
        await store.open()
        yield store
    finally:
        await store.aclose()
