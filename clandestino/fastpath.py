"""`cdt -m` and `cdt -lm` answered without an event loop, when the backend can read its records
in one blocking call (`Backend.read_snapshot`).

Most runs of `cdt -m` find nothing to do: every deploy and every application start runs it. On
SQLite the standard library reads the records without importing asyncio, a third of such a run.
When they leave work to do, the events gathered so far are dropped and the caller runs the async
API, which reads the records again under the lock, as it always does. PostgreSQL has no such
read: its one client is asyncpg, which needs the event loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from clandestino.api import announce_store, scanned, settings_for
from clandestino.backends import read_snapshot
from clandestino.config import Settings
from clandestino.discovery import MigrationFile
from clandestino.engine import Engine, RunReport
from clandestino.events import Event, EventSink
from clandestino.plan import MigrationState, make_plan, migration_states
from clandestino.store import ControlStore, Snapshot

__all__ = ["migrate_if_nothing_to_do", "status_from_snapshot"]


def migrate_if_nothing_to_do(
    on_event: EventSink,
    *,
    migrations_dir: str | Path | None = None,
    to: str | None = None,
    strict: bool = False,
) -> RunReport | None:
    """What `api.migrate` would report when it would change nothing; None when there is work
    to do or the backend cannot be read this way, with nothing emitted."""
    started = time.perf_counter()
    read = _read(migrations_dir, read_only=False)
    if read is None:
        return None
    settings = read.settings
    engine = Engine(
        cast(ControlStore, _NoStore()), read.files, read.held.append, settings.lock_timeout
    )
    refuse = strict or settings.strict_source()
    report = engine.migrate_from(read.snapshot.records, to, refuse, started)
    if report is not None:
        read.release(on_event)
    return report


def status_from_snapshot(
    on_event: EventSink, *, migrations_dir: str | Path | None = None
) -> list[MigrationState] | None:
    """What `api.status` returns, or None when the backend cannot be read this way."""
    read = _read(migrations_dir, read_only=True)
    if read is None:
        return None
    read.release(on_event)
    return migration_states(make_plan(read.files, read.snapshot.records))


@dataclass
class _Read:
    """The settings, the files and the records, with the events said on the way, held back
    until it is known that this path answers."""

    settings: Settings
    files: list[MigrationFile]
    snapshot: Snapshot
    held: list[Event]

    def release(self, on_event: EventSink) -> None:
        for event in self.held:
            on_event(event)


def _read(migrations_dir: str | Path | None, read_only: bool) -> _Read | None:
    held: list[Event] = []
    strays: list[Event] = []
    settings = settings_for(migrations_dir, None, None, None)
    files = scanned(settings, strays.append)
    snapshot = read_snapshot(settings)
    if snapshot is None:
        return None
    # The mode line comes first, then what the folder holds that is not a migration.
    announce_store(held.append, snapshot.description, snapshot.locking, read_only)
    return _Read(settings, files, snapshot, held + strays)


class _NoStore:
    """The engine's store when it only settles a run from records read beforehand."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"a settled run touched the store ({name})")
