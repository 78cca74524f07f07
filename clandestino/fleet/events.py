"""What a fleet run reports, besides its targets' own engine events (wrapped in `OnTarget`)."""

from __future__ import annotations

from dataclasses import dataclass

from clandestino.events import Event
from clandestino.fleet.report import FleetReport, TargetOutcome

__all__ = [
    "FleetEvent",
    "FleetFinished",
    "FleetStarted",
    "OnTarget",
    "TargetDeferred",
    "TargetDone",
]


@dataclass
class FleetStarted:
    direction: str
    targets: int
    concurrency: int


@dataclass
class OnTarget:
    """An engine event of one target's run."""

    target: str
    event: Event


@dataclass
class TargetDeferred:
    """The target's lock was held: this runner comes back to it at the end."""

    target: str


@dataclass
class TargetDone:
    outcome: TargetOutcome


@dataclass
class FleetFinished:
    report: FleetReport


FleetEvent = FleetStarted | OnTarget | TargetDeferred | TargetDone | FleetFinished
