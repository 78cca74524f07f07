"""What the engine reports while it works. The engine emits these; `output` renders them.

Plain dataclasses, not frozen ones: nothing changes an event once emitted, and frozen classes
take twice as long to define, which a no-op `cdt -m` pays for every one of these at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

__all__ = [
    "ChecksumRefreshed",
    "Direction",
    "Event",
    "EventSink",
    "LeftoverDropped",
    "LockWaiting",
    "MarkerCleared",
    "MigrationBaselined",
    "MigrationErrored",
    "MigrationPlanned",
    "MigrationSkipped",
    "MigrationStarted",
    "MigrationStillRunning",
    "MigrationSucceeded",
    "RepositoryChosen",
    "RunFinished",
    "RunStarted",
    "StepBlocked",
    "Warned",
]

Direction = Literal["up", "down"]


@dataclass
class RepositoryChosen:
    mode: str
    locking: bool


@dataclass
class Warned:
    message: str


@dataclass
class LockWaiting:
    holder: str
    since: datetime | None
    timeout: float


@dataclass
class RunStarted:
    direction: Direction
    dry_run: bool = False


@dataclass
class MigrationSkipped:
    name: str


@dataclass
class MigrationPlanned:
    """Dry run: this migration would run."""

    name: str
    direction: Direction


@dataclass
class MigrationStarted:
    name: str
    direction: Direction


@dataclass
class MigrationStillRunning:
    """A step has been running for `seconds`: said a couple of seconds in, then now and again."""

    name: str
    direction: Direction
    seconds: float


@dataclass
class StepBlocked:
    """A step waited `lock_timeout` seconds for a lock held by `blockers`, gave up and was
    rolled back; it runs again in `retry_in` seconds, or not at all when that is None."""

    name: str
    direction: Direction
    attempt: int
    attempts: int
    lock_timeout: float
    blockers: list[str]
    retry_in: float | None


@dataclass
class MigrationSucceeded:
    name: str
    direction: Direction
    seconds: float


@dataclass
class MigrationErrored:
    name: str
    direction: Direction
    error: str
    down_error: str | None = None
    seconds: float = 0.0


@dataclass
class MarkerCleared:
    """Repair: the marker of an interrupted step is gone; `pending` says the migration runs
    again (an interrupted up()) rather than staying applied (an interrupted down())."""

    name: str
    pending: bool


@dataclass
class LeftoverDropped:
    """Repair: something a failed step left in the database is gone (an invalid index)."""

    what: str


@dataclass
class ChecksumRefreshed:
    """Repair: a changed file's content is now the one on record."""

    name: str


@dataclass
class MigrationBaselined:
    """Baseline: recorded as applied without running."""

    name: str


@dataclass
class RunFinished:
    direction: Direction
    done: int
    skipped: int
    failed: int
    seconds: float
    planned: int = 0
    dry_run: bool = False
    # A baseline: `done` were marked as applied without running.
    baseline: bool = False


Event = (
    RepositoryChosen
    | Warned
    | LockWaiting
    | RunStarted
    | MigrationSkipped
    | MigrationPlanned
    | MigrationStarted
    | MigrationStillRunning
    | StepBlocked
    | MigrationSucceeded
    | MigrationErrored
    | MarkerCleared
    | LeftoverDropped
    | ChecksumRefreshed
    | MigrationBaselined
    | RunFinished
)
EventSink = Callable[[Event], None]
