"""What a fleet run did to each target: the per-target report `migrate(fleet=...)` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["FleetDirection", "FleetReport", "TargetOutcome", "TargetState", "TargetStatus"]

# applied: this runner ran migrations on it; up_to_date: nothing to do; by_other_runner: it had
# work, and another runner did it while this one waited or moved on; failed: its error says why;
# not_run: --on-error stop ended the fleet before it began; listed: -lm read it.
TargetStatus = Literal["applied", "up_to_date", "by_other_runner", "failed", "not_run", "listed"]


FleetDirection = Literal["up", "down", "status"]


@dataclass
class TargetState:
    """One row of the `-lm --fleet` matrix: how many migrations are in each state."""

    applied: int = 0
    pending: int = 0
    changed: int = 0
    missing: int = 0
    interrupted: int = 0

    @property
    def clean(self) -> bool:
        return not (self.pending or self.changed or self.missing or self.interrupted)


@dataclass
class TargetOutcome:
    target: str
    kind: str
    status: TargetStatus
    done: list[str] = field(default_factory=list)
    error: str | None = None
    exit_code: int = 0
    seconds: float = 0.0
    # Whether another runner held the target's lock when this one first came to it.
    deferred: bool = False
    state: TargetState | None = None


@dataclass
class FleetReport:
    direction: FleetDirection
    outcomes: list[TargetOutcome] = field(default_factory=list)
    seconds: float = 0.0
    cancelled: bool = False

    @property
    def failed(self) -> list[TargetOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed and all(o.status != "not_run" for o in self.outcomes)

    def count(self, status: TargetStatus) -> int:
        return sum(o.status == status for o in self.outcomes)

    def by_name(self) -> dict[str, TargetOutcome]:
        return {o.target: o for o in self.outcomes}
