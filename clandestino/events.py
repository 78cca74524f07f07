"""What the engine reports while it works. The engine emits these; `output` renders them."""

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
    "Warned",
]

Direction = Literal["up", "down"]


@dataclass(frozen=True)
class RepositoryChosen:
    mode: str
    locking: bool


@dataclass(frozen=True)
class Warned:
    message: str


@dataclass(frozen=True)
class LockWaiting:
    holder: str
    since: datetime | None
    timeout: float


@dataclass(frozen=True)
class RunStarted:
    direction: Direction
    dry_run: bool = False


@dataclass(frozen=True)
class MigrationSkipped:
    name: str


@dataclass(frozen=True)
class MigrationPlanned:
    """Dry run: this migration would run."""

    name: str
    direction: Direction


@dataclass(frozen=True)
class MigrationStarted:
    name: str
    direction: Direction


@dataclass(frozen=True)
class MigrationStillRunning:
    """A step has been running for `seconds`: said a couple of seconds in, then now and again."""

    name: str
    direction: Direction
    seconds: float


@dataclass(frozen=True)
class MigrationSucceeded:
    name: str
    direction: Direction
    seconds: float


@dataclass(frozen=True)
class MigrationErrored:
    name: str
    direction: Direction
    error: str
    down_error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class MarkerCleared:
    """Repair: the marker of an interrupted step is gone; `pending` says the migration runs
    again (an interrupted up()) rather than staying applied (an interrupted down())."""

    name: str
    pending: bool


@dataclass(frozen=True)
class ChecksumRefreshed:
    """Repair: a changed file's content is now the one on record."""

    name: str


@dataclass(frozen=True)
class MigrationBaselined:
    """Baseline: recorded as applied without running."""

    name: str


@dataclass(frozen=True)
class RunFinished:
    direction: Direction
    done: int
    skipped: int
    failed: int
    seconds: float
    planned: int = 0
    dry_run: bool = False


Event = (
    RepositoryChosen
    | Warned
    | LockWaiting
    | RunStarted
    | MigrationSkipped
    | MigrationPlanned
    | MigrationStarted
    | MigrationStillRunning
    | MigrationSucceeded
    | MigrationErrored
    | MarkerCleared
    | ChecksumRefreshed
    | MigrationBaselined
    | RunFinished
)
EventSink = Callable[[Event], None]
